using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpFormer.Hub;

/// <summary>A file of a download advancing: <paramref name="Done"/> of <paramref name="Total"/> bytes (null when unknown).</summary>
public readonly record struct HubProgress(string File, long Done, long? Total);

/// <summary>A revision of a repository as the model info API gives it: its commit and its files.</summary>
public sealed record HubRepoInfo(string Commit, IReadOnlyList<string> Files);

/// <summary>
/// A client of the HuggingFace Hub's download protocol (the one huggingface_hub speaks) writing huggingface_hub's cache
/// (<see cref="HubCache"/>): the model info API gives a revision's commit and file list; each file is located with a HEAD
/// of <c>resolve/&lt;commit&gt;/&lt;file&gt;</c> (only relative redirects followed: the metadata sits on the redirect to the
/// CDN) whose <c>X-Linked-Etag</c>/<c>ETag</c> names the blob and is checked against its content (SHA-256 for LFS files,
/// git's blob SHA-1 for small ones); blobs are written as <c>.incomplete</c> files continued with <c>Range</c> after a
/// dropped connection, under a per-blob lock, and linked into the snapshot only once verified.
/// </summary>
public sealed partial class HubClient : IDisposable
{
    const int Attempts = 3;
    readonly HubOptions options;
    readonly HttpClient follow;
    readonly HttpClient noFollow;

    /// <summary>A client with <paramref name="options"/> (see <see cref="HubOptions.FromEnvironment"/>).</summary>
    public HubClient(HubOptions options)
    {
        this.options = options;
        Cache = new HubCache(options.CacheDir);
        follow = NewHttp(allowRedirect: true);
        noFollow = NewHttp(allowRedirect: false);
    }

    /// <summary>The cache this client reads and writes.</summary>
    public HubCache Cache { get; }

    static HttpClient NewHttp(bool allowRedirect)
    {
        var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = allowRedirect, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("sharpformer/1.0");
        return http;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        follow.Dispose();
        noFollow.Dispose();
    }

    /// <summary>
    /// The local folder of <paramref name="repoId"/> at <paramref name="revision"/>: the cached snapshot when there is one
    /// (no request made), else downloaded (<see cref="DownloadAsync"/>) unless offline.
    /// </summary>
    public async Task<string> ResolveAsync(string repoId, string revision = "main", IProgress<HubProgress>? progress = null, CancellationToken ct = default)
        => Cache.FindSnapshot(repoId, revision) ?? await DownloadAsync(repoId, revision, [], progress, ct);

    /// <summary>
    /// Downloads the files of <paramref name="repoId"/> at <paramref name="revision"/> that <see cref="HubFileSelection"/>
    /// picks (plus <paramref name="include"/> globs) into the cache, records <c>refs/&lt;revision&gt;</c>, and returns the
    /// snapshot folder. Offline, returns the cached snapshot or fails naming the cache.
    /// </summary>
    public async Task<string> DownloadAsync(string repoId, string revision = "main", IReadOnlyList<string>? include = null,
        IProgress<HubProgress>? progress = null, CancellationToken ct = default)
    {
        if (!HubCache.IsRepoId(repoId)) throw new SharpFormerException($"'{repoId}' is not a model id of the form ORG/NAME");
        if (options.Offline)
            return Cache.FindSnapshot(repoId, revision)
                   ?? throw new SharpFormerException($"{repoId} (revision {revision}) is not in the cache {Cache.Root} and HF_HUB_OFFLINE is set, so it cannot be downloaded");
        HubRepoInfo info;
        try { info = await GetInfoAsync(repoId, revision, ct); }
        catch (HubUnreachableException e) when (Cache.FindSnapshot(repoId, revision) is { } cached)
        {
            Console.Error.WriteLine($"warning: cannot reach {options.Endpoint} ({e.Message}); using the cached {cached}");
            return cached;
        }
        var files = HubFileSelection.Select(info.Files, include ?? []);
        await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = ct },
            async (file, c) => await DownloadFileAsync(repoId, info.Commit, file, progress, c));
        Cache.WriteRef(repoId, revision, info.Commit);
        return Cache.SnapshotFolder(repoId, info.Commit);
    }

    /// <summary>The commit and file list of a revision, from <c>GET /api/models/ORG/NAME/revision/REV</c>.</summary>
    public async Task<HubRepoInfo> GetInfoAsync(string repoId, string revision, CancellationToken ct = default)
    {
        var url = new Uri($"{options.Endpoint}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");
        using var response = await SendAsync(follow, HttpMethod.Get, url, ct, HttpCompletionOption.ResponseContentRead);
        ThrowIfFailed(response, repoId, revision, null);
        var body = await response.Content.ReadAsStringAsync(ct);
        string? commit = null;
        List<string>? files = null;
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            commit = root.TryGetProperty("sha", out var sha) ? sha.GetString() : null;
            files = root.TryGetProperty("siblings", out var siblings) ? siblings.EnumerateArray().Select(s => s.GetProperty("rfilename").GetString()!).ToList() : null;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { }
        if (commit is null || !HubCache.IsCommit(commit) || files is null)
            throw new SharpFormerException($"{options.Endpoint} answered the model info of {repoId} without a commit sha and file list (is it a HuggingFace Hub or mirror?)");
        foreach (var f in files)
            if (f.Split('/').Any(part => part is "" or "." or ".."))
                throw new SharpFormerException($"{options.Endpoint} listed an unsafe file name '{f}' in {repoId}");
        return new HubRepoInfo(commit, files);
    }

    async Task<string> DownloadFileAsync(string repoId, string commit, string file, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        var pointer = Path.Combine(Cache.SnapshotFolder(repoId, commit), file);
        if (File.Exists(pointer)) return pointer;
        var (etag, location, size) = await GetMetadataAsync(repoId, commit, file, ct);
        var blob = Cache.BlobPath(repoId, etag);
        if (!File.Exists(blob))
        {
            using (await Cache.LockBlobAsync(repoId, etag, ct))
                if (!File.Exists(blob)) await FetchBlobAsync(repoId, commit, file, etag, location, size, blob, progress, ct);
        }
        return Cache.Link(repoId, commit, file, etag);
    }

    /// <summary>HEAD of resolve/COMMIT/FILE following relative redirects only: the blob's etag, where its bytes are, its size.</summary>
    async Task<(string Etag, Uri Location, long? Size)> GetMetadataAsync(string repoId, string commit, string file, CancellationToken ct)
    {
        var url = new Uri($"{options.Endpoint}/{repoId}/resolve/{commit}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");
        for (int hop = 0; hop < 10; hop++)
        {
            using var response = await SendAsync(noFollow, HttpMethod.Head, url, ct, HttpCompletionOption.ResponseHeadersRead);
            var location = response.Headers.Location;
            bool redirect = (int)response.StatusCode is >= 300 and < 400 && location is not null;
            if (redirect && !location!.IsAbsoluteUri) { url = new Uri(url, location); continue; }
            if (!redirect) ThrowIfFailed(response, repoId, commit, file);
            var raw = Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag
                      ?? throw new SharpFormerException($"{options.Endpoint} gave no ETag for {file} of {repoId}: cannot name or verify it");
            var etag = raw.StartsWith("W/", StringComparison.Ordinal) ? raw[2..].Trim('"') : raw.Trim('"');
            if (!SafeEtag().IsMatch(etag)) throw new SharpFormerException($"{options.Endpoint} gave an unusable ETag '{raw}' for {file} of {repoId}");
            long? size = long.TryParse(Header(response, "X-Linked-Size"), out var linked) ? linked : response.Content.Headers.ContentLength;
            return (etag, redirect ? location! : url, size);
        }
        throw new SharpFormerException($"too many redirects resolving {file} of {repoId} on {options.Endpoint}");
    }

    async Task FetchBlobAsync(string repoId, string commit, string file, string etag, Uri location, long? size, string blob, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        var incomplete = blob + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        bool mismatchSeen = false;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await AppendAsync(repoId, file, location, incomplete, size, progress, ct);
            }
            catch (LocationExpiredException) when (attempt < Attempts)
            {
                // A signed CDN URL outlived its validity (slow links, resumed runs): ask the Hub for a fresh one and continue.
                location = (await GetMetadataAsync(repoId, commit, file, ct)).Location;
                continue;
            }
            catch (Exception e) when (IsConnectionLoss(e))
            {
                long have = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
                if (attempt >= Attempts)
                    throw new SharpFormerException($"downloading {file} of {repoId} failed: the connection was lost ({e.Message}); {have} bytes are kept and the next run resumes from there");
                await Task.Delay(200 * attempt, ct);
                continue;
            }
            catch (IOException e) when (e is not HttpIOException)
            {
                throw new SharpFormerException($"writing {file} of {repoId} into {Cache.Root} failed: {e.Message}");
            }
            long length = new FileInfo(incomplete).Length;
            var actual = size is long expected && length != expected ? $"{length} bytes instead of {expected}" : Checksum(incomplete, etag);
            if (actual is null || actual == etag)
            {
                File.Move(incomplete, blob, overwrite: true);
                return;
            }
            File.Delete(incomplete);
            if (mismatchSeen)
                throw new SharpFormerException($"{file} of {repoId} failed verification twice (expected {etag}, got {actual}); the download was deleted");
            mismatchSeen = true;
        }
    }

    static bool IsConnectionLoss(Exception e) =>
        e is HttpIOException || e is HttpRequestException { StatusCode: null } || e is IOException { InnerException: SocketException };

    /// <summary>GETs <paramref name="location"/> into <paramref name="incomplete"/>, continuing what it holds with a Range request.</summary>
    async Task AppendAsync(string repoId, string file, Uri location, string incomplete, long? size, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        long have = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
        if (size is long total && have == total) return;
        using var request = Request(HttpMethod.Get, location);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        using var response = await follow.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) { File.Delete(incomplete); throw new HttpIOException(HttpRequestError.ResponseEnded, "the server refused to continue the partial download"); }
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden && location.Authority != new Uri(options.Endpoint).Authority)
            throw new LocationExpiredException();
        ThrowIfFailed(response, repoId, null, file);
        bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
        if (!resumed) have = 0;
        await using var output = new FileStream(incomplete, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None);
        await using var input = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[1 << 16];
        int n;
        while ((n = await input.ReadAsync(buffer, ct)) > 0)
        {
            await output.WriteAsync(buffer.AsMemory(0, n), ct);
            have += n;
            progress?.Report(new HubProgress(file, have, size));
        }
    }

    /// <summary>
    /// The checksum the etag names, computed over the file: SHA-256 for a 64-hex etag (LFS), git's blob SHA-1
    /// (<c>"blob LEN\0" + bytes</c>) for a 40-hex one; null when the etag is neither (nothing to verify against).
    /// </summary>
    public static string? Checksum(string path, string etag)
    {
        using var stream = File.OpenRead(path);
        if (etag.Length == 64 && IsHex(etag)) return Convert.ToHexStringLower(SHA256.HashData(stream));
        if (etag.Length != 40 || !IsHex(etag)) return null;
        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha1.AppendData(Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
        var buffer = new byte[1 << 16];
        int n;
        while ((n = stream.Read(buffer)) > 0) sha1.AppendData(buffer, 0, n);
        return Convert.ToHexStringLower(sha1.GetHashAndReset());
    }

    static bool IsHex(string s) => s.All(char.IsAsciiHexDigitLower);

    HttpRequestMessage Request(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        // The token goes to the Hub only: never to a CDN on another host (redirects drop it too).
        if (options.Token is { } token && url.Authority == new Uri(options.Endpoint).Authority)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.AcceptEncoding.ParseAdd("identity");
        return request;
    }

    async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, Uri url, CancellationToken ct, HttpCompletionOption completion)
    {
        using var request = Request(method, url);
        try { return await http.SendAsync(request, completion, ct); }
        catch (HttpRequestException e) when (e.StatusCode is null)
        {
            throw new HubUnreachableException($"cannot reach {url.GetLeftPart(UriPartial.Authority)}: {e.Message}");
        }
    }

    /// <summary>The CDN refused a location the Hub gave (its signature expired).</summary>
    sealed class LocationExpiredException() : Exception("the download location expired");

    /// <summary>No answer at all (DNS, refused, reset): the one case where a cached snapshot may stand in.</summary>
    sealed class HubUnreachableException(string message) : SharpFormerException(message);

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>A one-line error for a failed Hub answer: 401/403 gated or private, 404 missing repo, revision or file.</summary>
    void ThrowIfFailed(HttpResponseMessage response, string repoId, string? revision, string? file)
    {
        if (response.IsSuccessStatusCode) return;
        var code = Header(response, "X-Error-Code");
        var what = file is null ? repoId : $"{file} of {repoId}";
        string tokenHint = options.Token is null ? "set HF_TOKEN or pass --token" : "the token given was not accepted";
        throw new SharpFormerException((int)response.StatusCode switch
        {
            401 or 403 when code == "GatedRepo" => $"{repoId} is gated ({(int)response.StatusCode}): accept its conditions on {options.Endpoint}/{repoId} and {tokenHint}",
            401 or 404 when code == "RepoNotFound" => $"{repoId} not found on {options.Endpoint} (a private model needs a token: {tokenHint})",
            401 => $"{what}: not authorised (401): the model is private or gated; {tokenHint}",
            403 => $"{what}: access denied (403): the model is gated or private; {tokenHint}",
            404 when code == "RevisionNotFound" => $"revision '{revision}' of {repoId} not found on {options.Endpoint}",
            404 when file is not null => $"{what} not found (404) on {options.Endpoint}",
            404 => $"{repoId} not found on {options.Endpoint} (404; a private model needs a token: {tokenHint})",
            var s => $"{options.Endpoint} answered {s} {response.ReasonPhrase} for {what}",
        });
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]+$")]
    private static partial Regex SafeEtag();
}
