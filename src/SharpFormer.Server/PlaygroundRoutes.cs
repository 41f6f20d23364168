using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using SharpFormer.AttentionViews;
using SharpFormer.Extensions.AI;
using SharpFormer.Tasks;

namespace SharpFormer.Server;

/// <summary>
/// The web playground: its page at <c>/</c> and assets at <c>/playground/*</c> (embedded in this assembly: plain
/// HTML/CSS/JS, nothing fetched from elsewhere), and the JSON routes it calls under <c>/playground/api</c>:
/// models, fill-mask, classify, ner, attention (one layer/head with token labels) and generate (server-sent events,
/// one per token with its probability and alternatives). Errors are TEI's <c>{"error", "error_type"}</c>. Every task
/// uses the served model's own heads (one model per folder), and each request is admitted to the model's queue (429
/// when full) like the other routes.
/// </summary>
sealed class PlaygroundRoutes(SharpFormerServer server)
{
    const string ResourcePrefix = "playground/";

    /// <summary>The page's own files: served while the models load too (the page then shows the 503 of its API calls).</summary>
    internal static bool IsAsset(string route) => route is "/" or "/playground/{**file}";

    public void Map(WebApplication app)
    {
        app.MapGet("/", (HttpContext ctx) => Asset(ctx, "index.html")).ExcludeFromDescription();
        app.MapGet("/playground/{**file}", (HttpContext ctx, string file) => Asset(ctx, file)).ExcludeFromDescription();
        const string tag = "playground";
        var docs = server.Docs;
        Routes.Map(app, "GET", "/playground/api/models", "The playground's models: what each can do, its layers and heads, sampling defaults.", tag, docs.PlaygroundModels,
                   ctx => TeiRoutes.Handle(ctx, () => Http.WriteAsync(ctx, 200, Catalogue())));
        Routes.Map(app, "POST", "/playground/api/fill-mask", "Playground: candidates for each [MASK] of one text.", tag, docs.PlaygroundFillMask, ctx => TeiRoutes.Handle(ctx, () => FillMask(ctx)));
        Routes.Map(app, "POST", "/playground/api/classify", "Playground: the labels of one text, most likely first.", tag, docs.PlaygroundClassify, ctx => TeiRoutes.Handle(ctx, () => Classify(ctx)));
        Routes.Map(app, "POST", "/playground/api/ner", "Playground: the entities of one text (BIO decoding).", tag, docs.PlaygroundNer, ctx => TeiRoutes.Handle(ctx, () => Ner(ctx)));
        Routes.Map(app, "POST", "/playground/api/attention", "Playground: one layer and head over a text, or a decoder's exact token ids.", tag, docs.PlaygroundAttention,
                   ctx => TeiRoutes.Handle(ctx, () => Attention(ctx)));
        Routes.Map(app, "POST", "/playground/api/generate", "Playground: a continuation as server-sent events, one per token with its probability and alternatives.", tag, docs.PlaygroundGenerate,
                   ctx => TeiRoutes.Handle(ctx, () => Generate(ctx)));
    }

    static async Task Asset(HttpContext ctx, string file)
    {
        using var stream = typeof(PlaygroundRoutes).Assembly.GetManifestResourceStream(ResourcePrefix + file);
        if (stream is null)
        {
            await Http.WriteAsync(ctx, 404, new JsonObject { ["error"] = $"no playground file '{file}'", ["error_type"] = "not_found" });
            return;
        }
        ctx.Response.ContentType = Path.GetExtension(file) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".svg" => "image/svg+xml",
            _ => "application/octet-stream",
        };
        ctx.Response.Headers.CacheControl = "no-cache";
        await stream.CopyToAsync(ctx.Response.Body, ctx.RequestAborted);
    }

    /// <summary>Every served model with what the playground can do with it, its layers and heads.</summary>
    JsonObject Catalogue()
    {
        var encoders = new JsonArray();
        var decoders = new JsonArray();
        foreach (var m in server.Models.Values)
        {
            if (m.LanguageModel is { } lm)
                decoders.Add(new JsonObject
                {
                    ["name"] = m.Name, ["layers"] = lm.Shape.Layers, ["heads"] = lm.Shape.Heads, ["context"] = lm.Shape.ContextLength,
                    ["defaults"] = new JsonObject
                    {
                        ["temperature"] = m.GenerationDefaults!.DoSample ? m.GenerationDefaults.Temperature : 0,
                        ["top_p"] = m.GenerationDefaults.TopP, ["top_k"] = m.GenerationDefaults.TopK,
                    },
                });
            else if (m.Embedder is { } e)
            {
                var tasks = new JsonArray("attention");
                if (m.FillMask is not null) tasks.Add("fill-mask");
                if (m.Classifier is not null) tasks.Add("classify");
                if (m.Tagger is not null) tasks.Add("ner");
                encoders.Add(new JsonObject
                {
                    ["name"] = m.Name, ["layers"] = e.Session.Config.NumHiddenLayers, ["heads"] = e.Session.Config.NumAttentionHeads,
                    ["tasks"] = tasks, ["labels"] = m.Classifier is { } c ? new JsonArray(c.Id2Label.OrderBy(kv => kv.Key).Select(kv => (JsonNode)kv.Value).ToArray()) : null,
                });
            }
        }
        return new JsonObject { ["encoders"] = encoders, ["decoders"] = decoders };
    }

    ServedModel Model(JsonElement req, Func<ServedModel, bool> suits, string what)
    {
        var model = server.Resolve(req.String("model"), suits, what);
        return suits(model) ? model : throw new ApiException(422, $"model '{model.Name}' is not {what} model", "model");
    }

    static string Text(JsonElement req, string name = "text")
    {
        var text = req.String(name) ?? throw new ApiException(422, $"'{name}' is required", name);
        return string.IsNullOrWhiteSpace(text) ? throw new ApiException(422, $"'{name}' is empty", name) : text;
    }

    static int Bounded(JsonElement req, string name, int fallback, int min, int max)
    {
        long v = req.Integer(name) ?? fallback;
        return v >= min && v <= max ? (int)v : throw new ApiException(422, $"'{name}' must be between {min} and {max} (got {v})", name);
    }

    async Task FillMask(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.FillMask is not null, "a masked-LM");
        var text = Text(req);
        int topK = Bounded(req, "top_k", ApiDocs.FillMaskTopK, 1, ApiDocs.MaxAlternatives);
        var pipe = model.FillMask!;
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/playground/api/fill-mask", 1);
        var result = await model.RunAsync(() => pipe.Predict(text, topK), ctx.RequestAborted);
        await Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["model"] = model.Name,
            ["masks"] = new JsonArray(result.Masks.Select(m => (JsonNode)new JsonObject
            {
                ["start"] = m.Start, ["end"] = m.End,
                ["candidates"] = new JsonArray(m.Candidates.Select(c => (JsonNode)new JsonObject
                {
                    ["token"] = c.TokenStr, ["id"] = c.Token, ["score"] = c.Score, ["filled"] = c.Filled,
                }).ToArray()),
            }).ToArray()),
            ["joint"] = new JsonArray(result.Joint.Select(j => (JsonNode)new JsonObject
            {
                ["tokens"] = new JsonArray(j.TokenStrs.Select(t => (JsonNode)t).ToArray()), ["probability"] = j.Probability, ["filled"] = j.Filled,
            }).ToArray()),
        });
    }

    async Task Classify(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.Classifier is not null, "a sequence-classification");
        var text = Text(req);
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/playground/api/classify", 1);
        var r = (await model.ClassifyAsync([(text, null)], ctx.RequestAborted))[0];
        await Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["model"] = model.Name, ["label"] = r.Label,
            ["scores"] = new JsonArray(r.Scores.OrderByDescending(s => s.Score).Select(s => (JsonNode)new JsonObject { ["label"] = s.Label, ["score"] = s.Score }).ToArray()),
        });
    }

    async Task Ner(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.Tagger is not null, "a token-classification");
        var text = Text(req);
        var tagger = model.Tagger!;
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/playground/api/ner", 1);
        // BIO decoding: the shipped tagger's better reading (valid tag sequences), grouped into entities.
        var r = await model.RunAsync(() => tagger.Predict(text, AggregationStrategy.Simple, decoding: TagDecoding.Bio), ctx.RequestAborted);
        await Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["model"] = model.Name, ["text"] = text,
            ["entities"] = new JsonArray(r.Entities.Select(e => (JsonNode)new JsonObject
            {
                ["label"] = e.Label, ["score"] = e.Score, ["word"] = e.Word, ["start"] = e.Start, ["end"] = e.End,
            }).ToArray()),
        });
    }

    /// <summary>One layer/head of an encoder over a text, or of a decoder over a text or exact token ids (a prompt and what was generated).</summary>
    async Task Attention(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.Embedder is not null || m.LanguageModel is not null, "an attention");
        int[]? ids = req.Field("ids") is { } v
            ? v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0 && v.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out _))
                ? v.EnumerateArray().Select(x => x.GetInt32()).ToArray()
                : throw new ApiException(422, "'ids' must be a non-empty array of token ids", "ids")
            : null;
        if (ids is not null && model.LanguageModel is null) throw new ApiException(422, $"'ids' are for decoders; send the text to encoder '{model.Name}'", "ids");
        var text = ids is null ? Text(req) : null;
        long layer = req.Integer("layer") ?? 0, head = req.Integer("head") ?? 0;
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/playground/api/attention", 1);
        var map = await model.RunAsync(() =>
        {
            AttentionMap m;
            if (model.LanguageModel is { } lm)
            {
                var tokens = ids ?? model.Tokenizer.EncodeForCausalLm(text!);
                if (tokens.Any(id => (uint)id >= (uint)lm.Shape.VocabSize)) throw new ApiException(422, $"'ids' holds an id outside the vocabulary [0, {lm.Shape.VocabSize})", "ids");
                m = AttentionMap.OfDecoder(lm, model.Tokenizer, tokens, model.Name);
            }
            else m = AttentionMap.OfEncoder(model.Embedder!.Session.Model, model.Tokenizer, text!, model.Name);
            if (layer < 0 || layer >= m.Layers) throw new ApiException(422, $"'layer' {layer} is out of range: {model.Name} has {m.Layers} layers (0..{m.Layers - 1})", "layer");
            if (head < 0 || head >= m.Heads) throw new ApiException(422, $"'head' {head} is out of range: {model.Name} has {m.Heads} heads per layer (0..{m.Heads - 1})", "head");
            return m;
        }, ctx.RequestAborted);
        var matrix = map.Matrix((int)layer, (int)head);
        await Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["model"] = model.Name, ["kind"] = map.IsCausal ? "causal" : "bidirectional", ["layer"] = layer, ["head"] = head,
            ["layers"] = map.Layers, ["heads"] = map.Heads,
            ["tokens"] = new JsonArray(map.Labels.Select(l => (JsonNode)l).ToArray()),
            ["ids"] = new JsonArray(map.InputIds.Select(i => (JsonNode)i).ToArray()),
            ["matrix"] = new JsonArray(Enumerable.Range(0, map.Length).Select(q =>
                (JsonNode)new JsonArray(Enumerable.Range(0, map.Length).Select(k => (JsonNode)MathF.Round(matrix[q, k], 5)).ToArray())).ToArray()),
        });
    }

    /// <summary>Streams a continuation as server-sent events: one <c>token</c> event per token, then <c>done</c> with every id (for the attention view).</summary>
    async Task Generate(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = Model(req, m => m.LanguageModel is not null, "a text-generation");
        var shape = model.LanguageModel!.Shape;
        var prompt = Text(req, "prompt");
        var ids = model.Tokenizer.EncodeForCausalLm(prompt);
        if (ids.Length == 0) throw new ApiException(422, "'prompt' is empty after tokenization", "prompt");
        int max = Bounded(req, "max_tokens", ApiDocs.PlaygroundMaxTokens, 1, shape.ContextLength);
        int? topK = req.Field("top_k") is null ? null : Bounded(req, "top_k", 0, 0, shape.VocabSize);
        var sampling = new SamplingRequest(max, (float?)req.Number("temperature"), (float?)req.Number("top_p"), req.Integer("seed"), TopK: topK);
        int alternatives = Bounded(req, "alternatives", ApiDocs.PlaygroundAlternatives, 1, ApiDocs.MaxAlternatives);
        model.Options(sampling, ids.Length);   // validates before the stream starts
        using var lease = server.Admit(model);

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        async Task Send(string kind, JsonObject data)
        {
            await ctx.Response.WriteAsync($"event: {kind}\ndata: {data.ToJsonString(Http.Compact)}\n\n", ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }
        var generated = new List<int>();
        JsonObject Alternative(TokenProbability p) => new()
        {
            ["id"] = p.Id, ["token"] = model.Tokenizer.Decode([p.Id]), ["p"] = p.Probability, ["sampled_p"] = p.SampledProbability,
        };
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await Send("prompt", new JsonObject { ["ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()) });
            await foreach (var u in model.GenerateTokensAsync(ids, sampling, alternatives, ctx.RequestAborted))
            {
                if (u.Token is { } step)
                {
                    generated.Add(step.Chosen.Id);
                    var token = Alternative(step.Chosen);
                    token["text"] = u.Text;
                    token["alternatives"] = new JsonArray(step.Alternatives.Select(a => (JsonNode)Alternative(a)).ToArray());
                    await Send("token", token);
                }
                else if (u.Text.Length > 0) await Send("text", new JsonObject { ["text"] = u.Text });
                if (u.Finish is { } f)
                {
                    server.Metrics.Generated(model, f, clock.Elapsed);
                    await Send("done", new JsonObject
                    {
                        ["finish_reason"] = f.Reason, ["prompt_tokens"] = f.PromptTokens, ["completion_tokens"] = f.CompletionTokens,
                        ["ids"] = new JsonArray(ids.Concat(generated).Select(i => (JsonNode)i).ToArray()),
                    });
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
        {
            // The 200 has gone out: the error travels in the stream.
            await Send("error", new JsonObject { ["error"] = e is SharpFormerException or ApiException ? e.Message : $"internal error: {e.Message}" });
        }
    }
}
