using System.CommandLine;
using System.Text.Json.Nodes;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer nsp</c>: probability that sentence B follows sentence A (BERT's next-sentence head).</summary>
public static class NspCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Bert);
        var dtype = CommonOptions.DType();
        var input = TaskIo.Input(); var errors = TaskIo.Errors(); var output = TaskIo.Output(); var seed = TaskIo.Seed(); var batch = TaskIo.BatchSize();
        var json = CommonOptions.Json();
        var texts = TaskIo.Texts("Sentence A and sentence B.");
        var cmd = new Command("nsp", "Next-sentence prediction: the probability that B follows A.") { model, dtype, input, errors, output, seed, batch, json, texts };
        cmd.SetAction(r =>
        {
            var nsp = NextSentencePredictor.Load(r.GetValue(model)!, r.GetValue(seed), r.Precision(dtype));
            nsp.Session.BatchSize = r.GetValue(batch);
            var untrained = TaskIo.Untrained(nsp.Session);
            var records = TaskIo.Read(r.GetValue(texts), r.GetValue(input), pairs: true, replaceInvalid: r.ReplaceInvalid(errors));
            var results = TaskIo.Process(records, part => nsp.Predict(part.Select(p => (p.Text, p.Pair!)).ToList()));
            var objs = results.Select(res => TaskJson.NextSentence(res, untrained)).ToList();
            if (r.GetValue(output) is string outPath) { TaskIo.WriteJsonl(outPath, records, objs); return 0; }
            if (r.GetValue(json)) { TaskIo.Print(objs.Count == 1 ? objs[0] : new JsonObject { ["results"] = new JsonArray(objs.ToArray()) }); return 0; }
            if (untrained is not null) Console.WriteLine($"note: {untrained}");
            foreach (var res in results)
            {
                Console.WriteLine($"A: {res.First}");
                Console.WriteLine($"B: {res.Second}");
                Console.WriteLine($"P(B follows A) = {res.IsNextProbability:F4} → {(res.IsNext ? "B is the next sentence" : "B is not the next sentence")}");
            }
            return 0;
        });
        return cmd;
    }
}
