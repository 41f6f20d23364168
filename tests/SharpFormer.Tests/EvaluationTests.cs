using SharpFormer.Tasks;

namespace SharpFormer.Tests;

/// <summary>Metrics and readers of <c>sharpformer evaluate</c> on hand-made inputs (values checked against sklearn / seqeval / scipy by hand).</summary>
public class EvaluationTests
{
    [Fact]
    public void Accuracy_counts_exact_matches()
    {
        Assert.Equal(0.75, EvaluationMetrics.Accuracy(new[] { "a", "b", "a", "b" }, new[] { "a", "b", "b", "b" }), 12);
        Assert.Equal(0, EvaluationMetrics.Accuracy(Array.Empty<string>(), Array.Empty<string>()));
        Assert.Throws<ArgumentException>(() => EvaluationMetrics.Accuracy(new[] { "a" }, new[] { "a", "b" }));
    }

    [Fact]
    public void MacroF1_matches_sklearn()
    {
        // gold: pos pos pos neg neg   pred: pos pos neg neg pos
        // pos: tp 2 fp 1 fn 1 → P 2/3 R 2/3 F1 2/3;  neg: tp 1 fp 1 fn 1 → F1 1/2;  macro = 7/12
        string[] gold = ["pos", "pos", "pos", "neg", "neg"], pred = ["pos", "pos", "neg", "neg", "pos"];
        Assert.Equal(7.0 / 12, EvaluationMetrics.MacroF1(gold, pred, ["neg", "pos"]), 12);
        // A label never gold and never predicted scores 0 and still counts in the average (sklearn with labels=[...]).
        Assert.Equal(7.0 / 18, EvaluationMetrics.MacroF1(gold, pred, ["neg", "pos", "x"]), 12);
        var per = EvaluationMetrics.PerLabel(gold, pred, ["neg", "pos"]);
        Assert.Equal(2, per[0].Support);
        Assert.Equal(0.5, per[0].Precision, 12);
        Assert.Equal(2.0 / 3, per[1].Recall, 12);
    }

    [Fact]
    public void MacroF1_all_wrong_is_zero_and_all_right_is_one()
    {
        Assert.Equal(0, EvaluationMetrics.MacroF1(["a", "b"], ["b", "a"], ["a", "b"]));
        Assert.Equal(1, EvaluationMetrics.MacroF1(["a", "b"], ["a", "b"], ["a", "b"]), 12);
    }

    [Fact]
    public void Entity_scores_follow_seqeval()
    {
        // seqeval.metrics: gold entities PER[0,2) LOC[3,4) ORG[5,7); predicted PER[0,2) LOC[3,5) (I-LOC continues) ORG[6,7) (I- after O starts a chunk).
        string[] gold = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"];
        string[] pred = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "I-ORG"];
        var (p, r, f) = EvaluationMetrics.EntityScores([gold], [pred]);
        Assert.Equal(1.0 / 3, p, 12);
        Assert.Equal(1.0 / 3, r, 12);
        Assert.Equal(1.0 / 3, f, 12);
        var byType = EvaluationMetrics.EntityScoresByType([gold], [pred]);
        Assert.Equal(new[] { "LOC", "ORG", "PER" }, byType.Select(t => t.Type));
        Assert.Equal(1.0, byType.Single(t => t.Type == "PER").F1, 12);
        Assert.Equal(0.0, byType.Single(t => t.Type == "LOC").F1, 12);
    }

    [Fact]
    public void Entity_scores_type_change_splits_chunks_and_precision_differs_from_recall()
    {
        // gold: one PER [0,3); pred: B-PER I-LOC I-LOC → PER[0,1) and LOC[1,3): 0 of 2 predicted correct.
        var (p, r, f) = EvaluationMetrics.EntityScores([["B-PER", "I-PER", "I-PER", "O"]], [["B-PER", "I-LOC", "I-LOC", "O"]]);
        Assert.Equal((0.0, 0.0, 0.0), (p, r, f));
        // Two sentences: gold 3 entities, predicted 2, both right → P 1, R 2/3, F1 0.8.
        var (p2, r2, f2) = EvaluationMetrics.EntityScores(
            [["B-A", "O", "B-B"], ["B-A", "I-A"]],
            [["B-A", "O", "O"], ["B-A", "I-A"]]);
        Assert.Equal(1.0, p2, 12);
        Assert.Equal(2.0 / 3, r2, 12);
        Assert.Equal(0.8, f2, 12);
    }

    [Fact]
    public void Ranks_average_ties_like_scipy()
    {
        Assert.Equal(new double[] { 1.5, 1.5, 3, 5, 5, 5 }, EvaluationMetrics.Ranks([10, 10, 20, 30, 30, 30]));
        Assert.Equal(new double[] { 3, 1, 2 }, EvaluationMetrics.Ranks([0.9, 0.1, 0.5]));
    }

    [Fact]
    public void Spearman_with_ties_matches_scipy()
    {
        // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]).correlation = 0.9486832980505138
        Assert.Equal(0.9486832980505138, EvaluationMetrics.Spearman([1, 2, 2, 3], [1, 3, 2, 4]), 10);
        // Monotone but non-linear → 1; reversed → -1; constant → NaN.
        Assert.Equal(1.0, EvaluationMetrics.Spearman([1, 2, 3, 4], [1, 8, 27, 64]), 12);
        Assert.Equal(-1.0, EvaluationMetrics.Spearman([1, 2, 3], [3, 2, 1]), 12);
        Assert.True(double.IsNaN(EvaluationMetrics.Spearman([1, 1, 1], [1, 2, 3])));
        // Pearson on raw values differs from Spearman when the relation is not linear.
        Assert.True(EvaluationMetrics.Pearson([1, 2, 3, 4], [1, 8, 27, 64]) < 0.99);
    }

    [Fact]
    public void Threshold_accuracy_and_best_threshold()
    {
        double[] s = [0.1, 0.4, 0.35, 0.8];
        int[] g = [0, 0, 1, 1];
        Assert.Equal(0.75, EvaluationMetrics.ThresholdAccuracy(s, g, 0.5), 12);
        Assert.Equal(0.75, EvaluationMetrics.ThresholdAccuracy(s, g, 0.3), 12);   // [0 1 1 1]
        Assert.Equal(0.5, EvaluationMetrics.ThresholdAccuracy(s, g, 0.05), 12);  // all 1
        var (t, acc) = EvaluationMetrics.BestThreshold(s, g);
        Assert.Equal(0.75, acc, 12);
        Assert.Equal(0.75, EvaluationMetrics.ThresholdAccuracy(s, g, t), 12);
        var (_, perfect) = EvaluationMetrics.BestThreshold([0.2, 0.9], [0, 1]);
        Assert.Equal(1.0, perfect, 12);
    }

    [Fact]
    public void Readers_parse_the_shared_formats()
    {
        var dir = Directory.CreateTempSubdirectory("sf-eval").FullName;
        try
        {
            var tsv = Path.Combine(dir, "senti.tsv");
            File.WriteAllText(tsv, "房间太小。其他的都一般。\tnegative\r\n\n很好\tpositive\n");
            var cls = Evaluation.ReadClassification(tsv);
            Assert.Equal(2, cls.Count);
            Assert.Equal(("房间太小。其他的都一般。", "negative"), (cls[0].Text, cls[0].Label));
            Assert.Equal(3, cls[1].Line);

            var ner = Path.Combine(dir, "cluener.json");
            // 𠀀 lies outside the BMP: offsets count code points, not UTF-16 units.
            File.WriteAllText(ner, "{\"text\": \"𠀀彭小军在台湾\", \"label\": {\"name\": {\"彭小军\": [[1, 3]]}, \"address\": {\"台湾\": [[5, 6]]}}}\n");
            var s = Evaluation.ReadNer(ner).Single();
            Assert.Equal(7, s.Words.Length);
            Assert.Equal("𠀀", s.Words[0]);
            Assert.Equal(new[] { "O", "B-name", "I-name", "I-name", "O", "B-address", "I-address" }, s.Tags);

            var weibo = Path.Combine(dir, "weibo.json");
            File.WriteAllText(weibo, "{\"text\": [\"我\", \"在\", \"京\"], \"label\": [\"O\", \"O\", \"B-GPE.NAM\"]}\n");
            Assert.Equal("B-GPE.NAM", Evaluation.ReadNer(weibo).Single().Tags[2]);

            var pairs = Path.Combine(dir, "lcqmc.txt");
            File.WriteAllText(pairs, "开初婚未育证明怎么弄？\t初婚未育情况证明怎么开？\t1\n谁知道\t什么歌\t0\n");
            var pp = Evaluation.ReadPairs(pairs);
            Assert.Equal(new[] { 1.0, 0.0 }, pp.Select(p => p.Gold));
            Assert.Equal("初婚未育情况证明怎么开？", pp[0].Second);

            var sts = Path.Combine(dir, "sts.txt");
            File.WriteAllText(sts, "2012test-0002||一个小孩在骑马。||孩子在骑马。||4\n");
            var st = Evaluation.ReadPairs(sts).Single();
            Assert.Equal(("一个小孩在骑马。", "孩子在骑马。", 4.0), (st.First, st.Second, st.Gold));

            var badSpan = Path.Combine(dir, "bad.json");
            File.WriteAllText(badSpan, "{\"text\": \"台湾\", \"label\": {\"address\": {\"台湾\": [[1, 5]]}}}\n");
            var ex = Assert.Throws<SharpFormerException>(() => Evaluation.ReadNer(badSpan));
            Assert.Contains("bad.json:1", ex.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Gold_labels_map_onto_the_model_labels()
    {
        var id2label = new Dictionary<int, string> { [0] = "negative", [1] = "positive" };
        Assert.Equal("positive", Evaluation.MatchLabel("positive", id2label));
        Assert.Equal("negative", Evaluation.MatchLabel("Negative", id2label));
        Assert.Equal("positive", Evaluation.MatchLabel("1", id2label));
        Assert.Null(Evaluation.MatchLabel("neutral", id2label));
    }
    [Fact]
    public void Wilson_interval_matches_statsmodels()
    {
        // statsmodels.stats.proportion.proportion_confint(k, n, method="wilson")
        AssertInterval((0.4901624715, 0.9433178485), EvaluationMetrics.WilsonInterval(8, 10));
        AssertInterval((0, 0.2775327999), EvaluationMetrics.WilsonInterval(0, 10));
        AssertInterval((0.7224672001, 1), EvaluationMetrics.WilsonInterval(10, 10));
        // The sentiment card's figure: 1,088 of 1,200.
        AssertInterval((0.8888852581, 0.9218527281), EvaluationMetrics.WilsonInterval(1088, 1200));
        AssertInterval((0.4901624715, 0.9433178485), EvaluationMetrics.AccuracyInterval(
            new[] { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }, new[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }));
        Assert.Throws<ArgumentException>(() => EvaluationMetrics.WilsonInterval(11, 10));
    }

    // The bootstrap figures below come from an independent Python re-implementation of the documented procedure
    // (SplitMix64 from seed 19, Lemire's multiply-shift, 1,000 resamples, numpy-style linear percentiles).

    [Fact]
    public void Bootstrap_macro_f1_interval_is_the_seeded_percentile_interval()
    {
        string[] gold = ["pos", "pos", "pos", "neg", "neg", "neg", "pos", "neg"], pred = ["pos", "pos", "neg", "neg", "pos", "neg", "pos", "pos"];
        Assert.Equal(0.6190476190, EvaluationMetrics.MacroF1(gold, pred, ["neg", "pos"]), 8);
        AssertInterval((0.2, 0.8730158730), EvaluationMetrics.MacroF1Interval(gold, pred, ["neg", "pos"]));
        // Same data, same interval; another seed, another draw.
        Assert.Equal(EvaluationMetrics.MacroF1Interval(gold, pred, ["neg", "pos"]), EvaluationMetrics.MacroF1Interval(gold, pred, ["neg", "pos"]));
        var f = (int[] idx) => idx.Average();
        Assert.NotEqual(EvaluationMetrics.BootstrapInterval(8, f, seed: 1), EvaluationMetrics.BootstrapInterval(8, f, seed: 2));
        // A statistic that never varies has a zero-width interval; one that is always undefined has none.
        Assert.Equal((0.5, 0.5), EvaluationMetrics.BootstrapInterval(8, _ => 0.5));
        var nan = EvaluationMetrics.BootstrapInterval(8, _ => double.NaN);
        Assert.True(double.IsNaN(nan.Low) && double.IsNaN(nan.High));
    }

    [Fact]
    public void Bootstrap_entity_f1_and_spearman_intervals()
    {
        // Per sentence (correct, gold, predicted) entities: (1,1,1) (0,1,1) (2,2,3) (0,1,0) (1,2,1) → F1 = 2·4/13.
        string[][] gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O"], ["B-PER", "O", "B-LOC", "I-LOC", "O"], ["B-ORG", "I-ORG"], ["B-PER", "O", "B-PER"]];
        string[][] pred = [["B-PER", "I-PER", "O"], ["B-ORG", "O"], ["B-PER", "O", "B-LOC", "I-LOC", "B-ORG"], ["O", "O"], ["B-PER", "O", "O"]];
        Assert.Equal(8.0 / 13, EvaluationMetrics.EntityScores(gold, pred).F1, 12);
        AssertInterval((0.2, 0.8235294118), EvaluationMetrics.EntityF1Interval(gold, pred));

        double[] x = [0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.9, 0.5], y = [0, 2, 1, 4, 3, 1, 5, 2];
        Assert.Equal(0.9880235201, EvaluationMetrics.Spearman(x, y), 8);
        AssertInterval((0.9000703207, 1), EvaluationMetrics.SpearmanInterval(x, y));
    }

    [Fact]
    public void Evaluate_command_reports_95_percent_intervals()
    {
        var dir = Directory.CreateTempSubdirectory("sf-eval-ci").FullName;
        try
        {
            var tsv = Path.Combine(dir, "d.tsv");
            File.WriteAllLines(tsv, Enumerable.Range(0, 10).Select(i => $"第{i}条评论还不错\t{(i % 3 == 0 ? "负面" : "正面")}"));
            var model = Path.Combine(SharedPaths.Fixtures, "bert-tiny-seqcls");
            var r = CliHarness.Run("evaluate", "--threads", "1", "-m", model, "--task", "classify", "--data", tsv, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            var o = System.Text.Json.Nodes.JsonNode.Parse(r.Stdout)!.AsObject();
            int correct = (int)Math.Round(o["accuracy"]!.GetValue<double>() * 10);
            var (lo, hi) = EvaluationMetrics.WilsonInterval(correct, 10);
            var ci = o["accuracy_ci95"]!.AsArray();
            Assert.Equal(Math.Round(lo, 6), ci[0]!.GetValue<double>(), 9);
            Assert.Equal(Math.Round(hi, 6), ci[1]!.GetValue<double>(), 9);
            Assert.Equal(2, o["macro_f1_ci95"]!.AsArray().Count);
            var text = CliHarness.Run("evaluate", "--threads", "1", "-m", model, "--task", "classify", "--data", tsv);
            Assert.Contains($"(95 % CI {Evaluation.Pct(lo)}–{Evaluation.Pct(hi)})", text.Stdout);
        }
        finally { Directory.Delete(dir, true); }
    }

    static void AssertInterval((double Low, double High) expected, (double Low, double High) actual)
    {
        Assert.Equal(expected.Low, actual.Low, 8);
        Assert.Equal(expected.High, actual.High, 8);
    }
}
