using System.CommandLine;
using System.Text.Json.Nodes;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer similarity</c>: cosine similarity of sentence embeddings. Two texts → the cosine and a verdict
/// against <c>--threshold</c>; more texts → the full matrix; <c>--input</c> → one pair per record (JSONL "text" +
/// "text_pair", or A&lt;TAB&gt;B lines).
/// </summary>
public static class SimilarityCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Embedding);
        var dtype = CommonOptions.DType();
        var pooling = EmbedCommand.PoolingOption();
        var threshold = new Option<float>("--threshold") { Description = "Cosine at or above which two texts are called similar.", DefaultValueFactory = _ => 0.7f };
        var input = TaskIo.Input(); var errors = TaskIo.Errors(); var output = TaskIo.Output(); var batch = TaskIo.BatchSize();
        var json = CommonOptions.Json();
        var texts = TaskIo.Texts("Two texts (cosine and verdict) or more (similarity matrix).");
        var cmd = new Command("similarity", "Cosine similarity of sentence embeddings (pooling cls/mean/max; sentence-transformers folders use their own pooling).")
            { model, dtype, pooling, threshold, input, errors, output, batch, json, texts };
        cmd.SetAction(r =>
        {
            var embedder = EmbedCommand.Load(r.GetValue(model)!, r.GetValue(pooling), null, r.GetValue(batch), r.Precision(dtype));
            float th = r.GetValue(threshold);
            string Verdict(float c) => c >= th ? "similar" : "not similar";
            var inputFile = r.GetValue(input);
            string poolingName = embedder.Pooling.ToString().ToLowerInvariant() + (embedder.SentenceTransformers is not null ? " (sentence-transformers config)" : "");
            string how = "pooling " + poolingName;

            if (inputFile is not null || r.GetValue(output) is not null)
            {
                var records = TaskIo.Read(r.GetValue(texts), inputFile, pairs: true, replaceInvalid: r.ReplaceInvalid(errors));
                var cos = TaskIo.Process(records, part =>
                {
                    var v = embedder.Embed(part.SelectMany(p => new[] { p.Text, p.Pair! }).ToList());
                    return Enumerable.Range(0, part.Count).Select(i => SentenceEmbedder.Cosine(v[2 * i], v[2 * i + 1])).ToArray();
                }, chunk: 128);
                var objs = records.Select((p, i) => new JsonObject
                {
                    ["text"] = p.Text, ["text_pair"] = p.Pair, ["cosine"] = TaskIo.Round(cos[i]), ["similar"] = cos[i] >= th,
                }).ToList();
                if (r.GetValue(output) is string outPath) { TaskIo.WriteJsonl(outPath, records, objs); return 0; }
                if (r.GetValue(json)) { TaskIo.Print(new JsonObject { ["pooling"] = poolingName, ["threshold"] = th, ["results"] = new JsonArray(objs.ToArray()) }); return 0; }
                for (int i = 0; i < records.Count; i++)
                    Console.WriteLine($"{cos[i],8:F4}  {Verdict(cos[i]),-11}  {TaskIo.Shorten(records[i].Text, 40)}  |  {TaskIo.Shorten(records[i].Pair!, 40)}");
                return 0;
            }

            var list = r.GetValue(texts) ?? [];
            if (list.Length < 2) throw new SharpFormerException($"similarity needs at least two texts (got {list.Length})");
            var vectors = embedder.Embed(list);
            if (list.Length == 2)
            {
                float c = SentenceEmbedder.Cosine(vectors[0], vectors[1]);
                if (r.GetValue(json))
                    TaskIo.Print(new JsonObject { ["text"] = list[0], ["text_pair"] = list[1], ["cosine"] = TaskIo.Round(c), ["similar"] = c >= th, ["threshold"] = th, ["pooling"] = poolingName });
                else
                {
                    Console.WriteLine($"A: {list[0]}");
                    Console.WriteLine($"B: {list[1]}");
                    Console.WriteLine($"cosine similarity {c:F4} → {Verdict(c)} (threshold {th:0.###}, {how})");
                }
                return 0;
            }
            var m = SentenceEmbedder.CosineMatrix(vectors);
            if (r.GetValue(json))
            {
                TaskIo.Print(new JsonObject
                {
                    ["texts"] = new JsonArray(list.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
                    ["matrix"] = new JsonArray(m.Select(row => (JsonNode)TaskIo.Floats(row)).ToArray()),
                    ["threshold"] = th, ["pooling"] = poolingName,
                });
                return 0;
            }
            for (int i = 0; i < list.Length; i++) Console.WriteLine($"[{i + 1}] {list[i]}");
            Console.WriteLine($"cosine similarity ({how}; * = at or above {th:0.###}):");
            Console.WriteLine("     " + string.Concat(Enumerable.Range(1, list.Length).Select(j => $"{$"[{j}]",9}")));
            for (int i = 0; i < list.Length; i++)
                Console.WriteLine($"{$"[{i + 1}]",-5}" + string.Concat(m[i].Select((c, j) => $"{c,8:F4}{(i != j && c >= th ? "*" : " ")}")));
            return 0;
        });
        return cmd;
    }
}
