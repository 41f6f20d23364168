using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;
using SharpFormer.Tasks;

namespace SharpFormer.Cli.Commands;

/// <summary>One input record: its text(s) and, for JSONL input, the whole object (its other fields are copied to the output).</summary>
public sealed record TextRecord(string Text, string? Pair, JsonObject? Source, int Line);

/// <summary>
/// What every encoder-task command shares: <c>--input FILE</c> (one text per line, blank lines skipped, or JSONL with a
/// "text" field — and "text_pair" for pair tasks, or "A&lt;TAB&gt;B" lines), <c>--output FILE</c> (JSONL, written
/// atomically), a progress bar on stderr, <c>--seed</c> / <c>--batch-size</c>, and the "head untrained" notice.
/// </summary>
public static class TaskIo
{
    public static Option<string?> Input() => new("--input", "-i")
    {
        Description = "Read texts from FILE (UTF-8): one per line (blank lines skipped), or JSONL objects with a \"text\" field and, for pair tasks and classify, \"text_pair\" (pair tasks also take A<TAB>B lines).",
    };

    public static Option<string?> Output() => new Option<string?>("--output", "-o")
    {
        Description = "Write one JSON object per input line to FILE (JSONL, written atomically).",
    }.Checked();

    public static Option<int> Seed() => new("--seed")
    {
        Description = "Seed for heads the checkpoint lacks (they are randomly initialised, as HuggingFace does).",
        DefaultValueFactory = _ => 0,
    };

    public static Option<int> BatchSize() => new("--batch-size")
    {
        Description = "Texts per forward pass (inputs are sorted by length first, so padding is minimal).",
        DefaultValueFactory = _ => 16,
    };

    public static Argument<string[]> Texts(string description) => new("texts") { Description = description + " Put -- before texts that start with '-'.", Arity = ArgumentArity.ZeroOrMore };

    /// <summary>--errors: what a text file that is not valid UTF-8 gets (read with <see cref="ReplaceInvalid"/>).</summary>
    public static Option<string> Errors()
    {
        var o = new Option<string>("--errors")
        {
            Description = "Bytes of the input file that are not UTF-8: strict (an error naming the line) or replace (read as U+FFFD, as Python's errors=\"replace\").",
            HelpName = "strict|replace",
            DefaultValueFactory = _ => "strict",
        };
        o.AcceptOnlyFromAmong("strict", "replace");
        return o;
    }

    /// <summary>True when <c>--errors replace</c> was given.</summary>
    public static bool ReplaceInvalid(this ParseResult r, Option<string> errors) => r.GetValue(errors) == "replace";

    /// <summary>Reads a user's text file (--input, --file, --data); a file that is not UTF-8 gets an error saying how to opt in to replacement.</summary>
    public static T ReadUserFile<T>(Func<T> read)
    {
        try { return read(); }
        catch (InvalidUtf8Exception e) { throw new SharpFormerException($"{e.Message} (--errors replace reads it with U+FFFD in place of the bad bytes)"); }
    }

    /// <summary>
    /// The texts from the command line or from --input (not both). JSONL records may carry a "text_pair" (required when
    /// <paramref name="pairs"/>; for other tasks kept as <see cref="TextRecord.Pair"/> for the task to use or ignore).
    /// </summary>
    public static List<TextRecord> Read(string[]? args, string? inputFile, bool pairs = false, bool replaceInvalid = false)
    {
        args ??= [];
        if (inputFile is null)
        {
            if (pairs)
            {
                if (args.Length != 2) throw new SharpFormerException($"give two texts A B (got {args.Length}), or --input FILE");
                return [new TextRecord(args[0], args[1], null, 0)];
            }
            if (args.Length == 0) throw new SharpFormerException("no text given: pass texts as arguments or --input FILE");
            return args.Select((t, i) => new TextRecord(t, null, null, 0)).ToList();
        }
        if (args.Length > 0) throw new SharpFormerException("give texts either as arguments or with --input, not both");
        var lines = ReadUserFile(() => Utf8Text.ReadAllLines(inputFile, replaceInvalid));
        bool jsonl = lines.FirstOrDefault(l => l.Trim().Length > 0)?.TrimStart().StartsWith('{') ?? false;
        var records = new List<TextRecord>();
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Trim().Length == 0) continue;
            if (!jsonl)
            {
                var text = line.TrimEnd('\r');
                if (!pairs) { records.Add(new TextRecord(text, null, null, i + 1)); continue; }
                var parts = text.Split('\t');
                if (parts.Length != 2) throw new SharpFormerException($"{inputFile}:{i + 1}: expected two texts separated by a tab");
                records.Add(new TextRecord(parts[0], parts[1], null, i + 1));
                continue;
            }
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not an object"); }
            catch (JsonException e) { throw new SharpFormerException($"{inputFile}:{i + 1}: not a JSON object ({e.Message.Split('\n')[0]})"); }
            string? Field(string name) => o[name] switch
            {
                null => null,
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                _ => throw new SharpFormerException($"{inputFile}:{i + 1}: \"{name}\" must be a string"),
            };
            var t = Field("text") ?? throw new SharpFormerException($"{inputFile}:{i + 1}: no string field \"text\"");
            var pair = Field("text_pair");
            if (pairs && pair is null) throw new SharpFormerException($"{inputFile}:{i + 1}: no string field \"text_pair\"");
            records.Add(new TextRecord(t, pair, o, i + 1));
        }
        if (records.Count == 0) throw new SharpFormerException($"{inputFile}: no texts");
        return records;
    }

    /// <summary>
    /// Runs <paramref name="run"/> over the records in chunks (each chunk is length-sorted and batched by the task),
    /// with a progress bar on stderr when there are many, and returns the results in input order. A failing record
    /// is reported with its input line.
    /// </summary>
    public static List<TResult> Process<TResult>(IReadOnlyList<TextRecord> records, Func<IReadOnlyList<TextRecord>, TResult[]> run, int chunk = 256)
    {
        var results = new List<TResult>(records.Count);
        using var bar = records.Count > 1 && records.Any(r => r.Line > 0) ? new ProgressBar(records.Count) : null;
        for (int start = 0; start < records.Count; start += chunk)
        {
            var part = records.Skip(start).Take(chunk).ToList();
            try { results.AddRange(run(part)); }
            catch (SharpFormerException e) when (part.Count > 1 || part[0].Line > 0)
            {
                // Find the offending record for a precise message.
                foreach (var r in part)
                {
                    try { run([r]); }
                    catch (SharpFormerException one) { throw new SharpFormerException(r.Line > 0 ? $"input line {r.Line}: {one.Message}" : one.Message); }
                }
                throw new SharpFormerException(e.Message);
            }
            bar?.Report(results.Count);
        }
        return results;
    }

    /// <summary>Writes one JSON object per line, atomically; each keeps the input record's own fields (an "id", say).</summary>
    public static void WriteJsonl(string path, IReadOnlyList<TextRecord> records, IReadOnlyList<JsonObject> objects)
    {
        AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true);
            for (int i = 0; i < objects.Count; i++)
            {
                var o = objects[i];
                if (records[i].Source is JsonObject src)
                {
                    var merged = (JsonObject)src.DeepClone();
                    foreach (var (k, v) in o) merged[k] = v?.DeepClone();
                    o = merged;
                }
                w.Write(o.ToJsonString(JsonOutput.Options));
                w.Write('\n');
            }
        });
        Console.Error.WriteLine($"wrote {objects.Count} record(s) to {path}");
    }

    /// <summary>Prints the untrained-head warning (stderr) and returns the sentence the output should carry, or null.</summary>
    public static string? Untrained(EncoderSession session)
    {
        Warnings.ForInitialised(session.InitialisedParameters);
        return session.HeadUntrained
            ? "the head was randomly initialised (not in the checkpoint): predictions are meaningless until the model is fine-tuned"
            : null;
    }

    public static void Print(JsonNode node) => Console.WriteLine(node.ToJsonString(JsonOutput.Options));

    public static JsonArray Floats(IEnumerable<float> values) => TaskJson.Floats(values);

    /// <summary>Float scores as JSON numbers: float32 printed shortest-round-trip (no spurious double digits).</summary>
    public static double Round(float v) => TaskJson.Round(v);

    public static string Shorten(string s, int max = 60)
    {
        s = s.ReplaceLineEndings(" ");
        return s.Length <= max ? s : s[..(max - 1)] + "…";
    }
}

/// <summary>A one-line progress bar on stderr (redrawn in place on a terminal, a line every 10% otherwise).</summary>
public sealed class ProgressBar : IProgress<int>, IDisposable
{
    readonly int _total;
    readonly bool _tty = !Console.IsErrorRedirected;
    readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    int _lastDecile = -1;

    public ProgressBar(int total) { _total = total; Report(0); }

    public void Report(int done)
    {
        int pct = _total == 0 ? 100 : (int)(100L * done / _total);
        if (_tty)
        {
            int filled = pct / 5;
            Console.Error.Write($"\r[{new string('#', filled)}{new string('.', 20 - filled)}] {done}/{_total} texts  {_clock.Elapsed:mm\\:ss}");
        }
        else if (pct / 10 != _lastDecile)
        {
            _lastDecile = pct / 10;
            Console.Error.WriteLine($"progress: {done}/{_total} texts ({pct}%)");
        }
    }

    public void Dispose()
    {
        if (_tty) Console.Error.WriteLine();
    }
}
