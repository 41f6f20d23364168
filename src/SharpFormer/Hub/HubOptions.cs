namespace SharpFormer.Hub;

/// <summary>
/// Where a hub client (<see cref="IHubSource"/>) talks to and caches into; <see cref="FromEnvironment"/> resolves the
/// HuggingFace Hub's as huggingface_hub does:
/// <c>HF_ENDPOINT</c>, <c>HF_HUB_CACHE</c> &gt; <c>$HF_HOME/hub</c> &gt; <c>$XDG_CACHE_HOME/huggingface/hub</c> &gt;
/// <c>~/.cache/huggingface/hub</c>, <c>HF_TOKEN</c> &gt; <c>$HF_HOME/token</c>, <c>HF_HUB_OFFLINE</c>.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The Hub's base URL, without a trailing slash (default https://huggingface.co; mirrors via HF_ENDPOINT).</summary>
    public required string Endpoint { get; init; }
    /// <summary>The hub cache folder holding <c>models--ORG--NAME</c> folders.</summary>
    public required string CacheDir { get; init; }
    /// <summary>Bearer token for private and gated models, or null.</summary>
    public string? Token { get; init; }
    /// <summary>Use only the cache: no request is made.</summary>
    public bool Offline { get; init; }
    /// <summary>Files downloaded at once.</summary>
    public int Parallelism { get; init; } = 4;

    /// <summary>The options the environment gives, each overridden by an explicit (non-null) argument.</summary>
    public static HubOptions FromEnvironment(string? endpoint = null, string? cacheDir = null, string? token = null)
    {
        var url = CheckEndpoint(endpoint ?? Env("HF_ENDPOINT") ?? "https://huggingface.co", "HF_ENDPOINT");
        var home = Env("HF_HOME") ?? Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(UserHome(), ".cache"), "huggingface");
        return new HubOptions
        {
            Endpoint = url,
            CacheDir = cacheDir ?? Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub"),
            Token = token ?? Env("HF_TOKEN") ?? Env("HUGGING_FACE_HUB_TOKEN") ?? ReadTokenFile(Path.Combine(home, "token")),
            Offline = IsTrue(Env("HF_HUB_OFFLINE")),
        };
    }

    /// <summary>An environment variable's value, null when unset or empty.</summary>
    internal static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    /// <summary><paramref name="url"/> without a trailing slash, if it is an http(s) URL; else a one-line error naming <paramref name="variable"/>.</summary>
    internal static string CheckEndpoint(string url, string variable)
    {
        url = url.TrimEnd('/');
        if (!Uri.TryCreate(url, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https"))
            throw new SharpFormerException($"the hub endpoint '{url}' (--endpoint or {variable}) is not an http(s) URL");
        return url;
    }

    /// <summary>huggingface_hub's booleans: 1, ON, YES or TRUE in any case.</summary>
    public static bool IsTrue(string? value) => value?.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    internal static string UserHome() => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    internal static string? ReadTokenFile(string path) => File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } t ? t : null;
}
