using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using SharpFormer.AttentionViews;
using SharpFormer.Extensions.AI;
using SharpFormer.Tasks;

namespace SharpFormer.Server;

/// <summary>
/// What no peer serves: POST /fill-mask, /nsp, /ner (encoders with those heads), /perplexity (decoders) and /attention
/// (any model; JSON matrices with token labels, or <c>?format=html</c> for the viewer <c>sharpformer attention</c>
/// writes). Each runs the library task the command line runs and answers the JSON the command's <c>--json</c> prints
/// (<see cref="TaskJson"/>). A request names its model with <c>"model"</c>, else the first that can serve it is used.
/// Errors are TEI's shape: 422 validation (including a model without the needed head), 413 too many inputs, 424 model error.
/// </summary>
sealed class TaskRoutes(SharpFormerServer server)
{
    public void Map(WebApplication app)
    {
        const string tag = "tasks";
        var docs = server.Docs;
        Routes.Map(app, "POST", "/fill-mask", "The tokens hidden by [MASK]: candidates per mask and, with several masks, joint fillings.", tag, docs.FillMask,
                   ctx => TeiRoutes.Handle(ctx, () => FillMask(ctx)));
        Routes.Map(app, "POST", "/nsp", "Next-sentence prediction: the probability that the second text follows the first.", tag, docs.Nsp,
                   ctx => TeiRoutes.Handle(ctx, () => Nsp(ctx)));
        Routes.Map(app, "POST", "/ner", "Named entities with label, score, text and character offsets.", tag, docs.Ner, ctx => TeiRoutes.Handle(ctx, () => Ner(ctx)));
        Routes.Map(app, "POST", "/perplexity", "Perplexity of a text under a causal language model.", tag, docs.Perplexity, ctx => TeiRoutes.Handle(ctx, () => Perplexity(ctx)));
        Routes.Map(app, "POST", "/attention", "Attention matrices of a layer and head with token labels (?format=html: the interactive viewer).", tag, docs.Attention,
                   ctx => TeiRoutes.Handle(ctx, () => Attention(ctx)));
    }

    /// <summary>The model a request names (or the first that <paramref name="suits"/>), checked to suit: else a 422 naming what it lacks.</summary>
    ServedModel Model(JsonElement req, Func<ServedModel, bool> suits, string what)
    {
        var model = server.Resolve(req.String("model"), suits, what);
        return suits(model) ? model : throw new ApiException(422, $"model '{model.Name}' cannot serve this route: it is not {what} model", "model");
    }

    /// <summary>
    /// Runs <paramref name="work"/> on <paramref name="model"/> in its turn (admitted to its queue) for <paramref name="count"/>
    /// inputs and answers one result, or an array when the request sent a batch.
    /// </summary>
    async Task Answer<T>(HttpContext ctx, ServedModel model, string route, int count, bool batch, Func<T[]> work, Func<T, JsonNode> json)
    {
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, route, count);
        var results = await model.RunAsync(work, ctx.RequestAborted);
        await Http.WriteAsync(ctx, 200, batch ? new JsonArray(results.Select(json).ToArray()) : json(results[0]));
    }

    /// <summary>Texts from "inputs" (a text or an array of texts) and whether they came as an array.</summary>
    (List<string> Texts, bool Batch) Texts(JsonElement req) =>
        (req.Strings("inputs", server.Options.MaxClientBatchSize), req.Field("inputs") is { ValueKind: JsonValueKind.Array });

    async Task FillMask(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.FillMask is not null, "a masked-language");
        var (texts, batch) = Texts(req);
        int topK = (int)Math.Clamp(req.Integer("top_k") ?? ApiDocs.FillMaskTopK, int.MinValue, int.MaxValue);
        int? beam = req.Integer("beam") is long b ? (int)Math.Clamp(b, int.MinValue, int.MaxValue) : null;
        var pipe = model.FillMask!;
        await Answer(ctx, model, "/fill-mask", texts.Count, batch, () => pipe.Predict(texts, topK, beam), r => TaskJson.FillMask(r));
    }

    async Task Nsp(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.NextSentence is not null, "a next-sentence");
        var v = req.Field("inputs") ?? throw new ApiException(422, "'inputs' is required: a pair [text, text_pair] or an array of pairs", "inputs");
        static bool IsPair(JsonElement e) => e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2 && e.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String);
        bool batch = !IsPair(v);
        var pairs = batch
            ? v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0 && v.EnumerateArray().All(IsPair) ? v.EnumerateArray().ToList()
              : throw new ApiException(422, "'inputs' must be a pair [text, text_pair] or a non-empty array of pairs", "inputs")
            : [v];
        if (pairs.Count > server.Options.MaxClientBatchSize)
            throw new ApiException(413, $"batch size {pairs.Count} > maximum allowed batch size {server.Options.MaxClientBatchSize}", "inputs");
        var items = pairs.Select(p => (p[0].GetString()!, p[1].GetString()!)).ToList();
        var nsp = model.NextSentence!;
        await Answer(ctx, model, "/nsp", items.Count, batch, () => nsp.Predict(items), r => TaskJson.NextSentence(r));
    }

    async Task Ner(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.Tagger is not null, "a token-classification");
        var (texts, batch) = Texts(req);
        var name = req.String("aggregation_strategy") ?? ApiDocs.DefaultAggregation;
        if (!ApiDocs.AggregationStrategies.Contains(name, StringComparer.OrdinalIgnoreCase))
            throw new ApiException(422, $"'aggregation_strategy' must be one of {string.Join(", ", ApiDocs.AggregationStrategies)} (got '{name}')", "aggregation_strategy");
        var strategy = Enum.Parse<AggregationStrategy>(name, ignoreCase: true);
        int? stride = req.Integer("stride") is long s ? (int)Math.Clamp(s, int.MinValue, int.MaxValue) : null;
        var tagger = model.Tagger!;
        await Answer(ctx, model, "/ner", texts.Count, batch, () => tagger.Predict(texts, strategy, stride), r => TaskJson.Ner(r));
    }

    async Task Perplexity(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.LanguageModel is not null, "a causal language");
        var (texts, batch) = Texts(req);
        int? stride = req.Integer("stride") is long s ? (int)Math.Clamp(s, int.MinValue, int.MaxValue) : null;
        var lm = model.LanguageModel!;
        await Answer(ctx, model, "/perplexity", texts.Count, batch,
                     () => texts.Select(t => SharpFormer.Tasks.Perplexity.Compute(lm, model.Tokenizer, t, stride)).ToArray(), TaskJson.Perplexity);
    }

    /// <summary>
    /// The attention of one text: with "layer" and "head" one [T, T] matrix, with only "layer" every head of it, with
    /// neither every layer and head; rows are queries, columns keys, labelled by <c>tokens</c>. <c>?format=html</c>
    /// answers the self-contained viewer instead (the given layer and head selected first).
    /// </summary>
    async Task Attention(HttpContext ctx)
    {
        var format = ctx.Request.Query["format"].FirstOrDefault() ?? ApiDocs.AttentionFormats[0];
        if (!ApiDocs.AttentionFormats.Contains(format))
            throw new ApiException(422, $"'format' must be {string.Join(" or ", ApiDocs.AttentionFormats)} (got '{format}')", "format");
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.Encoder is not null || m.LanguageModel is not null, "an encoder or decoder");
        var text = req.String("inputs") ?? throw new ApiException(422, "'inputs' is required: the text to look at", "inputs");
        long? layer = req.Integer("layer"), head = req.Integer("head");
        if (head is not null && layer is null) throw new ApiException(422, "'head' needs 'layer'", "head");
        using var lease = server.Admit(model);
        var map = await model.RunAsync(() => model.Encoder is { } enc
            ? AttentionMap.OfEncoder(enc.Model, model.Tokenizer, text, model.Name)
            : AttentionMap.OfDecoder(model.LanguageModel!, model.Tokenizer, AttentionMap.DecoderIds(model.Tokenizer, text), model.Name, text), ctx.RequestAborted);
        if (layer is long l && (l < 0 || l >= map.Layers)) throw new ApiException(422, $"'layer' {l} is out of range: {model.Name} has {map.Layers} layers (0..{map.Layers - 1})", "layer");
        if (head is long h && (h < 0 || h >= map.Heads)) throw new ApiException(422, $"'head' {h} is out of range: {model.Name} has {map.Heads} heads per layer (0..{map.Heads - 1})", "head");
        if (format == "html")
        {
            var html = AttentionHtml.Build(map, (int?)layer, (int?)head);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "text/html; charset=utf-8";
            await ctx.Response.WriteAsync(html, ctx.RequestAborted);
            return;
        }
        var layers = layer is long one ? [(int)one] : Enumerable.Range(0, map.Layers).ToArray();
        var heads = head is long hh ? [(int)hh] : Enumerable.Range(0, map.Heads).ToArray();
        long weights = (long)layers.Length * heads.Length * map.Length * map.Length;
        if (weights > AttentionHtml.MaxWeights)
            throw new ApiException(422, $"{weights:N0} attention weights are too many for one answer (at most {AttentionHtml.MaxWeights:N0}); ask for one 'layer' (and 'head') or shorten the text", "inputs");
        var matrices = layers.SelectMany(li => heads.Select(hi => (JsonNode)new JsonObject
        {
            ["layer"] = li, ["head"] = hi,
            ["weights"] = new JsonArray(Enumerable.Range(0, map.Length).Select(q => (JsonNode)TaskJson.Floats(map.Row(li, hi, q).ToArray())).ToArray()),
        })).ToArray();
        await Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["model"] = model.Name, ["model_type"] = map.ModelType, ["kind"] = map.IsCausal ? "causal" : "bidirectional", ["text"] = map.Text,
            ["tokens"] = new JsonArray(map.Labels.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["token_ids"] = new JsonArray(map.InputIds.Select(i => (JsonNode)i).ToArray()),
            ["layers"] = map.Layers, ["heads"] = map.Heads, ["matrices"] = new JsonArray(matrices),
        });
    }
}
