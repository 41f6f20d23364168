using System.Text;
using System.Text.Json;

namespace SharpFormer.Templates;

/// <summary>
/// A Jinja2 template in the subset chat templates use, rendered as Jinja2 3.1's
/// <c>ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)</c> does (the environment of transformers
/// 4.40.2's <c>apply_chat_template</c>). Statements: <c>if</c>/<c>elif</c>/<c>else</c>, <c>for</c> (with tuple
/// unpacking, an <c>if</c> filter, <c>else</c>, and <c>loop.index</c>/<c>index0</c>/<c>revindex</c>/<c>revindex0</c>/
/// <c>first</c>/<c>last</c>/<c>length</c>/<c>previtem</c>/<c>nextitem</c>/<c>cycle</c>), <c>set</c> (names, tuples,
/// <c>ns.attr</c> of a <c>namespace()</c>, <c>set</c> blocks), <c>raw</c>, comments, whitespace control. Expressions:
/// literals, lists, dicts, attribute / item / slice access, calls, Python operators with Jinja's precedence
/// (<c>~</c> concatenates), <c>in</c>/<c>not in</c>, <c>is</c> tests, conditional expressions, filters, and the
/// <c>str</c>/<c>dict</c> methods templates use. Any other tag, filter or test is an error naming it and its line.
/// Templates are immutable and can be rendered from several threads at once.
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<Stmt> _body;

    JinjaTemplate(List<Stmt> body) => _body = body;

    /// <summary>Parses a template; a <see cref="JinjaException"/> names what is not supported and where.</summary>
    public static JinjaTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new JinjaTemplate(JinjaParser.Parse(source));
    }

    /// <summary>Renders with variables given as JSON values (objects become dicts, arrays lists, numbers int or float).</summary>
    /// <param name="variables">Name → value.</param>
    /// <param name="functions">Extra global functions, e.g. <c>raise_exception</c>: (positional args) → value.</param>
    public string Render(IReadOnlyDictionary<string, JsonElement> variables, IReadOnlyDictionary<string, Func<IReadOnlyList<object?>, object?>>? functions = null)
    {
        var ctx = new JinjaContext();
        JinjaBuiltins.AddGlobals(ctx);
        if (functions is not null)
            foreach (var (name, f) in functions) ctx.Set(name, (JinjaFunction)((args, _) => f(args)));
        var scope = ctx.Push();
        foreach (var (name, value) in variables) scope.Set(name, FromJson(value));
        var sb = new StringBuilder();
        Stmt.RenderAll(_body, scope, sb);
        return sb.ToString();
    }

    /// <summary>A JSON value as the Python value json.loads gives.</summary>
    internal static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().Aggregate(new OrderedDictionary<string, object?>(), (d, p) => { d[p.Name] = FromJson(p.Value); return d; }),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long l) && e.GetRawText().AsSpan().IndexOfAny(".eE") < 0 ? l : (object)e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };
}
