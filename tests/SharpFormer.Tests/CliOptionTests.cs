using System.Text.Json;

namespace SharpFormer.Tests;

/// <summary>Issue 15 items 1 and 10: a mistyped option is an error naming it (never input text), and typed options say what they expect.</summary>
public sealed class CliOptionTests
{
    static string BertTiny => SharedPaths.Fixture("bert-tiny");
    static string Gpt2Tiny => SharedPaths.Fixture("gpt2-tiny");

    /// <summary>Exactly one line on stderr, exit 1, naming <paramref name="mentions"/>.</summary>
    internal static void AssertUserError(CliHarness.Result r, string mentions)
    {
        Assert.True(r.ExitCode == 1, $"exit {r.ExitCode}: {r.Stderr}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got {lines.Length}: {r.Stderr}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mentions, lines[0]);
    }

    [Theory]
    [InlineData("demo")] [InlineData("info")] [InlineData("tokenize")] [InlineData("forward")] [InlineData("similarity")]
    [InlineData("embed")] [InlineData("fill-mask")] [InlineData("nsp")] [InlineData("classify")] [InlineData("ner")]
    [InlineData("generate")] [InlineData("perplexity")] [InlineData("train", "clm")] [InlineData("train", "ner")]
    [InlineData("attention")] [InlineData("causal-mask")] [InlineData("compare")] [InlineData("evaluate")]
    public void EveryCommandRefusesAnUnknownOption(params string[] command)
    {
        var r = CliHarness.Run([.. command, "--modle", BertTiny, "你好"]);
        AssertUserError(r, "unknown option '--modle'");
        if (command[0] != "demo") Assert.Contains("(did you mean --model?)", r.Stderr);   // demo has no --model
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void AMistypedSamplingOptionIsNotPutIntoThePrompt()
    {
        var r = CliHarness.Run("generate", "--model", Gpt2Tiny, "--temprature", "0.7", "--json", "--", "床前明月光");
        AssertUserError(r, "unknown option '--temprature' (did you mean --temperature?)");
    }

    [Fact]
    public void AnOptionFarFromEveryNameGetsNoSuggestionButStillFails()
    {
        var r = CliHarness.Run("classify", "--model", BertTiny, "--zzzzzzzzzz", "你好");
        AssertUserError(r, "unknown option '--zzzzzzzzzz'");
        Assert.DoesNotContain("did you mean", r.Stderr);
    }

    [Fact]
    public void ATextStartingWithADashWorksAfterTheSeparator()
    {
        var r = CliHarness.Run("tokenize", "--model", BertTiny, "--json", "--", "--modle");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(["-", "-", "mod", "##le"], doc.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public void ANegativeNumberIsStillAnOptionValue()
    {
        // -0.5 is --temperature's value (refused by generation's own check), not an unknown option.
        var r = CliHarness.Run("generate", "--model", Gpt2Tiny, "--temperature", "-0.5", "--", "hi");
        AssertUserError(r, "temperature must be a strictly positive number");
    }

    [Theory]
    [InlineData("generate", "--seed", "abc", "--seed must be an integer (got 'abc')")]
    [InlineData("classify", "--seed", "abc", "--seed must be an integer (got 'abc')")]
    [InlineData("generate", "--temperature", "warm", "--temperature must be a number (got 'warm')")]
    [InlineData("perplexity", "--stride", "1.5", "--stride must be an integer (got '1.5')")]
    public void ATypedOptionSaysWhatItExpects(string command, string option, string value, string message)
    {
        var r = CliHarness.Run(command, option, value, "--", "hi");
        AssertUserError(r, message);
        Assert.DoesNotContain("System.", r.Stderr);
    }
}
