namespace SharpFormer.Tests;

/// <summary>
/// Locates the repository (the folder holding <c>SharpFormer.slnx</c>, found by walking up from the test assembly's
/// directory) and the golden fixtures committed in <c>tests/fixtures</c>: a clone runs its tests with nothing beside it.
/// </summary>
public static class SharedPaths
{
    private static readonly Lazy<string> RepoDir = new(Locate);

    /// <summary>The repository root (the folder holding <c>SharpFormer.slnx</c>).</summary>
    public static string Repo => RepoDir.Value;

    /// <summary>The golden fixtures, <c>tests/fixtures</c> (byte for byte HuggingFace's, checked against INVENTORY.md).</summary>
    public static string Fixtures => Path.Combine(Repo, "tests", "fixtures");

    /// <summary>A path below <c>tests/fixtures</c>, e.g. <c>Fixture("bert-tiny", "vocab.txt")</c>.</summary>
    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);

    private static string Locate()
    {
        string start = AppContext.BaseDirectory;
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SharpFormer.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException($"the repository was not found: no folder above {start} holds SharpFormer.slnx");
    }
}
