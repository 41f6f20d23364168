namespace SharpFormer.Hub;

/// <summary>
/// The ModelScope SDK's cache layout under its hub folder (<c>$MODELSCOPE_CACHE</c>, default <c>~/.cache/modelscope/hub</c>),
/// so models the Python SDK downloaded are used as they are and the SDK sees SharpFormer's: a model's files in place at
/// <c>models/ORG/NAME</c> (dots in NAME written <c>___</c>, with a symbolic link from the dotted name), its index
/// <c>.msc</c> (a pickled list of <c>{'Path', 'Revision'}</c>, the file's commit), <c>.mdl</c> (<c>{'id': 'ORG/NAME'}</c>)
/// and <c>.mv</c> (<c>Revision:R,CreatedAt:T</c>); partial downloads under <c>models/._____temp/ORG/NAME</c>; the
/// per-model lock <c>.lock/ORG___NAME</c> the SDK takes.
/// </summary>
public sealed class ModelScopeCache(string root)
{
    const string Index = ".msc", Meta = ".mdl", Version = ".mv";

    /// <summary>The hub folder (holding <c>models/</c> and <c>.lock/</c>).</summary>
    public string Root { get; } = root;

    string Models => Path.Combine(Root, "models");

    /// <summary>Where the SDK keeps a model's files: <c>models/ORG/NAME</c> with the dots of NAME written <c>___</c>.</summary>
    public string ModelFolder(string repoId)
    {
        var (owner, name) = Split(repoId);
        return Path.Combine(Models, owner, name.Replace(".", "___"));
    }

    /// <summary>Where the partial download of a model's file lives (the SDK resumes it too).</summary>
    public string TempPath(string repoId, string file)
    {
        var (owner, name) = Split(repoId);
        return Path.Combine(Models, "._____temp", owner, name, file);
    }

    /// <summary>The per-model lock file the SDK takes around a download.</summary>
    public string LockPath(string repoId) => Path.Combine(Root, ".lock", repoId.Replace("/", "___"));

    static (string Owner, string Name) Split(string repoId)
    {
        var slash = repoId.IndexOf('/');
        return (repoId[..slash], repoId[(slash + 1)..]);
    }

    /// <summary>The revision the last complete download recorded in <c>.mv</c>, or null (none, or a download under way).</summary>
    public string? RecordedRevision(string repoId)
    {
        var path = Path.Combine(ModelFolder(repoId), Version);
        if (!File.Exists(path)) return null;
        var text = File.ReadAllText(path).Trim();
        // "Revision:R,CreatedAt:T" from a revision detail, or the bare revision the SDK writes when it had no detail.
        return text.StartsWith("Revision:", StringComparison.Ordinal) ? text["Revision:".Length..].Split(',')[0] : text.Length > 0 ? text : null;
    }

    /// <summary>
    /// The model folder of <paramref name="repoId"/> if a download completed (<c>.mv</c> written) at
    /// <paramref name="revision"/> (any, when null: the SDK itself cannot tell offline) and it holds a model
    /// (<see cref="HubCache.HoldsModel"/>), else null.
    /// </summary>
    public string? Find(string repoId, string? revision)
    {
        var recorded = RecordedRevision(repoId);
        var folder = ModelFolder(repoId);
        return recorded is not null && (revision is null || revision == recorded) && HubCache.HoldsModel(folder) ? folder : null;
    }

    /// <summary>The <c>.msc</c> entries (path → file commit); empty when there is none or it cannot be read (the SDK resets it then too).</summary>
    public Dictionary<string, string> ReadIndex(string repoId)
    {
        var path = Path.Combine(ModelFolder(repoId), Index);
        var entries = File.Exists(path) ? PythonPickle.ReadList(File.ReadAllBytes(path)) : null;
        var index = new Dictionary<string, string>();
        foreach (var e in entries ?? [])
            if (e.GetValueOrDefault("Path") is { } file && e.GetValueOrDefault("Revision") is { } commit) index[file] = commit;
        return index;
    }

    /// <summary>Writes the <c>.msc</c> index (whole: temp file, then rename) and <c>.mdl</c>.</summary>
    public void WriteIndex(string repoId, IReadOnlyDictionary<string, string> index)
    {
        var folder = ModelFolder(repoId);
        Directory.CreateDirectory(folder);
        WriteWhole(Path.Combine(folder, Index), PythonPickle.WriteList(index.Select(e => new Dictionary<string, string> { ["Path"] = e.Key, ["Revision"] = e.Value })));
        WriteWhole(Path.Combine(folder, Meta), PythonPickle.WriteDict(new Dictionary<string, string> { ["id"] = repoId }));
    }

    /// <summary>Drops <c>.mv</c> before a download changes the folder, so an interrupted one is never taken for a model.</summary>
    public void ForgetRevision(string repoId)
    {
        var path = Path.Combine(ModelFolder(repoId), Version);
        if (File.Exists(path)) File.Delete(path);
    }

    /// <summary>
    /// Records a completed download of <paramref name="revision"/> (<c>.mv</c>) and, for a dotted name, the link from the
    /// dotted folder name to the written one, as the SDK makes it.
    /// </summary>
    public void Complete(string repoId, string revision, long? createdAt)
    {
        var folder = ModelFolder(repoId);
        Directory.CreateDirectory(folder);
        WriteWhole(Path.Combine(folder, Version), System.Text.Encoding.UTF8.GetBytes(createdAt is long t ? $"Revision:{revision},CreatedAt:{t}" : revision));
        var (owner, name) = Split(repoId);
        var alias = Path.Combine(Models, owner, name);
        if (alias != folder && !Directory.Exists(alias) && !File.Exists(alias)) Directory.CreateSymbolicLink(alias, folder);
    }

    static void WriteWhole(string path, byte[] bytes)
    {
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The cached models: id, folder, bytes of their files, and the recorded revision (ModelScope keeps one per model).</summary>
    public IReadOnlyList<CachedModel> Scan()
    {
        if (!Directory.Exists(Models)) return [];
        var models = new List<CachedModel>();
        foreach (var ownerFolder in Directory.GetDirectories(Models).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal))
            foreach (var folder in Directory.GetDirectories(ownerFolder).Order(StringComparer.Ordinal))
            {
                if (new DirectoryInfo(folder).LinkTarget is not null) continue;   // the dotted name's link: listed under its target
                var repoId = $"{Path.GetFileName(ownerFolder)}/{Path.GetFileName(folder).Replace("___", ".")}";
                var files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
                    .Where(f => Path.GetFileName(f) is not (Index or Meta or Version)).ToList();
                var recorded = RecordedRevision(repoId);
                models.Add(new CachedModel(repoId, folder, files.Sum(f => new FileInfo(f).Length),
                    recorded is null ? [] : [new CachedRevision(recorded, [], files.Count)]));
            }
        return models;
    }

    /// <summary>Deletes a model's folder, its dotted-name link, partial downloads and lock; false when it is not cached.</summary>
    public bool Remove(string repoId)
    {
        var folder = ModelFolder(repoId);
        if (!Directory.Exists(folder)) return false;
        Directory.Delete(folder, recursive: true);
        var (owner, name) = Split(repoId);
        var alias = Path.Combine(Models, owner, name);
        if (alias != folder && new FileInfo(alias).LinkTarget is not null) File.Delete(alias);   // now dangling: unlinked
        var temp = Path.Combine(Models, "._____temp", owner, name);
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        if (File.Exists(LockPath(repoId))) File.Delete(LockPath(repoId));
        return true;
    }
}
