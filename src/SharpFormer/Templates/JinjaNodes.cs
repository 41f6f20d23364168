using System.Text;

namespace SharpFormer.Templates;

/// <summary>A statement: renders into the output.</summary>
internal abstract record Stmt
{
    public abstract void Render(JinjaContext ctx, StringBuilder output);

    public static void RenderAll(List<Stmt> body, JinjaContext ctx, StringBuilder output)
    {
        foreach (var s in body) s.Render(ctx, output);
    }
}

internal sealed record TextStmt(string Text) : Stmt
{
    public override void Render(JinjaContext ctx, StringBuilder output) => output.Append(Text);
}

internal sealed record OutputStmt(Expr Value) : Stmt
{
    public override void Render(JinjaContext ctx, StringBuilder output) => output.Append(Py.Str(Value.Eval(ctx)));
}

internal sealed record IfStmt(List<(Expr? Cond, List<Stmt> Body)> Branches) : Stmt
{
    public override void Render(JinjaContext ctx, StringBuilder output)
    {
        foreach (var (cond, body) in Branches)
            if (cond is null || Py.Truthy(cond.Eval(ctx))) { RenderAll(body, ctx, output); return; }
    }
}

internal sealed record ForStmt(List<string> Names, Expr Iterable, Expr? Filter, List<Stmt> Body, List<Stmt>? Else, int Line) : Stmt
{
    public override void Render(JinjaContext ctx, StringBuilder output)
    {
        var items = Py.Iterate(Iterable.Eval(ctx), Line).ToList();
        if (Filter is not null)
            items = items.Where(item => { var scope = ctx.Push(); Bind(scope, item); return Py.Truthy(Filter.Eval(scope)); }).ToList();
        if (items.Count == 0)
        {
            if (Else is not null) RenderAll(Else, ctx.Push(), output);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            var scope = ctx.Push();
            Bind(scope, items[i]);
            scope.Set("loop", new LoopInfo(items, i));
            RenderAll(Body, scope, output);
        }
    }

    void Bind(JinjaContext scope, object? item)
    {
        if (Names.Count == 1) { scope.Set(Names[0], item); return; }
        var values = Py.Iterate(item, Line).ToList();
        if (values.Count != Names.Count) throw new JinjaException($"line {Line}: cannot unpack {values.Count} values into {Names.Count} names");
        for (int k = 0; k < Names.Count; k++) scope.Set(Names[k], values[k]);
    }
}

internal sealed record SetStmt(List<(string Name, string? Attr)> Targets, Expr Value, int Line) : Stmt
{
    public override void Render(JinjaContext ctx, StringBuilder output)
    {
        var value = Value.Eval(ctx);
        var values = Targets.Count == 1 ? [value] : Py.Iterate(value, Line).ToList();
        if (values.Count != Targets.Count) throw new JinjaException($"line {Line}: cannot unpack {values.Count} values into {Targets.Count} names");
        for (int i = 0; i < Targets.Count; i++)
        {
            var (name, attr) = Targets[i];
            if (attr is null) { ctx.Set(name, values[i]); continue; }
            if (ctx.Get(name) is not Namespace ns) throw new JinjaException($"line {Line}: cannot assign attribute '{attr}' of '{name}', which is not a namespace()");
            ns.Values[attr] = values[i];
        }
    }
}

internal sealed record SetBlockStmt(string Name, List<Stmt> Body) : Stmt
{
    public override void Render(JinjaContext ctx, StringBuilder output)
    {
        var sb = new StringBuilder();
        RenderAll(Body, ctx, sb);
        ctx.Set(Name, sb.ToString());
    }
}

/// <summary>An expression: evaluates to a Python-like value (see <see cref="Py"/>).</summary>
internal abstract record Expr
{
    public abstract object? Eval(JinjaContext ctx);
}

internal sealed record ConstExpr(object? Value) : Expr
{
    public override object? Eval(JinjaContext ctx) => Value;
}

internal sealed record NameExpr(string Name, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx) => ctx.TryGet(Name, out var v) ? v : new Undefined(Name);
}

internal sealed record ListExpr(List<Expr> Items, bool IsTuple) : Expr
{
    public override object? Eval(JinjaContext ctx) => Items.Select(i => i.Eval(ctx)).ToList();
}

internal sealed record DictExpr(List<(Expr Key, Expr Value)> Pairs) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        var d = new OrderedDictionary<string, object?>();
        foreach (var (k, v) in Pairs)
            d[k.Eval(ctx) as string ?? throw new JinjaException("dict keys must be strings")] = v.Eval(ctx);
        return d;
    }
}

internal sealed record CondExpr(Expr Cond, Expr Then, Expr? Else) : Expr
{
    public override object? Eval(JinjaContext ctx) =>
        Py.Truthy(Cond.Eval(ctx)) ? Then.Eval(ctx) : Else is null ? new Undefined("else branch") : Else.Eval(ctx);
}

internal sealed record NotExpr(Expr Operand) : Expr
{
    public override object? Eval(JinjaContext ctx) => !Py.Truthy(Operand.Eval(ctx));
}

internal sealed record NegExpr(Expr Operand, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx) => Py.Binary("-", 0L, Operand.Eval(ctx), Line);
}

internal sealed record BinExpr(string Op, Expr Left, Expr Right, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        var l = Left.Eval(ctx);
        if (Op == "and") return Py.Truthy(l) ? Right.Eval(ctx) : l;
        if (Op == "or") return Py.Truthy(l) ? l : Right.Eval(ctx);
        return Py.Binary(Op, l, Right.Eval(ctx), Line);
    }
}

internal sealed record AttrExpr(Expr Target, string Name, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx) => Py.GetAttr(Target.Eval(ctx), Name, Line);
}

internal sealed record ItemExpr(Expr Target, Expr Key, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx) => Py.GetItem(Target.Eval(ctx), Key.Eval(ctx), Line);
}

internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx) =>
        Py.Slice(Target.Eval(ctx), Start?.Eval(ctx), Stop?.Eval(ctx), Step?.Eval(ctx), Line);
}

internal sealed record CallExpr(Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        var f = Callee.Eval(ctx);
        var args = Args.Select(a => a.Eval(ctx)).ToList();
        var kwargs = Kwargs.ToDictionary(k => k.Name, k => k.Value.Eval(ctx));
        return f switch
        {
            JinjaFunction fn => fn(args, kwargs),
            Undefined u => throw new JinjaException($"line {Line}: '{u.Name}' is undefined"),
            _ => throw new JinjaException($"line {Line}: {Py.TypeName(f)} object is not callable"),
        };
    }
}

internal sealed record FilterExpr(Expr Value, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx) =>
        JinjaBuiltins.Filter(Name, Value.Eval(ctx), Args.Select(a => a.Eval(ctx)).ToList(), Kwargs.ToDictionary(k => k.Name, k => k.Value.Eval(ctx)), ctx, Line);
}

internal sealed record TestExpr(Expr Value, string Name, List<Expr> Args, int Line) : Expr
{
    public override object? Eval(JinjaContext ctx) => JinjaBuiltins.Test(Name, Value.Eval(ctx), Args.Select(a => a.Eval(ctx)).ToList(), Line);
}

/// <summary>A callable value: a global (<c>namespace</c>, <c>range</c>, <c>raise_exception</c>) or a bound method (<c>s.strip</c>).</summary>
internal delegate object? JinjaFunction(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>Jinja's <c>Undefined</c>: prints as "", is false, iterates as empty; using it any other way is an error.</summary>
internal sealed record Undefined(string Name);

/// <summary>The object <c>namespace()</c> returns: attributes assignable with <c>{% set ns.x = … %}</c>.</summary>
internal sealed class Namespace
{
    public OrderedDictionary<string, object?> Values { get; } = new();
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopInfo(List<object?> items, int index)
{
    public object? Get(string name) => name switch
    {
        "index" => (long)index + 1,
        "index0" => (long)index,
        "revindex" => (long)(items.Count - index),
        "revindex0" => (long)(items.Count - index - 1),
        "first" => index == 0,
        "last" => index == items.Count - 1,
        "length" => (long)items.Count,
        "previtem" => index > 0 ? items[index - 1] : new Undefined("loop.previtem"),
        "nextitem" => index + 1 < items.Count ? items[index + 1] : new Undefined("loop.nextitem"),
        "cycle" => (JinjaFunction)((args, _) => args.Count == 0 ? throw new JinjaException("loop.cycle() needs arguments") : args[index % args.Count]),
        _ => new Undefined($"loop.{name}"),
    };
}

/// <summary>Variable scopes: a for-loop iteration gets its own scope, as in Jinja (a <c>set</c> inside it does not leak out).</summary>
internal sealed class JinjaContext
{
    readonly Dictionary<string, object?> _vars = new();
    readonly JinjaContext? _parent;

    public JinjaContext(JinjaContext? parent = null) => _parent = parent;

    public JinjaContext Push() => new(this);

    public void Set(string name, object? value) => _vars[name] = value;

    public bool TryGet(string name, out object? value)
    {
        for (var c = this; c is not null; c = c._parent)
            if (c._vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    public object? Get(string name) => TryGet(name, out var v) ? v : new Undefined(name);
}
