using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
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
    /// <summary>Most requests that may wait for a busy model (besides the one it runs); past that a request is answered 429 with Retry-After.</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>How long a stopping server (SIGTERM, Ctrl-C) lets requests in flight finish while it answers new ones 503.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The HTTP server: OpenAI-compatible routes under <c>/v1</c>, text-embeddings-inference routes (<c>/embed</c>,
/// <c>/predict</c>, <c>/rerank</c>, <c>/tokenize</c>, <c>/info</c>), the tasks no peer serves (<c>/fill-mask</c>,
/// <c>/nsp</c>, <c>/ner</c>, <c>/perplexity</c>, <c>/attention</c>), and <c>/health</c>, <c>/metrics</c> (Prometheus text)
/// and <c>/openapi.json</c>, and the web playground at <c>/</c>, over models loaded once. Each model admits at most <see cref="ServerOptions.MaxQueue"/>
/// waiting requests (more: 429); concurrent generations share decode steps and encoder requests run in batches (<see cref="ServingOptions"/>); a client that disconnects cancels its generation at the next
/// step. Until the models are loaded, and while stopping, requests are answered 503; stopping lets the requests in
/// flight finish first.
/// </summary>
public sealed class SharpFormerServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly Func<IReadOnlyList<ServedModel>>? _load;
    volatile IReadOnlyDictionary<string, ServedModel>? _models;
    volatile IReadOnlyDictionary<string, AdmissionQueue> _queues = new Dictionary<string, AdmissionQueue>();
    volatile bool _draining;
    int _inFlight;

    /// <summary>The served models by name (empty until they are loaded).</summary>
    public IReadOnlyDictionary<string, ServedModel> Models => _models ?? new Dictionary<string, ServedModel>();
    /// <summary>Each model's admission queue, by model name (empty until the models are loaded).</summary>
    public IReadOnlyDictionary<string, AdmissionQueue> Queues => _queues;
    /// <summary>The settings.</summary>
    public ServerOptions Options { get; }
    /// <summary>Completes when the models are loaded (faults with the loading error).</summary>
    public Task Ready { get; private set; }
    /// <summary>Requests being served now (probes and refused requests not counted).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);
    internal ServerMetrics Metrics { get; }
    /// <summary>What each route takes and answers (the OpenAPI document), and the allowed values its handler checks.</summary>
    internal ApiDocs Docs { get; }
    internal bool IsReady => _models is not null && !_draining;

    /// <summary>A server for models already loaded (names must be unique); call <see cref="StartAsync"/> to listen.</summary>
    public SharpFormerServer(IReadOnlyList<ServedModel> models, ServerOptions options) : this(options)
    {
        Install(models);
        Ready = Task.CompletedTask;
    }

    /// <summary>
    /// A server that starts listening first and then runs <paramref name="load"/> in the background (call
    /// <see cref="StartAsync"/>): <c>/health</c> answers 503 until the models are in, and <see cref="Ready"/> completes.
    /// </summary>
    public SharpFormerServer(Func<IReadOnlyList<ServedModel>> load, ServerOptions options) : this(options)
    {
        _load = load;
        Ready = new TaskCompletionSource().Task;   // replaced by the loading task at StartAsync
    }

    SharpFormerServer(ServerOptions options)
    {
        if (options.MaxRequestBodySize < 1) throw new SharpFormerException("the request body limit must be positive");
        if (options.MaxClientBatchSize < 1) throw new SharpFormerException("the client batch size must be positive");
        if (options.MaxQueue < 0) throw new SharpFormerException($"the queue limit must be 0 or more (got {options.MaxQueue})");
        if (options.DrainTimeout < TimeSpan.Zero) throw new SharpFormerException("the drain timeout must not be negative");
        Options = options;
        Metrics = new ServerMetrics(() => Models.Values, () => InFlight);
        Ready = Task.CompletedTask;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((doc, _, _) =>
        {
            doc.Info.Title = "SharpFormer";
            doc.Info.Description = "OpenAI- and text-embeddings-inference-compatible routes, plus fill-mask, next-sentence, entities, perplexity and attention.";
            return Task.CompletedTask;
        }).AddOperationTransformer(ApiShapes.Describe));
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBodySize);
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        _app = builder.Build();
        _app.Use(Gate);
        Docs = new ApiDocs(options);
        Routes.Map(_app, "GET", "/health", "Ready (200) once the models are loaded; 503 while they load or the server stops.", "service", Docs.Health, Health);
        Routes.Map(_app, "GET", "/metrics", "Prometheus text: requests by route and status, latency, queue depth, batch sizes, generated tokens and tokens/s.", "service",
                   Docs.Metrics, ctx => Metrics.WriteAsync(ctx));
        _app.MapOpenApi("/openapi.json");
        new OpenAiRoutes(this).Map(_app);
        new TeiRoutes(this).Map(_app);
        new TaskRoutes(this).Map(_app);
        new PlaygroundRoutes(this).Map(_app);
    }

    void Install(IReadOnlyList<ServedModel> models)
    {
        if (models.Count == 0) throw new SharpFormerException("no model to serve");
        var dup = models.GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new SharpFormerException($"two models are named '{dup.Key}'; serve folders with different names");
        _queues = models.ToDictionary(m => m.Name, _ => new AdmissionQueue(Options.MaxQueue + 1));
        foreach (var m in models) Metrics.Watch(m);
        _models = models.ToDictionary(m => m.Name);
    }

    /// <summary>Every request passes here: probes and the playground's page always answer; others get 503 while loading or stopping, and are counted and timed.</summary>
    async Task Gate(HttpContext ctx, Func<Task> next)
    {
        var route = (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
        bool probe = route is "/health" or "/metrics" or "/openapi.json" || PlaygroundRoutes.IsAsset(route);
        var clock = Stopwatch.StartNew();
        if (probe)
        {
            await next();
            Metrics.Request(route, ctx.Response.StatusCode, clock.Elapsed);
            return;
        }
        if (!IsReady)
        {
            var why = _draining ? "the server is shutting down" : Ready.IsFaulted ? $"the models failed to load: {Ready.Exception!.GetBaseException().Message}" : "the models are still loading";
            if (_draining) ctx.Response.Headers.Connection = "close";
            await Http.WriteErrorAsync(ctx, 503, why, "unhealthy");
            Metrics.Request(route, 503, clock.Elapsed);
            return;
        }
        Interlocked.Increment(ref _inFlight);
        try { await next(); }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            Metrics.Request(route, ctx.Response.StatusCode, clock.Elapsed);
        }
    }

    Task Health(HttpContext ctx) =>
        IsReady ? Http.WriteAsync(ctx, 200, new JsonObject { ["status"] = "ok", ["models"] = Models.Count })
        : Http.WriteAsync(ctx, 503, new JsonObject
        {
            ["status"] = _draining ? "stopping" : Ready.IsFaulted ? "failed" : "loading",
            ["error"] = Ready.IsFaulted ? Ready.Exception!.GetBaseException().Message : null,
        });

    /// <summary>Admits a request to <paramref name="model"/>'s queue (dispose the lease when done), or throws a 429.</summary>
    internal IDisposable Admit(ServedModel model) =>
        Queues[model.Name].TryAdmit() ?? throw new ApiException(429,
            $"model '{model.Name}' is overloaded: {Options.MaxQueue} requests are already waiting; retry later");

    /// <summary>Starts listening; a server built with a loader then loads its models in the background (see <see cref="Ready"/>).</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        if (_load is not null) Ready = Task.Run(() => Install(_load()), CancellationToken.None);
    }

    /// <summary>
    /// Serves (after <see cref="StartAsync"/>) until <paramref name="cancellationToken"/> is cancelled or the process is
    /// asked to stop (Ctrl-C, SIGTERM); then drains: new requests are answered 503 while those in flight finish (for
    /// at most <see cref="ServerOptions.DrainTimeout"/>), and the server stops.
    /// </summary>
    public async Task WaitForShutdownAsync(CancellationToken cancellationToken = default)
    {
        var lifetime = _app.Lifetime;
        using (cancellationToken.Register(lifetime.StopApplication))
        {
            var stopping = new TaskCompletionSource();
            using (lifetime.ApplicationStopping.Register(() => stopping.TrySetResult()))
                await stopping.Task.ConfigureAwait(false);
        }
        _draining = true;
        var clock = Stopwatch.StartNew();
        while (InFlight > 0 && clock.Elapsed < Options.DrainTimeout) await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8080 (after <see cref="StartAsync"/>).</summary>
    public string Address => _app.Urls.First();

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        Metrics.Unwatch();
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The model a request names, or the first model that <paramref name="suits"/> when it names none (<paramref name="what"/> names the kind in errors).</summary>
    internal ServedModel Resolve(string? name, Func<ServedModel, bool> suits, string what)
    {
        var models = Models;
        if (name is not null)
            return models.TryGetValue(name, out var m) ? m
                : throw new ApiException(404, $"The model '{name}' does not exist (served: {string.Join(", ", models.Keys)})", "model", "model_not_found");
        return models.Values.FirstOrDefault(suits) ?? throw new ApiException(400, $"no {what} model is served", "model");
    }
}

/// <summary>A request error with its HTTP status (and, for OpenAI's error object, the offending parameter and a code).</summary>
sealed class ApiException(int status, string message, string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
}

/// <summary>Maps a route with its OpenAPI summary, tag and <see cref="RouteDoc"/> (what it takes and answers).</summary>
static class Routes
{
    public static RouteHandlerBuilder Map(WebApplication app, string method, string pattern, string summary, string tag, RouteDoc doc, Func<HttpContext, Task> handler)
    {
        if (method == "POST" && doc.Body is null) throw new InvalidOperationException($"POST {pattern} has no documented body");
        return app.MapMethods(pattern, [method], handler).WithSummary(summary).WithTags(tag).WithMetadata(doc);
    }
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

    /// <summary>True for the OpenAI-compatible routes, whose errors are OpenAI's error object (the rest use TEI's shape).</summary>
    public static bool IsOpenAi(HttpContext ctx) => IsOpenAiPath(ctx.Request.Path);

    /// <summary>True for a path of the OpenAI-compatible routes (<c>/v1</c> and below).</summary>
    public static bool IsOpenAiPath(PathString path) => path.StartsWithSegments("/v1");

    /// <summary>An error in the route family's shape: OpenAI's <c>{"error": {message, type, param, code}}</c> under /v1, else TEI's <c>{"error", "error_type"}</c>.</summary>
    public static Task WriteErrorAsync(HttpContext ctx, int status, string message, string teiType, string? param = null, string? code = null)
    {
        if (status == 429) ctx.Response.Headers.RetryAfter = "1";
        if (!IsOpenAi(ctx)) return WriteAsync(ctx, status, new JsonObject { ["error"] = message, ["error_type"] = teiType });
        string type = status switch { 429 => "requests", >= 500 => "server_error", _ => "invalid_request_error" };
        code ??= status switch { 429 => "rate_limit_exceeded", 503 => "service_unavailable", _ => null };
        return WriteAsync(ctx, status, new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code },
        });
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
