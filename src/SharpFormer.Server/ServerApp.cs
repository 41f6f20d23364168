using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharpFormer.Extensions.AI;

namespace SharpFormer.Server;

/// <summary>Settings of <c>sharpformer serve</c>.</summary>
public sealed record ServerOptions
{
    /// <summary>The address to listen on.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>The port (0: any free port; read the bound one from <see cref="SharpFormerServer.Address"/>).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Largest request body in bytes; a larger one is answered 413.</summary>
    public long MaxRequestBodySize { get; init; } = 2 * 1024 * 1024;
    /// <summary>Most inputs in one embeddings / classification request; more is answered 413 (TEI's max_client_batch_size).</summary>
    public int MaxClientBatchSize { get; init; } = 32;
}

/// <summary>
/// The HTTP server: OpenAI-compatible routes under <c>/v1</c>, text-embeddings-inference routes (<c>/embed</c>,
/// <c>/predict</c>, <c>/tokenize</c>, <c>/info</c>) and <c>/health</c>, over models loaded once. Requests to one model
/// run one at a time; a client that disconnects cancels its generation at the next step.
/// </summary>
public sealed class SharpFormerServer : IAsyncDisposable
{
    readonly WebApplication _app;

    /// <summary>The served models by name.</summary>
    public IReadOnlyDictionary<string, ServedModel> Models { get; }
    /// <summary>The settings.</summary>
    public ServerOptions Options { get; }

    /// <summary>A server for these models (names must be unique); call <see cref="StartAsync"/> to listen.</summary>
    public SharpFormerServer(IReadOnlyList<ServedModel> models, ServerOptions options)
    {
        if (models.Count == 0) throw new SharpFormerException("no model to serve");
        var dup = models.GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new SharpFormerException($"two models are named '{dup.Key}'; serve folders with different names");
        if (options.MaxRequestBodySize < 1) throw new SharpFormerException("the request body limit must be positive");
        if (options.MaxClientBatchSize < 1) throw new SharpFormerException("the client batch size must be positive");
        Models = models.ToDictionary(m => m.Name);
        Options = options;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBodySize);
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        _app = builder.Build();
        _app.MapGet("/health", () => Results.Json(new { status = "ok", models = Models.Count }));
        new OpenAiRoutes(this).Map(_app);
        new TeiRoutes(this).Map(_app);
        new PlaygroundRoutes(this).Map(_app);
    }

    /// <summary>Starts listening.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default) => _app.StartAsync(cancellationToken);

    /// <summary>Serves (after <see cref="StartAsync"/>) until <paramref name="cancellationToken"/> is cancelled or the process is asked to stop (Ctrl-C, SIGTERM), then stops.</summary>
    public async Task WaitForShutdownAsync(CancellationToken cancellationToken = default)
    {
        await _app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8080 (after <see cref="StartAsync"/>).</summary>
    public string Address => _app.Urls.First();

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await _app.DisposeAsync().ConfigureAwait(false);

    /// <summary>The model a request names, or the first model that <paramref name="suits"/> when it names none (<paramref name="what"/> names the kind in errors).</summary>
    internal ServedModel Resolve(string? name, Func<ServedModel, bool> suits, string what)
    {
        if (name is not null)
            return Models.TryGetValue(name, out var m) ? m
                : throw new ApiException(404, $"The model '{name}' does not exist (served: {string.Join(", ", Models.Keys)})", "model", "model_not_found");
        return Models.Values.FirstOrDefault(suits) ?? throw new ApiException(400, $"no {what} model is served", "model");
    }
}

/// <summary>A request error with its HTTP status (and, for OpenAI's error object, the offending parameter and a code).</summary>
sealed class ApiException(int status, string message, string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
}

/// <summary>Reading request bodies and writing JSON, shared by both route families.</summary>
static class Http
{
    // Relaxed escaping: Chinese text stays readable in responses (still valid JSON; responses are never embedded in HTML).
    public static readonly JsonSerializerOptions Compact = new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The request body as a JSON object; a body over the limit is 413, invalid JSON 400 (the caller maps statuses).</summary>
    public static async Task<JsonElement> ReadObjectAsync(HttpContext ctx)
    {
        JsonDocument doc;
        try { doc = await JsonDocument.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted); }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ApiException(413, $"the request body is larger than the limit of {ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize} bytes");
        }
        catch (JsonException e) { throw new ApiException(400, $"the request body is not valid JSON ({e.Message.Split('\n')[0]})"); }
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ApiException(400, "the request body must be a JSON object");
        return doc.RootElement;
    }

    public static Task WriteAsync(HttpContext ctx, int status, JsonNode body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(body.ToJsonString(Compact), ctx.RequestAborted);
    }

    /// <summary>A field of an object, or null when absent or JSON null.</summary>
    public static JsonElement? Field(this JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static string? String(this JsonElement o, string name) => o.Field(name) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Invalid(name, "a string") : null;

    public static bool? Bool(this JsonElement o, string name) => o.Field(name) is { } v
        ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Invalid(name, "true or false") : null;

    public static double? Number(this JsonElement o, string name) => o.Field(name) is { } v
        ? v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Invalid(name, "a number") : null;

    public static long? Integer(this JsonElement o, string name) => o.Field(name) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var i) ? i : throw Invalid(name, "an integer") : null;

    /// <summary>A string or an array of strings (one at least, no more than <paramref name="max"/>), as a list.</summary>
    public static List<string> Strings(this JsonElement o, string name, int max)
    {
        var v = o.Field(name) ?? throw new ApiException(400, $"'{name}' is required", name);
        List<string> list = v.ValueKind switch
        {
            JsonValueKind.String => [v.GetString()!],
            JsonValueKind.Array when v.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String) => v.EnumerateArray().Select(x => x.GetString()!).ToList(),
            JsonValueKind.Array when v.EnumerateArray().All(x => x.ValueKind is JsonValueKind.Number or JsonValueKind.Array) =>
                throw new ApiException(400, $"'{name}' holds token ids; SharpFormer takes text (for LangChain, set check_embedding_ctx_length=False)", name),
            _ => throw Invalid(name, "a string or an array of strings"),
        };
        if (list.Count == 0) throw new ApiException(400, $"'{name}' is empty", name);
        if (list.Count > max) throw new ApiException(413, $"'{name}' has {list.Count} items; the limit is {max} per request", name);
        return list;
    }

    static ApiException Invalid(string name, string what) => new(400, $"'{name}' must be {what}", name);
}
