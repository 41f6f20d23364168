using System.CommandLine;

namespace SharpFormer.Cli;

/// <summary>
/// Output files are checked when the command line is parsed, before any model is loaded or text processed: a missing
/// or read-only folder, or a path that is a folder, would otherwise fail only after all the work.
/// </summary>
public static class OutputFiles
{
    /// <summary>Adds the check to an option naming a file to write; returns the option.</summary>
    public static Option<T> Checked<T>(this Option<T> option)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.FirstOrDefault()?.Value is { Length: > 0 } path && Problem(path) is { } problem) result.AddError(problem);
        });
        return option;
    }

    /// <summary>Why <paramref name="path"/> cannot be written, or null when it can.</summary>
    public static string? Problem(string path)
    {
        if (Directory.Exists(path)) return $"{path} is a folder, not a file";
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir)) return $"{path}: output folder {dir} does not exist";
        var probe = Path.Combine(dir, $".sharpformer-write-test-{Environment.ProcessId}");
        try { using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { } }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"{path}: cannot write to folder {dir}"; }
        return null;
    }

    /// <summary>
    /// The format of a report or image: <paramref name="format"/> if given, else the one the --out extension names, else
    /// text. An --out extension that names another format (or none of them: x.jpg) is an error, so a text report never
    /// lands in a file whose name promises an image.
    /// </summary>
    public static string Format(string? format, string? outPath)
    {
        var ext = Path.GetExtension(outPath ?? "").ToLowerInvariant();
        var named = FormatOf(ext);
        var fmt = format ?? named ?? "text";
        if (ext.Length > 0 && named != fmt)
            throw new SharpFormerException($"{outPath}: the extension {ext} does not match the format {fmt} (use {ExtensionOf(fmt)}, or --format for the format you want)");
        return fmt;
    }

    static string? FormatOf(string ext) => ext switch
    {
        ".png" => "png", ".svg" => "svg", ".html" or ".htm" => "html", ".txt" => "text", _ => null,
    };

    static string ExtensionOf(string format) => format == "text" ? ".txt" : "." + format;
}
