using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SharpFormer.Training;

/// <summary>A labelled text for sequence classification (line = 1-based line of the source file).</summary>
public sealed record ClassificationExample(string Text, string? Pair, string Label, int Line);

/// <summary>A positive text pair for contrastive training, with an optional hard negative of <see cref="Text"/> (line = 1-based line of the source file).</summary>
public sealed record TextPair(string Text, string Pair, string? Negative, int Line);

/// <summary>A sentence of words with one BIO tag each (line = the line of its first word).</summary>
public sealed record TaggedSentence(string[] Words, string[] Tags, int Line);

/// <summary>
/// Readers for the training data formats of <c>sharpformer train</c>. Every error names the file and the line.
/// </summary>
public static partial class TrainingData
{
    static string[] ReadAllLines(string path)
    {
        if (!File.Exists(path)) throw new SharpFormerException($"{path}: file not found");
        var text = Utf8Text.ReadAllText(path);   // invalid UTF-8 is an error naming the line, never silently replaced
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        if (string.IsNullOrWhiteSpace(text)) throw new SharpFormerException($"{path}: the file is empty");
        return text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
    }

    /// <summary>
    /// Plain text as documents of sentences: one sentence per line, documents separated by blank lines.
    /// A file without blank lines is one document per line.
    /// </summary>
    public static List<List<string>> ReadDocuments(string path)
    {
        var lines = ReadAllLines(path);
        int first = Array.FindIndex(lines, l => l.Trim().Length > 0), last = Array.FindLastIndex(lines, l => l.Trim().Length > 0);
        bool blankSeparated = first >= 0 && lines[first..last].Any(l => l.Trim().Length == 0);
        var docs = new List<List<string>>();
        var cur = new List<string>();
        foreach (var raw in lines)
        {
            var l = raw.Trim();
            if (l.Length == 0)
            {
                if (cur.Count > 0) { docs.Add(cur); cur = new(); }
                continue;
            }
            if (blankSeparated) cur.Add(l);
            else docs.Add([l]);
        }
        if (cur.Count > 0) docs.Add(cur);
        if (docs.Count == 0) throw new SharpFormerException($"{path}: the file has no text");
        return docs;
    }

    /// <summary>
    /// JSON Lines, one object per line: <c>{"text": ..., "label": ...}</c> (optional <c>"text_pair"</c>; the label may be a
    /// string or an integer id into <paramref name="labels"/>). Blank lines are skipped. With a label set, an unknown
    /// label is an error.
    /// </summary>
    public static List<ClassificationExample> ReadClassificationJsonl(string path, IReadOnlyList<string>? labels = null, string textKey = "text", string labelKey = "label")
    {
        var lines = ReadAllLines(path);
        var result = new List<ClassificationExample>();
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            int no = i + 1;
            var obj = ParseJsonLine(path, line, no);
            string text = StringField(obj, textKey) ?? throw new SharpFormerException($"{path}:{no}: no string \"{textKey}\" field");
            string? pair = StringField(obj, "text_pair");
            string label;
            switch (obj[labelKey])
            {
                case JsonValue lv when lv.GetValueKind() == JsonValueKind.String:
                    label = lv.GetValue<string>();
                    break;
                case JsonValue lv when lv.GetValueKind() == JsonValueKind.Number:
                    int id = lv.GetValue<int>();
                    if (labels is not null)
                    {
                        if ((uint)id >= (uint)labels.Count) throw new SharpFormerException($"{path}:{no}: label id {id} is outside [0, {labels.Count}) (labels: {string.Join(", ", labels)})");
                        label = labels[id];
                    }
                    else label = id.ToString();
                    break;
                default:
                    throw new SharpFormerException($"{path}:{no}: no \"{labelKey}\" field (a label name or id)");
            }
            if (labels is not null && !labels.Contains(label))
                throw new SharpFormerException($"{path}:{no}: unknown label \"{label}\" (labels: {string.Join(", ", labels)})");
            result.Add(new ClassificationExample(text, pair, label, no));
        }
        if (result.Count == 0) throw new SharpFormerException($"{path}: the file has no examples");
        return result;
    }

    static JsonObject ParseJsonLine(string path, string line, int no)
    {
        try { return JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new SharpFormerException($"{path}:{no}: malformed JSON line ({e.Message.Split('\n')[0]})"); }
    }

    static string? StringField(JsonObject obj, string key) =>
        obj[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>Plain text for unsupervised SimCSE: one sentence per line; blank lines are skipped.</summary>
    public static List<string> ReadSentences(string path)
    {
        var sentences = ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        if (sentences.Count == 0) throw new SharpFormerException($"{path}: the file has no text");
        return sentences;
    }

    /// <summary>True when the file's first non-blank line is a JSON object (pairs), false for plain text (SimCSE).</summary>
    public static bool LooksLikeJsonl(string path) =>
        ReadAllLines(path).FirstOrDefault(l => l.Trim().Length > 0)?.TrimStart().StartsWith('{') == true;

    /// <summary>
    /// Supervised pairs for contrastive training, JSON Lines <c>{"text": ..., "text_pair": ...}</c> with an optional
    /// <c>"label"</c> (0/1 or "0"/"1"; absent = 1) and an optional <c>"negative"</c>. A line labelled 0 is not a
    /// positive: it is skipped (counted in <paramref name="skipped"/>) or, with <paramref name="hardNegatives"/>, its
    /// text_pair becomes the hard negative of the positive pairs with the same text that have none of their own.
    /// Without <paramref name="hardNegatives"/> every "negative" field is ignored.
    /// </summary>
    public static List<TextPair> ReadTextPairs(string path, bool hardNegatives, out int skipped)
    {
        var lines = ReadAllLines(path);
        var pairs = new List<TextPair>();
        var negatives = new Dictionary<string, string>(StringComparer.Ordinal);
        skipped = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            int no = i + 1;
            var obj = ParseJsonLine(path, line, no);
            string text = StringField(obj, "text") ?? throw new SharpFormerException($"{path}:{no}: no string \"text\" field");
            string pair = StringField(obj, "text_pair") ?? throw new SharpFormerException($"{path}:{no}: no string \"text_pair\" field (a positive of \"text\")");
            bool positive = obj["label"] switch
            {
                null => true,
                JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out int n) && n is 0 or 1 => n == 1,
                JsonValue v when StringField(obj, "label") is "0" or "1" => v.GetValue<string>() == "1",
                var v => throw new SharpFormerException($"{path}:{no}: \"label\" must be 0 or 1, not {v.ToJsonString()}"),
            };
            if (!positive)
            {
                skipped++;
                if (hardNegatives) negatives.TryAdd(text, pair);
                continue;
            }
            string? negative = obj["negative"] is null ? null
                : StringField(obj, "negative") ?? throw new SharpFormerException($"{path}:{no}: \"negative\" must be a string");
            pairs.Add(new TextPair(text, pair, hardNegatives ? negative : null, no));
        }
        if (pairs.Count == 0) throw new SharpFormerException($"{path}: the file has no positive pairs");
        if (hardNegatives) pairs = pairs.Select(p => p.Negative is null && negatives.TryGetValue(p.Text, out var n) ? p with { Negative = n } : p).ToList();
        return pairs;
    }

    [GeneratedRegex(@"^(O|[BI]-.+)$")]
    private static partial Regex BioTag();

    /// <summary>
    /// CoNLL-style BIO: one "word TAG" per line (whitespace-separated, the tag is the last column), blank lines between
    /// sentences, <c>-DOCSTART-</c> lines skipped. Tags must be O, B-X or I-X; with a label set, unknown tags are errors.
    /// </summary>
    public static List<TaggedSentence> ReadBio(string path, IReadOnlyList<string>? labels = null)
    {
        var lines = ReadAllLines(path);
        var result = new List<TaggedSentence>();
        var words = new List<string>(); var tags = new List<string>();
        int start = 0;
        void Flush()
        {
            if (words.Count > 0) result.Add(new TaggedSentence(words.ToArray(), tags.ToArray(), start));
            words.Clear(); tags.Clear();
        }
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            int no = i + 1;
            if (line.Length == 0) { Flush(); continue; }
            if (line.StartsWith("-DOCSTART-", StringComparison.Ordinal)) continue;
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2) throw new SharpFormerException($"{path}:{no}: expected \"word TAG\", got \"{line}\"");
            var tag = parts[^1];
            if (!BioTag().IsMatch(tag)) throw new SharpFormerException($"{path}:{no}: tag \"{tag}\" is not BIO (O, B-TYPE or I-TYPE)");
            if (labels is not null && !labels.Contains(tag)) throw new SharpFormerException($"{path}:{no}: unknown label \"{tag}\" (labels: {string.Join(", ", labels)})");
            if (words.Count == 0) start = no;
            words.Add(parts[0]); tags.Add(tag);
        }
        Flush();
        if (result.Count == 0) throw new SharpFormerException($"{path}: the file has no tagged sentences");
        return result;
    }

    /// <summary>A label set from data: O first (when present), then the rest sorted by entity type, B before I.</summary>
    public static List<string> BioLabelSet(IEnumerable<string> tags)
    {
        var set = tags.Distinct().ToList();
        var rest = set.Where(t => t != "O").OrderBy(t => t[2..], StringComparer.Ordinal).ThenBy(t => t[0]).ToList();
        if (set.Contains("O")) rest.Insert(0, "O");
        return rest;
    }
}

/// <summary>Evaluation metrics of the train commands.</summary>
public static class Metrics
{
    /// <summary>The share of predictions equal to the gold labels (0 for no examples).</summary>
    public static double Accuracy(IReadOnlyList<int> gold, IReadOnlyList<int> pred) =>
        gold.Count == 0 ? 0 : gold.Zip(pred).Count(p => p.First == p.Second) / (double)gold.Count;

    /// <summary>Macro-F1 over the labels (sklearn's average="macro" over every label 0..classes-1; F1 of a label with no support and no predictions is 0).</summary>
    public static double MacroF1(IReadOnlyList<int> gold, IReadOnlyList<int> pred, int classes)
    {
        double sum = 0;
        for (int c = 0; c < classes; c++)
        {
            int tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < gold.Count; i++)
            {
                if (pred[i] == c && gold[i] == c) tp++;
                else if (pred[i] == c) fp++;
                else if (gold[i] == c) fn++;
            }
            sum += tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
        }
        return classes == 0 ? 0 : sum / classes;
    }

    /// <summary>
    /// Entity chunks (type, start, end exclusive) of a BIO tag sequence with seqeval's default (conlleval) rules:
    /// a chunk starts at B-X, at I-X after O or after a different type; it ends before O, B-, or a type change.
    /// </summary>
    public static List<(string Type, int Start, int End)> Chunks(IReadOnlyList<string> tags)
    {
        var chunks = new List<(string, int, int)>();
        string? type = null; int start = 0;
        for (int i = 0; i <= tags.Count; i++)
        {
            string tag = i < tags.Count ? tags[i] : "O";
            char p = tag.Length > 0 ? tag[0] : 'O';
            string t = tag.Length > 2 ? tag[2..] : "";
            bool end = type is not null && (p == 'O' || p == 'B' || t != type);
            if (end) { chunks.Add((type!, start, i)); type = null; }
            bool begin = p == 'B' || (p == 'I' && type is null);
            if (begin) { type = t; start = i; }
        }
        return chunks;
    }

    /// <summary>seqeval's micro-averaged entity precision, recall and F1 over sentences.</summary>
    public static (double Precision, double Recall, double F1) EntityScores(IReadOnlyList<IReadOnlyList<string>> gold, IReadOnlyList<IReadOnlyList<string>> pred)
    {
        int tp = 0, nGold = 0, nPred = 0;
        for (int s = 0; s < gold.Count; s++)
        {
            var g = Chunks(gold[s]).ToHashSet();
            var p = Chunks(pred[s]);
            nGold += g.Count; nPred += p.Count;
            tp += p.Count(g.Contains);
        }
        double prec = nPred == 0 ? 0 : tp / (double)nPred, rec = nGold == 0 ? 0 : tp / (double)nGold;
        return (prec, rec, prec + rec == 0 ? 0 : 2 * prec * rec / (prec + rec));
    }
}
