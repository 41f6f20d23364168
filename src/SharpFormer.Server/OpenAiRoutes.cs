using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using SharpFormer.Extensions.AI;
using SharpFormer.Tasks;
using SharpFormer.Templates;

namespace SharpFormer.Server;

/// <summary>
/// OpenAI-compatible routes: GET /v1/models, POST /v1/embeddings, /v1/completions, /v1/chat/completions (streamed as
/// server-sent events with <c>stream: true</c>). Errors are OpenAI's error object; fields SharpFormer cannot honour
/// (n &gt; 1, tools, logprobs, response_format other than text, echo, suffix) are refused with 400, never ignored.
/// </summary>
sealed class OpenAiRoutes(SharpFormerServer server)
{
    public void Map(WebApplication app)
    {
        const string tag = "OpenAI-compatible";
        var docs = server.Docs;
        Routes.Map(app, "GET", "/v1/models", "The served models.", tag, docs.Models, ctx => Handle(ctx, () => Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(server.Models.Values.Select(ModelObject).ToArray()),
        })));
        Routes.Map(app, "GET", "/v1/models/{id}", "One served model.", tag, docs.Model1, ctx => Handle(ctx, () =>
            Http.WriteAsync(ctx, 200, ModelObject(server.Resolve((string?)ctx.Request.RouteValues["id"], _ => true, "")))));
        Routes.Map(app, "POST", "/v1/embeddings", "Sentence embeddings (encoding_format float or base64).", tag, docs.Embeddings, ctx => Handle(ctx, () => Embeddings(ctx)));
        Routes.Map(app, "POST", "/v1/completions", "Text completion (stream: true for server-sent events).", tag, docs.Completions, ctx => Handle(ctx, () => Generate(ctx, chat: false)));
        Routes.Map(app, "POST", "/v1/chat/completions", "Chat completion with the model's chat template (stream: true for server-sent events).", tag,
                   docs.ChatCompletions, ctx => Handle(ctx, () => Generate(ctx, chat: true)));
    }

    static JsonNode ModelObject(ServedModel m) => new JsonObject
    {
        ["id"] = m.Name, ["object"] = "model", ["created"] = m.Created.ToUnixTimeSeconds(), ["owned_by"] = "sharpformer",
    };

    static JsonObject Error(string message, string type, string? param, string? code) => new()
    {
        ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code },
    };

    /// <summary>Runs a route and answers its errors as OpenAI does (a client that went away gets nothing).</summary>
    static async Task Handle(HttpContext ctx, Func<Task> route)
    {
        try { await route(); }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            var (status, message, param, code) = e switch
            {
                ApiException a => (a.Status, a.Message, a.Param, a.Code),
                SharpFormerException s => (400, s.Message, null, null),
                _ => (500, $"internal error: {e.Message}", null, null),
            };
            await Http.WriteErrorAsync(ctx, status, message, "", param, code);
        }
    }

    async Task Embeddings(HttpContext ctx)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = server.Resolve(req.String("model"), m => m.Embedder is not null, "embedding");
        var texts = req.Strings("input", server.Options.MaxClientBatchSize);
        if (texts.Any(t => t.Length == 0)) throw new ApiException(400, "'input' holds an empty string", "input");
        var format = req.String("encoding_format") ?? ApiDocs.EncodingFormats[0];
        if (!ApiDocs.EncodingFormats.Contains(format))
            throw new ApiException(400, $"'encoding_format' must be {string.Join(" or ", ApiDocs.EncodingFormats)} (got '{format}')", "encoding_format");
        if (model.Embedder is null) throw new ApiException(400, $"model '{model.Name}' is not an embedding model", "model");
        long? dims = req.Integer("dimensions");
        if (dims is long d && d != model.Embedder.Dimension)
            throw new ApiException(400, $"model '{model.Name}' makes {model.Embedder.Dimension}-dimensional vectors; 'dimensions' cannot be {d}", "dimensions");
        using var lease = server.Admit(model);
        server.Metrics.Batch(model, "/v1/embeddings", texts.Count);
        var result = await new SharpFormerEmbeddingGenerator(model).GenerateAsync(texts, null, ctx.RequestAborted);
        var data = result.Select((e, i) => (JsonNode)new JsonObject
        {
            ["object"] = "embedding", ["index"] = i,
            ["embedding"] = format == "base64" ? Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(e.Vector.Span))
                                                : new JsonArray(e.Vector.ToArray().Select(x => (JsonNode)x).ToArray()),
        }).ToArray();
        long tokens = result.Usage?.InputTokenCount ?? 0;
        await Http.WriteAsync(ctx, 200, new JsonObject
        {
            ["object"] = "list", ["data"] = new JsonArray(data), ["model"] = model.Name,
            ["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens },
        });
    }

    static void Refuse(JsonElement req, string name, Func<JsonElement, bool> unsupported, string why)
    {
        if (req.Field(name) is { } v && unsupported(v)) throw new ApiException(400, $"'{name}': {why}", name);
    }

    static List<ChatMessage> Messages(JsonElement req)
    {
        if (req.Field("messages") is not { ValueKind: JsonValueKind.Array } arr) throw new ApiException(400, "'messages' must be an array of messages", "messages");
        return arr.EnumerateArray().Select((m, i) =>
        {
            if (m.ValueKind != JsonValueKind.Object) throw new ApiException(400, $"messages[{i}] must be an object", "messages");
            var role = m.String("role") ?? throw new ApiException(400, $"messages[{i}] has no role", "messages");
            var content = m.Field("content") switch
            {
                null => "",
                { ValueKind: JsonValueKind.String } s => s.GetString()!,
                { ValueKind: JsonValueKind.Array } parts => string.Concat(parts.EnumerateArray().Select(p =>
                    p.ValueKind == JsonValueKind.Object && p.String("type") == "text" ? p.String("text") ?? ""
                    : throw new ApiException(400, $"messages[{i}].content: only text parts are supported", "messages"))),
                _ => throw new ApiException(400, $"messages[{i}].content must be a string or an array of text parts", "messages"),
            };
            return new ChatMessage(role, content);
        }).ToList();
    }

    static IReadOnlyList<string>? Stop(JsonElement req) => req.Field("stop") switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } s => [s.GetString()!],
        { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() <= 4 && a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String) =>
            a.EnumerateArray().Select(x => x.GetString()!).ToArray(),
        _ => throw new ApiException(400, "'stop' must be a string or an array of up to 4 strings", "stop"),
    };

    async Task Generate(HttpContext ctx, bool chat)
    {
        var req = await Http.ReadObjectAsync(ctx);
        var model = server.Resolve(req.String("model"), m => m.LanguageModel is not null && (!chat || m.ChatTemplate is not null), chat ? "chat" : "text-generation");
        Refuse(req, "n", v => v.ValueKind != JsonValueKind.Number || v.GetDouble() != 1, "only n = 1 is supported");
        Refuse(req, "best_of", v => v.ValueKind != JsonValueKind.Number || v.GetDouble() != 1, "only best_of = 1 is supported");
        Refuse(req, "tools", v => v.ValueKind != JsonValueKind.Array || v.GetArrayLength() > 0, "tool calling is not supported");
        Refuse(req, "logprobs", v => v.ValueKind is not (JsonValueKind.False or JsonValueKind.Number) || (v.ValueKind == JsonValueKind.Number && v.GetDouble() != 0), "log-probabilities are not supported");
        Refuse(req, "echo", v => v.ValueKind != JsonValueKind.False, "echo is not supported");
        Refuse(req, "suffix", _ => true, "suffix is not supported");
        Refuse(req, "response_format", v => v.ValueKind != JsonValueKind.Object || v.String("type") != "text", "only the text response format is supported");
        if (model.LanguageModel is null) throw new ApiException(400, $"model '{model.Name}' is not a text-generation model", "model");
        if (chat && model.ChatTemplate is null) throw new ApiException(400, $"model '{model.Name}' has no chat template; use /v1/completions", "model");

        int[] ids;
        if (chat) ids = model.ChatPrompt(Messages(req));
        else
        {
            var prompts = req.Strings("prompt", 1);
            if (prompts[0].Length == 0) throw new ApiException(400, "'prompt' is empty", "prompt");
            ids = model.Tokenizer.EncodeForCausalLm(prompts[0]);
            if (ids.Length == 0) throw new ApiException(400, "'prompt' is empty after tokenization", "prompt");
        }
        long? max = req.Integer("max_completion_tokens") ?? req.Integer("max_tokens") ?? (chat ? null : ApiDocs.CompletionMaxTokens);
        if (max is long m0 && (m0 < 1 || m0 > int.MaxValue)) throw new ApiException(400, $"max_tokens must be at least 1 (got {m0})", "max_tokens");
        var sampling = new SamplingRequest((int?)max, (float?)req.Number("temperature"), (float?)req.Number("top_p"), req.Integer("seed"), Stop(req));
        model.Options(sampling, ids.Length);   // validates before any answer starts
        bool stream = req.Bool("stream") ?? false;
        bool includeUsage = req.Field("stream_options") is { ValueKind: JsonValueKind.Object } so && (so.Bool("include_usage") ?? false);
        using var lease = server.Admit(model);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var response = new Response(chat, model.Name);
        if (!stream)
        {
            var (text, finish) = await model.GenerateTextAsync(ids, sampling, ctx.RequestAborted);
            server.Metrics.Generated(model, finish, clock.Elapsed);
            var body = response.Envelope(chat ? "chat.completion" : "text_completion");
            body["choices"] = new JsonArray(response.Choice(text, finish.Reason, delta: false));
            body["usage"] = Usage(finish);
            await Http.WriteAsync(ctx, 200, body);
            return;
        }

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        string kind = chat ? "chat.completion.chunk" : "text_completion";
        async Task Send(JsonNode node)
        {
            await ctx.Response.WriteAsync($"data: {node.ToJsonString(Http.Compact)}\n\n", ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }
        try
        {
            if (chat)
            {
                var first = response.Envelope(kind);
                first["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0, ["delta"] = new JsonObject { ["role"] = "assistant", ["content"] = "" }, ["logprobs"] = null, ["finish_reason"] = null,
                });
                await Send(first);
            }
            await foreach (var u in model.GenerateAsync(ids, sampling, ctx.RequestAborted))
            {
                if (u.Text.Length > 0)
                {
                    var chunk = response.Envelope(kind);
                    chunk["choices"] = new JsonArray(response.Choice(u.Text, null, delta: true));
                    await Send(chunk);
                }
                if (u.Finish is { } f)
                {
                    server.Metrics.Generated(model, f, clock.Elapsed);
                    var last = response.Envelope(kind);
                    last["choices"] = new JsonArray(response.Choice(chat ? null : "", f.Reason, delta: true));
                    await Send(last);
                    if (includeUsage)
                    {
                        var usage = response.Envelope(kind);
                        usage["choices"] = new JsonArray();
                        usage["usage"] = Usage(f);
                        await Send(usage);
                    }
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
        {
            // The 200 has gone out: the error travels in the stream, as OpenAI's clients expect.
            await Send(Error(e is SharpFormerException or ApiException ? e.Message : $"internal error: {e.Message}", "server_error", null, null));
        }
        await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
    }

    static JsonObject Usage(GenerationFinish f) => new()
    {
        ["prompt_tokens"] = f.PromptTokens, ["completion_tokens"] = f.CompletionTokens, ["total_tokens"] = f.PromptTokens + f.CompletionTokens,
    };

    /// <summary>The fields every object of one response shares (id, created, model) and its choice objects.</summary>
    sealed class Response(bool chat, string model)
    {
        readonly string _id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        public JsonObject Envelope(string kind) => new() { ["id"] = _id, ["object"] = kind, ["created"] = _created, ["model"] = model };

        public JsonObject Choice(string? text, string? finish, bool delta)
        {
            var choice = new JsonObject { ["index"] = 0 };
            if (!chat) choice["text"] = text;
            else if (delta) choice["delta"] = text is null ? new JsonObject() : new JsonObject { ["content"] = text };
            else choice["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text };
            choice["logprobs"] = null;
            choice["finish_reason"] = finish;
            return choice;
        }
    }
}
