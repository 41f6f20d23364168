using System.CommandLine;

namespace SharpFormer.Cli;

/// <summary>Runs the command line and turns every failure into one line on stderr and a non-zero exit code.</summary>
public static class CliRunner
{
    public const int UserError = 1;
    public const int InternalError = 2;

    public static int Run(Command root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"error: {OneLine(parsed.Errors[0].Message)} (see 'sharpformer --help')");
            return UserError;
        }
        try
        {
            if (parsed.GetValue(CommonOptions.Threads) is int threads) Kernels.Threading.Threads = threads;
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

    static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
