using System.Globalization;
using System.Text;

namespace SharpFormer.Templates;

/// <summary>An expression token: a name, a literal, or an operator / punctuation.</summary>
internal readonly record struct ExprToken(char Type, string Text, object? Value)
{
    // Type: 'n' name, 's' string, 'i' integer, 'f' float, 'o' operator, 'e' end
    public bool Is(string op) => Type == 'o' && Text == op;
    public bool IsName(string name) => Type == 'n' && Text == name;
}

/// <summary>
/// Parses the Jinja2 subset that chat templates use into statements and expressions (see <see cref="JinjaTemplate"/>);
/// anything else is a <see cref="JinjaException"/> naming the construct and its line.
/// </summary>
internal sealed class JinjaParser
{
    readonly List<TemplatePart> _parts;
    int _index;

    JinjaParser(List<TemplatePart> parts) => _parts = parts;

    public static List<Stmt> Parse(string source)
    {
        var p = new JinjaParser(JinjaLexer.Lex(source));
        var body = p.ParseBody(out var end);
        if (end is not null) throw new JinjaException($"line {end.Value.Line}: unexpected {{% {end.Value.Content} %}}");
        return body;
    }

    /// <summary>Statements until a block tag this level does not own (returned in <paramref name="end"/>) or the end.</summary>
    List<Stmt> ParseBody(out TemplatePart? end)
    {
        var body = new List<Stmt>();
        end = null;
        while (_index < _parts.Count)
        {
            var part = _parts[_index];
            if (part.IsText) { body.Add(new TextStmt(part.Content)); _index++; continue; }
            var lexer = new ExprLexer(part.Content, part.Line);
            if (part.IsOutput)
            {
                var e = ParseExpressionAll(lexer);
                body.Add(new OutputStmt(e));
                _index++;
                continue;
            }
            var keyword = lexer.Peek();
            if (keyword.Type != 'n') throw new JinjaException($"line {part.Line}: expected a tag name in {{% {part.Content} %}}");
            switch (keyword.Text)
            {
                case "if": _index++; lexer.Next(); body.Add(ParseIf(lexer, part.Line)); break;
                case "for": _index++; lexer.Next(); body.Add(ParseFor(lexer, part.Line)); break;
                case "set": _index++; lexer.Next(); body.Add(ParseSet(lexer, part.Line)); break;
                case "elif" or "else" or "endif" or "endfor" or "endset":
                    end = part;
                    return body;
                default:
                    throw new JinjaException($"line {part.Line}: tag '{keyword.Text}' is not supported");
            }
        }
        return body;
    }

    static Expr ParseExpressionAll(ExprLexer lexer)
    {
        var e = new ExprParser(lexer).ParseExpression();
        lexer.ExpectEnd();
        return e;
    }

    Stmt ParseIf(ExprLexer lexer, int line)
    {
        var branches = new List<(Expr?, List<Stmt>)>();
        var cond = ParseExpressionAll(lexer);
        while (true)
        {
            var body = ParseBody(out var end);
            branches.Add((cond, body));
            if (end is null) throw new JinjaException($"line {line}: {{% if %}} without {{% endif %}}");
            _index++;
            var l = new ExprLexer(end.Value.Content, end.Value.Line);
            string kw = l.Next().Text;
            if (kw == "endif") { l.ExpectEnd(); return new IfStmt(branches); }
            if (kw == "elif") { cond = ParseExpressionAll(l); continue; }
            if (kw == "else")
            {
                l.ExpectEnd();
                var elseBody = ParseBody(out var end2);
                if (end2 is null || end2.Value.Content.Trim() != "endif") throw new JinjaException($"line {line}: {{% if %}} without {{% endif %}}");
                _index++;
                branches.Add((null, elseBody));
                return new IfStmt(branches);
            }
            throw new JinjaException($"line {end.Value.Line}: unexpected {{% {end.Value.Content} %}} in {{% if %}}");
        }
    }

    Stmt ParseFor(ExprLexer lexer, int line)
    {
        var names = new List<string> { lexer.ExpectName() };
        while (lexer.Peek().Is(",")) { lexer.Next(); names.Add(lexer.ExpectName()); }
        if (!lexer.Next().IsName("in")) throw new JinjaException($"line {line}: expected 'in' in {{% for %}}");
        var ep = new ExprParser(lexer);
        var iterable = ep.ParseExpression(allowConditional: false);
        Expr? filter = null;
        if (lexer.Peek().IsName("if")) { lexer.Next(); filter = ep.ParseExpression(allowConditional: false); }
        if (lexer.Peek().IsName("recursive")) throw new JinjaException($"line {line}: recursive loops are not supported");
        lexer.ExpectEnd();
        var body = ParseBody(out var end);
        List<Stmt>? elseBody = null;
        if (end is { } e && e.Content.Trim() == "else")
        {
            _index++;
            elseBody = ParseBody(out end);
        }
        if (end is null || end.Value.Content.Trim() != "endfor") throw new JinjaException($"line {line}: {{% for %}} without {{% endfor %}}");
        _index++;
        return new ForStmt(names, iterable, filter, body, elseBody, line);
    }

    Stmt ParseSet(ExprLexer lexer, int line)
    {
        var targets = new List<(string Name, string? Attr)>();
        do
        {
            if (targets.Count > 0) lexer.Next();
            string name = lexer.ExpectName();
            string? attr = null;
            if (lexer.Peek().Is(".")) { lexer.Next(); attr = lexer.ExpectName(); }
            targets.Add((name, attr));
        } while (lexer.Peek().Is(","));
        if (lexer.Peek().Type == 'e')
        {
            // {% set x %}…{% endset %}: the rendered body is the value.
            if (targets.Count != 1 || targets[0].Attr is not null) throw new JinjaException($"line {line}: a {{% set %}} block assigns one name");
            var body = ParseBody(out var end);
            if (end is null || end.Value.Content.Trim() != "endset") throw new JinjaException($"line {line}: {{% set %}} without {{% endset %}}");
            _index++;
            return new SetBlockStmt(targets[0].Name, body);
        }
        if (!lexer.Next().Is("=")) throw new JinjaException($"line {line}: expected '=' in {{% set %}}");
        var value = ParseExpressionAll(lexer);
        return new SetStmt(targets, value, line);
    }
}

/// <summary>Tokenizes the inside of one tag.</summary>
internal sealed class ExprLexer
{
    static readonly string[] Operators = ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", ".", "|", "="];
    readonly List<ExprToken> _tokens = new();
    int _pos;
    public int Line { get; }

    public ExprLexer(string s, int line)
    {
        Line = line;
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsLetter(c) || c == '_')
            {
                int st = i;
                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                _tokens.Add(new ExprToken('n', s[st..i], null));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                int st = i;
                while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '_')) i++;
                bool isFloat = false;
                if (i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
                {
                    isFloat = true;
                    i++;
                    while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                }
                if (i < s.Length && s[i] is 'e' or 'E')
                {
                    int save = i++;
                    if (i < s.Length && s[i] is '+' or '-') i++;
                    if (i < s.Length && char.IsAsciiDigit(s[i])) { isFloat = true; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
                    else i = save;
                }
                string num = s[st..i].Replace("_", "");
                _tokens.Add(isFloat
                    ? new ExprToken('f', num, double.Parse(num, CultureInfo.InvariantCulture))
                    : new ExprToken('i', num, long.Parse(num, CultureInfo.InvariantCulture)));
                continue;
            }
            if (c is '\'' or '"')
            {
                var sb = new StringBuilder();
                int st = i++;
                while (true)
                {
                    if (i >= s.Length) throw new JinjaException($"line {line}: unterminated string literal");
                    char d = s[i++];
                    if (d == c) break;
                    if (d != '\\' || i >= s.Length) { sb.Append(d); continue; }
                    char esc = s[i++];
                    switch (esc)
                    {
                        case 'n': sb.Append('\n'); break;
                        case 't': sb.Append('\t'); break;
                        case 'r': sb.Append('\r'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'v': sb.Append('\v'); break;
                        case 'a': sb.Append('\a'); break;
                        case '0': sb.Append('\0'); break;
                        case '\\' or '\'' or '"': sb.Append(esc); break;
                        case '\n': break;
                        case 'x' when i + 2 <= s.Length: sb.Append((char)Convert.ToInt32(s.Substring(i, 2), 16)); i += 2; break;
                        case 'u' when i + 4 <= s.Length: sb.Append((char)Convert.ToInt32(s.Substring(i, 4), 16)); i += 4; break;
                        case 'U' when i + 8 <= s.Length: sb.Append(char.ConvertFromUtf32(Convert.ToInt32(s.Substring(i, 8), 16))); i += 8; break;
                        default: sb.Append('\\').Append(esc); break;     // Python keeps unknown escapes
                    }
                }
                _tokens.Add(new ExprToken('s', s[st..i], sb.ToString()));
                continue;
            }
            string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, i, o, 0, o.Length) == 0);
            if (op is null) throw new JinjaException($"line {line}: unexpected character '{c}'");
            _tokens.Add(new ExprToken('o', op, null));
            i += op.Length;
        }
    }

    public ExprToken Peek(int ahead = 0) => _pos + ahead < _tokens.Count ? _tokens[_pos + ahead] : new ExprToken('e', "end of tag", null);
    public ExprToken Next() { var t = Peek(); if (_pos < _tokens.Count) _pos++; return t; }

    public string ExpectName()
    {
        var t = Next();
        return t.Type == 'n' ? t.Text : throw new JinjaException($"line {Line}: expected a name, found '{t.Text}'");
    }

    public void Expect(string op)
    {
        var t = Next();
        if (!t.Is(op)) throw new JinjaException($"line {Line}: expected '{op}', found '{t.Text}'");
    }

    public void ExpectEnd()
    {
        var t = Peek();
        if (t.Type != 'e') throw new JinjaException($"line {Line}: unexpected '{t.Text}'");
    }
}

/// <summary>Jinja's expression grammar, loosest binding first: conditional, or, and, not, comparisons, +/-, ~, */ // %, **, unary, postfix.</summary>
internal sealed class ExprParser(ExprLexer lx)
{
    int Line => lx.Line;

    public Expr ParseExpression(bool allowConditional = true)
    {
        var e = ParseOr();
        if (allowConditional && lx.Peek().IsName("if"))
        {
            lx.Next();
            var cond = ParseOr();
            Expr? otherwise = null;
            if (lx.Peek().IsName("else")) { lx.Next(); otherwise = ParseExpression(); }
            return new CondExpr(cond, e, otherwise);
        }
        return e;
    }

    /// <summary>A left-associative level: operands joined by the operators <paramref name="isOp"/> accepts.</summary>
    Expr LeftAssociative(Func<Expr> operand, Func<ExprToken, bool> isOp)
    {
        var e = operand();
        while (isOp(lx.Peek())) { string op = lx.Next().Text; e = new BinExpr(op, e, operand(), Line); }
        return e;
    }

    Expr ParseOr() => LeftAssociative(ParseAnd, t => t.IsName("or"));

    Expr ParseAnd() => LeftAssociative(ParseNot, t => t.IsName("and"));

    Expr ParseNot()
    {
        if (lx.Peek().IsName("not")) { lx.Next(); return new NotExpr(ParseNot()); }
        return ParseCompare();
    }

    Expr ParseCompare()
    {
        var e = ParseMath1();
        while (true)
        {
            var t = lx.Peek();
            if (t.Type == 'o' && t.Text is "==" or "!=" or "<" or "<=" or ">" or ">=") { lx.Next(); e = new BinExpr(t.Text, e, ParseMath1(), Line); }
            else if (t.IsName("in")) { lx.Next(); e = new BinExpr("in", e, ParseMath1(), Line); }
            else if (t.IsName("not") && lx.Peek(1).IsName("in")) { lx.Next(); lx.Next(); e = new NotExpr(new BinExpr("in", e, ParseMath1(), Line)); }
            else return e;
        }
    }

    Expr ParseMath1() => LeftAssociative(ParseConcat, t => t is { Type: 'o', Text: "+" or "-" });

    Expr ParseConcat() => LeftAssociative(ParseMath2, t => t.Is("~"));

    Expr ParseMath2() => LeftAssociative(ParsePow, t => t is { Type: 'o', Text: "*" or "/" or "//" or "%" });

    Expr ParsePow() => LeftAssociative(() => ParseUnary(true), t => t.Is("**"));

    Expr ParseUnary(bool withFilter)
    {
        Expr e;
        if (lx.Peek().Is("-")) { lx.Next(); e = new NegExpr(ParseUnary(false), Line); }
        else if (lx.Peek().Is("+")) { lx.Next(); e = ParseUnary(false); }
        else e = ParsePostfix(ParsePrimary());
        return withFilter ? ParseFilters(e) : e;
    }

    Expr ParsePrimary()
    {
        var t = lx.Next();
        switch (t.Type)
        {
            case 's':
                var s = (string)t.Value!;
                while (lx.Peek().Type == 's') s += (string)lx.Next().Value!;    // adjacent literals concatenate
                return new ConstExpr(s);
            case 'i' or 'f': return new ConstExpr(t.Value);
            case 'n':
                return t.Text switch
                {
                    "true" or "True" => new ConstExpr(true),
                    "false" or "False" => new ConstExpr(false),
                    "none" or "None" => new ConstExpr(null),
                    _ => new NameExpr(t.Text, Line),
                };
        }
        if (t.Is("("))
        {
            if (lx.Peek().Is(")")) { lx.Next(); return new ListExpr([], IsTuple: true); }
            var first = ParseExpression();
            if (lx.Peek().Is(")")) { lx.Next(); return first; }
            var items = new List<Expr> { first };
            while (lx.Peek().Is(",")) { lx.Next(); if (lx.Peek().Is(")")) break; items.Add(ParseExpression()); }
            lx.Expect(")");
            return new ListExpr(items, IsTuple: true);
        }
        if (t.Is("["))
        {
            var items = new List<Expr>();
            while (!lx.Peek().Is("]")) { items.Add(ParseExpression()); if (!lx.Peek().Is(",")) break; lx.Next(); }
            lx.Expect("]");
            return new ListExpr(items, IsTuple: false);
        }
        if (t.Is("{"))
        {
            var pairs = new List<(Expr, Expr)>();
            while (!lx.Peek().Is("}"))
            {
                var k = ParseExpression();
                lx.Expect(":");
                pairs.Add((k, ParseExpression()));
                if (!lx.Peek().Is(",")) break;
                lx.Next();
            }
            lx.Expect("}");
            return new DictExpr(pairs);
        }
        throw new JinjaException($"line {Line}: unexpected '{t.Text}'");
    }

    Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            if (lx.Peek().Is("."))
            {
                lx.Next();
                var name = lx.Next();
                if (name.Type is not ('n' or 'i')) throw new JinjaException($"line {Line}: expected an attribute name after '.'");
                e = name.Type == 'i' ? new ItemExpr(e, new ConstExpr(name.Value), Line) : new AttrExpr(e, name.Text, Line);
            }
            else if (lx.Peek().Is("[")) { lx.Next(); e = ParseSubscript(e); }
            else if (lx.Peek().Is("(")) { lx.Next(); e = ParseCall(e); }
            else return e;
        }
    }

    Expr ParseSubscript(Expr target)
    {
        Expr?[] parts = [null, null, null];
        int n = 0;
        bool slice = false;
        while (true)
        {
            if (lx.Peek().Is(":")) { lx.Next(); slice = true; if (++n > 2) throw new JinjaException($"line {Line}: bad slice"); continue; }
            if (lx.Peek().Is("]")) { lx.Next(); break; }
            parts[n] = ParseExpression();
        }
        return slice ? new SliceExpr(target, parts[0], parts[1], parts[2], Line) : new ItemExpr(target, parts[0] ?? throw new JinjaException($"line {Line}: empty subscript"), Line);
    }

    (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArgs()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!lx.Peek().Is(")"))
        {
            if (lx.Peek().Type == 'n' && lx.Peek(1).Is("=")) { string k = lx.Next().Text; lx.Next(); kwargs.Add((k, ParseExpression())); }
            else args.Add(ParseExpression());
            if (!lx.Peek().Is(",")) break;
            lx.Next();
        }
        lx.Expect(")");
        return (args, kwargs);
    }

    Expr ParseCall(Expr callee)
    {
        var (args, kwargs) = ParseArgs();
        return new CallExpr(callee, args, kwargs, Line);
    }

    Expr ParseFilters(Expr e)
    {
        while (true)
        {
            if (lx.Peek().Is("|"))
            {
                lx.Next();
                string name = lx.ExpectName();
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (lx.Peek().Is("(")) { lx.Next(); (args, kwargs) = ParseArgs(); }
                e = new FilterExpr(e, name, args, kwargs, Line);
            }
            else if (lx.Peek().IsName("is"))
            {
                lx.Next();
                bool negate = false;
                if (lx.Peek().IsName("not")) { lx.Next(); negate = true; }
                string name = lx.ExpectName();
                List<Expr> args = [];
                if (lx.Peek().Is("(")) { lx.Next(); args = ParseArgs().Args; }
                else if (lx.Peek().Type is 's' or 'i' or 'f' || (lx.Peek().Type == 'n' && !lx.Peek().IsName("and") && !lx.Peek().IsName("or") && !lx.Peek().IsName("else") && !lx.Peek().IsName("if")))
                    args = [ParsePostfix(ParsePrimary())];
                Expr test = new TestExpr(e, name, args, Line);
                e = negate ? new NotExpr(test) : test;
            }
            else return e;
        }
    }
}
