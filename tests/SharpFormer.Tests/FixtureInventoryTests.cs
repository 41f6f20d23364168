using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace SharpFormer.Tests;

/// <summary>
/// The committed fixtures are HuggingFace's files byte for byte: every file INVENTORY.md lists is present with the listed
/// size and SHA-256 (a line-ending conversion by git, a truncated copy or an edit fails here), and nothing unlisted sits
/// beside them.
/// </summary>
public sealed partial class FixtureInventoryTests
{
    [GeneratedRegex(@"^\| (?<path>[^|]+?) \| (?<bytes>\d+) \| `(?<sha>[0-9a-f]{64})` \|$")]
    private static partial Regex FileRow();

    static List<(string Path, long Bytes, string Sha256)> Inventory() =>
        File.ReadLines(SharedPaths.Fixture("INVENTORY.md"))
            .Select(l => FileRow().Match(l))
            .Where(m => m.Success)
            .Select(m => (m.Groups["path"].Value, long.Parse(m.Groups["bytes"].Value), m.Groups["sha"].Value))
            .ToList();

    [Fact]
    public void Every_listed_file_has_its_size_and_sha256()
    {
        var inventory = Inventory();
        Assert.True(inventory.Count >= 60, $"INVENTORY.md lists only {inventory.Count} files");
        var wrong = new List<string>();
        foreach (var (path, bytes, sha) in inventory)
        {
            var file = new FileInfo(SharedPaths.Fixture(path.Split('/')));
            if (!file.Exists) { wrong.Add($"{path}: missing"); continue; }
            if (file.Length != bytes) { wrong.Add($"{path}: {file.Length} bytes, listed {bytes}"); continue; }
            using var stream = file.OpenRead();
            string actual = Convert.ToHexStringLower(SHA256.HashData(stream));
            if (actual != sha) wrong.Add($"{path}: sha256 {actual}, listed {sha}");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void No_unlisted_file_sits_among_the_fixtures()
    {
        var listed = Inventory().Select(e => e.Path).ToHashSet();
        var present = Directory.EnumerateFiles(SharedPaths.Fixtures, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(SharedPaths.Fixtures, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(f => f is not ("README.md" or "INVENTORY.md"));
        Assert.All(present, f => Assert.Contains(f, listed));
    }
}
