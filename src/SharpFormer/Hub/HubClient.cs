using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpFormer.Hub;

/// <summary>A file of a download advancing: <paramref name="Done"/> of <paramref name="Total"/> bytes (null when unknown).</summary>
public readonly record struct HubProgress(string File, long Done, long? Total);

/// <summary>A file a hub lists: its path in the repository and, when the listing gives them, its size, checksum and the commit that last changed it.</summary>
public sealed record HubRemoteFile(string Path, long? Size = null, string? Checksum = null, string? Commit = null);

/// <summary>A revision of a repository as a hub lists it: its commit (or revision name, on hubs without commits) and its files.</summary>
public sealed record HubRepoInfo(string Commit, IReadOnlyList<HubRemoteFile> Files);

/// <summary>
/// A client of the HuggingFace Hub's download protocol (the one huggingface_hub speaks) writing huggingface_hub's cache
/// (<see cref="HubCache"/>): the model info API gives a revision's commit and file list (with each file's blob id or LFS
/// SHA-256); each file is located with a HEAD of <c>resolve/&lt;commit&gt;/&lt;file&gt;</c> (only relative redirects
/// followed: the metadata sits on the redirect to the CDN) whose <c>X-Linked-Etag</c>/<c>ETag</c> names the blob (the
/// listed checksum when a mirror sends no ETag) and is checked against its content (SHA-256 for LFS files, git's blob
/// SHA-1 for small ones); blobs are fetched by <see cref="HubTransfer"/> under a per-blob lock and linked into the
/// snapshot only once verified.
/// </summary>
public sealed partial class HubClient : IRegisteredHubSource
{
    readonly HubOptions options;
    readonly HubTransfer transfer;

    /// <summary>A client with <paramref name="options"/> (see <see cref="HubOptions.FromEnvironment"/>).</summary>
    public HubClient(HubOptions options)
    {
        this.options = options;
        Cache = new HubCache(options.CacheDir);
        transfer = new HubTransfer(options.Endpoint, options.CacheDir, request =>
        {
            if (options.Token is { } token) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        });
    }

    /// <inheritdoc/>
    public static string Name => "hf";

    /// <inheritdoc/>
    public static HubOptions OptionsFromEnvironment(string? endpoint, string? cacheDir, string? token) => HubOptions.FromEnvironment(endpoint, cacheDir, token);

    /// <inheritdoc/>
    public static IHubSource Create(HubOptions options) => new HubClient(options);

    /// <summary>The cache this client reads and writes.</summary>
    public HubCache Cache { get; }

    /// <inheritdoc/>
    public string DefaultRevision => "main";

    /// <inheritdoc/>
    public string CacheRoot => Cache.Root;

    /// <inheritdoc/>
    public void Dispose() => transfer.Dispose();

    /// <inheritdoc/>
    public string? FindCached(string repoId, string? revision = null) => Cache.FindSnapshot(repoId, revision ?? DefaultRevision);

    /// <inheritdoc/>
    public IReadOnlyList<CachedModel> Scan() => Cache.Scan();

    /// <inheritdoc/>
    public bool Remove(string repoId) => Cache.Remove(repoId);

    /// <summary>
    /// Downloads the files of <paramref name="repoId"/> at <paramref name="revision"/> that <see cref="HubFileSelection"/>
    /// picks (plus <paramref name="include"/> globs) into the cache, records <c>refs/&lt;revision&gt;</c> and, like
    /// huggingface_hub, <c>.no_exist/&lt;commit&gt;/&lt;file&gt;</c> for the config and tokenizer files the repository lacks,
    /// and returns the snapshot folder. Offline, returns the cached snapshot or fails naming the cache.
    /// </summary>
    public async Task<string> DownloadAsync(string repoId, string? revision = null, IReadOnlyList<string>? include = null,
        IProgress<HubProgress>? progress = null, CancellationToken ct = default)
    {
        revision ??= DefaultRevision;
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
        var listed = info.Files.ToDictionary(f => f.Path);
        var files = HubFileSelection.Select(info.Files.Select(f => f.Path).ToList(), include ?? []);
        await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = ct },
            async (file, c) => await DownloadFileAsync(repoId, info.Commit, listed[file], progress, c));
        foreach (var missing in HubFileSelection.Expected.Where(f => !listed.ContainsKey(f)))
            Cache.MarkMissing(repoId, info.Commit, missing);
        Cache.WriteRef(repoId, revision, info.Commit);
        return Cache.SnapshotFolder(repoId, info.Commit);
    }

    /// <summary>The commit and file list of a revision, from <c>GET /api/models/ORG/NAME/revision/REV?blobs=true</c>.</summary>
    public async Task<HubRepoInfo> GetInfoAsync(string repoId, string revision, CancellationToken ct = default)
    {
        var url = new Uri($"{options.Endpoint}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}?blobs=true");
        using var response = await transfer.SendAsync(HttpMethod.Get, url, ct);
        ThrowIfFailed(response, repoId, revision, null);
        var body = await response.Content.ReadAsStringAsync(ct);
        string? commit = null;
        List<HubRemoteFile>? files = null;
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            commit = root.TryGetProperty("sha", out var sha) ? sha.GetString() : null;
            files = root.TryGetProperty("siblings", out var siblings) ? siblings.EnumerateArray().Select(Sibling).ToList() : null;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException) { }
        if (commit is null || !HubCache.IsCommit(commit) || files is null)
            throw new SharpFormerException($"{options.Endpoint} answered the model info of {repoId} without a commit sha and file list (is it a HuggingFace Hub or mirror?)");
        HubFileSelection.CheckSafe(files.Select(f => f.Path), options.Endpoint, repoId);
        return new HubRepoInfo(commit, files);
    }

    /// <summary>A sibling of the model info: <c>rfilename</c>, and with <c>blobs=true</c> its size and LFS SHA-256 or git blob id.</summary>
    static HubRemoteFile Sibling(JsonElement s)
    {
        string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        long? size = s.TryGetProperty("size", out var n) && n.ValueKind == JsonValueKind.Number ? n.GetInt64() : null;
        var lfs = s.TryGetProperty("lfs", out var l) && l.ValueKind == JsonValueKind.Object ? Text(l, "sha256") : null;
        return new HubRemoteFile(Text(s, "rfilename") ?? throw new KeyNotFoundException("rfilename"), size, lfs ?? Text(s, "blobId"));
    }

    async Task<string> DownloadFileAsync(string repoId, string commit, HubRemoteFile file, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        var pointer = Path.Combine(Cache.SnapshotFolder(repoId, commit), file.Path);
        if (File.Exists(pointer)) return pointer;
        var (etag, location, size) = await GetMetadataAsync(repoId, commit, file, ct);
        var blob = Cache.BlobPath(repoId, etag);
        if (!File.Exists(blob))
        {
            using (await Cache.LockBlobAsync(repoId, etag, ct))
                if (!File.Exists(blob))
                    await transfer.FetchAsync(new HubFetch(repoId, file.Path, location, size, etag, blob + ".incomplete", blob,
                        response => ThrowIfFailed(response, repoId, null, file.Path),
                        async c => (await GetMetadataAsync(repoId, commit, file, c)).Location), progress, ct);
        }
        return Cache.Link(repoId, commit, file.Path, etag);
    }

    /// <summary>
    /// HEAD of resolve/COMMIT/FILE following relative redirects only: the blob's etag (the listed checksum when the answer
    /// has no ETag, as some mirrors send), where its bytes are, its size.
    /// </summary>
    async Task<(string Etag, Uri Location, long? Size)> GetMetadataAsync(string repoId, string commit, HubRemoteFile file, CancellationToken ct)
    {
        var url = new Uri($"{options.Endpoint}/{repoId}/resolve/{commit}/{string.Join('/', file.Path.Split('/').Select(Uri.EscapeDataString))}");
        for (int hop = 0; hop < 10; hop++)
        {
            using var response = await transfer.SendAsync(HttpMethod.Head, url, ct, follow: false, HttpCompletionOption.ResponseHeadersRead);
            var location = response.Headers.Location;
            bool redirect = (int)response.StatusCode is >= 300 and < 400 && location is not null;
            if (redirect && !location!.IsAbsoluteUri) { url = new Uri(url, location); continue; }
            if (!redirect) ThrowIfFailed(response, repoId, commit, file.Path);
            var raw = HubTransfer.Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag ?? file.Checksum
                      ?? throw new SharpFormerException($"{options.Endpoint} gave no ETag for {file.Path} of {repoId} and its file list no checksum: cannot name or verify it");
            var etag = raw.StartsWith("W/", StringComparison.Ordinal) ? raw[2..].Trim('"') : raw.Trim('"');
            if (!SafeEtag().IsMatch(etag)) throw new SharpFormerException($"{options.Endpoint} gave an unusable ETag '{raw}' for {file.Path} of {repoId}");
            long? size = long.TryParse(HubTransfer.Header(response, "X-Linked-Size"), out var linked) ? linked : file.Size ?? response.Content.Headers.ContentLength;
            return (etag, redirect ? location! : url, size);
        }
        throw new SharpFormerException($"too many redirects resolving {file.Path} of {repoId} on {options.Endpoint}");
    }

    /// <summary>A one-line error for a failed Hub answer: 401/403 gated or private, 404 missing repo, revision or file.</summary>
    void ThrowIfFailed(HttpResponseMessage response, string repoId, string? revision, string? file)
    {
        if (response.IsSuccessStatusCode) return;
        var code = HubTransfer.Header(response, "X-Error-Code");
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
