using SharpFormer.Tasks;

namespace SharpFormer.Tests;

/// <summary>
/// HuggingFace token-classification grouping on hand-made tag sequences (every aggregation strategy; BIO and IOB1;
/// I- without B-, adjacent same-type entities, sub-word pieces), and the offset property on real model outputs.
/// </summary>
public class NerAggregationTests
{
    static readonly Dictionary<int, string> Bio = new()
    {
        [0] = "O", [1] = "B-PER", [2] = "I-PER", [3] = "B-ORG", [4] = "I-ORG", [5] = "B-LOC", [6] = "I-LOC",
    };

    /// <summary>A token whose arg-max is <paramref name="label"/> with probability <paramref name="p"/> (the rest spread evenly).</summary>
    static float[] Scores(string label, float p, IReadOnlyDictionary<int, string>? labels = null)
    {
        labels ??= Bio;
        var s = new float[labels.Count];
        Array.Fill(s, (1 - p) / (labels.Count - 1));
        s[labels.Single(kv => kv.Value == label).Key] = p;
        return s;
    }

    /// <summary>Tokens over a space-separated text: "##x" pieces continue the previous word; each token's span is found in the text.</summary>
    static (string Text, List<TokenPrediction> Tokens) Build(params (string Token, string Label, float P)[] tokens) => Build(Bio, tokens);

    static (string Text, List<TokenPrediction> Tokens) Build(IReadOnlyDictionary<int, string> labels, params (string Token, string Label, float P)[] tokens)
    {
        var text = new System.Text.StringBuilder();
        var list = new List<TokenPrediction>();
        foreach (var (tok, label, p) in tokens)
        {
            bool sub = tok.StartsWith("##");
            var piece = sub ? tok[2..] : tok;
            if (!sub && text.Length > 0) text.Append(' ');
            int start = text.Length;
            text.Append(piece);
            list.Add(new TokenPrediction(list.Count + 1, tok, start, text.Length, Scores(label, p, labels), sub));
        }
        return (text.ToString(), list);
    }

    static List<Entity> Run(AggregationStrategy s, (string Text, List<TokenPrediction> Tokens) input, IReadOnlyDictionary<int, string>? labels = null)
    {
        var result = EntityAggregator.Aggregate(input.Text, input.Tokens, labels ?? Bio, s);
        Assert.All(result, e => Assert.Equal(input.Text[e.Start..e.End], e.Word));
        return result;
    }

    static string Show(IEnumerable<Entity> es) => string.Join(" | ", es.Select(e => $"{e.Label}:{e.Word}"));

    [Fact]
    public void None_GivesOneEntityPerNonOToken_WithIndexAndFullTag()
    {
        var input = Build(("John", "B-PER", 0.9f), ("Smith", "I-PER", 0.8f), ("works", "O", 0.9f), ("at", "O", 0.9f), ("Acme", "B-ORG", 0.7f));
        var es = Run(AggregationStrategy.None, input);
        Assert.Equal("B-PER:John | I-PER:Smith | B-ORG:Acme", Show(es));
        Assert.Equal(new int?[] { 1, 2, 5 }, es.Select(e => e.Index));
        Assert.Equal(0.8f, es[1].Score, 6);
        Assert.All(es, e => Assert.False(e.IsGroup));
    }

    [Fact]
    public void Simple_GroupsBI_AndAveragesScores()
    {
        var input = Build(("John", "B-PER", 0.9f), ("Smith", "I-PER", 0.7f), ("works", "O", 0.9f), ("at", "O", 0.9f), ("Acme", "B-ORG", 0.6f), ("Corp", "I-ORG", 0.8f));
        var es = Run(AggregationStrategy.Simple, input);
        Assert.Equal("PER:John Smith | ORG:Acme Corp", Show(es));
        Assert.Equal(0.8f, es[0].Score, 6);
        Assert.Equal(0.7f, es[1].Score, 6);
        Assert.Equal((0, 10), (es[0].Start, es[0].End));
        Assert.All(es, e => Assert.True(e.IsGroup));
    }

    [Fact]
    public void IWithoutB_StartsAnEntity()
    {
        var input = Build(("in", "O", 0.9f), ("New", "I-LOC", 0.8f), ("York", "I-LOC", 0.6f), ("today", "O", 0.9f));
        Assert.Equal("LOC:New York", Show(Run(AggregationStrategy.Simple, input)));
        // I- after a different type starts a new entity too.
        var mixed = Build(("Paris", "B-PER", 0.9f), ("Hilton", "I-LOC", 0.9f));
        Assert.Equal("PER:Paris | LOC:Hilton", Show(Run(AggregationStrategy.Simple, mixed)));
    }

    [Fact]
    public void AdjacentEntitiesOfTheSameType_AreSplitByB()
    {
        var input = Build(("Alice", "B-PER", 0.9f), ("Bob", "B-PER", 0.8f), ("Carol", "I-PER", 0.7f));
        Assert.Equal("PER:Alice | PER:Bob Carol", Show(Run(AggregationStrategy.Simple, input)));
        // IOB1: entities are I- throughout, B- only where a same-type entity directly follows another.
        var iob1 = Build(("Alice", "I-PER", 0.9f), ("Bob", "B-PER", 0.8f), ("and", "O", 0.9f), ("Acme", "I-ORG", 0.9f), ("Corp", "I-ORG", 0.9f));
        Assert.Equal("PER:Alice | PER:Bob | ORG:Acme Corp", Show(Run(AggregationStrategy.Simple, iob1)));
        // An O between two I- of one type separates them.
        var gap = Build(("Acme", "I-ORG", 0.9f), ("and", "O", 0.9f), ("Corp", "I-ORG", 0.9f));
        Assert.Equal("ORG:Acme | ORG:Corp", Show(Run(AggregationStrategy.Simple, gap)));
    }

    [Fact]
    public void LabelsWithoutPrefix_GroupByType()
    {
        var plain = new Dictionary<int, string> { [0] = "O", [1] = "PER", [2] = "LOC" };
        var input = Build(plain, ("John", "PER", 0.9f), ("Smith", "PER", 0.9f), ("Paris", "LOC", 0.9f), ("x", "O", 0.9f));
        Assert.Equal("PER:John Smith | LOC:Paris", Show(Run(AggregationStrategy.Simple, input, plain)));
    }

    [Fact]
    public void SubwordPieces_WordStrategies()
    {
        // "Washington": the first piece says LOC weakly, the continuation says PER strongly.
        var input = Build(
            ("wash", "B-LOC", 0.40f), ("##ing", "I-PER", 0.90f), ("##ton", "I-PER", 0.50f),
            ("is", "O", 0.95f), ("big", "O", 0.95f));
        // simple: token level; the pieces become LOC + PER (B-LOC then I-PER is a new type).
        Assert.Equal("LOC:wash | PER:ington", Show(Run(AggregationStrategy.Simple, input)));
        // first: the word takes its first token's label.
        var first = Run(AggregationStrategy.First, input);
        Assert.Equal("LOC:washington", Show(first));
        Assert.Equal(0.40f, first[0].Score, 6);
        // max: the word takes the label of its most confident token.
        var max = Run(AggregationStrategy.Max, input);
        Assert.Equal("PER:washington", Show(max));
        Assert.Equal(0.90f, max[0].Score, 6);
        // average: arg-max of the averaged distributions: I-PER (0.1 + 0.9 + 0.5) / 3 = 0.5 beats B-LOC (≈ 0.17).
        var avg = Run(AggregationStrategy.Average, input);
        Assert.Equal("PER:washington", Show(avg));
        var expected = (0.90f + 0.50f + (1 - 0.40f) / 6) / 3;
        Assert.Equal(expected, avg[0].Score, 5);
        // Word strategies never split a word, whatever its pieces say.
        Assert.All(new[] { first, max, avg }, es => Assert.DoesNotContain(es, e => e.Word == "ington"));
    }

    [Fact]
    public void WordStrategies_GroupWordsLikeSimple()
    {
        var input = Build(("New", "B-LOC", 0.8f), ("Yor", "I-LOC", 0.7f), ("##k", "O", 0.6f), ("City", "I-LOC", 0.9f), ("hall", "O", 0.9f));
        Assert.Equal("LOC:New York City", Show(Run(AggregationStrategy.First, input)));
        Assert.Equal("LOC:New York City", Show(Run(AggregationStrategy.Max, input)));
        // simple splits at the "##k" piece tagged O.
        Assert.Equal("LOC:New Yor | LOC:City", Show(Run(AggregationStrategy.Simple, input)));
    }

    [Fact]
    public void CjkCharacters_AreWordsOfTheirOwn()
    {
        // With bert-base-chinese each character is a token and a word: word strategies equal token strategies.
        var text = "马云在杭州";
        var tags = new[] { ("B-PER", 0.9f), ("I-PER", 0.8f), ("O", 0.9f), ("B-LOC", 0.7f), ("I-LOC", 0.6f) };
        var tokens = tags.Select((t, i) => new TokenPrediction(i + 1, text[i].ToString(), i, i + 1, Scores(t.Item1, t.Item2), false)).ToList();
        foreach (var s in new[] { AggregationStrategy.Simple, AggregationStrategy.First, AggregationStrategy.Average, AggregationStrategy.Max })
        {
            var es = EntityAggregator.Aggregate(text, tokens, Bio, s);
            Assert.Equal("PER:马云 | LOC:杭州", Show(es));
            Assert.Equal((3, 5), (es[1].Start, es[1].End));
        }
    }

    [Fact]
    public void IgnoreLabels_CanBeEmpty_AndWordsFallBackToTokensWithoutText()
    {
        var input = Build(("a", "O", 0.9f), ("b", "O", 0.9f), ("c", "B-PER", 0.9f));
        var all = EntityAggregator.Aggregate(input.Text, input.Tokens, Bio, AggregationStrategy.Simple, ignoreLabels: []);
        Assert.Equal("O:a b | PER:c", Show(all));
        var noText = EntityAggregator.Aggregate(null, Build(("wash", "B-LOC", 0.9f), ("##ington", "I-LOC", 0.9f)).Tokens, Bio, AggregationStrategy.Simple);
        Assert.Equal("washington", Assert.Single(noText).Word);
    }

    // ------------------------------------------------------------------ offsets property test

    const string Latin = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const string Cjk = "阿里巴巴的总部位于中国杭州市马云是它创始人之一特斯拉电动汽车公司我爱北京天安门深度学习";
    const string Punct = ",.!?;:()-'\"，。！？、";

    static string RandomText(Random rng, int kind)
    {
        var sb = new System.Text.StringBuilder();
        int len = rng.Next(1, 90);
        for (int i = 0; i < len; i++)
        {
            int r = rng.Next(100);
            bool chinese = kind == 0 || (kind == 2 && r < 50);
            if (r < 12) sb.Append(' ');
            else if (r < 18) sb.Append(Punct[rng.Next(Punct.Length)]);
            else if (chinese) sb.Append(Cjk[rng.Next(Cjk.Length)]);
            else sb.Append(Latin[rng.Next(Latin.Length)]);
        }
        var s = sb.ToString();
        return s.Trim().Length == 0 ? "文本" : s;
    }

    [Fact]
    public void Offsets_AlwaysSliceTheOriginalTextBackToTheEntity()
    {
        var ner = TokenClassifier.Load(Path.Combine(SharedPaths.Fixtures, "bert-tiny-ner"));
        var rng = new Random(20240611);
        var strategies = Enum.GetValues<AggregationStrategy>();
        for (int trial = 0; trial < 60; trial++)
        {
            var text = RandomText(rng, trial % 3);
            foreach (var s in strategies)
            {
                var res = ner.Predict(text, s, ignoreLabels: []);
                int lastEnd = 0;
                foreach (var e in res.Entities)
                {
                    Assert.InRange(e.Start, 0, text.Length);
                    Assert.InRange(e.End, e.Start + 1, text.Length);
                    Assert.Equal(text[e.Start..e.End], e.Word);
                    Assert.Equal(e.Word.Trim(), e.Word);
                    Assert.True(e.Start >= lastEnd, $"entities overlap or are out of order in \"{text}\" ({s})");
                    lastEnd = e.End;
                    if (s == AggregationStrategy.None && e.Token != "[UNK]")
                    {
                        // The token is the lower-cased slice (minus the "##" continuation prefix).
                        var piece = e.Token!.StartsWith("##") ? e.Token[2..] : e.Token;
                        Assert.Equal(piece, e.Word.ToLowerInvariant());
                    }
                }
                if (s == AggregationStrategy.None)
                    Assert.Equal(res.Tokens.Count, res.Entities.Count);   // ignoreLabels empty: every token reported
                else
                    // Groups cover every token: the concatenation of all words, spaces removed, is the text without spaces.
                    Assert.Equal(string.Concat(text.Where(c => !char.IsWhiteSpace(c))), string.Concat(res.Entities.SelectMany(e => e.Word).Where(c => !char.IsWhiteSpace(c))));
            }
        }
    }
}
