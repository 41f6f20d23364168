using System.Text;

namespace SharpFormer.Tokenizers;

/// <summary>A piece of a text segment: its (possibly rewritten) text and the [start, end) it came from in the segment.</summary>
internal readonly record struct Piece(string Text, int Start, int End)
{
    /// <summary>The sub-piece [s, e) of <see cref="Text"/>; offsets stay exact while the text is the segment's own.</summary>
    public Piece Sub(int s, int e) => Text.Length == End - Start ? new(Text[s..e], Start + s, Start + e) : new(Text[s..e], Start, End);
}

/// <summary>A step of HuggingFace <c>tokenizers</c>' pre-tokenization: rewrites the list of pieces in place.</summary>
internal abstract class PreTokenizer
{
    public abstract void Apply(List<Piece> pieces);
}

/// <summary>What Split does with the pieces its pattern matches (tokenizers' <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary><c>Split</c>: cuts every piece at the matches of a pattern, keeping the matches as the behaviour says.</summary>
internal sealed class SplitPreTokenizer(CodePointRegex pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override void Apply(List<Piece> pieces)
    {
        var output = new List<Piece>(pieces.Count * 4);
        var matches = new List<(int Start, int End)>();
        var parts = new List<(int Start, int End, bool Match)>();
        foreach (var piece in pieces)
        {
            pattern.Matches(piece.Text, matches);
            parts.Clear();
            int prev = 0;
            foreach (var (s, e) in matches)
            {
                if (s > prev) parts.Add((prev, s, invert));
                parts.Add((s, e, !invert));
                prev = e;
            }
            if (prev < piece.Text.Length) parts.Add((prev, piece.Text.Length, invert));
            foreach (var (s, e) in Arrange(parts))
                if (e > s) output.Add(piece.Sub(s, e));
        }
        pieces.Clear();
        pieces.AddRange(output);
    }

    // The folds of tokenizers' NormalizedString::split, behaviour by behaviour.
    IEnumerable<(int Start, int End)> Arrange(List<(int Start, int End, bool Match)> parts)
    {
        var acc = new List<(int Start, int End)>(parts.Count);
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Removed:
                return parts.Where(p => !p.Match).Select(p => (p.Start, p.End));
            case SplitBehavior.Isolated:
                return parts.Select(p => (p.Start, p.End));
            case SplitBehavior.MergedWithPrevious:
                foreach (var (s, e, match) in parts)
                {
                    if (match && !previousMatch && acc.Count > 0) acc[^1] = (acc[^1].Start, e);
                    else acc.Add((s, e));
                    previousMatch = match;
                }
                return acc;
            case SplitBehavior.MergedWithNext:
                for (int i = parts.Count - 1; i >= 0; i--)
                {
                    var (s, e, match) = parts[i];
                    if (match && !previousMatch && acc.Count > 0) acc[^1] = (s, acc[^1].End);
                    else acc.Add((s, e));
                    previousMatch = match;
                }
                acc.Reverse();
                return acc;
            default:                                            // Contiguous
                foreach (var (s, e, match) in parts)
                {
                    if (match == previousMatch && acc.Count > 0) acc[^1] = (acc[^1].Start, e);
                    else acc.Add((s, e));
                    previousMatch = match;
                }
                return acc;
        }
    }
}

/// <summary>
/// <c>ByteLevel</c>: optionally puts a space before every piece that does not start with one and splits with GPT-2's
/// regex; the mapping of bytes to the byte-level alphabet happens when the BPE model encodes each piece.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    /// <summary>GPT-2's pattern, what ByteLevel splits with when <c>use_regex</c> is true.</summary>
    static readonly CodePointRegex Gpt2 = new(Gpt2Tokenizer.Pattern, "ByteLevel");
    readonly SplitPreTokenizer? _split = useRegex ? new SplitPreTokenizer(Gpt2, SplitBehavior.Isolated, false) : null;

    public override void Apply(List<Piece> pieces)
    {
        if (addPrefixSpace)
            for (int i = 0; i < pieces.Count; i++)
                if (!pieces[i].Text.StartsWith(' ')) pieces[i] = pieces[i] with { Text = " " + pieces[i].Text };
        _split?.Apply(pieces);
    }
}

/// <summary><c>Sequence</c>: the steps in order.</summary>
internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> steps) : PreTokenizer
{
    public override void Apply(List<Piece> pieces)
    {
        foreach (var step in steps) step.Apply(pieces);
    }
}

/// <summary>
/// Unicode normalisation as Python's <c>unicodedata</c> 14.0 does it (the project's tables: with InvariantGlobalization
/// .NET's <c>string.Normalize</c> leaves non-ASCII text alone). Lone surrogates pass through.
/// </summary>
internal static class Normalizers
{
    /// <summary>NFC.</summary>
    public static string Nfc(string s) => Apply(s, PyUnicode14.Nfc);

    /// <summary>NFD.</summary>
    public static string Nfd(string s) => Apply(s, PyUnicode14.Nfd);

    static string Apply(string s, Func<List<TrackedChar>, List<TrackedChar>> form)
    {
        bool ascii = true;
        foreach (var c in s) if (c >= 0x80) { ascii = false; break; }
        if (ascii) return s;
        var cps = new List<TrackedChar>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            int cp = char.IsSurrogatePair(s, i) ? char.ConvertToUtf32(s[i], s[++i]) : s[i];
            cps.Add(new TrackedChar(cp, 0, 0));
        }
        var sb = new StringBuilder(s.Length);
        foreach (var c in form(cps))
        {
            if (c.Cp >= 0x10000) sb.Append(char.ConvertFromUtf32(c.Cp));
            else sb.Append((char)c.Cp);
        }
        return sb.ToString();
    }
}
