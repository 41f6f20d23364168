using System.CommandLine;
using System.CommandLine.Parsing;

namespace SharpFormer.Cli;

/// <summary>Runs the command line and turns every failure into one line on stderr and a non-zero exit code.</summary>
public static class CliRunner
{
    /// <summary>Exit code of a user error (bad option, bad input file, a model that cannot be loaded).</summary>
    public const int UserError = 1;
    /// <summary>Exit code of a bug: an exception the program did not expect.</summary>
    public const int InternalError = 2;

    /// <summary>Parses <paramref name="args"/>, runs the chosen command and returns the process exit code.</summary>
    public static int Run(Command root, string[] args)
    {
        var parsed = root.Parse(args);
        // Before the parser's own errors: an unknown option is otherwise reported as a stray argument, or silently taken as text.
        var problem = UnknownOption(parsed) ?? (parsed.Errors.Count > 0 ? Describe(parsed.Errors[0]) : null);
        if (problem is not null)
        {
            Console.Error.WriteLine($"error: {OneLine(problem)}");
            return UserError;
        }
        try
        {
            // The command runs in a kernel context of --threads threads (default: every core), freed when it ends.
            using var kernels = parsed.GetValue(CommonOptions.Threads) is int threads ? new Kernels.KernelContext(threads) : null;
            using var scope = kernels?.Enter();
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (SharpFormerException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return UserError;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return UserError;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error ({e.GetType().Name}): {OneLine(e.Message)}");
            return InternalError;
        }
    }

    /// <summary>
    /// The first token before <c>--</c> that looks like an option but is none of the command's options nor the value of
    /// one (a negative number given to <c>--temperature</c>, say), described with the nearest option name; else null.
    /// </summary>
    static string? UnknownOption(ParseResult parsed)
    {
        var optionValues = new HashSet<Token>(ReferenceEqualityComparer.Instance);
        CollectOptionValues(parsed.RootCommandResult, optionValues);
        foreach (var token in parsed.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) break;
            if (token.Type != TokenType.Argument || token.Value.Length < 2 || token.Value[0] != '-' || optionValues.Contains(token)) continue;
            var name = token.Value.Split('=', ':')[0];
            var known = KnownOptionNames(parsed.CommandResult).ToList();
            var nearest = known.MinBy(k => EditDistance(k, name));
            string hint = nearest is not null && EditDistance(nearest, name) <= Math.Max(2, name.Length / 3) ? $" (did you mean {nearest}?)" : "";
            bool takesTexts = parsed.CommandResult.Command.Arguments.Count > 0;
            return $"unknown option '{token.Value}'{hint}" + (takesTexts ? "; a text starting with '-' goes after '--'" : "") + $" ({HelpHint(parsed.CommandResult)})";
        }
        return null;
    }

    static void CollectOptionValues(CommandResult command, HashSet<Token> into)
    {
        foreach (var child in command.Children)
        {
            if (child is OptionResult o) into.UnionWith(o.Tokens);
            else if (child is CommandResult sub) CollectOptionValues(sub, into);
        }
    }

    /// <summary>The options (names and aliases) the command accepts, its parents' recursive ones included.</summary>
    static IEnumerable<string> KnownOptionNames(CommandResult command)
    {
        for (SymbolResult? r = command; r is not null; r = r.Parent)
            if (r is CommandResult c)
                foreach (var o in c.Command.Options)
                    if (ReferenceEquals(c, command) || o.Recursive)
                        foreach (var n in o.Aliases.Prepend(o.Name)) yield return n;
    }

    /// <summary>A parse error in the user's terms: a value that does not convert names its option and the type expected, never a .NET type name.</summary>
    static string Describe(ParseError error)
    {
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        if (option is null || !error.Message.StartsWith("Cannot parse argument", StringComparison.Ordinal)) return error.Message;
        var type = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
        if (type.IsArray) type = type.GetElementType()!;
        string expected = Type.GetTypeCode(type) switch
        {
            TypeCode.Int16 or TypeCode.Int32 or TypeCode.Int64 or TypeCode.Byte or TypeCode.UInt16 or TypeCode.UInt32 or TypeCode.UInt64 => "an integer",
            TypeCode.Single or TypeCode.Double or TypeCode.Decimal => "a number",
            TypeCode.Boolean => "true or false",
            _ => "a valid value",
        };
        var value = error.SymbolResult!.Tokens.FirstOrDefault(t => t.Type == TokenType.Argument)?.Value;
        return $"{option.Name} must be {expected}" + (value is null ? "" : $" (got '{value}')");
    }

    /// <summary>"see 'sharpformer train clm --help'": where the command's options are listed.</summary>
    static string HelpHint(CommandResult command)
    {
        var names = new List<string> { "--help" };
        for (var c = command; c.Parent is CommandResult parent; c = parent) names.Insert(0, c.Command.Name);
        return $"see 'sharpformer {string.Join(' ', names)}'";
    }

    /// <summary>Levenshtein distance, case-sensitive (options are).</summary>
    static int EditDistance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }

    static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
