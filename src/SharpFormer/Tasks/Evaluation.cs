using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tokenizers;
using SharpFormer.Training;

namespace SharpFormer.Tasks;

/// <summary>A labelled sentence pair: a 0/1 label (pairs) or a real-valued score (STS).</summary>
public sealed record ScoredPair(string First, string Second, double Gold, int Line);

/// <summary>Metrics of <c>sharpformer evaluate</c>, usable on their own (all deterministic, no model needed).</summary>
public static class EvaluationMetrics
{
    /// <summary>Fraction of positions where <paramref name="pred"/> equals <paramref name="gold"/> (0 for no items).</summary>
    public static double Accuracy<T>(IReadOnlyList<T> gold, IReadOnlyList<T> pred)
    {
        if (gold.Count != pred.Count) throw new ArgumentException("gold and predictions differ in length");
        if (gold.Count == 0) return 0;
        var eq = EqualityComparer<T>.Default;
        int ok = 0;
        for (int i = 0; i < gold.Count; i++) if (eq.Equals(gold[i], pred[i])) ok++;
        return ok / (double)gold.Count;
    }

    /// <summary>Per-label precision, recall, F1 and support (sklearn's classification_report; 0 where undefined).</summary>
    public static List<(string Label, double Precision, double Recall, double F1, int Support)> PerLabel(IReadOnlyList<string> gold, IReadOnlyList<string> pred, IReadOnlyList<string> labels)
    {
        if (gold.Count != pred.Count) throw new ArgumentException("gold and predictions differ in length");
        var res = new List<(string, double, double, double, int)>();
        foreach (var l in labels)
        {
            int tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < gold.Count; i++)
            {
                bool g = gold[i] == l, p = pred[i] == l;
                if (g && p) tp++; else if (p) fp++; else if (g) fn++;
            }
            double prec = tp + fp == 0 ? 0 : tp / (double)(tp + fp), rec = tp + fn == 0 ? 0 : tp / (double)(tp + fn);
            res.Add((l, prec, rec, prec + rec == 0 ? 0 : 2 * prec * rec / (prec + rec), tp + fn));
        }
        return res;
    }

    /// <summary>Macro-averaged F1 over <paramref name="labels"/> (sklearn average="macro": unweighted mean, 0 for a label never gold nor predicted).</summary>
    public static double MacroF1(IReadOnlyList<string> gold, IReadOnlyList<string> pred, IReadOnlyList<string> labels) =>
        labels.Count == 0 ? 0 : PerLabel(gold, pred, labels).Average(x => x.F1);

    /// <summary>Entity chunks of a BIO sequence with seqeval's default (conlleval) rules.</summary>
    public static List<(string Type, int Start, int End)> Entities(IReadOnlyList<string> tags) => Metrics.Chunks(tags);

    /// <summary>seqeval's micro-averaged entity-level precision, recall and F1 (exact type and span match).</summary>
    public static (double Precision, double Recall, double F1) EntityScores(IReadOnlyList<IReadOnlyList<string>> gold, IReadOnlyList<IReadOnlyList<string>> pred) =>
        Metrics.EntityScores(gold, pred);

    /// <summary>Entity-level precision, recall, F1 and support per entity type (seqeval's classification_report).</summary>
    public static List<(string Type, double Precision, double Recall, double F1, int Support)> EntityScoresByType(IReadOnlyList<IReadOnlyList<string>> gold, IReadOnlyList<IReadOnlyList<string>> pred)
    {
        var tp = new Dictionary<string, int>(); var ng = new Dictionary<string, int>(); var np = new Dictionary<string, int>();
        for (int s = 0; s < gold.Count; s++)
        {
            var g = Metrics.Chunks(gold[s]).ToHashSet();
            foreach (var c in g) ng[c.Type] = ng.GetValueOrDefault(c.Type) + 1;
            foreach (var c in Metrics.Chunks(pred[s]))
            {
                np[c.Type] = np.GetValueOrDefault(c.Type) + 1;
                if (g.Contains(c)) tp[c.Type] = tp.GetValueOrDefault(c.Type) + 1;
            }
        }
        return ng.Keys.Union(np.Keys).OrderBy(t => t, StringComparer.Ordinal).Select(t =>
        {
            int a = tp.GetValueOrDefault(t), g = ng.GetValueOrDefault(t), p = np.GetValueOrDefault(t);
            double prec = p == 0 ? 0 : a / (double)p, rec = g == 0 ? 0 : a / (double)g;
            return (t, prec, rec, prec + rec == 0 ? 0 : 2 * prec * rec / (prec + rec), g);
        }).ToList();
    }

    /// <summary>Ranks 1..n with ties given the average of the ranks they span (scipy's rankdata "average").</summary>
    public static double[] Ranks(IReadOnlyList<double> x)
    {
        var order = Enumerable.Range(0, x.Count).OrderBy(i => x[i]).ToArray();
        var ranks = new double[x.Count];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && x[order[j + 1]] == x[order[i]]) j++;
            double avg = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) ranks[order[k]] = avg;
            i = j + 1;
        }
        return ranks;
    }

    /// <summary>Pearson's correlation coefficient (NaN when either side is constant or there are fewer than 2 items).</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException("x and y differ in length");
        int n = x.Count;
        if (n < 2) return double.NaN;
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
        }
        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>Spearman's rank correlation: Pearson on average ranks (ties handled like scipy.stats.spearmanr).</summary>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y) => Pearson(Ranks(x), Ranks(y));

    /// <summary>Accuracy of "score ≥ threshold ⇒ 1" against 0/1 gold labels.</summary>
    public static double ThresholdAccuracy(IReadOnlyList<double> scores, IReadOnlyList<int> gold, double threshold)
    {
        if (scores.Count == 0) return 0;
        int ok = 0;
        for (int i = 0; i < scores.Count; i++) if ((scores[i] >= threshold ? 1 : 0) == gold[i]) ok++;
        return ok / (double)scores.Count;
    }

    /// <summary>The threshold (midpoint between neighbouring scores) with the best accuracy, and that accuracy. Tuned on the evaluated data itself: an upper bound.</summary>
    public static (double Threshold, double Accuracy) BestThreshold(IReadOnlyList<double> scores, IReadOnlyList<int> gold)
    {
        if (scores.Count == 0) return (0.5, 0);
        var order = Enumerable.Range(0, scores.Count).OrderBy(i => scores[i]).ToArray();
        // Threshold below everything: all predicted 1.
        int correct = gold.Count(g => g == 1), best = correct;
        double bestT = scores[order[0]] - 1e-6;
        for (int k = 0; k < order.Length; k++)
        {
            correct += gold[order[k]] == 0 ? 1 : -1;   // order[k] now predicted 0
            if (k + 1 < order.Length && scores[order[k + 1]] == scores[order[k]]) continue;
            if (correct > best)
            {
                best = correct;
                bestT = k + 1 < order.Length ? (scores[order[k]] + scores[order[k + 1]]) / 2 : scores[order[k]] + 1e-6;
            }
        }
        return (bestT, best / (double)scores.Count);
    }

    // ------------------------------------------------------------------ 95 % confidence intervals

    /// <summary>The 0.975 quantile of the standard normal: z of a two-sided 95 % interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>Resamples of <see cref="BootstrapInterval"/> unless told otherwise.</summary>
    public const int BootstrapResamples = 1000;

    /// <summary>Seed of <see cref="BootstrapInterval"/> unless told otherwise: the same data always gives the same interval.</summary>
    public const ulong BootstrapSeed = 19;

    /// <summary>
    /// Wilson score interval of a proportion <paramref name="successes"/>/<paramref name="n"/> (statsmodels'
    /// <c>proportion_confint(method="wilson")</c>); unlike the normal approximation it stays inside [0, 1] and is sound
    /// for small n or proportions near 0 or 1. (0, 1) when n is 0.
    /// </summary>
    public static (double Low, double High) WilsonInterval(int successes, int n, double z = Z95)
    {
        if (n < 0 || successes < 0 || successes > n) throw new ArgumentException($"need 0 ≤ successes ≤ n (got {successes} of {n})");
        if (n == 0) return (0, 1);
        double p = successes / (double)n, z2 = z * z, denom = 1 + z2 / n;
        double centre = (p + z2 / (2 * n)) / denom, half = z * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / denom;
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>Wilson 95 % interval of the accuracy of <paramref name="pred"/> against <paramref name="gold"/>.</summary>
    public static (double Low, double High) AccuracyInterval<T>(IReadOnlyList<T> gold, IReadOnlyList<T> pred) =>
        WilsonInterval((int)Math.Round(Accuracy(gold, pred) * gold.Count), gold.Count);

    /// <summary>
    /// Percentile bootstrap interval of a statistic of n examples: <paramref name="resamples"/> times, n indices are drawn
    /// with replacement (SplitMix64 from <paramref name="seed"/>, so the interval is reproducible), the statistic is
    /// computed on them, and the interval is the (1 − level)/2 and (1 + level)/2 quantiles of the results (linear
    /// interpolation, numpy.percentile's default). Resamples where the statistic is NaN (e.g. a constant Spearman
    /// input) are left out; (NaN, NaN) when all are.
    /// </summary>
    public static (double Low, double High) BootstrapInterval(int n, Func<int[], double> statistic, int resamples = BootstrapResamples,
        ulong seed = BootstrapSeed, double level = 0.95)
    {
        if (n <= 0) return (double.NaN, double.NaN);
        ulong state = seed;
        var values = new List<double>(resamples);
        var idx = new int[n];
        for (int b = 0; b < resamples; b++)
        {
            for (int i = 0; i < n; i++)
            {
                // SplitMix64, then Lemire's multiply-shift onto [0, n).
                ulong z = state += 0x9E3779B97F4A7C15UL;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                z ^= z >> 31;
                idx[i] = (int)(((z >> 32) * (ulong)n) >> 32);
            }
            double v = statistic(idx);
            if (!double.IsNaN(v)) values.Add(v);
        }
        if (values.Count == 0) return (double.NaN, double.NaN);
        values.Sort();
        double Quantile(double q)
        {
            double pos = q * (values.Count - 1);
            int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, values.Count - 1);
            return values[lo] + (pos - lo) * (values[hi] - values[lo]);
        }
        return (Quantile((1 - level) / 2), Quantile((1 + level) / 2));
    }

    /// <summary>Bootstrap 95 % interval of <see cref="MacroF1"/> (examples resampled).</summary>
    public static (double Low, double High) MacroF1Interval(IReadOnlyList<string> gold, IReadOnlyList<string> pred, IReadOnlyList<string> labels)
    {
        if (gold.Count != pred.Count) throw new ArgumentException("gold and predictions differ in length");
        // Label indices once (labels.Count = outside the label set), then confusion counts per resample.
        int L = labels.Count;
        int Index(string s) { int i = 0; while (i < L && labels[i] != s) i++; return i; }
        var g = gold.Select(Index).ToArray(); var p = pred.Select(Index).ToArray();
        var tp = new int[L + 1]; var fp = new int[L + 1]; var fn = new int[L + 1];
        return BootstrapInterval(gold.Count, idx =>
        {
            Array.Clear(tp); Array.Clear(fp); Array.Clear(fn);
            foreach (int i in idx)
                if (g[i] == p[i]) tp[g[i]]++;
                else { fp[p[i]]++; fn[g[i]]++; }
            double sum = 0;
            for (int l = 0; l < L; l++) sum += tp[l] == 0 ? 0 : 2.0 * tp[l] / (2 * tp[l] + fp[l] + fn[l]);
            return L == 0 ? 0 : sum / L;
        });
    }

    /// <summary>Bootstrap 95 % interval of the micro-averaged entity F1 of <see cref="EntityScores"/> (sentences resampled).</summary>
    public static (double Low, double High) EntityF1Interval(IReadOnlyList<IReadOnlyList<string>> gold, IReadOnlyList<IReadOnlyList<string>> pred)
    {
        if (gold.Count != pred.Count) throw new ArgumentException("gold and predictions differ in length");
        // Per sentence: correct entities, gold entities, predicted entities; micro F1 = 2·Σcorrect / (Σgold + Σpredicted).
        var counts = gold.Select((gs, s) =>
        {
            var g = Metrics.Chunks(gs).ToHashSet(); var p = Metrics.Chunks(pred[s]);
            return (Correct: p.Count(g.Contains), Gold: g.Count, Pred: p.Count);
        }).ToArray();
        return BootstrapInterval(gold.Count, idx =>
        {
            long c = 0, n = 0;
            foreach (int i in idx) { c += counts[i].Correct; n += counts[i].Gold + counts[i].Pred; }
            return n == 0 ? 0 : 2.0 * c / n;
        });
    }

    /// <summary>Bootstrap 95 % interval of <see cref="Spearman"/> (pairs resampled).</summary>
    public static (double Low, double High) SpearmanInterval(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException("x and y differ in length");
        return BootstrapInterval(x.Count, idx => Spearman(idx.Select(i => x[i]).ToArray(), idx.Select(i => y[i]).ToArray()));
    }
}

/// <summary>
/// Readers for the labelled evaluation formats (the shared data folder's own formats, read as they are) and the
/// model-side scoring of <c>sharpformer evaluate</c>.
/// </summary>
public static class Evaluation
{
    static List<(string Line, int No)> Lines(string path, bool replaceInvalid)
    {
        var text = Utf8Text.ReadAllText(path, replaceInvalid);
        var lines = text.Split('\n').Select((l, i) => (l.TrimEnd('\r'), i + 1)).Where(p => p.Item1.Trim().Length > 0).ToList();
        if (lines.Count == 0) throw new SharpFormerException($"{path}: the file has no examples");
        return lines;
    }

    static bool IsJsonl(List<(string Line, int No)> lines) => lines[0].Line.TrimStart().StartsWith('{');

    static JsonObject ParseObject(string path, string line, int no)
    {
        try { return JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new SharpFormerException($"{path}:{no}: malformed JSON line ({e.Message.Split('\n')[0]})"); }
    }

    /// <summary>
    /// Classification data: <c>text&lt;TAB&gt;label</c> lines (ChnSentiCorp; the label is the last column, a header line
    /// <c>text&lt;TAB&gt;label</c> is skipped) or JSONL <c>{"text", "label"}</c> (optional "text_pair").
    /// </summary>
    public static List<ClassificationExample> ReadClassification(string path, bool replaceInvalid = false)
    {
        var lines = Lines(path, replaceInvalid);
        if (IsJsonl(lines)) return TrainingData.ReadClassificationJsonl(path);
        var res = new List<ClassificationExample>();
        foreach (var (line, no) in lines)
        {
            var cols = line.Split('\t');
            if (cols.Length < 2) throw new SharpFormerException($"{path}:{no}: expected \"text<TAB>label\" (or text<TAB>text_pair<TAB>label)");
            if (no == lines[0].No && cols[^1].Trim() is "label" or "labels") continue;
            res.Add(new ClassificationExample(cols[0], cols.Length >= 3 ? cols[1] : null, cols[^1].Trim(), no));
        }
        if (res.Count == 0) throw new SharpFormerException($"{path}: the file has no examples");
        return res;
    }

    /// <summary>
    /// NER data as sentences of characters/words with BIO tags, from: CLUENER2020 JSONL
    /// (<c>{"text", "label": {type: {mention: [[start, end_inclusive]]}}}</c>, offsets in Unicode code points; one
    /// "word" per code point), Weibo-style JSONL (<c>{"text": [chars], "label": [tags]}</c>), or CoNLL BIO ("word TAG").
    /// </summary>
    public static List<TaggedSentence> ReadNer(string path, bool replaceInvalid = false)
    {
        var lines = Lines(path, replaceInvalid);
        if (!IsJsonl(lines)) return TrainingData.ReadBio(path);
        var res = new List<TaggedSentence>();
        foreach (var (line, no) in lines)
        {
            var o = ParseObject(path, line, no);
            if (o["text"] is JsonArray chars && o["label"] is JsonArray tagsArr)
            {
                var w = chars.Select(c => c?.GetValue<string>() ?? "").ToArray();
                var t = tagsArr.Select(c => c?.GetValue<string>() ?? "O").ToArray();
                if (w.Length != t.Length) throw new SharpFormerException($"{path}:{no}: {w.Length} characters but {t.Length} labels");
                res.Add(new TaggedSentence(w, t, no));
                continue;
            }
            if (o["text"] is not JsonValue tv || tv.GetValueKind() != JsonValueKind.String)
                throw new SharpFormerException($"{path}:{no}: no string \"text\" field");
            var text = tv.GetValue<string>();
            var words = new List<string>();
            foreach (var r in text.EnumerateRunes()) words.Add(r.ToString());
            var tags = Enumerable.Repeat("O", words.Count).ToArray();
            if (o["label"] is JsonObject spans)
                foreach (var (type, mentions) in spans)
                    foreach (var (mention, list) in mentions as JsonObject ?? throw new SharpFormerException($"{path}:{no}: label \"{type}\" is not an object of mentions"))
                        foreach (var span in list as JsonArray ?? [])
                        {
                            if (span is not JsonArray se || se.Count != 2) throw new SharpFormerException($"{path}:{no}: span of \"{mention}\" is not [start, end]");
                            int s = se[0]!.GetValue<int>(), e = se[1]!.GetValue<int>();
                            if (s < 0 || e >= words.Count || e < s) throw new SharpFormerException($"{path}:{no}: span [{s}, {e}] of \"{mention}\" is outside the text ({words.Count} characters)");
                            tags[s] = "B-" + type;
                            for (int k = s + 1; k <= e; k++) tags[k] = "I-" + type;
                        }
            res.Add(new TaggedSentence(words.ToArray(), tags, no));
        }
        return res;
    }

    /// <summary>
    /// Sentence pairs with a gold value: <c>s1&lt;TAB&gt;s2&lt;TAB&gt;label</c> (LCQMC/AFQMC), <c>id||s1||s2||score</c>
    /// (Chinese STS-B), or JSONL <c>{"text", "text_pair", "label"}</c>.
    /// </summary>
    public static List<ScoredPair> ReadPairs(string path, bool replaceInvalid = false)
    {
        var lines = Lines(path, replaceInvalid);
        var res = new List<ScoredPair>();
        bool jsonl = IsJsonl(lines);
        foreach (var (line, no) in lines)
        {
            string a, b, g;
            if (jsonl)
            {
                var o = ParseObject(path, line, no);
                a = o["text"]?.GetValue<string>() ?? throw new SharpFormerException($"{path}:{no}: no \"text\" field");
                b = o["text_pair"]?.GetValue<string>() ?? throw new SharpFormerException($"{path}:{no}: no \"text_pair\" field");
                g = o["label"] is JsonValue lv ? (lv.GetValueKind() == JsonValueKind.String ? lv.GetValue<string>() : lv.ToJsonString()) : throw new SharpFormerException($"{path}:{no}: no \"label\" field");
            }
            else if (line.Contains("||"))
            {
                var c = line.Split("||");
                if (c.Length != 4) throw new SharpFormerException($"{path}:{no}: expected \"id||s1||s2||score\"");
                (a, b, g) = (c[1], c[2], c[3]);
            }
            else
            {
                var c = line.Split('\t');
                if (c.Length < 3) throw new SharpFormerException($"{path}:{no}: expected \"s1<TAB>s2<TAB>label\"");
                (a, b, g) = (c[^3], c[^2], c[^1]);
                if (no == lines[0].No && !double.TryParse(g.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _)) continue;   // header
            }
            if (!double.TryParse(g.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var gold))
                throw new SharpFormerException($"{path}:{no}: the label \"{g.Trim()}\" is not a number");
            res.Add(new ScoredPair(a, b, gold, no));
        }
        if (res.Count == 0) throw new SharpFormerException($"{path}: the file has no examples");
        return res;
    }

    // ------------------------------------------------------------------ model side

    /// <summary>Predicted labels of a sequence classifier for every example (over-long texts are truncated).</summary>
    public static string[] PredictLabels(TextClassifier clf, IReadOnlyList<ClassificationExample> data)
    {
        if (data.Any(e => e.Pair is not null)) return ClassifyPairs(clf.Session, data.Select(e => (e.Text, e.Pair ?? "")).ToList()).Select(p => LabelName(clf.Id2Label, ArgMax(p))).ToArray();
        return clf.Classify(data.Select(e => e.Text).ToList(), truncate: true).Select(r => r.Label).ToArray();
    }

    static int ArgMax(float[] x) { int b = 0; for (int i = 1; i < x.Length; i++) if (x[i] > x[b]) b = i; return b; }

    static string LabelName(IReadOnlyDictionary<int, string> id2label, int id) => id2label.TryGetValue(id, out var l) ? l : $"LABEL_{id}";

    /// <summary>
    /// Maps a gold label onto the model's label names: as is when the model has it, else an integer id (or LABEL_id)
    /// into id2label. Null when it matches nothing.
    /// </summary>
    public static string? MatchLabel(string gold, IReadOnlyDictionary<int, string> id2label)
    {
        if (id2label.Values.Contains(gold)) return gold;
        var lower = id2label.Values.FirstOrDefault(v => string.Equals(v, gold, StringComparison.OrdinalIgnoreCase));
        if (lower is not null) return lower;
        if (int.TryParse(gold, out int id) && id2label.TryGetValue(id, out var l)) return l;
        return null;
    }

    /// <summary>Softmax probabilities of a sequence classifier for sentence pairs ([CLS] a [SEP] b [SEP], longest-first truncation).</summary>
    public static float[][] ClassifyPairs(EncoderSession session, IReadOnlyList<(string A, string B)> pairs)
    {
        var encs = pairs.Select(p => session.Tokenizer.Encode(p.A, p.B, session.MaxLength)).ToList();
        int n = session.Config.NumLabels;
        return session.RunBatched(encs, BertHeads.SequenceClassification, (o, row, _) => EncoderSession.SoftmaxOf(o.Logits!.Data.AsSpan(row * n, n)));
    }

    /// <summary>
    /// A similarity score per pair: with a 2-label pair classifier, the probability of the positive label (named "1",
    /// else id 1); with a 1-label regression head, its output; with a sentence-embedding folder (sentence-transformers
    /// files), the cosine of its embeddings pooled as its config says; otherwise the cosine of the mean-pooled embeddings.
    /// <paramref name="method"/> says which was used; the weights are packed in <paramref name="precision"/> (as every task's <c>--dtype</c>).
    /// </summary>
    public static double[] PairScores(string modelDir, IReadOnlyList<(string A, string B)> pairs, int batchSize, out string method,
        WeightPrecision precision = WeightPrecision.Float32)
    {
        var config = ModelConfig.Load(modelDir) as BertConfig
            ?? throw new SharpFormerException($"{modelDir}: not a BERT model (config.json model_type is not \"bert\"); pair tasks need a BERT checkpoint");
        if (config.Architecture == "BertForSequenceClassification" && config.NumLabels is 1 or 2 && SentenceTransformersConfig.Read(modelDir) is null)
        {
            var session = EncoderSession.Load(modelDir, BertHeads.SequenceClassification, precision: precision);
            session.BatchSize = batchSize;
            if (config.NumLabels == 1)
            {
                method = "regression head output";
                var encs = pairs.Select(p => session.Tokenizer.Encode(p.A, p.B, session.MaxLength)).ToList();
                return session.RunBatched(encs, BertHeads.SequenceClassification, (o, row, _) => (double)o.Logits!.Data[row]);
            }
            int pos = config.Id2Label.FirstOrDefault(p => p.Value is "1" or "similar" or "paraphrase" or "positive", new(1, "")).Key;
            method = $"classifier probability of label \"{LabelName(config.Id2Label, pos)}\"";
            return ClassifyPairs(session, pairs).Select(p => (double)p[pos]).ToArray();
        }
        // A sentence-embedding folder (sentence-transformers files, as `train embed` writes) pools as it was trained.
        var st = SentenceTransformersConfig.Read(modelDir);
        var emb = SentenceEmbedder.Load(modelDir, st is null ? Pooling.Mean : null, normalize: true, precision);
        emb.Session.BatchSize = batchSize;
        method = $"cosine of {emb.Pooling.ToString().ToLowerInvariant()}-pooled embeddings" + (st is null ? "" : " (sentence-transformers config)");
        var texts = pairs.SelectMany(p => new[] { p.A, p.B }).ToList();
        var cut = texts.Select(t => TruncateToModel(emb.Session, t)).ToList();
        var vecs = emb.Embed(cut);
        return Enumerable.Range(0, pairs.Count).Select(i => (double)SentenceEmbedder.Cosine(vecs[2 * i], vecs[2 * i + 1])).ToArray();
    }

    static string TruncateToModel(EncoderSession s, string text)
    {
        if (s.Tokenizer.Encode(text).Length <= s.MaxLength) return text;
        var runes = text.EnumerateRunes().ToList();
        int lo = 1, hi = runes.Count;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (s.Tokenizer.Encode(string.Concat(runes.Take(mid))).Length <= s.MaxLength) lo = mid; else hi = mid - 1;
        }
        return string.Concat(runes.Take(lo));
    }

    /// <summary>
    /// BIO tags predicted for every word of every sentence: each word is tokenized on its own, the first word piece's
    /// label is the word's (HF label_all_tokens=False, as <c>train ner</c> trains); words past the model's maximum
    /// length get "O". Labels come from id2label.
    /// </summary>
    public static string[][] PredictTags(EncoderSession session, IReadOnlyList<TaggedSentence> data, TagDecoding decoding = TagDecoding.Argmax)
    {
        var tok = session.Tokenizer;
        int cls = session.RequireTokenId("[CLS]"), sep = session.RequireTokenId("[SEP]"), unk = session.RequireTokenId("[UNK]");
        int nl = session.Config.NumLabels, max = session.MaxLength;
        var encs = new List<Encoding>(); var firsts = new List<int[]>();
        var cache = new Dictionary<string, int[]>();
        foreach (var s in data)
        {
            var ids = new List<int> { cls };
            var first = Enumerable.Repeat(-1, s.Words.Length).ToArray();
            for (int w = 0; w < s.Words.Length; w++)
            {
                if (!cache.TryGetValue(s.Words[w], out var pieces))
                {
                    pieces = tok.Tokenize(s.Words[w]).Select(p => tok.TokenToId(p) ?? unk).ToArray();
                    if (pieces.Length == 0) pieces = [unk];   // whitespace and other characters the tokenizer drops
                    cache[s.Words[w]] = pieces;
                }
                if (ids.Count + pieces.Length > max - 1) break;
                first[w] = ids.Count;
                ids.AddRange(pieces);
            }
            ids.Add(sep);
            var arr = ids.ToArray();
            encs.Add(new Encoding(arr, new int[arr.Length], Enumerable.Repeat(1, arr.Length).ToArray(), [], []));
            firsts.Add(first);
        }
        return session.RunBatched(encs, BertHeads.TokenClassification, (o, row, item) =>
        {
            int t = o.Logits!.Shape[1];
            var first = firsts[item];
            // A word is tagged by its first token; words past the maximum length are "O".
            var kept = first.Where(f => f >= 0).ToArray();
            var probs = kept.Select(f => EncoderSession.SoftmaxOf(o.Logits.Data.AsSpan((row * t + f) * nl, nl))).ToList();
            var ids = decoding == TagDecoding.Bio ? BioDecoder.Decode(probs, session.Config.Id2Label) : probs.Select(ArgMax).ToArray();
            var tags = new string[first.Length];
            for (int w = 0, k = 0; w < first.Length; w++)
                tags[w] = first[w] < 0 ? "O" : LabelName(session.Config.Id2Label, ids[k++]);
            return tags;
        });
    }

    /// <summary>Formats a fraction as a percentage with two decimals (for reports).</summary>
    public static string Pct(double v) => double.IsFinite(v) ? (100 * v).ToString("F2", CultureInfo.InvariantCulture) : "n/a";

    /// <summary>A 95 % interval of fractions as percentages, for reports: "(95 % CI 88.90–92.21)".</summary>
    public static string PctInterval((double Low, double High) ci) => $"(95 % CI {Pct(ci.Low)}–{Pct(ci.High)})";
}
