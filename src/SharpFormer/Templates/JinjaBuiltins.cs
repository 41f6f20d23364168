using System.Globalization;

namespace SharpFormer.Templates;

/// <summary>The filters, tests and globals of Jinja2 3.1 that chat templates use, with Jinja's semantics.</summary>
internal static class JinjaBuiltins
{
    static object? Arg(List<object?> a, Dictionary<string, object?> k, int i, string name, object? dflt = null) =>
        i < a.Count ? a[i] : k.TryGetValue(name, out var v) ? v : dflt;

    public static object? Filter(string name, object? v, List<object?> a, Dictionary<string, object?> k, JinjaContext ctx, int line)
    {
        switch (name)
        {
            case "trim": return StringMethods.Strip(Py.Str(v), Arg(a, k, 0, "chars") as string, true, true);
            case "upper": return Py.Str(v).ToUpperInvariant();
            case "lower": return Py.Str(v).ToLowerInvariant();
            case "title": return StringMethods.Title(Py.Str(v));
            case "capitalize": return StringMethods.Capitalize(Py.Str(v));
            case "string": return Py.Str(v);
            case "safe": return v;
            case "length" or "count":
                return v switch
                {
                    string s => (long)s.EnumerateRunes().Count(),
                    List<object?> l => (long)l.Count,
                    OrderedDictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw new JinjaException($"line {line}: object of type {Py.TypeName(v)} has no len()"),
                };
            case "default" or "d":
                bool boolean = Py.Truthy(Arg(a, k, 1, "boolean", false));
                return v is Undefined || (boolean && !Py.Truthy(v)) ? Arg(a, k, 0, "default_value", "") : v;
            case "join":
                string sep = Py.Str(Arg(a, k, 0, "d", ""));
                var attr = Arg(a, k, 1, "attribute") as string;
                return string.Join(sep, Py.Iterate(v, line).Select(x => Py.Str(attr is null ? x : Py.GetItem(x, attr, line))));
            case "first": return Py.Iterate(v, line).Cast<object?>().DefaultIfEmpty(new Undefined("first")).First();
            case "last": return v is List<object?> { Count: > 0 } ll ? ll[^1] : Py.Iterate(v, line).Cast<object?>().DefaultIfEmpty(new Undefined("last")).Last();
            case "list": return Py.Iterate(v, line).ToList();
            case "reverse": return v is string rs ? string.Concat(rs.EnumerateRunes().Reverse().Select(r => r.ToString())) : Py.Iterate(v, line).Reverse().ToList();
            case "items":
                return v switch
                {
                    OrderedDictionary<string, object?> d => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw new JinjaException($"line {line}: items filter needs a mapping"),
                };
            case "tojson":
                // Jinja 3.1's own filter (transformers 4.40.2 does not replace it): json.dumps with sort_keys=True and
                // the default ensure_ascii, then <, >, &, ' escaped for HTML.
                var indent = Arg(a, k, 0, "indent");
                string json = PyJson.Dumps(v, ensureAscii: true, sortKeys: true, indent switch
                {
                    null => null,
                    long n => new string(' ', (int)n),
                    string s => s,
                    _ => throw new JinjaException($"line {line}: tojson indent must be an integer"),
                });
                return json.Replace("<", "\\u003c").Replace(">", "\\u003e").Replace("&", "\\u0026").Replace("'", "\\u0027");
            case "int":
                return v switch
                {
                    long i => i,
                    double dd => (long)Math.Truncate(dd),
                    bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p) => p,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => (long)Math.Truncate(p),
                    _ => Arg(a, k, 0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long i => (double)i,
                    double dd => dd,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p,
                    _ => Arg(a, k, 0, "default", 0.0),
                };
            case "abs": return v switch { long i => (object)Math.Abs(i), double dd => Math.Abs(dd), _ => throw new JinjaException($"line {line}: bad operand for abs()") };
            case "replace":
                return Arg(a, k, 0, "old") is string o && Arg(a, k, 1, "new") is string nw
                    ? StringMethods.Get(Py.Str(v), "replace")!(Arg(a, k, 2, "count") is long c ? [o, nw, c] : [o, nw], [])
                    : throw new JinjaException($"line {line}: replace filter takes two strings");
            case "unique":
                var seen = new List<object?>();
                foreach (var x in Py.Iterate(v, line)) if (!seen.Any(y => Py.Equal(x, y))) seen.Add(x);
                return seen;
            case "select" or "reject" or "selectattr" or "rejectattr":
                bool byAttr = name.EndsWith("attr"), keep = name.StartsWith("select");
                int ti = byAttr ? 1 : 0;
                string? attrName = byAttr ? Arg(a, k, 0, "attribute") as string ?? throw new JinjaException($"line {line}: {name} needs an attribute name") : null;
                string? test = ti < a.Count ? a[ti] as string : null;
                var testArgs = a.Skip(ti + 1).ToList();
                return Py.Iterate(v, line).Where(x =>
                {
                    var value = attrName is null ? x : Py.GetItem(x, attrName, line);
                    bool ok = test is null ? Py.Truthy(value) : Py.Truthy(Test(test, value, testArgs, line));
                    return ok == keep;
                }).ToList();
            case "map":
                if (k.GetValueOrDefault("attribute") is string mapAttr)
                    return Py.Iterate(v, line).Select(x => Py.GetItem(x, mapAttr, line) is Undefined && k.TryGetValue("default", out var dv) ? dv : Py.GetItem(x, mapAttr, line)).ToList();
                if (a.Count > 0 && a[0] is string filterName)
                    return Py.Iterate(v, line).Select(x => Filter(filterName, x, a.Skip(1).ToList(), [], ctx, line)).ToList();
                throw new JinjaException($"line {line}: map needs a filter name or attribute=");
            case "sum":
                object? total = Arg(a, k, 1, "start", 0L);
                var sumAttr = Arg(a, k, 0, "attribute") as string;
                foreach (var x in Py.Iterate(v, line)) total = Py.Binary("+", total, sumAttr is null ? x : Py.GetItem(x, sumAttr, line), line);
                return total;
            case "min" or "max":
                var all = Py.Iterate(v, line).ToList();
                if (all.Count == 0) return new Undefined(name);
                return all.Aggregate((x, y) => Py.Truthy(Py.Binary(name == "min" ? "<" : ">", y, x, line)) ? y : x);
            case "indent":
                long width = Arg(a, k, 0, "width", 4L) is long w ? w : 4;
                bool first = Py.Truthy(Arg(a, k, 1, "first", false)), blank = Py.Truthy(Arg(a, k, 2, "blank", false));
                string pad = new(' ', (int)width);
                var lines = Py.Str(v).Split('\n');
                for (int i = 0; i < lines.Length; i++)
                    if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = pad + lines[i];
                return string.Join('\n', lines);
            default:
                throw new JinjaException($"line {line}: filter '{name}' is not supported");
        }
    }

    public static bool Test(string name, object? v, List<object?> a, int line)
    {
        object? Other() => a.Count > 0 ? a[0] : throw new JinjaException($"line {line}: test '{name}' needs an argument");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "string" => v is string,
            "number" => v is long or double,
            "integer" => v is long,
            "float" => v is double,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "mapping" => v is OrderedDictionary<string, object?> or Namespace,
            "sequence" => v is string or List<object?> or OrderedDictionary<string, object?>,
            "iterable" => v is string or List<object?> or OrderedDictionary<string, object?>,
            "callable" => v is JinjaFunction,
            "equalto" or "eq" or "==" or "sameas" => Py.Equal(v, Other()),
            "ne" or "!=" => !Py.Equal(v, Other()),
            "lt" or "<" => Py.Truthy(Py.Binary("<", v, Other(), line)),
            "le" or "<=" => Py.Truthy(Py.Binary("<=", v, Other(), line)),
            "gt" or ">" => Py.Truthy(Py.Binary(">", v, Other(), line)),
            "ge" or ">=" => Py.Truthy(Py.Binary(">=", v, Other(), line)),
            "in" => Py.Contains(Other(), v, line),
            "odd" => v is long o && Math.Abs(o % 2) == 1,
            "even" => v is long e && e % 2 == 0,
            "divisibleby" => v is long x && Other() is long y && y != 0 && x % y == 0,
            "upper" => v is string su && su == su.ToUpperInvariant(),
            "lower" => v is string sl && sl == sl.ToLowerInvariant(),
            _ => throw new JinjaException($"line {line}: test '{name}' is not supported"),
        };
    }

    /// <summary>Jinja's default globals that chat templates use: <c>namespace</c>, <c>range</c>, <c>dict</c>.</summary>
    public static void AddGlobals(JinjaContext ctx)
    {
        ctx.Set("namespace", (JinjaFunction)((args, kwargs) =>
        {
            var ns = new Namespace();
            foreach (var arg in args)
                if (arg is OrderedDictionary<string, object?> d) foreach (var (key, value) in d) ns.Values[key] = value;
            foreach (var (key, value) in kwargs) ns.Values[key] = value;
            return ns;
        }));
        ctx.Set("range", (JinjaFunction)((args, _) =>
        {
            var n = args.Select(x => x is long l ? l : throw new JinjaException("range() takes integers")).ToArray();
            var (start, stop, step) = n.Length switch
            {
                1 => (0L, n[0], 1L),
                2 => (n[0], n[1], 1L),
                3 => (n[0], n[1], n[2]),
                _ => throw new JinjaException("range() takes 1 to 3 arguments"),
            };
            if (step == 0) throw new JinjaException("range() step must not be zero");
            var list = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
            return list;
        }));
        ctx.Set("dict", (JinjaFunction)((args, kwargs) =>
        {
            var d = new OrderedDictionary<string, object?>();
            foreach (var arg in args)
                if (arg is OrderedDictionary<string, object?> src) foreach (var (key, value) in src) d[key] = value;
            foreach (var (key, value) in kwargs) d[key] = value;
            return d;
        }));
    }
}
