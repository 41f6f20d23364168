using System.Globalization;
using System.Text.RegularExpressions;

namespace SharpFormer.Training;

/// <summary>
/// A training run's output folder: <c>checkpoint-N</c> folders that are complete or absent (each is written into a hidden
/// temporary sibling and renamed into place), rotation to the newest N, and a final model whose
/// <c>model.safetensors</c> appears only once every other file of it is in place. Temporary folders a killed run left
/// behind are never taken for checkpoints and are removed when a run starts.
/// </summary>
public sealed partial class OutputFolder
{
    const string TempMarker = ".sftmp-";

    /// <summary>The folder (full path).</summary>
    public string Path { get; }

    /// <summary>Uses <paramref name="path"/>; nothing is created until something is saved.</summary>
    public OutputFolder(string path) => Path = System.IO.Path.GetFullPath(path);

    [GeneratedRegex(@"^checkpoint-(\d+)$")]
    private static partial Regex CheckpointName();

    /// <summary>The folder's complete checkpoints, oldest (lowest step) first.</summary>
    public IReadOnlyList<(int Step, string Dir)> Checkpoints()
    {
        if (!Directory.Exists(Path)) return [];
        var list = new List<(int, string)>();
        foreach (var d in Directory.EnumerateDirectories(Path))
        {
            var m = CheckpointName().Match(System.IO.Path.GetFileName(d));
            if (m.Success && int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int step)) list.Add((step, d));
        }
        return list.OrderBy(c => c.Item1).ToList();
    }

    /// <summary>True when the folder is missing or holds nothing but temporary folders of killed runs.</summary>
    public bool IsEmpty() =>
        !Directory.Exists(Path) || Directory.EnumerateFileSystemEntries(Path).All(e => IsTemporary(System.IO.Path.GetFileName(e)));

    static bool IsTemporary(string name) => name.StartsWith('.') && name.Contains(TempMarker, StringComparison.Ordinal);

    /// <summary>Removes the temporary folders and files an interrupted save left (they are never complete).</summary>
    public void RemoveLeftovers()
    {
        if (!Directory.Exists(Path)) return;
        foreach (var e in Directory.EnumerateFileSystemEntries(Path).Where(e => IsTemporary(System.IO.Path.GetFileName(e))))
        {
            if (Directory.Exists(e)) Directory.Delete(e, recursive: true);
            else File.Delete(e);
        }
    }

    /// <summary>
    /// Writes checkpoint <paramref name="step"/>: <paramref name="write"/> fills a temporary folder, which is then renamed to
    /// <c>checkpoint-N</c> (replacing an older one of the same step). Returns the checkpoint's path.
    /// </summary>
    public string SaveCheckpoint(int step, Action<string> write)
    {
        var dir = System.IO.Path.Combine(Path, "checkpoint-" + step.ToString(CultureInfo.InvariantCulture));
        var tmp = Fill(write);
        if (Directory.Exists(dir)) Delete(dir);
        Directory.Move(tmp, dir);
        return dir;
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints (0 = keep every one).</summary>
    public void Rotate(int keep)
    {
        if (keep <= 0) return;
        var all = Checkpoints();
        foreach (var (_, dir) in all.Take(Math.Max(0, all.Count - keep))) Delete(dir);
    }

    /// <summary>
    /// Writes the final model: <paramref name="write"/> fills a temporary folder, whose files are then moved into the output
    /// folder one by one (each rename atomic; sub-folders too), <c>model.safetensors</c> last; an older model.safetensors is removed first,
    /// so a model.safetensors in the folder always comes with the config and tokenizer files saved with it.
    /// </summary>
    public void SaveModel(Action<string> write)
    {
        var tmp = Fill(write);
        const string weights = "model.safetensors";
        File.Delete(System.IO.Path.Combine(Path, weights));
        // Sub-folders (sentence-transformers' 1_Pooling, ...) replace older ones of the same name, before the weights.
        foreach (var d in Directory.EnumerateDirectories(tmp))
        {
            var dst = System.IO.Path.Combine(Path, System.IO.Path.GetFileName(d));
            if (Directory.Exists(dst)) Delete(dst);
            Directory.Move(d, dst);
        }
        foreach (var f in Directory.EnumerateFiles(tmp).OrderBy(f => System.IO.Path.GetFileName(f) == weights))
            File.Move(f, System.IO.Path.Combine(Path, System.IO.Path.GetFileName(f)), overwrite: true);
        Directory.Delete(tmp, recursive: true);
    }

    /// <summary>A new temporary folder inside the output folder, filled by <paramref name="write"/> (removed again if that fails).</summary>
    string Fill(Action<string> write)
    {
        Directory.CreateDirectory(Path);
        var tmp = TempSibling("save");
        Directory.CreateDirectory(tmp);
        try { write(tmp); }
        catch
        {
            Directory.Delete(tmp, recursive: true);
            throw;
        }
        return tmp;
    }

    /// <summary>Renames a folder to a temporary name before deleting it, so a kill mid-way never leaves a partial checkpoint.</summary>
    void Delete(string dir)
    {
        var doomed = TempSibling("old");
        Directory.Move(dir, doomed);
        Directory.Delete(doomed, recursive: true);
    }

    string TempSibling(string what) =>
        System.IO.Path.Combine(Path, $".{what}{TempMarker}{Environment.ProcessId}-{Guid.NewGuid():N}");
}
