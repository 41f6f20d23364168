using System.Diagnostics;

namespace SharpFormer.Tests;

/// <summary>Runs the built <c>sharpformer</c> CLI as a separate process, the way a user does.</summary>
public static class CliHarness
{
    static readonly Lazy<string> Dll = new(() =>
    {
        // tests/SharpFormer.Tests/bin/<Configuration>/net10.0/ → src/SharpFormer.Cli/bin/<Configuration>/net10.0/SharpFormer.Cli.dll
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = testBin.Name;
        var configuration = testBin.Parent!.Name;
        var repo = testBin.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(repo, "src", "SharpFormer.Cli", "bin", configuration, tfm, "SharpFormer.Cli.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"the CLI was not built: {dll} is missing");
        return dll;
    });

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        using var p = Process.Start(StartInfo(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException($"sharpformer {string.Join(' ', args)} did not finish"); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs the CLI with <paramref name="env"/> set in its environment (a null value unsets the variable).</summary>
    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string?> env, params string[] args)
    {
        var psi = StartInfo(args);
        foreach (var (k, v) in env)
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(120_000);
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { p.Kill(true); throw new TimeoutException($"sharpformer {string.Join(' ', args)} did not finish"); }
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>How to start the CLI with <paramref name="args"/> (stdout and stderr redirected), for tests that signal it.</summary>
    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = System.Text.Encoding.UTF8,
            StandardErrorEncoding = System.Text.Encoding.UTF8,
        };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(Dll.Value);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>A user error: non-zero exit, one line on stderr naming the problem, no stack trace.</summary>
    public static void AssertOneLineError(Result r, string mentions)
    {
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.TrimEnd('\r', '\n').Split('\n');
        Assert.True(lines.Length == 1 && lines[0].Trim().Length > 0, $"expected exactly one line on stderr, got {lines.Length}:\n{r.Stderr}");
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Contains(mentions, r.Stderr);
    }

    /// <summary>The built CLI's SharpFormer.Cli.dll (its deps.json lies beside it).</summary>
    public static string DllPath => Dll.Value;
}
