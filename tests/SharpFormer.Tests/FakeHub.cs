using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace SharpFormer.Tests;

/// <summary>
/// An in-process HuggingFace Hub on loopback speaking the protocol huggingface_hub relies on: the model info API
/// (<c>/api/models/ORG/NAME/revision/REV</c>: sha + siblings), <c>resolve/REV/FILE</c> answering small files itself
/// (ETag = git blob SHA-1) and redirecting LFS files (<c>*.safetensors</c>, <c>*.bin</c>) to an absolute CDN-like path
/// with <c>X-Linked-Etag</c> (SHA-256) and <c>X-Linked-Size</c>, <c>X-Repo-Commit</c> everywhere, <c>Range</c> on the CDN,
/// 401 + <c>X-Error-Code: GatedRepo</c> for gated repos without the token, 404 + <c>RepoNotFound</c>/<c>RevisionNotFound</c>.
/// Faults on demand: a connection dropped half-way through a file's first CDN download, a file served with one byte flipped.
/// </summary>
public sealed class FakeHub : IDisposable
{
    /// <summary>The token a gated repo accepts.</summary>
    public const string GoodToken = "hf_good";

    readonly HttpListener listener = new();
    readonly Dictionary<string, Dictionary<string, (string Commit, Dictionary<string, byte[]> Files)>> repos = [];
    readonly ConcurrentDictionary<string, byte[]> cdn = new();
    readonly ConcurrentDictionary<string, bool> dropOnce = new();
    readonly ConcurrentDictionary<string, bool> expireOnce = new();

    /// <summary>Repos that answer 401 GatedRepo without <see cref="GoodToken"/>.</summary>
    public HashSet<string> Gated { get; } = [];
    /// <summary>Files served with their middle byte flipped (under their true checksum).</summary>
    public HashSet<string> Corrupt { get; } = [];
    /// <summary>Milliseconds the CDN waits before answering (to make parallel downloads overlap).</summary>
    public int CdnDelayMs { get; set; }
    /// <summary>Every request: method, path, Range header, Authorization header.</summary>
    public ConcurrentQueue<(string Method, string Path, string? Range, string? Auth)> Log { get; } = new();

    /// <summary>http://127.0.0.1:PORT</summary>
    public string Endpoint { get; }
    /// <summary>The CDN: another host (127.0.0.2, same port), as the Hub's CDN is, so tokens must not reach it.</summary>
    public string Cdn { get; }

    public FakeHub()
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

    /// <summary>Publishes <paramref name="files"/> as <paramref name="repoId"/> at <paramref name="revision"/>; returns the commit sha.</summary>
    public string Add(string repoId, string revision, Dictionary<string, byte[]> files)
    {
        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repoId + "@" + revision)));
        if (!repos.TryGetValue(repoId, out var revisions)) repos[repoId] = revisions = [];
        revisions[revision] = (commit, files);
        revisions[commit] = (commit, files);
        return commit;
    }

    /// <summary>The first CDN download of <paramref name="file"/> stops half-way (connection aborted).</summary>
    public void DropOnce(string file) => dropOnce[file] = true;

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
        var req = ctx.Request;
        var res = ctx.Response;
        var path = Uri.UnescapeDataString(req.Url!.AbsolutePath);
        Log.Enqueue((req.HttpMethod, path, req.Headers["Range"], req.Headers["Authorization"]));
        try
        {
            if (path.StartsWith("/cdn/")) { await ServeCdn(ctx, path[5..]); return; }
            var api = path.StartsWith("/api/models/");
            var parts = (api ? path["/api/models/".Length..] : path[1..]).Split('/');
            var repoId = parts[0] + "/" + parts[1];
            if (!repos.TryGetValue(repoId, out var revisions)) { Fail(res, 404, "RepoNotFound"); return; }
            if (Gated.Contains(repoId) && req.Headers["Authorization"] != "Bearer " + GoodToken) { Fail(res, 401, "GatedRepo"); return; }
            if (api)
            {
                var rev = parts[3];
                if (!revisions.TryGetValue(rev, out var r)) { Fail(res, 404, "RevisionNotFound"); return; }
                var body = JsonSerializer.SerializeToUtf8Bytes(new { id = repoId, sha = r.Commit, siblings = r.Files.Keys.Select(f => new { rfilename = f }) });
                res.ContentType = "application/json";
                await res.OutputStream.WriteAsync(body);
                res.Close();
                return;
            }
            // /ORG/NAME/resolve/REV/FILE...
            if (!revisions.TryGetValue(parts[3], out var rr)) { Fail(res, 404, "RevisionNotFound"); return; }
            var file = string.Join('/', parts[4..]);
            if (!rr.Files.TryGetValue(file, out var bytes)) { Fail(res, 404, "EntryNotFound"); return; }
            res.Headers["X-Repo-Commit"] = rr.Commit;
            if (IsLfs(file))
            {
                var sha = Sha256(bytes);
                var served = Corrupt.Contains(file) ? Flip(bytes) : bytes;
                cdn[sha] = served;
                res.StatusCode = 302;
                res.RedirectLocation = $"{Cdn}/cdn/{sha}?file={Uri.EscapeDataString(file)}";
                res.Headers["X-Linked-Etag"] = $"\"{sha}\"";
                res.Headers["X-Linked-Size"] = bytes.Length.ToString();
                res.Headers["ETag"] = "\"" + GitSha1(Encoding.UTF8.GetBytes("pointer " + sha)) + "\"";
                res.Close();
                return;
            }
            res.Headers["ETag"] = $"\"{GitSha1(bytes)}\"";
            res.ContentLength64 = bytes.Length;
            if (req.HttpMethod != "HEAD") await res.OutputStream.WriteAsync(bytes);
            res.Close();
        }
        catch (Exception) { res.Abort(); }
    }

    async Task ServeCdn(HttpListenerContext ctx, string sha)
    {
        var res = ctx.Response;
        if (CdnDelayMs > 0) await Task.Delay(CdnDelayMs);
        if (!cdn.TryGetValue(sha, out var bytes)) { Fail(res, 404, "EntryNotFound"); return; }
        var file = ctx.Request.QueryString["file"] ?? "";
        if (expireOnce.TryRemove(file, out _)) { Fail(res, 403, "SignatureExpired"); return; }
        long from = 0;
        if (ctx.Request.Headers["Range"] is { } range && range.StartsWith("bytes=") && range.EndsWith('-'))
        {
            from = long.Parse(range[6..^1]);
            res.StatusCode = 206;
            res.Headers["Content-Range"] = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        res.ContentLength64 = bytes.Length - from;
        if (ctx.Request.HttpMethod == "HEAD") { res.Close(); return; }
        if (dropOnce.TryRemove(file, out _))
        {
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

    static void Fail(HttpListenerResponse res, int status, string code)
    {
        res.StatusCode = status;
        res.Headers["X-Error-Code"] = code;
        res.Close();
    }

    public void Dispose() => listener.Close();
}
