using System.Globalization;
using System.Text;
using SharpFormer.Tokenizers;

namespace SharpFormer.Templates;

/// <summary>
/// Python semantics of template values, as Jinja evaluates them: None (null), bool, int (long), float (double),
/// str (string), list (<see cref="List{T}"/>), dict (<see cref="OrderedDictionary{TKey, TValue}"/> with string keys,
/// insertion-ordered), plus <see cref="Undefined"/>, <see cref="Namespace"/>, <see cref="LoopInfo"/> and callables.
/// </summary>
internal static class Py
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long i => i != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        OrderedDictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        JinjaFunction => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python's <c>str()</c> (what <c>{{ }}</c> prints; Undefined prints as "").</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python's <c>repr()</c>.</summary>
    public static string Repr(object? v) => v switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long i => i.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => StrRepr(s),
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        OrderedDictionary<string, object?> d => "{" + string.Join(", ", d.Select(p => StrRepr(p.Key) + ": " + Repr(p.Value))) + "}",
        Undefined => "",
        Namespace n => "<Namespace " + string.Join(", ", n.Values.Select(p => p.Key + "=" + Repr(p.Value))) + ">",
        _ => v.ToString() ?? "",
    };

    static string StrRepr(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(quote);
        foreach (var r in s.EnumerateRunes())
        {
            int c = r.Value;
            if (c == quote || c == '\\') sb.Append('\\').Append((char)c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7F) sb.Append($"\\x{c:x2}");
            else sb.Append(r.ToString());
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>Python's <c>repr(float)</c>: the shortest round-tripping digits, exponent form below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // .NET's "R" gives the shortest round-tripping digits (as Python's repr); only the layout differs.
        string shortest = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        int e = shortest.IndexOfAny(['E', 'e']);
        string mant = e >= 0 ? shortest[..e] : shortest;
        int exp10 = e >= 0 ? int.Parse(shortest[(e + 1)..], CultureInfo.InvariantCulture) : 0;
        int dot = mant.IndexOf('.');
        string intPart = dot >= 0 ? mant[..dot] : mant, frac = dot >= 0 ? mant[(dot + 1)..] : "";
        string all = intPart + frac, digits = all.TrimStart('0');
        int exp = intPart.Length - 1 - (all.Length - digits.Length) + exp10;   // decimal exponent of the first significant digit
        digits = digits.TrimEnd('0');
        string sign = d < 0 ? "-" : "";
        if (exp < -4 || exp >= 16)
        {
            string m = digits.Length > 1 ? digits[0] + "." + digits[1..] : digits;
            return $"{sign}{m}e{(exp < 0 ? "-" : "+")}{Math.Abs(exp):00}";
        }
        if (exp >= digits.Length - 1) return sign + digits + new string('0', exp - digits.Length + 1) + ".0";
        if (exp >= 0) return sign + digits[..(exp + 1)] + "." + digits[(exp + 1)..];
        return sign + "0." + new string('0', -exp - 1) + digits;
    }

    /// <summary>What a for loop / list() / join sees: list items, dict keys, string characters; Undefined is empty.</summary>
    public static IEnumerable<object?> Iterate(object? v, int line) => v switch
    {
        List<object?> l => l,
        OrderedDictionary<string, object?> d => d.Keys.Cast<object?>(),
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()),
        Undefined => [],
        _ => throw new JinjaException($"line {line}: {TypeName(v)} object is not iterable"),
    };

    public static bool Equal(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (Undefined, Undefined) => true,
        (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
        (bool x, bool y) => x == y,
        (long or double or bool, long or double or bool) => ToDouble(a) == ToDouble(b),
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equal(p.First, p.Second)),
        (OrderedDictionary<string, object?> x, OrderedDictionary<string, object?> y) =>
            x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var v) && Equal(p.Value, v)),
        _ => ReferenceEquals(a, b),
    };

    static double ToDouble(object? v) => v switch { long i => i, double d => d, bool b => b ? 1 : 0, _ => double.NaN };

    static int Compare(object? a, object? b, string op, int line) => (a, b) switch
    {
        (string x, string y) => string.CompareOrdinal(x, y),
        (long or double or bool, long or double or bool) => ToDouble(a).CompareTo(ToDouble(b)),
        _ => throw new JinjaException($"line {line}: '{op}' not supported between {TypeName(a)} and {TypeName(b)}"),
    };

    public static bool Contains(object? container, object? item, int line) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw new JinjaException($"line {line}: 'in <string>' requires a string"),
        List<object?> l => l.Any(x => Equal(x, item)),
        OrderedDictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Undefined => false,
        _ => throw new JinjaException($"line {line}: argument of type {TypeName(container)} is not iterable"),
    };

    public static object? Binary(string op, object? l, object? r, int line)
    {
        switch (op)
        {
            case "==": return Equal(l, r);
            case "!=": return !Equal(l, r);
            case "<": return Compare(l, r, op, line) < 0;
            case "<=": return Compare(l, r, op, line) <= 0;
            case ">": return Compare(l, r, op, line) > 0;
            case ">=": return Compare(l, r, op, line) >= 0;
            case "in": return Contains(r, l, line);
            case "~": return Str(l) + Str(r);
        }
        if (l is Undefined u1) throw new JinjaException($"line {line}: '{u1.Name}' is undefined");
        if (r is Undefined u2) throw new JinjaException($"line {line}: '{u2.Name}' is undefined");
        switch (op, l, r)
        {
            case ("+", string a, string b): return a + b;
            case ("+", List<object?> a, List<object?> b): return a.Concat(b).ToList();
            case ("*", string a, long n): return string.Concat(Enumerable.Repeat(a, (int)Math.Max(0, n)));
            case ("*", List<object?> a, long n): return Enumerable.Repeat(a, (int)Math.Max(0, n)).SelectMany(x => x).ToList();
        }
        if (l is (long or bool) && r is (long or bool))
        {
            long a = l is bool ba ? (ba ? 1 : 0) : (long)l, b = r is bool bb ? (bb ? 1 : 0) : (long)r;
            switch (op)
            {
                case "+": return a + b;
                case "-": return a - b;
                case "*": return a * b;
                case "/": return b == 0 ? throw new JinjaException($"line {line}: division by zero") : (double)a / b;
                case "//": return b == 0 ? throw new JinjaException($"line {line}: division by zero") : (long)Math.Floor((double)a / b);
                case "%": return b == 0 ? throw new JinjaException($"line {line}: modulo by zero") : ((a % b) + b) % b;
                case "**": return b >= 0 ? (long)Math.Pow(a, b) : (object)Math.Pow(a, b);
            }
        }
        if (l is (long or double or bool) && r is (long or double or bool))
        {
            double a = ToDouble(l), b = ToDouble(r);
            switch (op)
            {
                case "+": return a + b;
                case "-": return a - b;
                case "*": return a * b;
                case "/": return b == 0 ? throw new JinjaException($"line {line}: division by zero") : a / b;
                case "//": return b == 0 ? throw new JinjaException($"line {line}: division by zero") : Math.Floor(a / b);
                case "%": return b == 0 ? throw new JinjaException($"line {line}: modulo by zero") : a - b * Math.Floor(a / b);
                case "**": return Math.Pow(a, b);
            }
        }
        throw new JinjaException($"line {line}: unsupported operand types for {op}: {TypeName(l)} and {TypeName(r)}");
    }

    /// <summary>Jinja's <c>getattr</c>: a method or attribute first, then the item of that name; missing gives Undefined.</summary>
    public static object? GetAttr(object? obj, string name, int line) => obj switch
    {
        Undefined u => throw new JinjaException($"line {line}: '{u.Name}' is undefined (looking up '{name}')"),
        null => new Undefined(name),
        string s => (object?)StringMethods.Get(s, name) ?? new Undefined(name),
        OrderedDictionary<string, object?> d => (object?)DictMethod(d, name) ?? (d.TryGetValue(name, out var v) ? v : new Undefined(name)),
        List<object?> l => (object?)ListMethod(l, name) ?? new Undefined(name),
        Namespace n => n.Values.TryGetValue(name, out var v) ? v : new Undefined(name),
        LoopInfo loop => loop.Get(name),
        _ => new Undefined(name),
    };

    /// <summary>Jinja's <c>getitem</c>: the item first, then (for a string key) the attribute.</summary>
    public static object? GetItem(object? obj, object? key, int line)
    {
        switch (obj, key)
        {
            case (Undefined u, _): throw new JinjaException($"line {line}: '{u.Name}' is undefined (looking up [{Repr(key)}])");
            case (OrderedDictionary<string, object?> d, string k): return d.TryGetValue(k, out var v) ? v : new Undefined(k);
            case (List<object?> l, long i): return i < -l.Count || i >= l.Count ? new Undefined($"[{i}]") : l[(int)(i < 0 ? i + l.Count : i)];
            case (string s, long i):
                var runes = s.EnumerateRunes().ToList();
                return i < -runes.Count || i >= runes.Count ? new Undefined($"[{i}]") : runes[(int)(i < 0 ? i + runes.Count : i)].ToString();
            case (_, string name): return GetAttr(obj, name, line);
            default: return new Undefined($"[{Repr(key)}]");
        }
    }

    /// <summary>Python slicing of a list or string.</summary>
    public static object? Slice(object? obj, object? start, object? stop, object? step, int line)
    {
        long? Int(object? v, string what) => v switch
        {
            null or Undefined => null,
            long i => i,
            _ => throw new JinjaException($"line {line}: slice {what} must be an integer"),
        };
        List<object?> items = obj switch
        {
            List<object?> l => l,
            string s => s.EnumerateRunes().Select(r => (object?)r.ToString()).ToList(),
            Undefined u => throw new JinjaException($"line {line}: '{u.Name}' is undefined"),
            _ => throw new JinjaException($"line {line}: {TypeName(obj)} object is not subscriptable"),
        };
        long n = items.Count, st = Int(step, "step") ?? 1;
        if (st == 0) throw new JinjaException($"line {line}: slice step cannot be zero");
        long Clamp(long? v, long dflt)
        {
            if (v is not long x) return dflt;
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long a = Clamp(Int(start, "start"), st > 0 ? 0 : n - 1), b = Clamp(Int(stop, "stop"), st > 0 ? n : -1);
        var result = new List<object?>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) result.Add(items[(int)i]);
        return obj is string ? string.Concat(result.Cast<string>()) : result;
    }

    static JinjaFunction? DictMethod(OrderedDictionary<string, object?> d, string name) => name switch
    {
        "items" => (_, _) => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
        "keys" => (_, _) => d.Keys.Cast<object?>().ToList(),
        "values" => (_, _) => d.Values.ToList(),
        "get" => (a, _) => a.Count > 0 && a[0] is string k && d.TryGetValue(k, out var v) ? v : a.Count > 1 ? a[1] : null,
        _ => null,
    };

    static JinjaFunction? ListMethod(List<object?> l, string name) => name switch
    {
        "index" => (a, _) => a.Count == 1 && l.FindIndex(x => Equal(x, a[0])) is var i && i >= 0 ? (long)i : throw new JinjaException("list.index(x): x not in list"),
        "count" => (a, _) => (long)l.Count(x => a.Count == 1 && Equal(x, a[0])),
        _ => null,
    };

    /// <summary>Python's <c>str.isspace()</c> for one character (the characters <c>strip()</c> and <c>split()</c> remove).</summary>
    public static bool IsSpace(char c) => PyUnicode14.IsPythonSpace(c);
}
