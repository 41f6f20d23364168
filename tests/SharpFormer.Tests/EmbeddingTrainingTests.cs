using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;
using SharpFormer.Training;

namespace SharpFormer.Tests;

/// <summary>
/// <c>train embed</c>: the contrastive loss and its backward (against central finite differences), that training pulls
/// positives together, and the CLI's folder, resume and input errors.
/// </summary>
public class EmbeddingTrainingTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-train-embed-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    string Write(string name, string text)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    static readonly string BertTiny = SharedPaths.Fixture("bert-tiny");

    static readonly (string A, string B)[] Pairs =
    [
        ("我喜欢吃苹果", "苹果我很喜欢吃"), ("今天天气很好", "今天的天气不错"), ("北京是中国的首都", "中国的首都是北京"),
        ("猫在沙发上睡觉", "沙发上有只猫在睡"), ("他在公司加班", "他加班在公司"), ("明天可能下雨", "明天也许会下雨"),
    ];

    static ContrastiveTraining NewTraining(bool symmetric, Pooling pooling = Pooling.Mean)
    {
        var model = TrainingModels.Bert(BertTiny, null, BertHeads.None, null, 42, out _);
        var enc = new BertTraining(model);
        enc.DisableDropout();
        return new ContrastiveTraining(enc, pooling, 0.05, symmetric);
    }

    /// <summary>Anchors, positives, then hard negatives (here: the positives of other pairs, in reverse).</summary>
    static ContrastiveBatch Batch(ITokenizer tok, IReadOnlyList<(string A, string B)> pairs, IReadOnlyList<string>? negatives = null)
    {
        EncodedExample E(string s) { var e = tok.Encode(s); return new EncodedExample(e.InputIds, new int[e.InputIds.Length]); }
        var rows = pairs.Select(p => E(p.A)).Concat(pairs.Select(p => E(p.B))).Concat((negatives ?? []).Select(E)).ToList();
        return new ContrastiveBatch(Batching.Bert(rows, 0), pairs.Count);
    }

    // ------------------------------------------------------------------ the loss and its gradient

    /// <summary>
    /// The loss head alone (normalisation + InfoNCE) is computed in double, so its gradient with respect to the pooled
    /// vectors must match central differences to float64 accuracy: with step 1e-5 the truncation error is O(h²) ≈ 1e-10
    /// (the loss is smooth, its third derivatives O(1/τ³ · 1/‖u‖³) ≈ 1e4 for these inputs → ≈ 1e-6 at worst) and rounding
    /// ≈ 1e-16 / 1e-5 = 1e-11; 1e-6 absolute + 1e-5 relative leaves room for the former and catches any wrong term,
    /// whose error is the size of the gradient itself (≥ 1e-2 here). The pooled vectors are bert-tiny's own.
    /// </summary>
    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(true, 2)]
    [InlineData(false, 3)]
    public void LossGradientMatchesFiniteDifferencesInDouble(bool symmetric, int negatives)
    {
        var tok = AutoTokenizer.FromFolder(BertTiny);
        var tr = NewTraining(symmetric);
        var pairs = Pairs.Take(4).ToList();
        var batch = Batch(tok, pairs, Pairs.Skip(4).Select(p => p.B).Concat(Pairs.Take(1).Select(p => p.A)).Take(negatives).ToList());
        // bert-tiny's mean-pooled vectors, as doubles.
        var seq = tr.Encoder.Encode(batch.Rows).SequenceOutput;
        int b = batch.Rows.Batch, t = batch.Rows.Length, h = tr.Encoder.Config.HiddenSize;
        var u = new double[b * h];
        for (int i = 0; i < b; i++)
        {
            int n = batch.Rows.AttentionMask![i].Count(m => m != 0);
            for (int j = 0; j < n; j++) for (int k = 0; k < h; k++) u[i * h + k] += seq[(i * t + j) * h + k] / (double)n;
        }
        var grad = new double[u.Length];
        double loss = ContrastiveLoss.Compute(u, b, h, pairs.Count, 0.05, symmetric, grad);
        Assert.True(loss > 0 && double.IsFinite(loss));
        Assert.Equal(loss, ContrastiveLoss.Compute(u, b, h, pairs.Count, 0.05, symmetric, Span<double>.Empty));
        const double step = 1e-5;
        for (int i = 0; i < u.Length; i++)
        {
            double orig = u[i];
            u[i] = orig + step; double up = ContrastiveLoss.Compute(u, b, h, pairs.Count, 0.05, symmetric, Span<double>.Empty);
            u[i] = orig - step; double down = ContrastiveLoss.Compute(u, b, h, pairs.Count, 0.05, symmetric, Span<double>.Empty);
            u[i] = orig;
            double numeric = (up - down) / (2 * step);
            Assert.True(Math.Abs(numeric - grad[i]) <= 1e-6 + 1e-5 * Math.Abs(numeric), $"d loss / d u[{i}]: backward {grad[i]:G10}, finite difference {numeric:G10}");
        }
        Assert.Contains(grad, g => Math.Abs(g) > 1e-2);
        // Hard negatives are rows of their own: they get a gradient too.
        if (negatives > 0) Assert.Contains(grad.Skip(2 * pairs.Count * h), g => Math.Abs(g) > 1e-3);
    }

    [Fact]
    public void LossIsTheCrossEntropyOfTheCosineMatrix()
    {
        // Two pairs in 2-D: anchors (1,0), (0,1); positives (1,0), (0,2) (normalised away). Cosines: diagonal 1, off 0.
        double[] u = [1, 0, 0, 1, 1, 0, 0, 2];
        double tau = 0.5, expected = Math.Log(1 + Math.Exp(-1 / tau));   // −log(e^{2} / (e^{2} + e^{0}))
        Assert.Equal(expected, ContrastiveLoss.Compute(u, 4, 2, 2, tau, false, Span<double>.Empty), 12);
        Assert.Equal(expected, ContrastiveLoss.Compute(u, 4, 2, 2, tau, true, Span<double>.Empty), 12);
    }

    /// <summary>
    /// The whole chain (encoder → pooling → normalisation → loss) against central differences of the loss in the
    /// parameters, dropout off. The encoder runs in float32, so a loss of ≈ 2 carries rounding ≈ 1e-6 and a step of 1e-2
    /// turns that into ≈ 1e-4 of noise in the numeric gradient (the truncation error O(h²) is of the same size): the
    /// tolerance of the other encoder-gradient checks (2e-4 + 2 %) applies, while the head itself is checked at float64
    /// accuracy above. Entries with the largest gradients are picked, where a wrong backward cannot hide in rounding.
    /// </summary>
    [Theory]
    [InlineData(Pooling.Mean, false, "bert.encoder.layer.1.output.dense.weight")]
    [InlineData(Pooling.Mean, true, "bert.encoder.layer.1.output.LayerNorm.bias")]
    [InlineData(Pooling.Mean, false, "bert.encoder.layer.0.attention.self.query.weight")]
    [InlineData(Pooling.Mean, true, "bert.embeddings.word_embeddings.weight")]
    [InlineData(Pooling.Cls, false, "bert.encoder.layer.0.intermediate.dense.weight")]
    [InlineData(Pooling.Cls, true, "bert.embeddings.position_embeddings.weight")]
    public void EncoderGradientsMatchFiniteDifferences(Pooling pooling, bool symmetric, string name)
    {
        var tok = AutoTokenizer.FromFolder(BertTiny);
        var tr = NewTraining(symmetric, pooling);
        var batch = Batch(tok, Pairs.Take(3).ToList(), [Pairs[4].B]);
        tr.Gradients.Zero();
        var res = tr.Step(batch, backward: true);
        Assert.Equal(3, res.Count);
        var analytic = tr.Gradients[name];
        var w = tr.Parameters[name].Data;
        var picks = Enumerable.Range(0, w.Length).OrderByDescending(i => Math.Abs(analytic[i])).Take(6);
        const float step = 1e-2f;
        foreach (int i in picks)
        {
            float orig = w[i];
            w[i] = orig + step; tr.WeightsChanged();
            double up = tr.Step(batch, backward: false).Loss;
            w[i] = orig - step; tr.WeightsChanged();
            double down = tr.Step(batch, backward: false).Loss;
            w[i] = orig; tr.WeightsChanged();
            double numeric = (up - down) / (2 * step);
            Assert.True(Math.Abs(numeric - analytic[i]) <= 2e-4 + 0.02 * Math.Abs(numeric), $"{name}[{i}]: backward {analytic[i]:G6}, finite difference {numeric:G6}");
        }
        Assert.Contains(analytic, g => Math.Abs(g) > 1e-3f);
        // Forward without backward leaves the gradients alone.
        var before = (float[])analytic.Clone();
        tr.Step(batch, backward: false);
        Assert.Equal(before, tr.Gradients[name]);
    }

    // ------------------------------------------------------------------ training

    static double MeanCosine(float[][] v, int pairs, bool positives)
    {
        double sum = 0; int n = 0;
        for (int i = 0; i < pairs; i++)
            for (int j = 0; j < pairs; j++)
                if ((i == j) == positives) { sum += SentenceEmbedder.Cosine(v[i], v[pairs + j]); n++; }
        return sum / n;
    }

    [Fact]
    public void TrainingLowersTheLossAndPullsPositivesAboveNegatives()
    {
        var tok = AutoTokenizer.FromFolder(BertTiny);
        var tr = NewTraining(symmetric: true);
        var batch = Batch(tok, Pairs);
        var trainer = new Trainer<ContrastiveBatch>(tr, new TrainerOptions { LearningRate = 1e-3, Schedule = ScheduleKind.Constant, TotalSteps = 30 });
        var before = tr.Embed(batch.Rows);
        double first = tr.Step(batch, backward: false).Loss, last = 0;
        for (int s = 0; s < 30; s++) last = trainer.TrainStep(batch).Loss;
        double final = tr.Step(batch, backward: false).Loss;
        var after = tr.Embed(batch.Rows);
        Assert.True(final < 0.25 * first, $"loss {first:F4} → {final:F4} (last step {last:F4})");
        double pos = MeanCosine(after, Pairs.Length, true), neg = MeanCosine(after, Pairs.Length, false);
        Assert.True(pos > neg + 0.3, $"after training: positives' mean cosine {pos:F3}, negatives' {neg:F3}");
        Assert.True(pos - neg > MeanCosine(before, Pairs.Length, true) - MeanCosine(before, Pairs.Length, false), "the margin grew");
        // Every anchor's nearest candidate is its own positive.
        for (int i = 0; i < Pairs.Length; i++)
        {
            int best = Enumerable.Range(0, Pairs.Length).MaxBy(j => SentenceEmbedder.Cosine(after[i], after[Pairs.Length + j]));
            Assert.Equal(i, best);
        }
        // Identical texts embed identically: cosine 1.
        var same = tr.Embed(Batch(tok, [("杭州哪里好玩", "杭州哪里好玩")]).Rows);
        Assert.Equal(1.0, SentenceEmbedder.Cosine(same[0], same[1]), 6);
    }

    [Fact]
    public void SimCseViewsDifferOnlyByDropout()
    {
        var tok = AutoTokenizer.FromFolder(BertTiny);
        var model = TrainingModels.Bert(BertTiny, null, BertHeads.None, null, 42, out _);
        var tr = new ContrastiveTraining(new BertTraining(model), Pooling.Mean, 0.05);
        var batch = Batch(tok, Pairs.Select(p => (p.A, p.A)).ToList());
        double withDropout = tr.Step(batch, backward: false).Loss;
        tr.Training = false;
        double without = tr.Step(batch, backward: false).Loss;
        // Without dropout each positive is its anchor exactly (cosine 1, the largest possible): the loss is at its floor.
        Assert.True(withDropout > without, $"dropout views {withDropout:F5}, identical views {without:F5}");
        Assert.True(tr.Training == false && tr.Encoder.Training == false);
    }

    // ------------------------------------------------------------------ data

    [Fact]
    public void PairsReaderSkipsLabelZeroOrUsesItAsAHardNegative()
    {
        var path = Write("p.jsonl", """
            {"text": "a", "text_pair": "a2"}
            {"text": "b", "text_pair": "b2", "label": 1, "negative": "bx"}
            {"text": "a", "text_pair": "ax", "label": "0"}

            {"text": "c", "text_pair": "cx", "label": 0}
            """);
        var plain = TrainingData.ReadTextPairs(path, hardNegatives: false, out int skipped);
        Assert.Equal(2, skipped);
        Assert.Equal([("a", "a2", (string?)null, 1), ("b", "b2", null, 2)], plain.Select(p => (p.Text, p.Pair, p.Negative, p.Line)));
        var hard = TrainingData.ReadTextPairs(path, hardNegatives: true, out _);
        Assert.Equal(["ax", "bx"], hard.Select(p => p.Negative));
        Assert.True(TrainingData.LooksLikeJsonl(path));
        Assert.False(TrainingData.LooksLikeJsonl(Write("s.txt", "\n今天天气很好\n")));
    }

    // ------------------------------------------------------------------ CLI

    const string Sentences = "今天天气很好\n我喜欢吃苹果\n这部电影很精彩\n北京是中国的首都\n他在公司加班到很晚\n猫在沙发上睡觉\n明天可能会下雨\n这本书写得很好\n";
    const string Sts = "1||今天天气很好||今天天气不错||4.5\n2||我喜欢吃苹果||苹果很好吃||3.0\n3||这部电影很精彩||北京是中国的首都||0.0\n4||猫在沙发上睡觉||猫睡在沙发上||5.0\n5||明天可能会下雨||这本书写得很好||0.5\n";

    [Fact]
    public void CliWritesAFolderThatEmbedLoadsWithMeanPoolingAndEvaluateScores()
    {
        var data = Write("s.txt", Sentences);
        var sts = Write("sts.txt", Sts);
        var outDir = Path.Combine(_dir, "out");
        var r = CliHarness.Run("train", "embed", "-m", BertTiny, "--data", data, "--eval", sts, "-o", outDir, "--epochs", "2", "--batch-size", "4", "--lr", "1e-3", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var summary = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(4, summary["steps"]!.GetValue<int>());
        Assert.Equal(2, summary["eval_history"]!.AsArray().Count);
        double spearman = summary["eval"]!["spearman"]!.GetValue<double>();
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.Equal("BertModel", cfg["architectures"]![0]!.GetValue<string>());
        var st = SentenceTransformersConfig.Read(outDir)!;
        Assert.Equal((Pooling.Mean, true), (st.Pooling, st.Normalize));
        Assert.Empty(st.IgnoredModules);

        var e = CliHarness.Run("embed", "-m", outDir, "--json", "今天天气很好", "今天天气很好");
        Assert.True(e.ExitCode == 0, e.Stderr);
        Assert.DoesNotContain("initialised", e.Stderr);
        var res = JsonNode.Parse(e.Stdout)!;
        Assert.Equal("mean", res["pooling"]!.GetValue<string>());
        Assert.True(res["normalized"]!.GetValue<bool>());
        var v = res["results"]!.AsArray().Select(x => x!["embedding"]!.AsArray().Select(f => f!.GetValue<float>()).ToArray()).ToArray();
        Assert.Equal(1.0, Math.Sqrt(v[0].Sum(x => (double)x * x)), 5);
        Assert.Equal(1.0, SentenceEmbedder.Cosine(v[0], v[1]), 6);

        // evaluate --task sts scores the folder by cosine of its own (mean, normalised) embeddings: the training figure.
        var ev = CliHarness.Run("evaluate", "-m", outDir, "--task", "sts", "--data", sts, "--json");
        Assert.True(ev.ExitCode == 0, ev.Stderr);
        var evj = JsonNode.Parse(ev.Stdout)!;
        Assert.Contains("mean-pooled", evj["score"]!.GetValue<string>());
        Assert.Equal(spearman, evj["spearman"]!.GetValue<double>(), 5);
    }

    [Fact]
    public void CliClsPoolingAndPairsWithHardNegativesAreWrittenAsTrained()
    {
        var data = Write("p.jsonl", string.Join("\n", Pairs.Select((p, i) =>
            new JsonObject { ["text"] = p.A, ["text_pair"] = p.B, ["negative"] = Pairs[(i + 1) % Pairs.Length].B }.ToJsonString())));
        var outDir = Path.Combine(_dir, "cls");
        var r = CliHarness.Run("train", "embed", "-m", BertTiny, "--data", data, "-o", outDir, "--max-steps", "2", "--batch-size", "3", "--pooling", "cls", "--hard-negatives");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(Pooling.Cls, SentenceTransformersConfig.Read(outDir)!.Pooling);
        Assert.Equal(Pooling.Cls, SentenceEmbedder.Load(outDir).Pooling);
    }

    [Fact]
    public void CliResumeFromACheckpointEndsWithTheSameWeights()
    {
        var data = Write("s.txt", Sentences);
        // Dropout on (SimCSE's two views): the resumed run must restore the dropout RNG as well.
        string[] Args(string o) => ["train", "embed", "-m", BertTiny, "--data", data, "-o", o, "--max-steps", "6", "--batch-size", "3",
                                    "--lr", "1e-3", "--warmup-steps", "2", "--save-steps", "3"];
        var a = Path.Combine(_dir, "a"); var b = Path.Combine(_dir, "b");
        var r1 = CliHarness.Run(Args(a));
        Assert.True(r1.ExitCode == 0, r1.Stderr);
        Assert.True(File.Exists(Path.Combine(a, "checkpoint-3", "1_Pooling", "config.json")));
        var r2 = CliHarness.Run([.. Args(b), "--resume", Path.Combine(a, "checkpoint-3")]);
        Assert.True(r2.ExitCode == 0, r2.Stderr);
        Assert.Contains("resumed", r2.Stderr);
        using var fa = new SafeTensorsFile(Path.Combine(a, "model.safetensors"));
        using var fb = new SafeTensorsFile(Path.Combine(b, "model.safetensors"));
        using var f0 = new SafeTensorsFile(Path.Combine(BertTiny, "model.safetensors"));
        foreach (var n in fa.Names) Assert.Equal(fa.ReadFloat32(n).Data, fb.ReadFloat32(n).Data);
        Assert.NotEqual(f0.ReadFloat32("bert.encoder.layer.0.output.dense.weight").Data, fa.ReadFloat32("bert.encoder.layer.0.output.dense.weight").Data);
    }

    [Fact]
    public void BadInputIsAOneLineError()
    {
        var good = Write("s.txt", Sentences);
        var outDir = Path.Combine(_dir, "bad");
        string[] Args(string data, params string[] more) => ["train", "embed", "-m", BertTiny, "--data", data, "-o", outDir, .. more];
        CliHarness.AssertOneLineError(CliHarness.Run(Args(Write("empty.txt", "\n  \n"))), "empty.txt: the file is empty");
        CliHarness.AssertOneLineError(CliHarness.Run(Args(Write("nopair.jsonl", "{\"text\": \"a\", \"text_pair\": \"b\"}\n{\"text\": \"c\"}\n"))),
            "nopair.jsonl:2: no string \"text_pair\" field");
        CliHarness.AssertOneLineError(CliHarness.Run(Args(Write("label.jsonl", "{\"text\": \"a\", \"text_pair\": \"b\", \"label\": 0.7}\n"))), "label.jsonl:1: \"label\" must be 0 or 1");
        CliHarness.AssertOneLineError(CliHarness.Run(Args(good, "--temperature", "0")), "--temperature must be a finite number > 0, not 0");
        CliHarness.AssertOneLineError(CliHarness.Run(Args(good, "--temperature", "-0.1")), "--temperature must be a finite number > 0");
        CliHarness.AssertOneLineError(CliHarness.Run(Args(good, "--batch-size", "1")), "--batch-size must be at least 2");
        CliHarness.AssertOneLineError(CliHarness.Run(Args(good, "--hard-negatives")), "--hard-negatives needs pairs data");
        CliHarness.AssertOneLineError(CliHarness.Run(Args(good, "--eval", Path.Combine(_dir, "missing.txt"))), "missing.txt");
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), "nothing written on bad input");
    }
}
