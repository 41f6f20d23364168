using SharpFormer.Tasks;
using Xunit;

namespace SharpFormer.Tests;

public class BioDecodingTests
{
    static readonly Dictionary<int, string> Labels = new() { [0] = "O", [1] = "B-PER", [2] = "I-PER", [3] = "B-LOC", [4] = "I-LOC" };

    static bool ValidBio(IReadOnlyList<int> tags, IReadOnlyDictionary<int, string> id2label)
    {
        for (int i = 0; i < tags.Count; i++)
        {
            string t = id2label[tags[i]];
            if (!t.StartsWith("I-")) continue;
            if (i == 0) return false;
            string prev = id2label[tags[i - 1]];
            if (prev != "B-" + t[2..] && prev != t) return false;
        }
        return true;
    }

    static double LogScore(IReadOnlyList<float[]> probs, IReadOnlyList<int> tags) =>
        tags.Select((t, i) => Math.Log(Math.Max(probs[i][t], 1e-38f))).Sum();

    [Fact]
    public void Decode_RepairsAnIWithoutItsB()
    {
        // Argmax: O I-PER I-PER — invalid. Best valid: O B-PER I-PER (B-PER at 0.3 beats giving up the entity).
        var probs = new List<float[]>
        {
            new[] { 0.9f, 0.02f, 0.04f, 0.02f, 0.02f },
            new[] { 0.1f, 0.3f, 0.5f, 0.05f, 0.05f },
            new[] { 0.1f, 0.05f, 0.8f, 0.03f, 0.02f },
        };
        Assert.Equal(new[] { 0, 1, 2 }, BioDecoder.Decode(probs, Labels));
    }

    [Fact]
    public void Decode_NeverContinuesAnotherType()
    {
        var probs = new List<float[]>
        {
            new[] { 0.05f, 0.8f, 0.05f, 0.05f, 0.05f },   // B-PER
            new[] { 0.05f, 0.05f, 0.2f, 0.05f, 0.65f },   // argmax I-LOC after B-PER: invalid
        };
        var tags = BioDecoder.Decode(probs, Labels);
        Assert.True(ValidBio(tags, Labels));
        Assert.Equal(new[] { 1, 2 }, tags);   // log(.8)+log(.2) > log(.05)+log(.65) for B-LOC I-LOC
    }

    [Fact]
    public void Decode_FindsTheBestValidSequence_AgainstBruteForce()
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = rng.Next(1, 6);
            var probs = Enumerable.Range(0, n).Select(_ =>
            {
                var p = Enumerable.Range(0, 5).Select(_ => (float)rng.NextDouble()).ToArray();
                float s = p.Sum();
                return p.Select(x => x / s).ToArray();
            }).ToList();
            var tags = BioDecoder.Decode(probs, Labels);
            Assert.True(ValidBio(tags, Labels));
            double best = double.NegativeInfinity;
            foreach (var seq in AllSequences(n, 5))
                if (ValidBio(seq, Labels)) best = Math.Max(best, LogScore(probs, seq));
            Assert.Equal(best, LogScore(probs, tags), 9);
        }
    }

    static IEnumerable<int[]> AllSequences(int n, int k)
    {
        int total = (int)Math.Pow(k, n);
        for (int code = 0; code < total; code++)
        {
            var s = new int[n];
            for (int i = 0, c = code; i < n; i++, c /= k) s[i] = c % k;
            yield return s;
        }
    }

    [Fact]
    public void Decode_ValidArgmaxIsKept_AndEmptyInputIsEmpty()
    {
        var probs = new List<float[]> { new[] { 0.1f, 0.6f, 0.1f, 0.1f, 0.1f }, new[] { 0.1f, 0.1f, 0.6f, 0.1f, 0.1f }, new[] { 0.7f, 0.1f, 0.1f, 0.05f, 0.05f } };
        Assert.Equal(new[] { 1, 2, 0 }, BioDecoder.Decode(probs, Labels));
        Assert.Empty(BioDecoder.Decode([], Labels));
    }

    [Fact]
    public void TokenClassifier_BioDecoding_GivesValidTagsOnTheFixture()
    {
        var ner = TokenClassifier.Load(Path.Combine(SharedPaths.Fixtures, "bert-tiny-ner"));
        string text = "阿里巴巴的总部位于中国杭州市，马云是它的创始人之一。";
        var result = ner.Predict(text, AggregationStrategy.None, decoding: TagDecoding.Bio);
        var tags = result.Tokens.Select(t => t.Decoded!.Value).ToList();
        Assert.True(ValidBio(tags, ner.Id2Label));
        // Each reported entity carries the probability of the decoded label.
        foreach (var e in result.Entities)
        {
            var token = result.Tokens.Single(t => t.Index == e.Index);
            Assert.Equal(ner.Id2Label[token.Decoded!.Value], e.Label);
            Assert.Equal(token.Scores[token.Decoded!.Value], e.Score);
        }
        Assert.Throws<SharpFormerException>(() => ner.Predict(text, AggregationStrategy.First, decoding: TagDecoding.Bio));
    }

    [Fact]
    public void Cli_DecodeOption_BadValueIsOneLineError()
    {
        var r = CliHarness.Run("ner", "--model", Path.Combine(SharedPaths.Fixtures, "bert-tiny-ner"), "--decode", "viterbi", "你好");
        CliHarness.AssertOneLineError(r, "--decode");
        // evaluate checks it whatever the task, so a bad value is never silently ignored.
        var data = Path.Combine(Directory.CreateTempSubdirectory("sf-decode-").FullName, "reviews.tsv");
        File.WriteAllText(data, "房间很干净，服务也好。\tpositive\n等了一个小时还没上菜。\tnegative\n");
        try
        {
            var ev = CliHarness.Run("evaluate", "--model", Path.Combine(SharedPaths.Fixtures, "bert-tiny-seqcls"), "--task", "classify",
                "--data", data, "--decode", "viterbi");
            CliHarness.AssertOneLineError(ev, "--decode");
        }
        finally { Directory.Delete(Path.GetDirectoryName(data)!, true); }
        var ok = CliHarness.Run("ner", "--model", Path.Combine(SharedPaths.Fixtures, "bert-tiny-ner"), "--decode", "bio", "--json", "你好北京");
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("\"entities\"", ok.Stdout);
    }
}
