using System.Text.Json;
using SharpFormer.Checkpoints;

namespace SharpFormer.Tests;

/// <summary>The foundation commands end to end: forward, tokenize, info, and their errors.</summary>
public sealed class CliFoundationTests : IDisposable
{
    readonly DirectoryInfo _tmp = Directory.CreateTempSubdirectory("sf-cli-");
    public void Dispose() => _tmp.Delete(recursive: true);

    static string BertTiny => SharedPaths.Fixture("bert-tiny");

    [Fact]
    public void ForwardOnGoldensJsonReproducesEveryGoldenTensor()
    {
        var outPath = Path.Combine(_tmp.FullName, "out.safetensors");
        var r = CliHarness.Run("forward", "--model", BertTiny, "--inputs", Path.Combine(BertTiny, "goldens.json"), "--out", outPath);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var ours = new SafeTensorsFile(outPath);
        using var golden = new SafeTensorsFile(Path.Combine(BertTiny, "goldens.safetensors"));
        int compared = 0;
        foreach (var (name, e) in golden.Entries)
        {
            if (!e.DType.IsFloat() || name.StartsWith("fill_mask")) continue;
            Assert.True(ours.Contains(name), $"forward did not write {name}");
            TensorAssert.Close(golden.ReadFloat32(name), ours.ReadFloat32(name), 1e-4f, name);
            compared++;
        }
        Assert.True(compared >= 27, $"only {compared} tensors compared");
    }

    [Fact]
    public void ForwardWithBadInputsWritesNothing()
    {
        var outPath = Path.Combine(_tmp.FullName, "bad.safetensors");
        var inputs = Path.Combine(_tmp.FullName, "in.json");
        File.WriteAllText(inputs, "{\"cases\": {\"x\": {\"input_ids\": [[101, 50000, 102]]}}}");
        var r = CliHarness.Run("forward", "--model", BertTiny, "--inputs", inputs, "--out", outPath);
        CliHarness.AssertOneLineError(r, "50000");
        Assert.False(File.Exists(outPath));
        Assert.Empty(_tmp.GetFiles("*.tmp"));
    }

    [Fact]
    public void TokenizeJsonMatchesTheFixture()
    {
        var r = CliHarness.Run("tokenize", "--model", BertTiny, "--json", "--pair", "我想知道今天的天气状况。", "--", "今天天气怎么样?");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var ids = doc.RootElement.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal(new[] { 101, 791, 1921, 1921, 3698, 2582, 720, 3416, 136, 102, 2769, 2682, 4761, 6887, 791, 1921, 4638, 1921, 3698, 4307, 1105, 511, 102 }, ids);
        Assert.Equal(ids.Length, doc.RootElement.GetProperty("offsets").GetArrayLength());
        Assert.Equal("今", doc.RootElement.GetProperty("tokens")[0].GetString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("-dash start")]
    public void TokenizeAcceptsAnyText(string text)
    {
        var r = CliHarness.Run("tokenize", "--model", BertTiny, "--json", "--", text);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(101, doc.RootElement.GetProperty("input_ids")[0].GetInt32());
    }

    [Fact]
    public void InfoDescribesTheModel()
    {
        var r = CliHarness.Run("info", "--model", BertTiny, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("BertForPreTraining", doc.RootElement.GetProperty("architecture").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("layers").GetInt32());
        Assert.Equal(4, doc.RootElement.GetProperty("heads").GetInt32());
        Assert.Contains("WordPiece", doc.RootElement.GetProperty("tokenizer").GetString());
        // word 21128·32 + position 64·32 + type 2·32 + LN 64 + 2 layers + pooler + MLM transform + bias + NSP
        long layer = 4 * (32 * 32 + 32) + 2 * 32 + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 32;
        long expected = 21128 * 32 + 64 * 32 + 2 * 32 + 64 + 2 * layer + (32 * 32 + 32) + (32 * 32 + 32 + 64 + 21128) + (32 * 2 + 2);
        Assert.Equal(expected, doc.RootElement.GetProperty("parameters").GetInt64());
    }

    [Fact]
    public void UserErrorsAreOneLineWithNonZeroExit()
    {
        CliHarness.AssertOneLineError(CliHarness.Run("info", "--model", Path.Combine(_tmp.FullName, "missing")), "not found");
        CliHarness.AssertOneLineError(CliHarness.Run("tokenize", "--model", BertTiny, "--max-length", "0", "x"), "--max-length");
        CliHarness.AssertOneLineError(CliHarness.Run("forward", "--model", BertTiny, "--inputs", Path.Combine(_tmp.FullName, "none.json"), "--out", "x.safetensors"), "not found");
        CliHarness.AssertOneLineError(CliHarness.Run("info", "--model", BertTiny, "--bogus"), "--bogus");
    }

    [Fact]
    public void HelpIsAvailableOnEveryCommand()
    {
        // The commands Program.cs registers (XxxCommand.Create() → xxx, CausalMaskCommand → causal-mask) are exactly the
        // ones the root help lists, so a command added later is covered without editing this test.
        var program = File.ReadAllText(Path.Combine(SharedPaths.Repo, "src", "SharpFormer.Cli", "Program.cs"));
        var registered = System.Text.RegularExpressions.Regex.Matches(program, @"\b(\w+)Command\.Create\(\)")
            .Select(m => System.Text.RegularExpressions.Regex.Replace(m.Groups[1].Value, "(?<=[a-z])(?=[A-Z])", "-").ToLowerInvariant())
            .Order().ToList();
        Assert.True(registered.Count >= 17, $"found only {registered.Count} commands in Program.cs");
        Assert.Equal(registered, HelpCommands([]).Order());
        int checkedCommands = CheckHelpTree([]);
        Assert.True(checkedCommands >= registered.Count + 4, $"only {checkedCommands} commands' help checked");   // + train's 4
    }

    /// <summary>Checks <c>sharpformer PATH --help</c> and recurses into the subcommands it lists; returns how many were checked.</summary>
    static int CheckHelpTree(string[] path)
    {
        int count = 0;
        foreach (var sub in HelpCommands(path))
        {
            string[] cmd = [.. path, sub];
            count += 1 + CheckHelpTree(cmd);
        }
        return count;
    }

    /// <summary>Runs <c>sharpformer PATH --help</c>, checks it and returns the subcommands listed under "Commands:".</summary>
    static List<string> HelpCommands(string[] path)
    {
        var r = CliHarness.Run([.. path, "--help"]);
        string name = string.Join(' ', ["sharpformer", .. path]);
        Assert.True(r.ExitCode == 0, $"{name} --help: exit {r.ExitCode}, {r.Stderr}");
        Assert.Equal("", r.Stderr);
        var lines = r.Stdout.ReplaceLineEndings("\n").Split('\n');
        Assert.Equal("Description:", lines[0]);
        Assert.True(lines[1].Trim().Length > 10, $"{name} has no description");
        Assert.Contains("Usage:\n  " + name, r.Stdout.ReplaceLineEndings("\n"));
        Assert.Contains("--help", r.Stdout);
        return lines.SkipWhile(l => l != "Commands:").Skip(1).TakeWhile(l => l.StartsWith("  "))
            .Select(l => l.Trim().Split(' ')[0]).ToList();
    }
}

/// <summary>The foundation commands on the GPT-2 fixture.</summary>
public sealed class CliGpt2FoundationTests : IDisposable
{
    readonly DirectoryInfo _tmp = Directory.CreateTempSubdirectory("sf-cli-gpt2-");
    public void Dispose() => _tmp.Delete(recursive: true);
    static string Gpt2Tiny => SharedPaths.Fixture("gpt2-tiny");

    [Fact]
    public void ForwardOnGpt2PromptsReproducesGoldens()
    {
        var outPath = Path.Combine(_tmp.FullName, "out.safetensors");
        var r = CliHarness.Run("forward", "--model", Gpt2Tiny, "--inputs", Path.Combine(Gpt2Tiny, "goldens.json"), "--out", outPath);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var ours = new SafeTensorsFile(outPath);
        using var golden = new SafeTensorsFile(Path.Combine(Gpt2Tiny, "goldens.safetensors"));
        int compared = 0;
        foreach (var p in new[] { "prompt_zh", "prompt_en", "prompt_mixed" })
            foreach (var (name, e) in golden.Entries.Where(x => x.Key.StartsWith(p + ".") && x.Value.DType.IsFloat()))
            {
                Assert.True(ours.Contains(name), $"forward did not write {name}");
                TensorAssert.Close(golden.ReadFloat32(name), ours.ReadFloat32(name), 1e-4f, name);
                compared++;
            }
        // logits, 3 hidden states, 2 attentions, 2×2 presents per prompt
        Assert.Equal(3 * 10, compared);
    }

    [Fact]
    public void TokenizeAndInfoWorkForGpt2()
    {
        var r = CliHarness.Run("tokenize", "--model", Gpt2Tiny, "--json", "--", "Hello, my dog is cute");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(new[] { 15496, 11, 616, 3290, 318, 13779 }, doc.RootElement.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal("Ġmy", doc.RootElement.GetProperty("tokens")[2].GetString());
        var info = CliHarness.Run("info", "--model", Gpt2Tiny, "--json");
        Assert.True(info.ExitCode == 0, info.Stderr);
        using var idoc = JsonDocument.Parse(info.Stdout);
        Assert.Equal(128, idoc.RootElement.GetProperty("intermediate_size").GetInt32());
        // wte + wpe + 2 blocks + ln_f (lm_head tied)
        long block = 2 * 2 * 32 + (32 * 96 + 96) + (32 * 32 + 32) + (32 * 128 + 128) + (128 * 32 + 32);
        Assert.Equal(50257L * 32 + 64 * 32 + 2 * block + 2 * 32, idoc.RootElement.GetProperty("parameters").GetInt64());
    }
}

/// <summary>The main job and the shipped-model defaults, through the built CLI.</summary>
public sealed class CliShippedModelTests
{
    [Fact]
    public void DemoRunsEveryShippedModel()
    {
        var r = CliHarness.Run("demo", "--seed", "3");
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var expected in new[] { "床前明月光", "bert-chinese-small-sentiment", "阿里巴巴", "[MASK]", "causal" })
            Assert.Contains(expected, r.Stdout);
        // Sampling is seeded: the same command prints the same text.
        Assert.Equal(r.Stdout, CliHarness.Run("demo", "--seed", "3").Stdout);
    }

    [Fact]
    public void CommandsDefaultToTheShippedModelOfTheirFamily()
    {
        var gen = CliHarness.Run("generate", "--json", "--greedy", "--max-new-tokens", "8", "--", "床前明月光");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
        var text = System.Text.Json.JsonDocument.Parse(gen.Stdout).RootElement.GetProperty("sequences")[0].GetProperty("text").GetString()!;
        Assert.DoesNotContain(" ", text); // no WordPiece spaces between generated characters
        var cls = CliHarness.Run("classify", "--json", "--", "服务很差，非常失望。");
        Assert.True(cls.ExitCode == 0, cls.Stderr);
        Assert.Contains("negative", cls.Stdout);
        var info = CliHarness.Run("info", "--json");
        Assert.True(info.ExitCode == 0, info.Stderr);
        Assert.Contains("BertForPreTraining", info.Stdout);
    }
}
