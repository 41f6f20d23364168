using System.Text.RegularExpressions;

namespace SharpFormer.Hub;

/// <summary>
/// huggingface_hub's cache layout, byte for byte, so Python and SharpFormer share one cache:
/// <c>models--ORG--NAME/blobs/&lt;etag&gt;</c> (the content), <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> (relative symbolic
/// links to the blobs), <c>refs/&lt;revision&gt;</c> (the commit a branch or tag pointed to, no newline),
/// <c>.no_exist/&lt;commit&gt;/&lt;file&gt;</c> (empty markers of files the repository lacks), and
/// <c>.locks/models--ORG--NAME/&lt;etag&gt;.lock</c>.
/// </summary>
public sealed partial class HubCache(string root)
{
    /// <summary>The cache folder.</summary>
    public string Root { get; } = root;

    /// <summary>A full commit sha: a revision that needs no ref.</summary>
    public static bool IsCommit(string revision) => CommitRegex().IsMatch(revision);

    /// <summary>Whether <paramref name="id"/> has the form ORG/NAME (letters, digits, <c>-_.</c>; no <c>--</c> or <c>..</c>).</summary>
    public static bool IsRepoId(string id) => RepoIdRegex().IsMatch(id) && !id.Contains("--") && !id.Contains("..");

    /// <summary><c>models--ORG--NAME</c> under the cache.</summary>
    public string RepoFolder(string repoId) => Path.Combine(Root, "models--" + repoId.Replace("/", "--"));

    /// <summary>The snapshot folder of a commit.</summary>
    public string SnapshotFolder(string repoId, string commit) => Path.Combine(RepoFolder(repoId), "snapshots", commit);

    /// <summary>Where a blob named by its (normalised) etag lives.</summary>
    public string BlobPath(string repoId, string etag) => Path.Combine(RepoFolder(repoId), "blobs", etag);

    /// <summary>The lock file of a blob (outside the repo folder, as huggingface_hub puts it).</summary>
    public string LockPath(string repoId, string etag) => Path.Combine(Root, ".locks", "models--" + repoId.Replace("/", "--"), etag + ".lock");

    /// <summary>The commit a revision names from the cache alone (a commit sha names itself), or null.</summary>
    public string? CommitOf(string repoId, string revision)
    {
        if (IsCommit(revision)) return revision;
        var reference = Path.Combine(RepoFolder(repoId), "refs", revision);
        return File.Exists(reference) && File.ReadAllText(reference).Trim() is { } c && IsCommit(c) ? c : null;
    }

    /// <summary>
    /// The cached snapshot folder of <paramref name="repoId"/> at <paramref name="revision"/> if it holds a model
    /// (<see cref="HoldsModel"/>), else null.
    /// </summary>
    public string? FindSnapshot(string repoId, string revision)
    {
        var commit = CommitOf(repoId, revision);
        return commit is not null && HoldsModel(SnapshotFolder(repoId, commit)) ? SnapshotFolder(repoId, commit) : null;
    }

    /// <summary>
    /// Whether <paramref name="folder"/> holds a whole model: a config.json and weights (safetensors or pytorch_model*.bin),
    /// every shard an index names among them, so an interrupted download is never taken for a model.
    /// </summary>
    public static bool HoldsModel(string folder)
    {
        if (!Directory.Exists(folder) || !File.Exists(Path.Combine(folder, "config.json"))) return false;
        var names = Directory.EnumerateFiles(folder).Select(f => Path.GetFileName(f)!).ToList();
        if (!names.Any(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.StartsWith("pytorch_model", StringComparison.Ordinal) && f.EndsWith(".bin", StringComparison.Ordinal)))
            return false;
        foreach (var index in names.Where(f => f.EndsWith(".safetensors.index.json", StringComparison.Ordinal) || f.EndsWith(".bin.index.json", StringComparison.Ordinal)))
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, index)));
                if (doc.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Value.GetString()!).Distinct()
                    .Any(shard => !File.Exists(Path.Combine(folder, shard)))) return false;
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException) { return false; }
        }
        return true;
    }

    /// <summary>
    /// Records, as huggingface_hub does on a 404, that the repository has no <paramref name="file"/> at
    /// <paramref name="commit"/>: an empty <c>.no_exist/&lt;commit&gt;/&lt;file&gt;</c>, which Python reads offline as "absent".
    /// </summary>
    public void MarkMissing(string repoId, string commit, string file)
    {
        var marker = Path.Combine(RepoFolder(repoId), ".no_exist", commit, file);
        Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
        if (!File.Exists(marker)) File.WriteAllBytes(marker, []);
    }

    /// <summary>Records that <paramref name="revision"/> points at <paramref name="commit"/> (written whole: temp file, then rename).</summary>
    public void WriteRef(string repoId, string revision, string commit)
    {
        if (revision == commit) return;
        var reference = Path.Combine(RepoFolder(repoId), "refs", revision);
        Directory.CreateDirectory(Path.GetDirectoryName(reference)!);
        var temp = $"{reference}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temp, commit);
        File.Move(temp, reference, overwrite: true);
    }

    /// <summary>
    /// Links <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> to its blob with a relative symbolic link (<c>../../blobs/&lt;etag&gt;</c>,
    /// one more <c>../</c> per folder in <paramref name="file"/>), made under a temporary name and renamed into place so a
    /// snapshot never shows a half-made entry.
    /// </summary>
    public string Link(string repoId, string commit, string file, string etag)
    {
        var pointer = Path.Combine(SnapshotFolder(repoId, commit), file);
        var folder = Path.GetDirectoryName(pointer)!;
        Directory.CreateDirectory(folder);
        var target = Path.GetRelativePath(folder, BlobPath(repoId, etag));
        var temp = $"{pointer}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.CreateSymbolicLink(temp, target);
        File.Move(temp, pointer, overwrite: true);
        return pointer;
    }

    /// <summary>
    /// Holds the lock of one blob for as long as the returned object lives (<see cref="HubTransfer.LockAsync"/>), so two
    /// processes never write one blob at once.
    /// </summary>
    public Task<IDisposable> LockBlobAsync(string repoId, string etag, CancellationToken ct) => HubTransfer.LockAsync(LockPath(repoId, etag), ct);

    /// <summary>The models in the cache (as <c>hf cache scan</c> lists them): blob sizes summed, each snapshot with the refs naming it.</summary>
    public IReadOnlyList<CachedModel> Scan()
    {
        if (!Directory.Exists(Root)) return [];
        var models = new List<CachedModel>();
        foreach (var folder in Directory.GetDirectories(Root, "models--*").Order(StringComparer.Ordinal))
        {
            var repoId = Path.GetFileName(folder)["models--".Length..].Replace("--", "/");
            var blobs = Path.Combine(folder, "blobs");
            long size = Directory.Exists(blobs) ? Directory.GetFiles(blobs).Sum(f => new FileInfo(f).Length) : 0;
            var refsFolder = Path.Combine(folder, "refs");
            var refs = Directory.Exists(refsFolder)
                ? Directory.GetFiles(refsFolder, "*", SearchOption.AllDirectories)
                    .Select(f => (Name: Path.GetRelativePath(refsFolder, f).Replace('\\', '/'), Commit: File.ReadAllText(f).Trim())).ToList()
                : [];
            var snapshotsFolder = Path.Combine(folder, "snapshots");
            var revisions = Directory.Exists(snapshotsFolder)
                ? Directory.GetDirectories(snapshotsFolder).Select(d => Path.GetFileName(d)).Order(StringComparer.Ordinal)
                    .Select(c => new CachedRevision(c, refs.Where(r => r.Commit == c).Select(r => r.Name).Order(StringComparer.Ordinal).ToList(),
                        Directory.GetFiles(Path.Combine(snapshotsFolder, c), "*", SearchOption.AllDirectories).Length)).ToList()
                : [];
            models.Add(new CachedModel(repoId, folder, size, revisions));
        }
        return models;
    }

    /// <summary>Deletes a model's folder (blobs, snapshots, refs) and its locks; false when it is not cached.</summary>
    public bool Remove(string repoId)
    {
        var folder = RepoFolder(repoId);
        if (!Directory.Exists(folder)) return false;
        Directory.Delete(folder, recursive: true);
        var locks = Path.Combine(Root, ".locks", Path.GetFileName(folder));
        if (Directory.Exists(locks)) Directory.Delete(locks, recursive: true);
        return true;
    }

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitRegex();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    private static partial Regex RepoIdRegex();
}

/// <summary>A model in the hub cache: its id, folder, bytes on disk (blobs) and snapshots.</summary>
public sealed record CachedModel(string RepoId, string Folder, long SizeOnDisk, IReadOnlyList<CachedRevision> Revisions);

/// <summary>A snapshot of a cached model: its commit, the refs (branches, tags) pointing at it, its file count.</summary>
public sealed record CachedRevision(string Commit, IReadOnlyList<string> Refs, int Files);
