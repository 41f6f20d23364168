namespace SharpFormer.Hub;

/// <summary>
/// A model hub SharpFormer downloads from, with the cache layout its own Python library writes (so the two share it):
/// the HuggingFace Hub (<see cref="HubClient"/>) or ModelScope (<see cref="ModelScopeClient"/>). A new hub is a class
/// implementing <see cref="IRegisteredHubSource"/> and one entry in <see cref="HubSources"/>.
/// </summary>
public interface IHubSource : IDisposable
{
    /// <summary>The revision a model id without <c>@REVISION</c> means (<c>main</c> on the HuggingFace Hub, <c>master</c> on ModelScope).</summary>
    string DefaultRevision { get; }

    /// <summary>The cache folder this client reads and writes.</summary>
    string CacheRoot { get; }

    /// <summary>The cached model folder of <paramref name="repoId"/> at <paramref name="revision"/> (null: the default), or null; makes no request.</summary>
    string? FindCached(string repoId, string? revision = null);

    /// <summary>
    /// Downloads the files of <paramref name="repoId"/> at <paramref name="revision"/> (null: the default) that
    /// <see cref="HubFileSelection"/> picks, plus <paramref name="include"/> globs, into the cache and returns the model
    /// folder. Offline, returns the cached folder or fails naming the cache.
    /// </summary>
    Task<string> DownloadAsync(string repoId, string? revision = null, IReadOnlyList<string>? include = null,
        IProgress<HubProgress>? progress = null, CancellationToken ct = default);

    /// <summary>The models in the cache: id, folder, bytes on disk, revisions.</summary>
    IReadOnlyList<CachedModel> Scan();

    /// <summary>Deletes a cached model (every revision); false when it is not cached.</summary>
    bool Remove(string repoId);
}

/// <summary>A hub <see cref="HubSources"/> can register: its name, its settings from the environment and its constructor.</summary>
public interface IRegisteredHubSource : IHubSource
{
    /// <summary>The name <c>--source</c> and <c>SHARPFORMER_SOURCE</c> use (<c>hf</c>, <c>modelscope</c>).</summary>
    static abstract string Name { get; }

    /// <summary>The options the environment gives for this hub (its endpoint, cache, token and offline variables), each overridden by a non-null argument.</summary>
    static abstract HubOptions OptionsFromEnvironment(string? endpoint, string? cacheDir, string? token);

    /// <summary>A client of this hub with <paramref name="options"/>.</summary>
    static abstract IHubSource Create(HubOptions options);
}

/// <summary>The hubs SharpFormer knows, by <c>--source</c> name.</summary>
public static class HubSources
{
    /// <summary>A registered hub: its name, how the environment configures it, and how a client is made.</summary>
    public sealed record Entry(string Name, Func<string?, string?, string?, HubOptions> OptionsFromEnvironment, Func<HubOptions, IHubSource> Create);

    static Entry Of<T>() where T : IRegisteredHubSource => new(T.Name, T.OptionsFromEnvironment, T.Create);

    /// <summary>Every hub, the default first.</summary>
    public static IReadOnlyList<Entry> All { get; } = [Of<HubClient>(), Of<ModelScopeClient>()];

    /// <summary>The environment variable naming the default hub.</summary>
    public const string SourceVariable = "SHARPFORMER_SOURCE";

    /// <summary>The hub <paramref name="name"/> names, else <c>$SHARPFORMER_SOURCE</c>, else the HuggingFace Hub; an unknown name is a one-line error.</summary>
    public static Entry Get(string? name = null)
    {
        var chosen = name ?? (Environment.GetEnvironmentVariable(SourceVariable) is { Length: > 0 } v ? v : All[0].Name);
        return All.FirstOrDefault(e => e.Name == chosen)
               ?? throw new SharpFormerException($"unknown hub source '{chosen}' ({(name is null ? SourceVariable : "--source")}): use {string.Join(" or ", All.Select(e => e.Name))}");
    }

    /// <summary>The cached model folder of <paramref name="repoId"/> when there is one (no request made), else downloaded (<see cref="IHubSource.DownloadAsync"/>).</summary>
    public static async Task<string> ResolveAsync(this IHubSource source, string repoId, string? revision = null, IProgress<HubProgress>? progress = null, CancellationToken ct = default)
        => source.FindCached(repoId, revision) ?? await source.DownloadAsync(repoId, revision, [], progress, ct);

    /// <summary>A client of the hub <paramref name="name"/> names (see <see cref="Get"/>) configured from the environment and the non-null arguments.</summary>
    public static IHubSource Create(string? name = null, string? endpoint = null, string? cacheDir = null, string? token = null)
    {
        var entry = Get(name);
        return entry.Create(entry.OptionsFromEnvironment(endpoint, cacheDir, token));
    }
}
