namespace SharpFormer.Tests;

/// <summary>
/// Locates the read-only shared folder (<c>&lt;repo&gt;/../shared</c>) by walking up from the test assembly's
/// directory until a folder holding <c>shared/fixtures</c> is found.
/// </summary>
public static class SharedPaths
{
    private static readonly Lazy<string> SharedDir = new(Locate);

    /// <summary>The <c>shared</c> folder (sibling of the repository root).</summary>
    public static string Shared => SharedDir.Value;

    /// <summary>The <c>shared/fixtures</c> folder.</summary>
    public static string Fixtures => Path.Combine(Shared, "fixtures");

    /// <summary>A path below <c>shared/fixtures</c>, e.g. <c>Fixture("bert-tiny", "vocab.txt")</c>.</summary>
    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);

    private static string Locate()
    {
        string start = AppContext.BaseDirectory;
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "fixtures"))) return candidate;
        }
        throw new DirectoryNotFoundException(
            $"shared/fixtures not found: walked up from {start} looking for a folder that holds shared/fixtures " +
            "(expected at <repo>/../shared, next to the repository root)");
    }
}
