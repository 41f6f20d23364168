// Load generator for `sharpformer serve` (loopback only) and the offline figures its targets compare with.
// One mode per run; each appends one JSON line per measurement to --out and prints it. See ../README.md.
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Models;
using SharpFormer.Tasks;
using AutoTokenizer = SharpFormer.Tokenizers.AutoTokenizer;

var opts = Args.Parse(args);
var texts = File.ReadAllLines(opts.Texts).Select(l => l.Split('\t')[0].Trim()).Where(l => l.Length > 0).ToArray();
if (texts.Length == 0) { Console.Error.WriteLine($"error: {opts.Texts} has no text"); return 1; }

switch (opts.Mode)
{
    case "embed":
        foreach (var c in opts.Clients) Emit(opts, await Load.Run(opts, c, (http, i, ct) => Load.Embed(http, opts, texts[i % texts.Length], ct)));
        break;
    case "stream":
        foreach (var c in opts.Clients) Emit(opts, await Load.Run(opts, c, (http, i, ct) => Load.Stream(http, opts, texts[i % texts.Length], ct)));
        break;
    case "fault":
        Emit(opts, await Load.Faults(opts, texts));
        break;
    case "offline-embed":
        Emit(opts, Offline.Embed(opts, texts));
        break;
    case "offline-decode":
        Emit(opts, Offline.Decode(opts, texts));
        break;
    case "served-embed":
        Emit(opts, Offline.ServedEmbed(opts, texts));
        break;
    default:
        Console.Error.WriteLine($"error: unknown --mode {opts.Mode} (embed, stream, fault, offline-embed, offline-decode, served-embed)");
        return 64;
}
return 0;

static void Emit(Args o, JsonObject result)
{
    result["mode"] = o.Mode;
    result["model"] = o.Model;
    var line = result.ToJsonString();
    Console.WriteLine(line);
    if (o.Out is not null) File.AppendAllText(o.Out, line + "\n");
}

/// <summary>Command-line options.</summary>
sealed record Args(string Mode, string Url, string Model, string? ModelDir, int[] Clients, int Requests, double MaxSeconds, int MaxTokens,
                   string Texts, string Endpoint, string? Out, int Repeats, double WarmupSeconds)
{
    public static Args Parse(string[] a)
    {
        var d = new Dictionary<string, string>();
        for (int i = 0; i < a.Length; i += 2)
        {
            if (!a[i].StartsWith("--") || i + 1 >= a.Length) { Console.Error.WriteLine($"error: expected --option value pairs, got '{a[i]}'"); Environment.Exit(64); }
            d[a[i][2..]] = a[i + 1];
        }
        string Get(string k, string? def = null) => d.Remove(k, out var v) ? v : def ?? Fail($"--{k} is required");
        // A number that is not one (or is negative) is a one-line error, like a missing option.
        T Num<T>(string k, string value) where T : System.Numerics.INumber<T> =>
            T.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= T.Zero ? n
            : throw new ArgumentException(Fail($"--{k} must be a non-negative number (got '{value}')"));
        var r = new Args(Get("mode"), Get("url", "http://127.0.0.1:8080"), Get("model"), d.GetValueOrDefault("model-dir"),
            Get("clients", "1").Split(',').Select(c => Num<int>("clients", c)).ToArray(), Num<int>("requests", Get("requests", "200")),
            Num<double>("max-seconds", Get("max-seconds", "60")), Num<int>("max-tokens", Get("max-tokens", "32")), Get("texts"),
            Get("endpoint", "completions"), d.GetValueOrDefault("out"), Num<int>("repeats", Get("repeats", "3")),
            Num<double>("warmup-seconds", Get("warmup-seconds", "10")));
        d.Remove("model-dir"); d.Remove("out");
        if (d.Count > 0) Fail($"unknown option --{d.Keys.First()}");
        return r;
    }

    static string Fail(string m) { Console.Error.WriteLine("error: " + m); Environment.Exit(64); return ""; }
}

/// <summary>What one request did.</summary>
readonly record struct Outcome(bool Ok, double Seconds, int Units, string? Error, double FirstSeconds = 0);

static class Load
{
    static readonly HttpClient Http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 1024, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
    { Timeout = TimeSpan.FromMinutes(10) };

    /// <summary>N clients issue requests back to back until --requests are done or --max-seconds pass.</summary>
    public static async Task<JsonObject> Run(Args o, int clients, Func<HttpClient, int, CancellationToken, Task<Outcome>> request)
    {
        // Untimed warm-up, as the offline figures have: at least one request per client slot (up to 8) and --warmup-seconds of
        // requests, so that the server's code and this client's are JIT-optimised (first calls run unoptimised tier-0 code).
        var warm = Stopwatch.StartNew();
        do await Task.WhenAll(Enumerable.Range(0, Math.Min(clients, 8)).Select(i => request(Http, i, CancellationToken.None)));
        while (warm.Elapsed.TotalSeconds < o.WarmupSeconds);
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<Outcome>();
        int next = -1;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(o.MaxSeconds));
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            int i;
            while (!stop.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < o.Requests)
                outcomes.Add(await request(Http, i, CancellationToken.None));
        }));
        double wall = sw.Elapsed.TotalSeconds;
        var all = outcomes.ToArray();
        var ok = all.Where(x => x.Ok).Select(x => x.Seconds).Order().ToArray();
        return new JsonObject
        {
            ["clients"] = clients, ["requests"] = all.Length, ["errors"] = all.Count(x => !x.Ok),
            ["error_samples"] = new JsonArray(all.Where(x => !x.Ok).Select(x => (JsonNode)x.Error!).Distinct().Take(3).ToArray()),
            ["seconds"] = wall, ["units"] = all.Where(x => x.Ok).Sum(x => x.Units),
            ["units_per_s"] = all.Where(x => x.Ok).Sum(x => x.Units) / wall,
            ["p50_ms"] = Pct(ok, 50), ["p95_ms"] = Pct(ok, 95), ["p99_ms"] = Pct(ok, 99),
            ["ttft_p50_ms"] = Pct(all.Where(x => x.Ok && x.FirstSeconds > 0).Select(x => x.FirstSeconds).Order().ToArray(), 50),
        };
    }

    // null when nothing succeeded: the line still records the errors (JSON has no NaN).
    internal static double? Pct(double[] sorted, double p) =>
        sorted.Length == 0 ? null : 1000 * sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];

    /// <summary>POST /v1/embeddings with one text: ok when 200 with one non-empty vector.</summary>
    public static async Task<Outcome> Embed(HttpClient http, Args o, string text, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            using var res = await http.PostAsync(o.Url + "/v1/embeddings", Json(new JsonObject { ["model"] = o.Model, ["input"] = text }), ct);
            var body = await res.Content.ReadAsStringAsync(ct);
            if (res.StatusCode != HttpStatusCode.OK) return new(false, sw.Elapsed.TotalSeconds, 0, $"{(int)res.StatusCode}: {body[..Math.Min(120, body.Length)]}");
            var n = JsonNode.Parse(body)!["data"]![0]!["embedding"]!.AsArray().Count;
            return n > 0 ? new(true, sw.Elapsed.TotalSeconds, 1, null) : new(false, sw.Elapsed.TotalSeconds, 0, "empty vector");
        }
        catch (Exception e) { return new(false, sw.Elapsed.TotalSeconds, 0, e.GetType().Name + ": " + e.Message); }
    }

    static StringContent Json(JsonObject o) => new(o.ToJsonString(), Encoding.UTF8, "application/json");

    static JsonObject StreamBody(Args o, string text) => o.Endpoint == "chat"
        ? new JsonObject { ["model"] = o.Model, ["stream"] = true, ["max_tokens"] = o.MaxTokens, ["temperature"] = 0,
                           ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) }
        : new JsonObject { ["model"] = o.Model, ["stream"] = true, ["max_tokens"] = o.MaxTokens, ["temperature"] = 0, ["prompt"] = text };

    /// <summary>
    /// A streamed completion read to the end: ok when every chunk parses, one carries a finish_reason and the stream ends
    /// with <c>data: [DONE]</c> (else it was truncated). Units: the completion tokens the server reports in its usage (the
    /// content chunks when it reports none).
    /// </summary>
    public static async Task<Outcome> Stream(HttpClient http, Args o, string text, CancellationToken ct, int readDelayMs = 0, int abortAfterChunks = -1)
    {
        var sw = Stopwatch.StartNew();
        double first = 0;
        try
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, o.Url + (o.Endpoint == "chat" ? "/v1/chat/completions" : "/v1/completions")) { Content = Json(StreamBody(o, text)) };
            using var res = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct);
            if (res.StatusCode != HttpStatusCode.OK)
                return new(false, sw.Elapsed.TotalSeconds, 0, $"{(int)res.StatusCode}: {await res.Content.ReadAsStringAsync(ct)}");
            using var reader = new StreamReader(await res.Content.ReadAsStreamAsync(ct));
            int chunks = 0, usage = -1;
            bool done = false, finished = false;
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                if (!line.StartsWith("data: ")) continue;
                var data = line[6..];
                if (data == "[DONE]") { done = true; break; }
                var node = JsonNode.Parse(data)!;
                if (node["usage"] is JsonObject u && u["completion_tokens"] is JsonNode ctk) usage = ctk.GetValue<int>();
                if (node["choices"] is JsonArray { Count: > 0 } choices)
                {
                    if (choices[0]!["finish_reason"] is JsonValue) finished = true;
                    var piece = (string?)(choices[0]!["text"] ?? choices[0]!["delta"]?["content"]);
                    if (!string.IsNullOrEmpty(piece)) { chunks++; if (first == 0) first = sw.Elapsed.TotalSeconds; }
                }
                if (abortAfterChunks >= 0 && chunks >= abortAfterChunks) return new(true, sw.Elapsed.TotalSeconds, chunks, null);
                if (readDelayMs > 0) await Task.Delay(readDelayMs, ct);
            }
            return done && finished ? new(true, sw.Elapsed.TotalSeconds, usage >= 0 ? usage : chunks, null, first)
                                    : new(false, sw.Elapsed.TotalSeconds, 0, done ? "no finish_reason" : "truncated: no [DONE]");
        }
        catch (Exception e) { return new(false, sw.Elapsed.TotalSeconds, 0, e.GetType().Name + ": " + e.Message); }
    }

    // The misbehaving clients of Faults, by kind.
    static readonly string[] FaultNames = ["disconnecting client", "malformed JSON", "8 MB body", "slow reader"];

    /// <summary>
    /// Eight ordinary streaming clients run while others misbehave: disconnect after 3 chunks, send malformed JSON or a
    /// body over the size limit, or read slowly. The ordinary clients must see no error and no truncated response.
    /// </summary>
    public static async Task<JsonObject> Faults(Args o, string[] texts)
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(o.MaxSeconds));
        var normal = new System.Collections.Concurrent.ConcurrentBag<Outcome>();
        var statuses = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        void Count(string k) => statuses.AddOrUpdate(k, 1, (_, v) => v + 1);
        int next = -1;
        async Task Normal()
        {
            int i;
            while (!stop.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < o.Requests)
                normal.Add(await Stream(Http, o, texts[i % texts.Length], CancellationToken.None));
        }
        async Task Misbehave(int kind)
        {
            var path = o.Endpoint == "chat" ? "/v1/chat/completions" : "/v1/completions";
            while (!stop.IsCancellationRequested && Volatile.Read(ref next) < o.Requests)
            {
                try
                {
                    switch (kind)
                    {
                        case 0:
                            using (var cts = new CancellationTokenSource())
                            {
                                var r = await Stream(Http, o, texts[0], cts.Token, abortAfterChunks: 3);
                                Count(r.Ok ? "disconnected mid-stream" : "disconnect client error: " + r.Error);
                            }
                            break;
                        case 1:
                            using (var res = await Http.PostAsync(o.Url + path, new StringContent("{\"model\": \"" + o.Model + "\", \"prompt\": ", Encoding.UTF8, "application/json")))
                                Count($"malformed JSON -> {(int)res.StatusCode}");
                            break;
                        case 2:
                            using (var res = await Http.PostAsync(o.Url + path, new StringContent("{\"prompt\": \"" + new string('x', 8 << 20) + "\"}", Encoding.UTF8, "application/json")))
                                Count($"8 MB body -> {(int)res.StatusCode}");
                            break;
                        default:
                            var s = await Stream(Http, o, texts[1 % texts.Length], CancellationToken.None, readDelayMs: 100);
                            Count(s.Ok ? "slow reader completed" : "slow reader failed: " + s.Error);
                            break;
                    }
                }
                // The 8 MB body's usual end: the server answers 413 and closes the connection while the client is still sending.
                catch (HttpRequestException e) { Count($"{FaultNames[kind]}: connection ended ({e.Message})"); }
                await Task.Delay(50);
            }
        }
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Normal()).Concat(Enumerable.Range(0, 4).Select(Misbehave)));
        var all = normal.ToArray();
        return new JsonObject
        {
            ["clients"] = 8, ["requests"] = all.Length, ["errors"] = all.Count(x => !x.Ok), ["seconds"] = sw.Elapsed.TotalSeconds,
            ["error_samples"] = new JsonArray(all.Where(x => !x.Ok).Select(x => (JsonNode)x.Error!).Distinct().Take(3).ToArray()),
            ["faults"] = new JsonObject(statuses.OrderBy(p => p.Key).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        };
    }
}

/// <summary>The same work without the server: what the load figures are compared with.</summary>
static class Offline
{
    static string Dir(Args o) => o.ModelDir ?? throw new InvalidOperationException("--model-dir is required offline");

    /// <summary>
    /// Every text embedded in one call (batched as the library batches), and the texts a one-client load sends, each alone
    /// in turn (the warm single-request latencies whose p50/p99 the server's one-client figures are compared with).
    /// </summary>
    public static JsonObject Embed(Args o, string[] texts)
    {
        var embedder = SentenceEmbedder.Load(Dir(o));
        var items = Enumerable.Range(0, o.Requests).Select(i => texts[i % texts.Length]).ToArray();
        var batch = Median(o.Repeats, o.WarmupSeconds, () => embedder.Embed(items));
        var one = Singles(Math.Min(o.Requests, 200), o.WarmupSeconds, i => embedder.Embed(items[i]));
        return new JsonObject { ["texts"] = items.Length, ["batched_texts_per_s"] = items.Length / batch, ["single_p50_ms"] = one.P50, ["single_p99_ms"] = one.P99 };
    }

    /// <summary>
    /// The one-client embedding load without HTTP: the texts one after another through a <see cref="SharpFormer.Extensions.AI.ServedModel"/>
    /// as the server loads it (its request batcher, loop thread and kernel context), so that the server's latency can be
    /// split into what its scheduling adds and what HTTP adds.
    /// </summary>
    public static JsonObject ServedEmbed(Args o, string[] texts)
    {
        using var served = SharpFormer.Extensions.AI.ServedModel.Load(Dir(o));
        var one = Singles(Math.Min(o.Requests, 200), o.WarmupSeconds, i => served.EmbedAsync([texts[i % texts.Length]]).GetAwaiter().GetResult());
        return new JsonObject { ["single_p50_ms"] = one.P50, ["single_p99_ms"] = one.P99 };
    }

    /// <summary>Batch-8 greedy decoding of --max-tokens tokens (EOS ignored), and prompts alone in the order a one-client load sends them.</summary>
    public static JsonObject Decode(Args o, string[] texts)
    {
        var model = AutoModel.LoadCausalLM(Dir(o));
        var tok = AutoTokenizer.FromFolder(Dir(o));
        var prompts = texts.Select(t => tok.EncodeForCausalLm(t)).ToArray();
        var g = new GenerationOptions { MaxNewTokens = o.MaxTokens, DoSample = false, EosTokenIds = [] };
        var batch = Median(o.Repeats, o.WarmupSeconds, () => Generation.Generate(model, prompts[..8], g));
        var one = Singles(Math.Min(o.Requests / 4, 25), o.WarmupSeconds, i => Generation.Generate(model, [prompts[i % prompts.Length]], g));
        return new JsonObject
        {
            ["batch"] = 8, ["max_tokens"] = o.MaxTokens,
            ["batch_tokens_per_s"] = 8 * o.MaxTokens / batch, ["single_p50_ms"] = one.P50, ["single_p99_ms"] = one.P99,
        };
    }

    /// <summary>p50 and p99 in ms of <paramref name="n"/> calls <paramref name="run"/>(0 … n-1), after <paramref name="warmup"/> seconds of untimed calls.</summary>
    static (double P50, double P99) Singles(int n, double warmup, Action<int> run)
    {
        Median(1, warmup, () => run(0));
        var t = new double[n];
        for (int i = 0; i < n; i++) { var sw = Stopwatch.StartNew(); run(i); t[i] = sw.Elapsed.TotalSeconds; }
        Array.Sort(t);
        return (Load.Pct(t, 50)!.Value, Load.Pct(t, 99)!.Value);
    }

    /// <summary>
    /// The median of <paramref name="n"/> timed runs after untimed ones for at least <paramref name="warmup"/> seconds: the server's figures are
    /// of a process that has served many requests, and .NET runs a method's first calls as unoptimised tier-0 code
    /// until it is recompiled in the background (about 0.1 s after the last new method, ≥ 30 calls).
    /// </summary>
    static double Median(int n, double warmup, Action run)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 1 || warm.Elapsed.TotalSeconds < warmup; i++) run();
        var t = new double[n];
        for (int i = 0; i < n; i++) { var sw = Stopwatch.StartNew(); run(); t[i] = sw.Elapsed.TotalSeconds; }
        Array.Sort(t);
        return t[n / 2];
    }
}
