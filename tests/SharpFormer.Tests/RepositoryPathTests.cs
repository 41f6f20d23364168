namespace SharpFormer.Tests;

/// <summary>
/// The repository names no folder of the machine it was written on: scripts, docs and code resolve paths from the
/// repository root, so a clone anywhere else works and its documentation is true.
/// </summary>
public sealed class RepositoryPathTests
{
    // Build output, git's own files and caches are not the repository's text.
    static readonly HashSet<string> SkippedFolders = [".git", "bin", "obj", "TestResults", ".cache", "node_modules"];
    static readonly HashSet<string> BinaryExtensions = [".safetensors", ".bin", ".png", ".onnx", ".nupkg"];

    static IEnumerable<string> TextFiles(DirectoryInfo dir)
    {
        foreach (var f in dir.EnumerateFiles())
            if (!BinaryExtensions.Contains(f.Extension) && f.Name != ".git") yield return f.FullName;   // a worktree's .git file
        foreach (var d in dir.EnumerateDirectories())
            if (!SkippedFolders.Contains(d.Name))
                foreach (var f in TextFiles(d)) yield return f;
    }

    [Fact]
    public void No_absolute_machine_path_is_committed()
    {
        // Assembled here so this file does not match itself.
        string[] roots = ["/" + "work/", "/" + "root/", "/" + "home/"];
        var files = TextFiles(new DirectoryInfo(SharedPaths.Repo)).ToList();
        Assert.Contains(files, f => f.EndsWith("make_checkpoints.py"));   // the walk reaches bench/e2e
        var found = new List<string>();
        foreach (var file in files)
        {
            int n = 0;
            foreach (var line in File.ReadLines(file))
            {
                n++;
                if (roots.Any(line.Contains)) found.Add($"{Path.GetRelativePath(SharedPaths.Repo, file)}:{n}: {line.Trim()}");
            }
        }
        Assert.True(found.Count == 0, string.Join("\n", found));
    }
}
