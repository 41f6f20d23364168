using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using SharpFormer.Extensions.AI;
using SharpFormer.Kernels;
using SharpFormer.Tasks;

namespace SharpFormer.Server;

/// <summary>
/// text-embeddings-inference-compatible routes: POST /embed, /predict, /rerank, /tokenize and GET /info. TEI serves one
/// model; here a request may name one with <c>"model"</c> (or <c>?model=</c> on /info), else the first that suits is
/// used. Errors are TEI's <c>{"error", "error_type"}</c>: 413 too large, 422 validation, 424 model error, 429 overloaded.
/// </summary>
sealed class TeiRoutes(SharpFormerServer server)
{
    public void Map(WebApplication app)
    {
        const string tag = "text-embeddings-inference-compatible";
        var docs = server.Docs;
        Routes.Map(app, "POST", "/embed", "Sentence embeddings (normalised by default).", tag, docs.Embed, ctx => Handle(ctx, () => Embed(ctx)));
        Routes.Map(app, "POST", "/predict", "Sequence classification of texts or text pairs.", tag, docs.Predict, ctx => Handle(ctx, () => Predict(ctx)));
        Routes.Map(app, "POST", "/rerank", "Scores texts against a query with a pair classifier, most relevant first.", tag, docs.Rerank, ctx => Handle(ctx, () => Rerank(ctx)));
        Routes.Map(app, "POST", "/tokenize", "Tokens with ids and character offsets.", tag, docs.Tokenize, ctx => Handle(ctx, () => Tokenize(ctx)));
        Routes.Map(app, "GET", "/info", "The model's type, labels, dtype and limits.", tag, docs.Info, ctx => Handle(ctx, () => Info(ctx)));
    }

    /// <summary>Runs a route and answers its errors as TEI does (the playground's routes answer the same way; a client that went away gets nothing).</summary>
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
                ApiException { Status: 429 } => (429, "overloaded"),
                ApiException { Status: 424 } => (424, "backend"),
                ApiException or SharpFormerException => (422, "validation"),
                _ => (424, "backend"),
            };
            await Http.WriteErrorAsync(ctx, status, e.Message.ReplaceLineEndings(" "), type);
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
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/embed", texts.Count);
        var vectors = await model.EmbedAsync(texts, ctx.RequestAborted);
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
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/predict", items.Count);
        var results = await model.ClassifyAsync(items, ctx.RequestAborted);
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

    /// <summary>
    /// TEI's /rerank: each text scored as the pair (query, text) by a pair classifier, most relevant first. The score is
    /// the probability of the model's "relevant" label (<see cref="ServedModel.RerankLabel"/>: sigmoid of a one-label
    /// cross-encoder, P(label "1") of a two-label pair classifier); raw, the logit (two labels: the log-odds, logit 1 − logit 0).
    /// </summary>
    async Task Rerank(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = server.Resolve(req.String("model"), m => m.RerankLabel is not null, "reranker");
        if (model.RerankLabel is not int label)
            throw new ApiException(424, $"model '{model.Name}' is not a reranker (a pair classifier with one label, or two labels named 0 and 1)", "model");
        var query = req.String("query") ?? throw new ApiException(422, "'query' is required", "query");
        var texts = req.Strings("texts", server.Options.MaxClientBatchSize);
        if (req.Bool("truncate") == true) throw new ApiException(422, "truncate=true is not supported: send texts within the model's length", "truncate");
        bool raw = req.Bool("raw_scores") ?? false, withText = req.Bool("return_text") ?? false;
        var classifier = model.Classifier!;
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/rerank", texts.Count);
        var results = await model.ClassifyAsync(texts.Select(t => (query, (string?)t)).ToList(), ctx.RequestAborted);
        float Score(ClassificationResult r) =>
            !raw ? r.Scores.First(s => s.Label == classifier.Id2Label.GetValueOrDefault(label, $"LABEL_{label}")).Score
            : r.Logits.Length == 1 ? r.Logits[0] : r.Logits[label] - r.Logits[1 - label];
        var ranked = results.Select((r, i) => (Index: i, Score: Score(r))).OrderByDescending(x => x.Score).ThenBy(x => x.Index);
        await Http.WriteAsync(ctx, 200, new JsonArray(ranked.Select(x =>
        {
            var o = new JsonObject { ["index"] = x.Index, ["score"] = x.Score };
            if (withText) o["text"] = texts[x.Index];
            return (JsonNode)o;
        }).ToArray()));
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
                    ["id2label"] = Labels(c.Id2Label),
                    ["label2id"] = new JsonObject(c.Id2Label.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Value, (JsonNode?)kv.Key))),
                },
            }
            : model.Tagger is { } t ? new JsonObject { ["token_classifier"] = new JsonObject { ["id2label"] = Labels(t.Id2Label) } }
            : model.Embedder is { } e ? new JsonObject { ["embedding"] = new JsonObject { ["pooling"] = e.Pooling.ToString().ToLowerInvariant() } }
            : new JsonObject { ["generator"] = new JsonObject() };
        return Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["model_id"] = model.Name, ["model_sha"] = null, ["model_dtype"] = DType(model.Precision), ["model_type"] = type,
            ["max_concurrent_requests"] = server.Queues[model.Name].Capacity, ["max_input_length"] = model.Embedder?.MaxLength,
            ["max_client_batch_size"] = server.Options.MaxClientBatchSize,
            ["version"] = typeof(ServedModel).Assembly.GetName().Version?.ToString(),
        });
    }

    static JsonObject Labels(IReadOnlyDictionary<int, string> id2label) =>
        new(id2label.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Key.ToString(), (JsonNode?)kv.Value)));

    /// <summary>TEI's dtype names for how the weights are held.</summary>
    static string DType(WeightPrecision p) => p switch
    {
        WeightPrecision.BFloat16 => "bfloat16",
        WeightPrecision.Int8 => "int8",
        _ => "float32",
    };
}
