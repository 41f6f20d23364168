using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpFormer.Models;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer evaluate --model DIR --task classify|ner|pairs|sts --data FILE</c>: scores a model on a labelled file
/// in the shared data formats (ChnSentiCorp tsv, CLUENER2020 / Weibo JSONL, LCQMC/AFQMC tsv, Chinese STS-B).
/// </summary>
public static class EvaluateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        model.Description = "A HuggingFace model folder; default: the shipped model for --task (classify → " + ShippedModels.Sentiment
                            + ", ner → " + ShippedModels.Ner + ", pairs → " + ShippedModels.PairClassifier + ", sts → " + ShippedModels.Embedding + ").";
        var dtype = CommonOptions.DType();
        var task = new Option<string>("--task", "-t") { Description = "classify (accuracy, macro-F1), ner (entity-level P/R/F1, seqeval), pairs (accuracy at --threshold), sts (Spearman).", Required = true };
        task.AcceptOnlyFromAmong("classify", "ner", "pairs", "sts");
        var data = new Option<string>("--data") { Description = "Labelled file: text<TAB>label or JSONL (classify); CLUENER/Weibo JSONL or BIO (ner); s1<TAB>s2<TAB>0|1 (pairs); id||s1||s2||score (sts).", Required = true };
        var errors = TaskIo.Errors();
        var threshold = new Option<double?>("--threshold") { Description = "pairs: predict 'same' when the score is at least this (default 0.5: a classifier's probability; cosine for an encoder without a classifier head)." };
        var decode = CommonOptions.Decode();
        decode.Description = "ner: " + decode.Description;
        var limit = new Option<int>("--limit") { Description = "Evaluate only the first N examples (0 = all).", DefaultValueFactory = _ => 0 };
        var batch = TaskIo.BatchSize();
        var json = CommonOptions.Json();
        var cmd = new Command("evaluate", "Score a model on a labelled file: accuracy/macro-F1 (classify), entity P/R/F1 (ner), accuracy at a threshold (pairs), Spearman (sts).")
            { model, dtype, task, data, errors, threshold, decode, limit, batch, json };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(data)!;
            string dir = r.GetValue(model) ?? ShippedModels.PathOf(r.GetValue(task) switch
            {
                "classify" => ShippedModels.Sentiment,
                "ner" => ShippedModels.Ner,
                "sts" => ShippedModels.Embedding,
                _ => ShippedModels.PairClassifier,
            });
            var decoding = r.Decoding(decode);   // checked for every task, so a bad value is never silently ignored
            int lim = r.GetValue(limit), bs = r.GetValue(batch);
            bool replace = r.ReplaceInvalid(errors);
            var clock = Stopwatch.StartNew();
            List<T> Cut<T>(List<T> l) => lim > 0 && l.Count > lim ? l.Take(lim).ToList() : l;
            var res = new JsonObject { ["model"] = Path.GetFullPath(dir), ["task"] = r.GetValue(task), ["data"] = Path.GetFullPath(path) };
            var lines = new List<string>();
            switch (r.GetValue(task))
            {
                case "classify":
                {
                    var examples = Cut(TaskIo.ReadUserFile(() => Evaluation.ReadClassification(path, replace)));
                    var clf = TextClassifier.Load(dir, precision: r.Precision(dtype));
                    clf.Session.BatchSize = bs;
                    RequireTrained(clf.Session);
                    var labels = clf.Id2Label.OrderBy(p => p.Key).Select(p => p.Value).ToList();
                    var gold = examples.Select(e => Evaluation.MatchLabel(e.Label, clf.Id2Label)
                        ?? throw new SharpFormerException($"{path}:{e.Line}: label \"{e.Label}\" is not one of the model's labels ({string.Join(", ", labels)})")).ToList();
                    var pred = Evaluation.PredictLabels(clf, examples);
                    double acc = EvaluationMetrics.Accuracy(gold, pred), f1 = EvaluationMetrics.MacroF1(gold, pred, labels);
                    res["examples"] = examples.Count; res["accuracy"] = R(acc); res["macro_f1"] = R(f1);
                    var per = new JsonObject();
                    foreach (var (l, p, rc, f, n) in EvaluationMetrics.PerLabel(gold, pred, labels))
                    {
                        per[l] = new JsonObject { ["precision"] = R(p), ["recall"] = R(rc), ["f1"] = R(f), ["support"] = n };
                        lines.Add($"  {l,-14} P {Evaluation.Pct(p),6}  R {Evaluation.Pct(rc),6}  F1 {Evaluation.Pct(f),6}  n {n}");
                    }
                    res["per_label"] = per;
                    var (accCi, f1Ci) = (EvaluationMetrics.AccuracyInterval(gold, pred), EvaluationMetrics.MacroF1Interval(gold, pred, labels));
                    res["accuracy_ci95"] = Ci(accCi); res["macro_f1_ci95"] = Ci(f1Ci);
                    lines.Insert(0, $"{examples.Count} examples: accuracy {Evaluation.Pct(acc)}% {Evaluation.PctInterval(accCi)}  macro-F1 {Evaluation.Pct(f1)}% {Evaluation.PctInterval(f1Ci)}");
                    break;
                }
                case "ner":
                {
                    var sents = Cut(TaskIo.ReadUserFile(() => Evaluation.ReadNer(path, replace)));
                    var session = EncoderSession.Load(dir, BertHeads.TokenClassification, precision: r.Precision(dtype));
                    session.BatchSize = bs;
                    RequireTrained(session);
                    var pred = Evaluation.PredictTags(session, sents, decoding);
                    var gold = sents.Select(s => (IReadOnlyList<string>)s.Tags).ToList();
                    var predL = pred.Select(p => (IReadOnlyList<string>)p).ToList();
                    var (p, rc, f1) = EvaluationMetrics.EntityScores(gold, predL);
                    int words = 0, ok = 0;
                    for (int i = 0; i < sents.Count; i++) for (int w = 0; w < sents[i].Tags.Length; w++) { words++; if (sents[i].Tags[w] == pred[i][w]) ok++; }
                    res["decode"] = decoding == TagDecoding.Bio ? "bio" : "argmax";
                    res["sentences"] = sents.Count; res["precision"] = R(p); res["recall"] = R(rc); res["f1"] = R(f1);
                    res["token_accuracy"] = R(words == 0 ? 0 : ok / (double)words);
                    var per = new JsonObject();
                    var f1Ci = EvaluationMetrics.EntityF1Interval(gold, predL);
                    res["f1_ci95"] = Ci(f1Ci);
                    lines.Add($"{sents.Count} sentences: entity precision {Evaluation.Pct(p)}  recall {Evaluation.Pct(rc)}  F1 {Evaluation.Pct(f1)} {Evaluation.PctInterval(f1Ci)}  (seqeval, exact type+span; {(decoding == TagDecoding.Bio ? "BIO-constrained" : "argmax")} tags)");
                    foreach (var (type, tp, tr, tf, n) in EvaluationMetrics.EntityScoresByType(gold, predL))
                    {
                        per[type] = new JsonObject { ["precision"] = R(tp), ["recall"] = R(tr), ["f1"] = R(tf), ["support"] = n };
                        lines.Add($"  {type,-14} P {Evaluation.Pct(tp),6}  R {Evaluation.Pct(tr),6}  F1 {Evaluation.Pct(tf),6}  n {n}");
                    }
                    res["per_type"] = per;
                    break;
                }
                case "pairs":
                {
                    var pairs = Cut(TaskIo.ReadUserFile(() => Evaluation.ReadPairs(path, replace)));
                    var bad = pairs.FirstOrDefault(p => p.Gold is not (0 or 1));
                    if (bad is not null) throw new SharpFormerException($"{path}:{bad.Line}: pairs need 0/1 labels (got {bad.Gold.ToString(CultureInfo.InvariantCulture)}); use --task sts for graded scores");
                    var scores = Evaluation.PairScores(dir, pairs.Select(p => (p.First, p.Second)).ToList(), bs, out var method, r.Precision(dtype));
                    var gold = pairs.Select(p => (int)p.Gold).ToList();
                    double t = r.GetValue(threshold) ?? 0.5;
                    double acc = EvaluationMetrics.ThresholdAccuracy(scores, gold, t);
                    var (bt, bacc) = EvaluationMetrics.BestThreshold(scores, gold);
                    var predL = scores.Select(s => s >= t ? "1" : "0").ToList();
                    double f1 = EvaluationMetrics.MacroF1(gold.Select(g => g.ToString()).ToList(), predL, ["0", "1"]);
                    res["examples"] = pairs.Count; res["score"] = method; res["threshold"] = t; res["accuracy"] = R(acc); res["macro_f1"] = R(f1);
                    res["best_threshold"] = R(bt); res["best_threshold_accuracy"] = R(bacc);
                    var accCi = EvaluationMetrics.WilsonInterval((int)Math.Round(acc * pairs.Count), pairs.Count);
                    res["accuracy_ci95"] = Ci(accCi);
                    lines.Add($"{pairs.Count} pairs, score = {method}");
                    lines.Add($"accuracy at threshold {t.ToString(CultureInfo.InvariantCulture)}: {Evaluation.Pct(acc)}% {Evaluation.PctInterval(accCi)}  macro-F1 {Evaluation.Pct(f1)}%");
                    lines.Add($"(best threshold on this same data: {bt:F4} → {Evaluation.Pct(bacc)}%; an upper bound, not a fair test score)");
                    break;
                }
                case "sts":
                {
                    var pairs = Cut(TaskIo.ReadUserFile(() => Evaluation.ReadPairs(path, replace)));
                    var scores = Evaluation.PairScores(dir, pairs.Select(p => (p.First, p.Second)).ToList(), bs, out var method, r.Precision(dtype));
                    var gold = pairs.Select(p => p.Gold).ToList();
                    double rho = EvaluationMetrics.Spearman(scores, gold), pr = EvaluationMetrics.Pearson(scores, gold);
                    var rhoCi = EvaluationMetrics.SpearmanInterval(scores, gold);
                    res["examples"] = pairs.Count; res["score"] = method; res["spearman"] = R(rho); res["spearman_ci95"] = Ci(rhoCi); res["pearson"] = R(pr);
                    lines.Add($"{pairs.Count} pairs, score = {method}");
                    lines.Add($"Spearman {rho:F4} (95 % CI {rhoCi.Low:F4}–{rhoCi.High:F4})  Pearson {pr:F4}");
                    break;
                }
            }
            res["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
            if (r.GetValue(json)) TaskIo.Print(res);
            else foreach (var l in lines) Console.WriteLine(l);
            return 0;
        });
        return cmd;
    }

    /// <summary>A rounded metric for JSON; null when undefined (e.g. Spearman of constant scores).</summary>
    static JsonNode? R(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : null;

    /// <summary>A 95 % interval for JSON: [low, high].</summary>
    static JsonArray Ci((double Low, double High) ci) => [R(ci.Low), R(ci.High)];

    static void RequireTrained(EncoderSession s)
    {
        if (s.HeadUntrained)
            throw new SharpFormerException($"{s.ModelDir}: the model has no trained head for this task (newly initialised: {string.Join(", ", s.InitialisedParameters.Take(3))}); evaluate a fine-tuned model");
    }
}
