using System.Text;

namespace SharpFormer.Templates;

/// <summary>A piece of a template: literal text, or a tag's inside (<c>{{ }}</c> output, <c>{% %}</c> statement) with its line.</summary>
internal readonly record struct TemplatePart(bool IsText, bool IsOutput, string Content, int Line);

/// <summary>
/// Cuts a template into text and tags with Jinja2 3.1's whitespace rules as transformers configures them
/// (<c>trim_blocks</c> and <c>lstrip_blocks</c> on, <c>keep_trailing_newline</c> off): newlines normalised to \n, the
/// template's one trailing newline dropped, the newline after a block or comment tag removed, spaces and tabs before a
/// block or comment tag that starts its line removed, <c>-</c> markers stripping all whitespace, <c>+</c> markers
/// disabling the two automatic rules, comments dropped, <c>{% raw %}</c> bodies kept verbatim.
/// </summary>
internal static class JinjaLexer
{
    enum Kind { Output, Block, Comment }

    sealed record Tag(Kind Kind, string Content, int Line, bool TrimLeft, bool PlusLeft, bool TrimRight, bool PlusRight);

    public static List<TemplatePart> Lex(string source)
    {
        source = source.Replace("\r\n", "\n").Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        var items = new List<object>();                         // string (text) or Tag, alternating loosely
        int pos = 0, line = 1;
        while (pos < source.Length)
        {
            int open = FindOpen(source, pos);
            if (open < 0) { items.Add(source[pos..]); break; }
            if (open > pos) items.Add(source[pos..open]);
            line += Count(source, pos, open);
            var kind = source[open + 1] switch { '{' => Kind.Output, '%' => Kind.Block, _ => Kind.Comment };
            int i = open + 2;
            bool trimLeft = i < source.Length && source[i] == '-', plusLeft = i < source.Length && source[i] == '+';
            if (trimLeft || plusLeft) i++;
            int close = kind == Kind.Comment ? source.IndexOf("#}", i, StringComparison.Ordinal) : FindClose(source, i, kind == Kind.Output ? '}' : '%');
            if (close < 0) throw new JinjaException($"line {line}: unclosed {source.Substring(open, 2)}");
            int end = close + 2;
            bool trimRight = close > i && source[close - 1] == '-', plusRight = close > i && source[close - 1] == '+' && kind != Kind.Output;
            string content = source[i..(trimRight || plusRight ? close - 1 : close)].Trim();
            var tag = new Tag(kind, content, line, trimLeft, plusLeft, trimRight, plusRight);
            line += Count(source, open, end);
            pos = end;
            if (kind == Kind.Block && content == "raw")
            {
                // The body up to {% endraw %} is text; whitespace markers on the two tags apply to it.
                var m = System.Text.RegularExpressions.Regex.Match(source[pos..], @"\{%(-|\+|)\s*endraw\s*(-|\+|)%\}");
                if (!m.Success) throw new JinjaException($"line {line}: {{% raw %}} without {{% endraw %}}");
                items.Add(tag with { Content = "" });
                string body = source.Substring(pos, m.Index);
                if (trimRight) body = body.TrimStart();
                if (m.Groups[1].Value == "-") body = body.TrimEnd();
                items.Add(new RawText(body));
                line += Count(source, pos, pos + m.Index + m.Length);
                items.Add(new Tag(Kind.Block, "", line, false, true, m.Groups[2].Value == "-", m.Groups[2].Value == "+"));
                pos += m.Index + m.Length;
                continue;
            }
            items.Add(tag);
        }

        // Apply the whitespace rules to each text from the tags on either side of it.
        var parts = new List<TemplatePart>();
        Tag? previous = null;
        int textLine = 1;
        for (int k = 0; k < items.Count; k++)
        {
            if (items[k] is Tag t)
            {
                if (t.Kind != Kind.Comment && t.Content.Length > 0) parts.Add(new TemplatePart(false, t.Kind == Kind.Output, t.Content, t.Line));
                previous = t;
                continue;
            }
            if (items[k] is RawText raw) { if (raw.Text.Length > 0) parts.Add(new TemplatePart(true, false, raw.Text, textLine)); continue; }
            string text = (string)items[k];
            bool lineStarting = previous is null;
            if (previous is { TrimRight: true })
            {
                int n = 0;
                while (n < text.Length && char.IsWhiteSpace(text[n])) n++;
                lineStarting = n > 0 && text[n - 1] == '\n';
                text = text[n..];
            }
            else if (previous is { Kind: not Kind.Output, PlusRight: false } && text.StartsWith('\n'))
            {
                text = text[1..];
                lineStarting = true;
            }
            var next = k + 1 < items.Count ? items[k + 1] as Tag : null;
            if (next is { TrimLeft: true }) text = text.TrimEnd();
            else if (next is { Kind: not Kind.Output, PlusLeft: false })
            {
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && text.AsSpan(lpos).IndexOfAnyExcept(' ', '\t') < 0) text = text[..lpos];
            }
            if (text.Length > 0) parts.Add(new TemplatePart(true, false, text, textLine));
        }
        return parts;
    }

    sealed record RawText(string Text);

    static int Count(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to && i < s.Length; i++) if (s[i] == '\n') n++;
        return n;
    }

    static int FindOpen(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>The index of the closing <c>}}</c> / <c>%}</c>, skipping string literals inside the expression.</summary>
    static int FindClose(string s, int from, char first)
    {
        char quote = '\0';
        for (int i = from; i + 1 < s.Length; i++)
        {
            char c = s[i];
            if (quote != '\0')
            {
                if (c == '\\') i++;
                else if (c == quote) quote = '\0';
                continue;
            }
            if (c is '\'' or '"') quote = c;
            else if (c == first && s[i + 1] == '}') return i;
        }
        return -1;
    }
}

/// <summary>A template that cannot be parsed or rendered; the message names the construct and its line.</summary>
public sealed class JinjaException(string message) : SharpFormerException(message);
