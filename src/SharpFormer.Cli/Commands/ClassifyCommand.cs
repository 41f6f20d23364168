using System.CommandLine;
using System.Text.Json.Nodes;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer classify</c>: sequence classification — the label (id2label) and the score of every label.</summary>
public static class ClassifyCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Sentiment);
        var dtype = CommonOptions.DType();
        var truncate = new Option<bool>("--truncate") { Description = "Cut texts longer than the model's maximum (marked \"truncated\" in the output) instead of failing." };
        var input = TaskIo.Input(); var errors = TaskIo.Errors(); var output = TaskIo.Output(); var seed = TaskIo.Seed(); var batch = TaskIo.BatchSize();
        var json = CommonOptions.Json();
        var texts = TaskIo.Texts("Texts to classify.");
        var cmd = new Command("classify", "Sequence classification (e.g. sentiment): label and probabilities of every label (sigmoid for multi-label models); JSONL input with \"text_pair\" is scored as a sentence pair.")
            { model, dtype, truncate, input, errors, output, seed, batch, json, texts };
        cmd.SetAction(r =>
        {
            var clf = TextClassifier.Load(r.GetValue(model)!, r.GetValue(seed), r.Precision(dtype));
            clf.Session.BatchSize = r.GetValue(batch);
            var untrained = TaskIo.Untrained(clf.Session);
            var records = TaskIo.Read(r.GetValue(texts), r.GetValue(input), replaceInvalid: r.ReplaceInvalid(errors));
            var results = TaskIo.Process(records, part => clf.Classify(part.Select(p => p.Text).ToList(), r.GetValue(truncate), pairs: part.Select(p => p.Pair).ToList()));
            var objs = results.Select(res =>
            {
                var o = new JsonObject
                {
                    ["text"] = res.Text, ["label"] = res.Label,
                    ["scores"] = new JsonArray(res.Scores.Select(s => (JsonNode)new JsonObject { ["label"] = s.Label, ["score"] = TaskIo.Round(s.Score) }).ToArray()),
                    ["function"] = res.Function,
                };
                if (res.TextPair is not null) o["text_pair"] = res.TextPair;
                if (res.Function == "sigmoid") o["labels"] = new JsonArray(res.Labels.Select(l => (JsonNode)JsonValue.Create(l)!).ToArray());
                if (res.Truncated) o["truncated"] = true;
                if (untrained is not null) { o["head_untrained"] = true; o["note"] = untrained; }
                return o;
            }).ToList();
            if (r.GetValue(output) is string outPath) { TaskIo.WriteJsonl(outPath, records, objs); return 0; }
            if (r.GetValue(json)) { TaskIo.Print(objs.Count == 1 ? objs[0] : new JsonObject { ["results"] = new JsonArray(objs.ToArray()) }); return 0; }
            if (untrained is not null) Console.WriteLine($"note: {untrained}");
            foreach (var res in results)
            {
                var top = res.Scores[0];
                string label = res.Function == "sigmoid" ? (res.Labels.Count == 0 ? "(no label ≥ 0.5)" : string.Join(", ", res.Labels)) : res.Label;
                Console.WriteLine($"{label} ({top.Score:F4})  {TaskIo.Shorten(res.Text)}{(res.TextPair is null ? "" : "  |  " + TaskIo.Shorten(res.TextPair))}{(res.Truncated ? "  [truncated]" : "")}");
                Console.WriteLine("    " + string.Join("   ", res.Scores.Select(s => $"{s.Label} {s.Score:F4}")));
            }
            return 0;
        });
        return cmd;
    }
}
