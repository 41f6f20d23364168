using System.Globalization;
using System.Text;

namespace SharpFormer.Templates;

/// <summary>Python's <c>json.dumps</c>, byte for byte: separators, <c>ensure_ascii</c>, <c>sort_keys</c>, <c>indent</c>, float repr.</summary>
internal static class PyJson
{
    public static string Dumps(object? value, bool ensureAscii, bool sortKeys, string? indent)
    {
        var sb = new StringBuilder();
        Write(sb, value, ensureAscii, sortKeys, indent, 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, object? v, bool ascii, bool sort, string? indent, int level)
    {
        // Python: with an indent the item separator is "," (the newline follows), else ", ".
        string itemSep = indent is null ? ", " : ",";
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long i: sb.Append(i.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : Py.FloatRepr(d));
                break;
            case string s: WriteString(sb, s, ascii); break;
            case List<object?> l:
                if (l.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int k = 0; k < l.Count; k++)
                {
                    if (k > 0) sb.Append(itemSep);
                    NewLine(sb, indent, level + 1);
                    Write(sb, l[k], ascii, sort, indent, level + 1);
                }
                NewLine(sb, indent, level);
                sb.Append(']');
                break;
            case OrderedDictionary<string, object?> d:
                if (d.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                var pairs = sort ? d.OrderBy(p => p.Key, StringComparer.Ordinal).ToList() : d.ToList();
                for (int k = 0; k < pairs.Count; k++)
                {
                    if (k > 0) sb.Append(itemSep);
                    NewLine(sb, indent, level + 1);
                    WriteString(sb, pairs[k].Key, ascii);
                    sb.Append(": ");
                    Write(sb, pairs[k].Value, ascii, sort, indent, level + 1);
                }
                NewLine(sb, indent, level);
                sb.Append('}');
                break;
            default:
                throw new JinjaException($"Object of type {Py.TypeName(v)} is not JSON serializable");
        }
    }

    static void NewLine(StringBuilder sb, string? indent, int level)
    {
        if (indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < level; i++) sb.Append(indent);
    }

    static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7E)) sb.Append($"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
