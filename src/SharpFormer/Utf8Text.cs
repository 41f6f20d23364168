using System.Text;
using System.Text.Unicode;

namespace SharpFormer;

/// <summary>A file (or a part of one) that is not valid UTF-8: names the file and the line of the first bad byte.</summary>
public sealed class InvalidUtf8Exception(string source, int line)
    : SharpFormerException($"{source}: line {line} is not valid UTF-8")
{
    /// <summary>The file (or part of a file) that holds the bad bytes.</summary>
    public string FileName { get; } = source;
    /// <summary>1-based line of the first invalid byte.</summary>
    public int Line { get; } = line;
}

/// <summary>
/// Reads text and JSON files strictly as UTF-8. .NET's readers replace invalid bytes with U+FFFD silently (a line of
/// garbage then gets classified) and System.Text.Json fails on them only when a string is read, with an
/// InvalidOperationException: every file the library reads as text or JSON goes through here instead.
/// </summary>
public static class Utf8Text
{
    static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>Throws <see cref="InvalidUtf8Exception"/> naming <paramref name="source"/> unless <paramref name="bytes"/> are valid UTF-8.</summary>
    public static void Require(ReadOnlySpan<byte> bytes, string source)
    {
        if (Utf8.IsValid(bytes)) return;
        int at = 0;
        while (Rune.DecodeFromUtf8(bytes[at..], out _, out int used) == System.Buffers.OperationStatus.Done) at += used;
        throw new InvalidUtf8Exception(source, bytes[..at].Count((byte)'\n') + 1);
    }

    /// <summary>The file's bytes, checked to be UTF-8, without a byte-order mark (for the JSON parsers).</summary>
    public static byte[] ReadAllBytes(string path)
    {
        var bytes = Read(path);
        Require(bytes, path);
        return bytes.AsSpan().StartsWith(Bom) ? bytes[Bom.Length..] : bytes;
    }

    /// <summary>The file's text; invalid UTF-8 is an error unless <paramref name="replaceInvalid"/> (then U+FFFD, as .NET's default).</summary>
    public static string ReadAllText(string path, bool replaceInvalid = false)
    {
        var bytes = Read(path);
        if (!replaceInvalid) Require(bytes, path);
        var span = bytes.AsSpan();
        return Encoding.UTF8.GetString(span.StartsWith(Bom) ? span[Bom.Length..] : span);
    }

    /// <summary>The file's lines (split as <see cref="File.ReadAllLines(string)"/> does), read as <see cref="ReadAllText"/>.</summary>
    public static string[] ReadAllLines(string path, bool replaceInvalid = false)
    {
        using var reader = new StringReader(ReadAllText(path, replaceInvalid));
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines.ToArray();
    }

    /// <summary>A file that must exist: a folder or a missing path is a one-line error.</summary>
    static byte[] Read(string path)
    {
        if (Directory.Exists(path)) throw new SharpFormerException($"{path} is a folder, not a file");
        if (!File.Exists(path)) throw new SharpFormerException($"{path}: file not found");
        return File.ReadAllBytes(path);
    }
}
