using System.Text;

namespace SharpFormer.Tokenizers;

/// <summary>A word produced by <see cref="BasicTokenizer"/>: its text and, per code point, the original span it came from.</summary>
internal readonly record struct BasicToken(string Text, TrackedChar[] Chars)
{
    public int Start => Chars.Length == 0 ? 0 : Chars.Min(c => c.Start);
    public int End => Chars.Length == 0 ? 0 : Chars.Max(c => c.End);
}

/// <summary>
/// HuggingFace transformers 4.40 <c>BasicTokenizer.tokenize</c>, step for step: clean text (drop NUL, U+FFFD and
/// category C* except \t\n\r; Zs/\t/\n/\r → space), pad CJK ideographs with spaces, NFC, split on Python whitespace,
/// lower-case + strip accents (NFD, drop Mn) unless the word is in never_split, split off punctuation, and drop
/// empty words. All character data is Unicode 14.0 (see <see cref="PyUnicode14"/>). Every output code point keeps
/// the [start, end) UTF-16 span of the original text it came from.
/// </summary>
internal sealed class BasicTokenizer
{
    public bool DoLowerCase { get; }
    public bool TokenizeChineseChars { get; }
    /// <summary>null: follow <see cref="DoLowerCase"/> (as the original BERT); true/false: always/never strip accents.</summary>
    public bool? StripAccents { get; }
    public bool DoSplitOnPunc { get; }
    /// <summary>The tokenizer's own never_split (from the config); <see cref="Tokenize"/> adds the special tokens to it.</summary>
    public IReadOnlySet<string> NeverSplit { get; }

    public BasicTokenizer(bool doLowerCase = true, IEnumerable<string>? neverSplit = null, bool tokenizeChineseChars = true,
        bool? stripAccents = null, bool doSplitOnPunc = true)
    {
        DoLowerCase = doLowerCase;
        NeverSplit = new HashSet<string>(neverSplit ?? [], StringComparer.Ordinal);
        TokenizeChineseChars = tokenizeChineseChars;
        StripAccents = stripAccents;
        DoSplitOnPunc = doSplitOnPunc;
    }

    /// <summary>Tokenizes a piece of text given as tracked code points. <paramref name="extraNeverSplit"/> is united with <see cref="NeverSplit"/>.</summary>
    public List<BasicToken> Tokenize(List<TrackedChar> text, IReadOnlySet<string>? extraNeverSplit = null)
    {
        // _clean_text and _tokenize_chinese_chars in one pass.
        var cleaned = new List<TrackedChar>(text.Count + 8);
        foreach (var c in text)
        {
            int cp = c.Cp;
            if (cp == 0 || cp == 0xFFFD || PyUnicode14.IsControl(cp)) continue;
            if (PyUnicode14.IsWhitespace(cp))
            {
                cleaned.Add(new TrackedChar(' ', c.Start, c.End));
            }
            else if (TokenizeChineseChars && PyUnicode14.IsChineseChar(cp))
            {
                cleaned.Add(new TrackedChar(' ', c.Start, c.Start));
                cleaned.Add(c);
                cleaned.Add(new TrackedChar(' ', c.End, c.End));
            }
            else
            {
                cleaned.Add(c);
            }
        }

        var normalized = PyUnicode14.Nfc(cleaned);

        var output = new List<BasicToken>();
        var word = new List<TrackedChar>();
        var sb = new StringBuilder();
        foreach (var chars in SplitOnPythonSpace(normalized))
        {
            string text0 = ToText(chars, sb);
            bool keep = NeverSplit.Contains(text0) || (extraNeverSplit?.Contains(text0) ?? false);
            List<TrackedChar> token = chars;
            if (!keep)
            {
                if (DoLowerCase)
                {
                    var lowered = new List<TrackedChar>(token.Count + 1);
                    foreach (var c in token) PyUnicode14.AppendLower(c, lowered);
                    token = lowered;
                    if (StripAccents != false) token = RunStripAccents(token);
                }
                else if (StripAccents == true)
                {
                    token = RunStripAccents(token);
                }
            }

            if (!keep && DoSplitOnPunc && (NeverSplit.Count > 0 || extraNeverSplit is { Count: > 0 }))
            {
                // _run_split_on_punc checks never_split again, on the lower-cased / accent-stripped word.
                string text1 = ToText(token, sb);
                keep = NeverSplit.Contains(text1) || (extraNeverSplit?.Contains(text1) ?? false);
            }

            if (keep || !DoSplitOnPunc)
            {
                // _run_split_on_punc returns [text] for never_split words; the final whitespace_tokenize still runs.
                foreach (var part in SplitOnPythonSpace(token)) output.Add(new BasicToken(ToText(part, sb), part.ToArray()));
                continue;
            }

            // _run_split_on_punc, then the final whitespace_tokenize(" ".join(...)) which drops empty words.
            word.Clear();
            foreach (var c in token)
            {
                if (PyUnicode14.IsPunctuation(c.Cp))
                {
                    Flush(word, output, sb);
                    output.Add(new BasicToken(ToText([c], sb), [c]));
                }
                else if (PyUnicode14.IsPythonSpace(c.Cp))
                {
                    Flush(word, output, sb);
                }
                else
                {
                    word.Add(c);
                }
            }
            Flush(word, output, sb);
        }
        return output;
    }

    private static void Flush(List<TrackedChar> word, List<BasicToken> output, StringBuilder sb)
    {
        if (word.Count == 0) return;
        output.Add(new BasicToken(ToText(word, sb), word.ToArray()));
        word.Clear();
    }

    private static List<TrackedChar> RunStripAccents(List<TrackedChar> token)
    {
        var nfd = PyUnicode14.Nfd(token);
        bool any = false;
        foreach (var c in nfd) if (c.Cp >= 0x300 && PyUnicode14.IsNonSpacingMark(c.Cp)) { any = true; break; }
        if (!any) return nfd;
        var output = new List<TrackedChar>(nfd.Count);
        foreach (var c in nfd) if (!PyUnicode14.IsNonSpacingMark(c.Cp)) output.Add(c);
        return output;
    }

    /// <summary>Python's <c>str.split()</c>: runs of non-space code points.</summary>
    internal static IEnumerable<List<TrackedChar>> SplitOnPythonSpace(List<TrackedChar> text)
    {
        int i = 0;
        while (i < text.Count)
        {
            while (i < text.Count && PyUnicode14.IsPythonSpace(text[i].Cp)) i++;
            if (i >= text.Count) yield break;
            int start = i;
            while (i < text.Count && !PyUnicode14.IsPythonSpace(text[i].Cp)) i++;
            yield return text.GetRange(start, i - start);
        }
    }

    internal static string ToText(IReadOnlyList<TrackedChar> chars, StringBuilder sb)
    {
        sb.Clear();
        foreach (var c in chars) AppendCodePoint(sb, c.Cp);
        return sb.ToString();
    }

    /// <summary>Appends a code point as UTF-16 (lone surrogates, which Python strings may hold, are kept as they are).</summary>
    internal static void AppendCodePoint(StringBuilder sb, int cp)
    {
        if (cp < 0x10000) sb.Append((char)cp);
        else
        {
            cp -= 0x10000;
            sb.Append((char)(0xD800 + (cp >> 10)));
            sb.Append((char)(0xDC00 + (cp & 0x3FF)));
        }
    }

    /// <summary>Code points of a UTF-16 string with their spans; a lone surrogate is its own code point, as in Python.</summary>
    internal static List<TrackedChar> Decode(string text, int offset = 0, int length = -1)
    {
        if (length < 0) length = text.Length - offset;
        var output = new List<TrackedChar>(length);
        int end = offset + length;
        for (int i = offset; i < end; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < end && char.IsLowSurrogate(text[i + 1]))
            {
                output.Add(new TrackedChar(char.ConvertToUtf32(c, text[i + 1]), i, i + 2));
                i++;
            }
            else
            {
                output.Add(new TrackedChar(c, i, i + 1));
            }
        }
        return output;
    }
}
