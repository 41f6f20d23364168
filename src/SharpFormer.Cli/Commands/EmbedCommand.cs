using System.CommandLine;
using System.Text.Json.Nodes;
using SharpFormer.Kernels;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer embed</c>: sentence vectors as JSONL (one {"text", "embedding"} per text) or, with --json, one object.</summary>
public static class EmbedCommand
{
    public static Option<string?> PoolingOption()
    {
        var o = new Option<string?>("--pooling") { Description = "cls | mean | max | mean_sqrt_len (default: the sentence-transformers config if the folder has one, else cls)." };
        o.AcceptOnlyFromAmong("cls", "mean", "max", "mean_sqrt_len");
        return o;
    }

    internal static SentenceEmbedder Load(string dir, string? pooling, bool? normalize, int batchSize, WeightPrecision precision)
    {
        var embedder = SentenceEmbedder.Load(dir, pooling is null ? null : SentenceTransformersConfig.ParseName(pooling), normalize, precision);
        embedder.Session.BatchSize = batchSize;
        Warnings.ForInitialised(embedder.Session.InitialisedParameters);
        if (embedder.SentenceTransformers?.IgnoredModules.Count > 0)
            Console.Error.WriteLine($"warning: sentence-transformers modules not run: {string.Join(", ", embedder.SentenceTransformers.IgnoredModules)}; vectors differ from sentence-transformers'");
        return embedder;
    }

    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Embedding);
        var dtype = CommonOptions.DType();
        var pooling = PoolingOption();
        var normalize = new Option<bool>("--normalize") { Description = "L2-normalise the vectors (default: on when the sentence-transformers folder has a Normalize module)." };
        var input = TaskIo.Input(); var errors = TaskIo.Errors(); var output = TaskIo.Output(); var batch = TaskIo.BatchSize();
        var json = CommonOptions.Json();
        var texts = TaskIo.Texts("Texts to embed.");
        var cmd = new Command("embed", "Sentence embeddings: pooled last hidden states (cls/mean/max), optionally L2-normalised, as JSONL.")
            { model, dtype, pooling, normalize, input, errors, output, batch, json, texts };
        cmd.SetAction(r =>
        {
            var embedder = Load(r.GetValue(model)!, r.GetValue(pooling), r.GetValue(normalize) ? true : null, r.GetValue(batch), r.Precision(dtype));
            var records = TaskIo.Read(r.GetValue(texts), r.GetValue(input), replaceInvalid: r.ReplaceInvalid(errors));
            var vectors = TaskIo.Process(records, part => embedder.Embed(part.Select(p => p.Text).ToList()));
            var objs = records.Select((p, i) => new JsonObject { ["text"] = p.Text, ["embedding"] = TaskIo.Floats(vectors[i]) }).ToList();
            if (r.GetValue(output) is string outPath) { TaskIo.WriteJsonl(outPath, records, objs); return 0; }
            if (r.GetValue(json))
            {
                TaskIo.Print(new JsonObject
                {
                    ["pooling"] = embedder.Pooling.ToString().ToLowerInvariant(), ["normalized"] = embedder.Normalize,
                    ["dimension"] = embedder.Dimension, ["results"] = new JsonArray(objs.ToArray()),
                });
                return 0;
            }
            foreach (var o in objs) TaskIo.Print(o);
            return 0;
        });
        return cmd;
    }
}
