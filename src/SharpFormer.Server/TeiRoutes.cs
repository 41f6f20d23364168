using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using SharpFormer.Extensions.AI;
using SharpFormer.Tasks;

namespace SharpFormer.Server;

/// <summary>
/// text-embeddings-inference-compatible routes: POST /embed, /predict, /tokenize and GET /info. TEI serves one model;
/// here a request may name one with <c>"model"</c> (or <c>?model=</c> on /info), else the first that suits is used.
/// Errors are TEI's <c>{"error", "error_type"}</c>: 413 too large, 422 validation, 424 model error.
/// </summary>
sealed class TeiRoutes(SharpFormerServer server)
{
    public void Map(WebApplication app)
    {
        app.MapPost("/embed", (HttpContext ctx) => Handle(ctx, () => Embed(ctx)));
        app.MapPost("/predict", (HttpContext ctx) => Handle(ctx, () => Predict(ctx)));
        app.MapPost("/tokenize", (HttpContext ctx) => Handle(ctx, () => Tokenize(ctx)));
        app.MapGet("/info", (HttpContext ctx) => Handle(ctx, () => Info(ctx)));
    }

    /// <summary>Runs a route and answers its errors in TEI's shape (the playground's routes answer the same way).</summary>
    internal static async Task Handle(HttpContext ctx, Func<Task> route)
    {
        try { await route(); }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            var (status, type) = e switch
            {
                ApiException { Status: 413 } => (413, "validation"),
                ApiException { Status: 404 } => (404, "validation"),
                ApiException or SharpFormerException => (422, "validation"),
                _ => (424, "backend"),
            };
            await Http.WriteAsync(ctx, status, new JsonObject { ["error"] = e.Message, ["error_type"] = type });
        }
    }

    ServedModel Encoder(string? name, Func<ServedModel, bool> suits, string what)
    {
        var model = server.Resolve(name, suits, what);
        return suits(model) ? model : throw new ApiException(422, $"model '{model.Name}' is not {what} model", "model");
    }

    async Task Embed(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Encoder(req.String("model"), m => m.Embedder is not null, "an embedding");
        var texts = req.Strings("inputs", server.Options.MaxClientBatchSize);
        if (req.Bool("truncate") == true) throw new ApiException(422, "truncate=true is not supported: send texts within the model's length", "truncate");
        bool normalize = req.Bool("normalize") ?? true;
        var embedder = model.Embedder!;
        var vectors = await model.RunAsync(() => embedder.Embed(texts), ctx.RequestAborted);
        if (normalize) foreach (var v in vectors) SentenceEmbedder.L2Normalize(v);
        await Http.WriteAsync(ctx, 200, new JsonArray(vectors.Select(v => (JsonNode)new JsonArray(v.Select(x => (JsonNode)x).ToArray())).ToArray()));
    }

    /// <summary>TEI's predict inputs: a text, a pair [a, b], or a batch of texts / [a] / [a, b]; and whether it was a batch.</summary>
    static (List<(string Text, string? Pair)> Items, bool Batch) PredictInputs(JsonElement req, int max)
    {
        var v = req.Field("inputs") ?? throw new ApiException(422, "'inputs' is required", "inputs");
        static (string, string?) Sequence(JsonElement s) => s.ValueKind switch
        {
            JsonValueKind.String => (s.GetString()!, null),
            JsonValueKind.Array when s.GetArrayLength() is 1 or 2 && s.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String) =>
                (s[0].GetString()!, s.GetArrayLength() == 2 ? s[1].GetString() : null),
            _ => throw new ApiException(422, "each of 'inputs' must be a text or a pair [text, text_pair]", "inputs"),
        };
        bool pair = v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 2 && v.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String);
        if (v.ValueKind == JsonValueKind.String || pair) return ([Sequence(v)], false);
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() == 0) throw new ApiException(422, "'inputs' must be a text, a pair or a non-empty batch", "inputs");
        if (v.GetArrayLength() > max) throw new ApiException(413, $"batch size {v.GetArrayLength()} > maximum allowed batch size {max}", "inputs");
        return (v.EnumerateArray().Select(Sequence).ToList(), true);
    }

    async Task Predict(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Encoder(req.String("model"), m => m.Classifier is not null, "a sequence-classification");
        var (items, batch) = PredictInputs(req, server.Options.MaxClientBatchSize);
        if (req.Bool("truncate") == true) throw new ApiException(422, "truncate=true is not supported: send texts within the model's length", "truncate");
        bool raw = req.Bool("raw_scores") ?? false;
        var classifier = model.Classifier!;
        var results = await model.RunAsync(() => classifier.Classify(items.Select(i => i.Text).ToList(), pairs: items.Select(i => i.Pair).ToList()), ctx.RequestAborted);
        // Labels in descending order of logit (the order of their scores), with the score or, raw, the logit.
        JsonNode Scores(ClassificationResult r)
        {
            var byLabel = r.Scores.ToDictionary(s => s.Label, s => s.Score);
            return new JsonArray(Enumerable.Range(0, r.Logits.Length).OrderByDescending(k => r.Logits[k]).ThenBy(k => k).Select(k =>
            {
                var label = classifier.Id2Label.TryGetValue(k, out var l) ? l : $"LABEL_{k}";
                return (JsonNode)new JsonObject { ["score"] = raw ? r.Logits[k] : byLabel[label], ["label"] = label };
            }).ToArray());
        }
        await Http.WriteAsync(ctx, 200, batch ? new JsonArray(results.Select(Scores).ToArray()) : Scores(results[0]));
    }

    async Task Tokenize(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = server.Resolve(req.String("model"), m => m.Embedder is not null, "encoder");
        var texts = req.Strings("inputs", server.Options.MaxClientBatchSize);
        bool special = req.Bool("add_special_tokens") ?? true;
        var tok = model.Tokenizer;
        var specialIds = tok.SpecialTokens.Ids;
        var lists = texts.Select(t =>
        {
            var enc = tok.Encode(t);
            var rows = Enumerable.Range(0, enc.Length).Where(i => special || !specialIds.Contains(enc.InputIds[i]));
            return (JsonNode)new JsonArray(rows.Select(i =>
            {
                bool isSpecial = specialIds.Contains(enc.InputIds[i]);
                return (JsonNode)new JsonObject
                {
                    ["id"] = enc.InputIds[i], ["text"] = enc.Tokens[i], ["special"] = isSpecial,
                    ["start"] = isSpecial ? null : enc.Offsets[i].Start, ["stop"] = isSpecial ? null : enc.Offsets[i].End,
                };
            }).ToArray());
        }).ToArray();
        await Http.WriteAsync(ctx, 200, new JsonArray(lists));
    }

    Task Info(HttpContext ctx)
    {
        var model = server.Resolve(ctx.Request.Query["model"].FirstOrDefault(), m => m.Embedder is not null, "encoder");
        JsonObject type = model.Classifier is { } c
            ? new JsonObject
            {
                ["classifier"] = new JsonObject
                {
                    ["id2label"] = new JsonObject(c.Id2Label.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Key.ToString(), (JsonNode?)kv.Value))),
                    ["label2id"] = new JsonObject(c.Id2Label.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Value, (JsonNode?)kv.Key))),
                },
            }
            : model.Embedder is { } e ? new JsonObject { ["embedding"] = new JsonObject { ["pooling"] = e.Pooling.ToString().ToLowerInvariant() } }
            : new JsonObject { ["generator"] = new JsonObject() };
        return Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["model_id"] = model.Name, ["model_sha"] = null, ["model_dtype"] = "float32", ["model_type"] = type,
            ["max_concurrent_requests"] = 1, ["max_input_length"] = model.Embedder?.MaxLength,
            ["max_client_batch_size"] = server.Options.MaxClientBatchSize,
            ["version"] = typeof(ServedModel).Assembly.GetName().Version?.ToString(),
        });
    }
}
