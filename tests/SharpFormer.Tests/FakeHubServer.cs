using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace SharpFormer.Tests;

/// <summary>
/// What the in-process fake hubs (<see cref="FakeHub"/>, <see cref="FakeModelScope"/>) share: a loopback listener on
/// 127.0.0.1 with a CDN on 127.0.0.2 (same port: another host, so credentials must not reach it) serving bytes with
/// <c>Range</c>, a request log, gated repos, and faults on demand: connections dropped half-way through a file, a file
/// served with one byte flipped, a CDN location refused once as expired, a slow CDN.
/// </summary>
public abstract class FakeHubServer : IDisposable
{
    readonly HttpListener listener = new();
    readonly ConcurrentDictionary<string, byte[]> cdn = new();
    readonly ConcurrentDictionary<string, int> drops = new();
    readonly ConcurrentDictionary<string, bool> expireOnce = new();

    /// <summary>Repos that refuse requests without the good token.</summary>
    public HashSet<string> Gated { get; } = [];
    /// <summary>Files served with their middle byte flipped (under their true checksum).</summary>
    public HashSet<string> Corrupt { get; } = [];
    /// <summary>Milliseconds the CDN waits before answering (to make parallel downloads overlap).</summary>
    public int CdnDelayMs { get; set; }
    /// <summary>Every request: method, path, Range header, credentials (Authorization, else Cookie).</summary>
    public ConcurrentQueue<(string Method, string Path, string? Range, string? Auth)> Log { get; } = new();

    /// <summary>http://127.0.0.1:PORT</summary>
    public string Endpoint { get; }
    /// <summary>The CDN: http://127.0.0.2:PORT.</summary>
    public string Cdn { get; }

    protected FakeHubServer()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Endpoint = $"http://127.0.0.1:{port}";
        Cdn = $"http://127.0.0.2:{port}";
        listener.Prefixes.Add(Endpoint + "/");
        listener.Prefixes.Add(Cdn + "/");
        listener.Start();
        _ = Task.Run(Serve);
    }

    /// <summary>The first download of <paramref name="file"/> stops half-way (connection aborted).</summary>
    public void DropOnce(string file) => drops[file] = 1;

    /// <summary>Every download of <paramref name="file"/> stops half-way.</summary>
    public void DropAlways(string file) => drops[file] = int.MaxValue;

    /// <summary>The first CDN download of <paramref name="file"/> answers 403, as an expired signed URL does.</summary>
    public void ExpireOnce(string file) => expireOnce[file] = true;

    /// <summary>The files of a fixture folder, plus TF/Flax/ONNX copies a default download must skip.</summary>
    public static Dictionary<string, byte[]> FixtureFiles(string fixture)
    {
        var files = Directory.GetFiles(SharedPaths.Fixture(fixture)).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        files["tf_model.h5"] = [1, 2, 3];
        files["flax_model.msgpack"] = [4, 5, 6];
        files["onnx/model.onnx"] = [7, 8, 9];
        return files;
    }

    /// <summary>Files stored with git LFS on the hubs (and served from the CDN).</summary>
    public static bool IsLfs(string file) => file.EndsWith(".safetensors") || file.EndsWith(".bin") || file.EndsWith(".onnx");
    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
    public static string GitSha1(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    async Task Serve()
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    async Task Handle(HttpListenerContext ctx)
    {
        var path = Uri.UnescapeDataString(ctx.Request.Url!.AbsolutePath);
        Log.Enqueue((ctx.Request.HttpMethod, path, ctx.Request.Headers["Range"], ctx.Request.Headers["Authorization"] ?? ctx.Request.Headers["Cookie"]));
        try
        {
            if (path.StartsWith("/cdn/")) await ServeCdn(ctx, path[5..]);
            else await HandleAsync(ctx, path);
        }
        catch (Exception) { ctx.Response.Abort(); }
    }

    /// <summary>Answers a request to the hub itself (anything but <c>/cdn/</c>).</summary>
    protected abstract Task HandleAsync(HttpListenerContext ctx, string path);

    /// <summary>Puts <paramref name="bytes"/> on the CDN (flipped if <paramref name="file"/> is in <see cref="Corrupt"/>) and returns their URL there.</summary>
    protected string OnCdn(string file, byte[] bytes)
    {
        var sha = Sha256(bytes);
        cdn[sha] = Corrupt.Contains(file) ? Flip(bytes) : bytes;
        return $"{Cdn}/cdn/{sha}?file={Uri.EscapeDataString(file)}";
    }

    async Task ServeCdn(HttpListenerContext ctx, string sha)
    {
        if (CdnDelayMs > 0) await Task.Delay(CdnDelayMs);
        if (!cdn.TryGetValue(sha, out var bytes)) { Fail(ctx.Response, 404, "EntryNotFound"); return; }
        var file = ctx.Request.QueryString["file"] ?? "";
        if (expireOnce.TryRemove(file, out _)) { Fail(ctx.Response, 403, "SignatureExpired"); return; }
        await ServeBytes(ctx, file, bytes);
    }

    /// <summary>Serves <paramref name="bytes"/> from a <c>Range: bytes=N-</c> or <c>bytes=N-M</c> on (206), dropping the connection half-way when asked.</summary>
    protected async Task ServeBytes(HttpListenerContext ctx, string file, byte[] bytes)
    {
        var res = ctx.Response;
        long from = 0;
        if (ctx.Request.Headers["Range"] is { } range && range.StartsWith("bytes="))
        {
            from = long.Parse(range[6..].Split('-')[0]);
            res.StatusCode = 206;
            res.Headers["Content-Range"] = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        res.ContentLength64 = bytes.Length - from;
        if (ctx.Request.HttpMethod == "HEAD") { res.Close(); return; }
        if (drops.TryGetValue(file, out var left) && left > 0)
        {
            drops[file] = left - 1;
            await res.OutputStream.WriteAsync(bytes.AsMemory((int)from, (bytes.Length - (int)from) / 2));
            await res.OutputStream.FlushAsync();
            await Task.Delay(100);
            res.Abort();
            return;
        }
        await res.OutputStream.WriteAsync(bytes.AsMemory((int)from));
        res.Close();
    }

    static byte[] Flip(byte[] bytes)
    {
        var copy = (byte[])bytes.Clone();
        copy[copy.Length / 2] ^= 0xFF;
        return copy;
    }

    /// <summary>An error answer with huggingface_hub's <c>X-Error-Code</c>.</summary>
    protected static void Fail(HttpListenerResponse res, int status, string code)
    {
        res.StatusCode = status;
        res.Headers["X-Error-Code"] = code;
        res.Close();
    }

    /// <summary>A JSON answer.</summary>
    protected static async Task Json(HttpListenerResponse res, object body, int status = 200)
    {
        res.StatusCode = status;
        res.ContentType = "application/json";
        await res.OutputStream.WriteAsync(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(body));
        res.Close();
    }

    public void Dispose() => listener.Close();
}
