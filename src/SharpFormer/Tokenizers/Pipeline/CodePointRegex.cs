using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SharpFormer.Tokenizers;

/// <summary>
/// A pre-tokenization regex that matches code points as Python's <c>regex</c> and Rust's <c>onig</c> do. .NET's
/// engine sees UTF-16 units, so a character outside the BMP (𠀀, 😀) would be two <c>Cs</c> surrogates that
/// <c>\p{L}</c> misses; a text holding any is matched in a stand-in string with one BMP character of the same
/// general category per code point, and the matches are mapped back. Possessive quantifiers (<c>?+ *+ ++</c>),
/// which .NET lacks, become atomic groups.
/// </summary>
internal sealed class CodePointRegex
{
    readonly Regex _regex;

    /// <summary>Compiles <paramref name="pattern"/>; a one-line error naming <paramref name="where"/> when .NET cannot.</summary>
    public CodePointRegex(string pattern, string where)
    {
        try { _regex = new Regex(TranslatePossessive(pattern), RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { throw new SharpFormerException($"{where}: regex {pattern} is not supported ({e.Message.Split('\n')[0]})"); }
    }

    /// <summary>The [start, end) UTF-16 ranges of every non-overlapping match, left to right.</summary>
    public void Matches(string text, List<(int Start, int End)> result)
    {
        result.Clear();
        if (!HasSurrogate(text))
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch()) result.Add((m.Index, m.Index + m.Length));
            return;
        }
        // index in the stand-in string → UTF-16 index in the text (one extra entry for the end)
        var map = new List<int>(text.Length + 1);
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            map.Add(i);
            if (char.IsSurrogatePair(text, i))
            {
                sb.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text, i))));
                i += 2;
            }
            else sb.Append(text[i++]);
        }
        map.Add(text.Length);
        for (var m = _regex.Match(sb.ToString()); m.Success; m = m.NextMatch()) result.Add((map[m.Index], map[m.Index + m.Length]));
    }

    static bool HasSurrogate(string s)
    {
        foreach (var c in s) if (char.IsSurrogate(c)) return true;
        return false;
    }

    /// <summary>A BMP character of each general category that no tokenizer pattern names literally.</summary>
    internal static char StandIn(UnicodeCategory c) => c switch
    {
        UnicodeCategory.UppercaseLetter => '\u0410',
        UnicodeCategory.LowercaseLetter => '\u0430',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u4E00',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00B6',
        UnicodeCategory.MathSymbol => '\u00AC',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u00B4',
        UnicodeCategory.OtherSymbol => '\u00A9',
        UnicodeCategory.Format => '\u200B',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378',                                          // unassigned
    };

    /// <summary>Rewrites <c>X?+</c>, <c>X*+</c>, <c>X++</c>, <c>X{n,m}+</c> as <c>(?&gt;X?)</c> … for .NET.</summary>
    internal static string TranslatePossessive(string p)
    {
        if (!p.Contains("+", StringComparison.Ordinal)) return p;
        var sb = new StringBuilder(p.Length + 8);
        var atomStarts = new Stack<int>();                      // output index where each open group started
        int lastAtom = -1;                                      // output index where the last complete atom starts
        for (int i = 0; i < p.Length; i++)
        {
            char c = p[i];
            if (c == '\\' && i + 1 < p.Length)
            {
                lastAtom = sb.Length;
                sb.Append(c).Append(p[++i]);
                if ((p[i] is 'p' or 'P') && i + 1 < p.Length && p[i + 1] == '{')
                    while (i + 1 < p.Length) { sb.Append(p[++i]); if (p[i] == '}') break; }
                continue;
            }
            if (c == '[')
            {
                lastAtom = sb.Length;
                sb.Append(c);
                if (i + 1 < p.Length && p[i + 1] == '^') sb.Append(p[++i]);
                if (i + 1 < p.Length && p[i + 1] == ']') sb.Append(p[++i]);
                while (++i < p.Length)
                {
                    sb.Append(p[i]);
                    if (p[i] == '\\' && i + 1 < p.Length) sb.Append(p[++i]);
                    else if (p[i] == ']') break;
                }
                continue;
            }
            if (c == '(') { atomStarts.Push(sb.Length); sb.Append(c); lastAtom = -1; continue; }
            if (c == ')') { lastAtom = atomStarts.Count > 0 ? atomStarts.Pop() : -1; sb.Append(c); continue; }
            bool quantifier = c is '?' or '*' or '+' || (c == '{' && p.IndexOf('}', i) is int close && close > i);
            if (quantifier && lastAtom >= 0)
            {
                int end = i;
                if (c == '{') end = p.IndexOf('}', i);
                string q = p[i..(end + 1)];
                if (end + 1 < p.Length && p[end + 1] == '+')
                {
                    sb.Insert(lastAtom, "(?>").Append(q).Append(')');
                    i = end + 1;
                }
                else
                {
                    sb.Append(q);
                    i = end;
                    if (i + 1 < p.Length && p[i + 1] == '?') sb.Append(p[++i]);     // lazy
                }
                lastAtom = -1;
                continue;
            }
            if (c == '|') lastAtom = -1;
            else lastAtom = sb.Length;
            sb.Append(c);
        }
        return sb.ToString();
    }
}
