using System.Text;

namespace SharpFormer.Templates;

/// <summary>The Python <c>str</c> methods chat templates call (<c>content.strip()</c>, <c>role.startswith('u')</c> …).</summary>
internal static class StringMethods
{
    public static JinjaFunction? Get(string s, string name) => name switch
    {
        "strip" => (a, _) => Strip(s, Chars(a), true, true),
        "lstrip" => (a, _) => Strip(s, Chars(a), true, false),
        "rstrip" => (a, _) => Strip(s, Chars(a), false, true),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => Title(s),
        "capitalize" => (_, _) => Capitalize(s),
        "startswith" => (a, _) => Affix(s, a, true),
        "endswith" => (a, _) => Affix(s, a, false),
        "split" => (a, k) => Split(s, Arg(a, k, 0, "sep") as string, Arg(a, k, 1, "maxsplit") is long m ? m : -1),
        "splitlines" => (_, _) => s.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n').SkipLast(s.EndsWith('\n') || s.EndsWith('\r') ? 1 : 0).Cast<object?>().ToList(),
        "replace" => (a, _) => a.Count >= 2 && a[0] is string o && a[1] is string n
            ? (a.Count > 2 && a[2] is long c ? ReplaceCount(s, o, n, c) : s.Replace(o, n, StringComparison.Ordinal))
            : throw new JinjaException("str.replace(old, new) takes two strings"),
        "find" => (a, _) => a.Count > 0 && a[0] is string sub ? (long)s.IndexOf(sub, StringComparison.Ordinal) : throw new JinjaException("str.find(sub) takes a string"),
        "count" => (a, _) => a.Count > 0 && a[0] is string sub && sub.Length > 0 ? (long)((s.Length - s.Replace(sub, "", StringComparison.Ordinal).Length) / sub.Length) : throw new JinjaException("str.count(sub) takes a non-empty string"),
        "join" => (a, _) => a.Count == 1 ? string.Join(s, Py.Iterate(a[0], 0).Select(Py.Str)) : throw new JinjaException("str.join(iterable) takes one argument"),
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        "isalpha" => (_, _) => s.Length > 0 && s.All(char.IsLetter),
        "isspace" => (_, _) => s.Length > 0 && s.All(Py.IsSpace),
        "isupper" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsLower),
        "islower" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsUpper),
        _ => null,
    };

    static object? Arg(List<object?> a, Dictionary<string, object?> k, int i, string name) => i < a.Count ? a[i] : k.GetValueOrDefault(name);

    static string? Chars(List<object?> a) => a.Count > 0 ? a[0] as string : null;

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        bool Drop(char c) => chars is null ? Py.IsSpace(c) : chars.Contains(c);
        int start = 0, end = s.Length;
        if (left) while (start < end && Drop(s[start])) start++;
        if (right) while (end > start && Drop(s[end - 1])) end--;
        return s[start..end];
    }

    static bool Affix(string s, List<object?> a, bool prefix)
    {
        if (a.Count == 0) throw new JinjaException($"str.{(prefix ? "startswith" : "endswith")}() takes an argument");
        var options = a[0] is List<object?> l ? l : [a[0]];
        return options.Any(o => o is string x
            ? (prefix ? s.StartsWith(x, StringComparison.Ordinal) : s.EndsWith(x, StringComparison.Ordinal))
            : throw new JinjaException("startswith/endswith take a string or a tuple of strings"));
    }

    static List<object?> Split(string s, string? sep, long maxsplit)
    {
        var result = new List<object?>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && Py.IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxsplit >= 0 && result.Count == maxsplit) { result.Add(Strip(s[i..], null, false, true)); break; }
                int st = i;
                while (i < s.Length && !Py.IsSpace(s[i])) i++;
                result.Add(s[st..i]);
            }
            return result;
        }
        if (sep.Length == 0) throw new JinjaException("str.split(): empty separator");
        int pos = 0;
        while (maxsplit < 0 || result.Count < maxsplit)
        {
            int at = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (at < 0) break;
            result.Add(s[pos..at]);
            pos = at + sep.Length;
        }
        result.Add(s[pos..]);
        return result;
    }

    static string ReplaceCount(string s, string old, string repl, long count)
    {
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count || count < 0; n++)
        {
            int at = old.Length == 0 ? -1 : s.IndexOf(old, pos, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(s, pos, at - pos).Append(repl);
            pos = at + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    /// <summary>Python's <c>str.title()</c>: upper-case a letter after a non-letter, lower-case the others.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevLetter = false;
        foreach (var c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.capitalize()</c>.</summary>
    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
}
