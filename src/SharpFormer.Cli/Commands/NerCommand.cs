using System.CommandLine;
using System.Text.Json.Nodes;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer ner</c>: token classification with HuggingFace pipeline semantics; entities carry the exact substring
/// and character start/end in the original text. Long texts run in overlapping windows (--stride), never truncated.
/// </summary>
public static class NerCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Ner);
        var dtype = CommonOptions.DType();
        var aggregation = new Option<string>("--aggregation") { Description = "none (one entity per token) | simple | first | average | max (word-level).", DefaultValueFactory = _ => "simple" };
        aggregation.AcceptOnlyFromAmong("none", "simple", "first", "average", "max");
        var decode = CommonOptions.Decode();
        var stride = new Option<int?>("--stride") { Description = "Tokens of overlap between windows for texts longer than the model's maximum (default: a quarter window)." };
        var input = TaskIo.Input(); var errors = TaskIo.Errors(); var output = TaskIo.Output(); var seed = TaskIo.Seed(); var batch = TaskIo.BatchSize();
        var json = CommonOptions.Json();
        var texts = TaskIo.Texts("Texts to tag.");
        var cmd = new Command("ner", "Named-entity recognition / token classification: entities with label, score, text and character offsets.")
            { model, dtype, aggregation, decode, stride, input, errors, output, seed, batch, json, texts };
        cmd.SetAction(r =>
        {
            var decoding = r.Decoding(decode);
            var ner = TokenClassifier.Load(r.GetValue(model)!, r.GetValue(seed), r.Precision(dtype));
            ner.Session.BatchSize = r.GetValue(batch);
            var untrained = TaskIo.Untrained(ner.Session);
            var strategy = Enum.Parse<AggregationStrategy>(r.GetValue(aggregation)!, ignoreCase: true);
            var records = TaskIo.Read(r.GetValue(texts), r.GetValue(input), replaceInvalid: r.ReplaceInvalid(errors));
            var results = TaskIo.Process(records, part => ner.Predict(part.Select(p => p.Text).ToList(), strategy, r.GetValue(stride), decoding: decoding), chunk: 128);
            var objs = results.Select(res => TaskJson.Ner(res, untrained)).ToList();
            if (r.GetValue(output) is string outPath) { TaskIo.WriteJsonl(outPath, records, objs); return 0; }
            var types = new JsonArray(ner.EntityTypes.Select(t => (JsonNode)t).ToArray());
            if (r.GetValue(json))
            {
                var o = objs.Count == 1 ? objs[0] : new JsonObject { ["results"] = new JsonArray(objs.ToArray()) };
                o["entity_types"] = types;
                TaskIo.Print(o);
                return 0;
            }
            if (untrained is not null) Console.WriteLine($"note: {untrained}");
            // Models tag different label sets (CLUENER's 10 fine types, or person/place/organisation): say which.
            Console.WriteLine($"entity types of {Path.GetFileName(Path.GetFullPath(r.GetValue(model)!).TrimEnd(Path.DirectorySeparatorChar))}: {string.Join(", ", ner.EntityTypes)}");
            foreach (var res in results)
            {
                Console.WriteLine(res.Text);
                if (res.Windows > 1) Console.WriteLine($"  (long text: {res.Windows} overlapping windows)");
                if (res.Entities.Count == 0) Console.WriteLine("  no entities");
                foreach (var e in res.Entities)
                    Console.WriteLine($"  {e.Label,-8} {e.Score,7:F4}  {$"[{e.Start},{e.End})",-11} {e.Word}");
            }
            return 0;
        });
        return cmd;
    }
}
