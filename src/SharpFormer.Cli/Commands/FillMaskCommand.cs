using System.CommandLine;
using System.Text.Json.Nodes;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer fill-mask</c>: the top-k tokens for every [MASK] with probabilities (HuggingFace's fill-mask pipeline),
/// the filled sentence, and with several masks the best joint fillings from a small left-to-right beam search.
/// </summary>
public static class FillMaskCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Bert);
        var dtype = CommonOptions.DType();
        var topK = new Option<int>("--top-k") { Description = "Candidates per mask (and joint fillings shown).", DefaultValueFactory = _ => 5 };
        var beam = new Option<int?>("--beam") { Description = "Beam width of the joint search over several masks (default: --top-k)." };
        var input = TaskIo.Input(); var errors = TaskIo.Errors(); var output = TaskIo.Output(); var seed = TaskIo.Seed(); var batch = TaskIo.BatchSize();
        var json = CommonOptions.Json();
        var texts = TaskIo.Texts("Texts with one or more [MASK] tokens, e.g. \"今天[MASK]气很好\".");
        var cmd = new Command("fill-mask", "Predict the tokens hidden by [MASK] (masked language model); several masks also get joint fillings.")
            { model, dtype, topK, beam, input, errors, output, seed, batch, json, texts };
        cmd.SetAction(r =>
        {
            var pipe = FillMaskPipeline.Load(r.GetValue(model)!, r.GetValue(seed), r.Precision(dtype));
            pipe.Session.BatchSize = r.GetValue(batch);
            var untrained = TaskIo.Untrained(pipe.Session);
            var records = TaskIo.Read(r.GetValue(texts), r.GetValue(input), replaceInvalid: r.ReplaceInvalid(errors));
            int k = r.GetValue(topK);
            var results = TaskIo.Process(records, part => pipe.Predict(part.Select(p => p.Text).ToList(), k, r.GetValue(beam)), chunk: 64);
            var objs = results.Select(res => TaskJson.FillMask(res, untrained)).ToList();
            if (r.GetValue(output) is string outPath) { TaskIo.WriteJsonl(outPath, records, objs); return 0; }
            if (r.GetValue(json))
            {
                TaskIo.Print(objs.Count == 1 ? objs[0] : new JsonObject { ["results"] = new JsonArray(objs.ToArray()) });
                return 0;
            }
            if (untrained is not null) Console.WriteLine($"note: {untrained}");
            foreach (var res in results) PrintHuman(res);
            return 0;
        });
        return cmd;
    }

    static void PrintHuman(FillMaskResult res)
    {
        Console.WriteLine(res.Text);
        for (int i = 0; i < res.Masks.Count; i++)
        {
            var m = res.Masks[i];
            Console.WriteLine(res.Masks.Count == 1 ? "  candidates:" : $"  mask {i + 1} of {res.Masks.Count} (characters {m.Start}-{m.End}), each predicted on its own:");
            int n = 1;
            foreach (var c in m.Candidates)
                Console.WriteLine($"    {n++,2}. {c.TokenStr,-12} {c.Score,10:F6}   {c.Filled}");
        }
        if (res.Joint.Count > 0)
        {
            Console.WriteLine("  best joint fillings (masks filled one at a time, left to right, beam search):");
            int n = 1;
            foreach (var j in res.Joint)
                Console.WriteLine($"    {n++,2}. {string.Join(" + ", j.TokenStrs),-20} p={j.Probability,-10:G4} {j.Filled}");
        }
        Console.WriteLine($"  filled: {TaskJson.BestFilling(res)}");
    }
}
