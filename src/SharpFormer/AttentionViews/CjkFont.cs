using SkiaSharp;

namespace SharpFormer.AttentionViews;

/// <summary>
/// Finds a font on the system that draws Chinese (and Latin) text, for the token labels of the images.
/// Order: <c>SHARPFORMER_CJK_FONT</c> (a path, optionally "path#faceIndex"), well-known Debian/Ubuntu paths
/// (Noto Sans CJK from <c>fonts-noto-cjk</c>, Simplified Chinese face 2 of the .ttc), then any font file below the
/// usual font folders that has glyphs for 中文.
/// </summary>
public static class CjkFont
{
    /// <summary>The Debian package that provides the default font (Noto Sans CJK); named in the error when no font is found.</summary>
    public const string Package = "fonts-noto-cjk";
    /// <summary>The environment variable that names a font file to use ("path" or "path#faceIndex").</summary>
    public const string EnvironmentVariable = "SHARPFORMER_CJK_FONT";

    static readonly (string Path, int Index)[] Known =
    [
        ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
        ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
        ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
        ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
        ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
        ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
        ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
        ("/System/Library/Fonts/PingFang.ttc", 0),
        ("C:\\Windows\\Fonts\\msyh.ttc", 0),
    ];

    /// <summary>The folders searched for a font with Chinese glyphs when no well-known path exists: the system's and the user's font folders.</summary>
    public static IReadOnlyList<string> DefaultSearchDirs()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return ["/usr/share/fonts", "/usr/local/share/fonts", Path.Combine(home, ".local/share/fonts"), Path.Combine(home, ".fonts")];
    }

    static readonly Lazy<(SKTypeface Typeface, string Path, int Index)> Default = new(() => Load(null, useKnownPaths: true));

    /// <summary>The CJK typeface (found once per process).</summary>
    public static SKTypeface Typeface => Default.Value.Typeface;
    /// <summary>The bold face of the same family when its file sits beside the regular one (Noto's *-Bold.ttc), else the regular face.</summary>
    public static SKTypeface BoldTypeface => Bold.Value;
    static readonly Lazy<SKTypeface> Bold = new(() =>
    {
        var (regular, path, index) = Default.Value;
        var boldPath = path.Replace("Regular", "Bold", StringComparison.Ordinal);
        if (boldPath != path && File.Exists(boldPath) && SKTypeface.FromFile(boldPath, index) is { } b && HasCjk(b)) return b;
        return regular;
    });
    /// <summary>Where the typeface came from: "path#index".</summary>
    public static string Source => $"{Default.Value.Path}#{Default.Value.Index}";

    /// <summary>Finds a CJK font; throws a <see cref="SharpFormerException"/> naming the font package when none is found.</summary>
    /// <param name="searchDirs">Folders to search (default: the usual font folders).</param>
    /// <param name="useKnownPaths">Whether the environment variable and well-known paths are tried first.</param>
    public static (SKTypeface Typeface, string Path, int Index) Load(IEnumerable<string>? searchDirs, bool useKnownPaths = true)
    {
        if (useKnownPaths)
        {
            var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrEmpty(env))
            {
                var (p, idx) = ParseSpec(env);
                if (!File.Exists(p)) throw new SharpFormerException($"{EnvironmentVariable}={env}: no such font file");
                return TryFace(p, idx) is { } tf ? (tf.Typeface, p, tf.Index) : throw new SharpFormerException($"{EnvironmentVariable}={env}: the font has no Chinese glyphs");
            }
            foreach (var (p, idx) in Known)
                if (File.Exists(p) && TryFace(p, idx) is { } tf) return (tf.Typeface, p, tf.Index);
        }
        var dirs = (searchDirs ?? DefaultSearchDirs()).Where(Directory.Exists).ToList();
        var files = dirs.SelectMany(d => SafeEnumerate(d))
            .Where(f => f.EndsWith(".ttc", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".otf", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".ttf", StringComparison.OrdinalIgnoreCase))
            .OrderByDescending(f => LooksCjk(Path.GetFileName(f)))
            .ThenBy(f => f, StringComparer.Ordinal)
            .Take(2000);
        foreach (var f in files)
            if (TryFace(f, null) is { } tf) return (tf.Typeface, f, tf.Index);
        throw new SharpFormerException(
            $"no font with Chinese glyphs found (searched {string.Join(", ", dirs.Count > 0 ? dirs : (searchDirs ?? DefaultSearchDirs()))}): " +
            $"install Debian's {Package} package (apt-get install {Package}) or set {EnvironmentVariable}=/path/to/font.ttc");
    }

    static (string, int?) ParseSpec(string spec)
    {
        int hash = spec.LastIndexOf('#');
        return hash > 0 && int.TryParse(spec[(hash + 1)..], out var i) ? (spec[..hash], i) : (spec, null);
    }

    static bool LooksCjk(string name) =>
        new[] { "CJK", "wqy", "Hei", "Song", "Ming", "Han", "Fallback", "SC", "Gothic", "Kai" }.Any(k => name.Contains(k, StringComparison.OrdinalIgnoreCase));

    static IEnumerable<string> SafeEnumerate(string dir)
    {
        try { return Directory.EnumerateFiles(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }).ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>The face of a font file that draws Chinese: the given index, else a Simplified Chinese face, else the first that has the glyphs.</summary>
    static (SKTypeface Typeface, int Index)? TryFace(string path, int? index)
    {
        if (index is int fixedIndex)
        {
            var t = SKTypeface.FromFile(path, fixedIndex);
            if (t is not null && HasCjk(t)) return (t, fixedIndex);
            t?.Dispose();
        }
        (SKTypeface, int)? first = null;
        for (int i = 0; i < 16; i++)
        {
            var t = SKTypeface.FromFile(path, i);
            if (t is null) break;
            if (!HasCjk(t)) { t.Dispose(); continue; }
            var family = t.FamilyName ?? "";
            if (family.EndsWith(" SC", StringComparison.Ordinal) || family.Contains("SC ", StringComparison.Ordinal))
            {
                if (first is { } f) f.Item1.Dispose();
                return (t, i);
            }
            if (first is null) first = (t, i); else t.Dispose();
        }
        return first;
    }

    static bool HasCjk(SKTypeface t) => t.ContainsGlyphs("中文天气A");
}
