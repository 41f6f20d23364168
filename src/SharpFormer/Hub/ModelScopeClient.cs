using System.Text.Json;

namespace SharpFormer.Hub;

/// <summary>
/// A client of ModelScope's model API (the one the <c>modelscope</c> Python SDK speaks) writing the SDK's cache
/// (<see cref="ModelScopeCache"/>): <c>GET /api/v1/models/ORG/NAME/revisions</c> checks the revision (branches and tags),
/// <c>GET /api/v1/models/ORG/NAME/repo/files?Revision=R&amp;Recursive=True</c> lists the files with their size, SHA-256
/// and commit, and <c>GET /api/v1/models/ORG/NAME/repo?Revision=R&amp;FilePath=F</c> gives each file's bytes (redirects
/// followed). Files are fetched by <see cref="HubTransfer"/> (resumed, checked against the listed SHA-256) under the
/// per-model lock the SDK takes; the token (<c>MODELSCOPE_API_TOKEN</c>) goes as the SDK's <c>m_session_id</c> cookie.
/// </summary>
public sealed class ModelScopeClient : IRegisteredHubSource
{
    readonly HubOptions options;
    readonly HubTransfer transfer;

    /// <summary>A client with <paramref name="options"/> (see <see cref="OptionsFromEnvironment"/>).</summary>
    public ModelScopeClient(HubOptions options)
    {
        this.options = options;
        Cache = new ModelScopeCache(options.CacheDir);
        transfer = new HubTransfer(options.Endpoint, options.CacheDir, request =>
        {
            if (options.Token is { } token) request.Headers.Add("Cookie", $"m_session_id={token}");
        });
    }

    /// <inheritdoc/>
    public static string Name => "modelscope";

    /// <summary>
    /// ModelScope's settings as its SDK reads them: <c>MODELSCOPE_DOMAIN</c> (a domain or URL; default
    /// https://www.modelscope.cn), <c>MODELSCOPE_CACHE</c> (default <c>~/.cache/modelscope/hub</c>),
    /// <c>MODELSCOPE_API_TOKEN</c>; offline with <c>HF_HUB_OFFLINE</c>, SharpFormer's one switch for every hub.
    /// </summary>
    public static HubOptions OptionsFromEnvironment(string? endpoint, string? cacheDir, string? token)
    {
        var domain = HubOptions.Env("MODELSCOPE_DOMAIN");
        var url = endpoint ?? (domain is null ? "https://www.modelscope.cn" : domain.Contains("://") ? domain : "https://" + domain);
        return new HubOptions
        {
            Endpoint = HubOptions.CheckEndpoint(url, "MODELSCOPE_DOMAIN"),
            CacheDir = cacheDir ?? HubOptions.Env("MODELSCOPE_CACHE") ?? Path.Combine(HubOptions.UserHome(), ".cache", "modelscope", "hub"),
            Token = token ?? HubOptions.Env("MODELSCOPE_API_TOKEN"),
            Offline = HubOptions.IsTrue(HubOptions.Env("HF_HUB_OFFLINE")),
        };
    }

    /// <inheritdoc/>
    public static IHubSource Create(HubOptions options) => new ModelScopeClient(options);

    /// <summary>The cache this client reads and writes.</summary>
    public ModelScopeCache Cache { get; }

    /// <inheritdoc/>
    public string DefaultRevision => "master";

    /// <inheritdoc/>
    public string CacheRoot => Cache.Root;

    /// <inheritdoc/>
    public void Dispose() => transfer.Dispose();

    /// <inheritdoc/>
    public string? FindCached(string repoId, string? revision = null) => Cache.Find(repoId, revision);

    /// <inheritdoc/>
    public IReadOnlyList<CachedModel> Scan() => Cache.Scan();

    /// <inheritdoc/>
    public bool Remove(string repoId) => Cache.Remove(repoId);

    /// <inheritdoc/>
    public async Task<string> DownloadAsync(string repoId, string? revision = null, IReadOnlyList<string>? include = null,
        IProgress<HubProgress>? progress = null, CancellationToken ct = default)
    {
        if (!HubCache.IsRepoId(repoId)) throw new SharpFormerException($"'{repoId}' is not a model id of the form ORG/NAME");
        if (options.Offline)
            return Cache.Find(repoId, revision)
                   ?? throw new SharpFormerException($"{repoId} (revision {revision ?? DefaultRevision}) is not in the ModelScope cache {Cache.Root} and HF_HUB_OFFLINE is set, so it cannot be downloaded");
        var wanted = revision ?? DefaultRevision;
        long? createdAt;
        IReadOnlyList<HubRemoteFile> listed;
        try
        {
            createdAt = await GetRevisionAsync(repoId, wanted, ct);
            listed = (await GetInfoAsync(repoId, wanted, ct)).Files;
        }
        catch (HubUnreachableException e) when (Cache.Find(repoId, revision) is { } cached)
        {
            Console.Error.WriteLine($"warning: cannot reach {options.Endpoint} ({e.Message}); using the cached {cached}");
            return cached;
        }
        var byPath = listed.ToDictionary(f => f.Path);
        var files = HubFileSelection.Select(listed.Select(f => f.Path).ToList(), include ?? []).Select(f => byPath[f]).ToList();
        var folder = Cache.ModelFolder(repoId);
        using (await HubTransfer.LockAsync(Cache.LockPath(repoId), ct))
        {
            var index = Cache.ReadIndex(repoId);
            // The file list's Revision is the file's last commit: an indexed file with the same one is current.
            var missing = files.Where(f => !(index.TryGetValue(f.Path, out var c) && c == Commit(f, wanted) && File.Exists(Path.Combine(folder, f.Path)))).ToList();
            if (missing.Count == 0 && Cache.RecordedRevision(repoId) == wanted) return folder;
            Cache.ForgetRevision(repoId);
            await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = ct }, async (file, c) =>
            {
                var url = FileUrl(repoId, wanted, file.Path);
                await transfer.FetchAsync(new HubFetch(repoId, file.Path, url, file.Size, file.Checksum ?? "", Cache.TempPath(repoId, file.Path),
                    Path.Combine(folder, file.Path), response => ThrowIfFailed(response, repoId, file.Path), _ => Task.FromResult(url)), progress, c);
                lock (index)
                {
                    index[file.Path] = Commit(file, wanted);
                    Cache.WriteIndex(repoId, index);
                }
            });
            Cache.Complete(repoId, wanted, createdAt);
        }
        return folder;
    }

    /// <summary>The commit the SDK indexes a file under: the one the list gives, else the revision.</summary>
    static string Commit(HubRemoteFile file, string revision) => file.Commit ?? revision;

    Uri FileUrl(string repoId, string revision, string file) =>
        new($"{options.Endpoint}/api/v1/models/{repoId}/repo?Revision={Uri.EscapeDataString(revision)}&FilePath={Uri.EscapeDataString(file)}");

    /// <summary>Checks that <paramref name="revision"/> is a branch or tag of the model; returns its creation time (for <c>.mv</c>) when given.</summary>
    async Task<long?> GetRevisionAsync(string repoId, string revision, CancellationToken ct)
    {
        var data = await GetDataAsync(new Uri($"{options.Endpoint}/api/v1/models/{repoId}/revisions"), repoId, ct);
        var names = new List<string>();
        if (data.TryGetProperty("RevisionMap", out var map) && map.ValueKind == JsonValueKind.Object)
            foreach (var kind in new[] { "Branches", "Tags" })
                if (map.TryGetProperty(kind, out var list) && list.ValueKind == JsonValueKind.Array)
                    foreach (var r in list.EnumerateArray())
                    {
                        var name = r.TryGetProperty("Revision", out var n) ? n.GetString() : null;
                        if (name is null) continue;
                        if (name == revision)
                            return r.TryGetProperty("CreatedAt", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetInt64() : null;
                        names.Add(name);
                    }
        throw new SharpFormerException($"revision '{revision}' of {repoId} not found on {options.Endpoint} (it has: {(names.Count > 0 ? string.Join(", ", names) : "none")})");
    }

    /// <summary>The files of a revision from <c>repo/files?Revision=R&amp;Recursive=True</c> (folders, .gitignore and .gitattributes left out).</summary>
    public async Task<HubRepoInfo> GetInfoAsync(string repoId, string revision, CancellationToken ct = default)
    {
        var data = await GetDataAsync(new Uri($"{options.Endpoint}/api/v1/models/{repoId}/repo/files?Revision={Uri.EscapeDataString(revision)}&Recursive=True"), repoId, ct);
        var files = new List<HubRemoteFile>();
        try
        {
            if (data.TryGetProperty("Files", out var list) && list.ValueKind == JsonValueKind.Array)
                foreach (var f in list.EnumerateArray())
                {
                    string? Text(string name) => f.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                    var path = Text("Path") ?? throw new KeyNotFoundException("Path");
                    if (Text("Type") == "tree" || path is ".gitignore" or ".gitattributes") continue;
                    long? size = f.TryGetProperty("Size", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt64() : null;
                    files.Add(new HubRemoteFile(path, size, Text("Sha256"), Text("Revision") is { Length: > 0 } commit ? commit : null));
                }
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new SharpFormerException($"{options.Endpoint} answered the file list of {repoId} with an entry without a path (is it ModelScope?)");
        }
        HubFileSelection.CheckSafe(files.Select(f => f.Path), options.Endpoint, repoId);
        return new HubRepoInfo(revision, files);
    }

    /// <summary>The <c>Data</c> of a ModelScope API answer (<c>{"Code": 200, "Success": true, "Data": ...}</c>); any other answer is a one-line error.</summary>
    async Task<JsonElement> GetDataAsync(Uri url, string repoId, CancellationToken ct)
    {
        using var response = await transfer.SendAsync(HttpMethod.Get, url, ct);
        ThrowIfFailed(response, repoId, null);
        var body = await response.Content.ReadAsStringAsync(ct);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.TryGetProperty("Code", out var code) && code.ValueKind == JsonValueKind.Number && code.GetInt32() != 200)
                throw new SharpFormerException($"{options.Endpoint} refused {repoId}: {(root.TryGetProperty("Message", out var m) ? m.GetString() : $"code {code.GetInt32()}")}");
            if (root.TryGetProperty("Data", out var data) && data.ValueKind == JsonValueKind.Object) return data.Clone();
        }
        catch (JsonException) { }
        throw new SharpFormerException($"{options.Endpoint} answered {url.AbsolutePath} of {repoId} without a Data object (is it ModelScope?)");
    }

    /// <summary>A one-line error for a failed ModelScope answer: 401/403 private or gated, 404 missing model or file.</summary>
    void ThrowIfFailed(HttpResponseMessage response, string repoId, string? file)
    {
        if (response.IsSuccessStatusCode) return;
        var what = file is null ? repoId : $"{file} of {repoId}";
        string tokenHint = options.Token is null ? "set MODELSCOPE_API_TOKEN or pass --token" : "the token given was not accepted";
        throw new SharpFormerException((int)response.StatusCode switch
        {
            401 => $"{what}: not authorised (401): the model is private or gated on {options.Endpoint}; {tokenHint}",
            403 => $"{what}: access denied (403): the model is private or gated on {options.Endpoint}; {tokenHint}",
            404 when file is not null => $"{what} not found (404) on {options.Endpoint}",
            404 => $"{repoId} not found on {options.Endpoint} (404; a private model needs a token: {tokenHint})",
            var s => $"{options.Endpoint} answered {s} {response.ReasonPhrase} for {what}",
        });
    }
}
