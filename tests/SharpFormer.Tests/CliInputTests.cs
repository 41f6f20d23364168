using System.Text;
using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>
/// Issue 15 items 3, 4, 5, 8, 9 and 10: pair classification from JSONL, strict UTF-8 in input and JSON files,
/// non-finite model outputs, configs that do not fit their checkpoint, and output paths checked before any work.
/// </summary>
public sealed class CliInputTests : IDisposable
{
    readonly DirectoryInfo _tmp = Directory.CreateTempSubdirectory("sf-input-");
    public void Dispose() => _tmp.Delete(recursive: true);

    static string Fixture(string name) => SharedPaths.Fixture(name);
    string Tmp(string name) => Path.Combine(_tmp.FullName, name);
    static void AssertUserError(CliHarness.Result r, string mentions) => CliOptionTests.AssertUserError(r, mentions);

    /// <summary>A copy of a fixture model folder (weights, config, tokenizer files) to damage.</summary>
    string CopyModel(string fixture, string name)
    {
        var dir = Directory.CreateDirectory(Tmp(name)).FullName;
        foreach (var f in Directory.GetFiles(Fixture(fixture)))
            if (!Path.GetFileName(f).StartsWith("goldens") && !f.EndsWith(".bin")) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    /// <summary>A copy of a fixture whose weights have one NaN (in a LayerNorm weight), as a diverged training run leaves them.</summary>
    string Diverged(string fixture)
    {
        var tensorSuffix = fixture.StartsWith("gpt2") ? "ln_f.weight" : "embeddings.LayerNorm.weight";
        var dir = CopyModel(fixture, fixture + "-diverged");
        var path = Path.Combine(dir, "model.safetensors");
        var writer = new SafeTensorsWriter();
        using (var file = new SafeTensorsFile(path))
            foreach (var name in file.Names.Order())
            {
                var t = file.ReadFloat32(name);
                if (name.EndsWith(tensorSuffix)) t.Data[0] = float.NaN;
                writer.Add(name, t);
            }
        writer.Save(path);
        return dir;
    }

    /// <summary>Inserts a string field holding an invalid UTF-8 byte at the start of a JSON object file.</summary>
    static void CorruptJson(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int brace = Array.IndexOf(bytes, (byte)'{');
        File.WriteAllBytes(path, [.. bytes[..(brace + 1)], .. "\"x\": \""u8, 0xFF, .. "\","u8, .. bytes[(brace + 1)..]]);
    }

    // ---------------------------------------------------------------- item 3

    [Fact]
    public void ClassifyScoresJsonlTextPairAsAPair()
    {
        var dir = Fixture("bert-tiny-seqcls");
        var input = Tmp("pairs.jsonl");
        File.WriteAllText(input, "{\"text\": \"今天天气怎么样?\", \"text_pair\": \"我想知道今天的天气状况。\"}\n");
        var r = CliHarness.Run("classify", "--model", dir, "--input", input, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var scores = doc.RootElement.GetProperty("scores").EnumerateArray().ToDictionary(s => s.GetProperty("label").GetString()!, s => s.GetProperty("score").GetSingle());
        Assert.Equal("我想知道今天的天气状况。", doc.RootElement.GetProperty("text_pair").GetString());

        // The reference: the model on [CLS] A [SEP] B [SEP] with token types 0 then 1 (HF's pipeline on {"text", "text_pair"}).
        var tokenizer = AutoTokenizer.FromFolder(dir);
        var model = BertModel.Load(dir);
        float[] Probabilities(string a, string? b)
        {
            var enc = tokenizer.Encode(a, b);
            var logits = model.Forward(BertInputs.FromEncodings([enc])).Logits!.Data.ToArray();
            Softmax.InPlace(logits);
            return logits;
        }
        var pair = Probabilities("今天天气怎么样?", "我想知道今天的天气状况。");
        var alone = Probabilities("今天天气怎么样?", null);
        Assert.Equal(pair[0], scores["负面"], 5);
        Assert.Equal(pair[1], scores["正面"], 5);
        Assert.True(Math.Abs(alone[0] - pair[0]) > 1e-4, "the pair and the text alone score the same: the test cannot tell them apart");
    }

    [Fact]
    public void EvaluatePairsAndStsHonourDtype()
    {
        var data = Tmp("sts.txt");
        File.WriteAllLines(data,
        [
            "1||今天天气很好||今天天气不错||4.5", "2||我喜欢读书||他在跑步||0.5", "3||这部电影很精彩||电影非常好看||4.0",
            "4||北京是首都||上海是城市||1.5", "5||猫在睡觉||小猫睡着了||4.2", "6||价格太贵了||质量很好||2.0",
        ]);
        double Pearson(string task, string dtype)
        {
            var r = CliHarness.Run("evaluate", "--task", task, "--model", Fixture("bert-tiny-seqcls"), "--data", data, "--dtype", dtype, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            return doc.RootElement.GetProperty("pearson").GetDouble();
        }
        double f32 = Pearson("sts", "f32");
        Assert.NotEqual(f32, Pearson("sts", "int8"));
        Assert.NotEqual(f32, Pearson("sts", "bf16"));

        // pairs: the best threshold is one of the scores, so it moves with the weights' precision.
        var pairs = Tmp("pairs.tsv");
        File.WriteAllLines(pairs, ["今天天气很好\t今天天气不错\t1", "我喜欢读书\t他在跑步\t0", "这部电影很精彩\t电影非常好看\t1", "北京是首都\t上海是城市\t0"]);
        double BestThreshold(string dtype)
        {
            var r = CliHarness.Run("evaluate", "--task", "pairs", "--model", Fixture("bert-tiny-seqcls"), "--data", pairs, "--dtype", dtype, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            return doc.RootElement.GetProperty("best_threshold").GetDouble();
        }
        Assert.NotEqual(BestThreshold("f32"), BestThreshold("int8"));
    }

    // ---------------------------------------------------------------- items 4 and 10 (--input)

    [Theory]
    [InlineData("classify")]
    [InlineData("ner")]
    [InlineData("embed")]
    public void InvalidUtf8InAnInputFileNamesTheLine(string command)
    {
        var input = Tmp("bad.txt");
        File.WriteAllBytes(input, [.. "一句好话\n第二句\n"u8, 0xE4, 0xBD, .. "坏\n"u8]);   // a truncated 3-byte sequence on line 3
        var model = command == "ner" ? Fixture("bert-tiny-ner") : Fixture("bert-tiny-seqcls");
        AssertUserError(CliHarness.Run(command, "--model", model, "--input", input), "bad.txt: line 3 is not valid UTF-8");

        var replaced = CliHarness.Run(command, "--model", model, "--input", input, "--errors", "replace", "--json");
        Assert.True(replaced.ExitCode == 0, replaced.Stderr);
        Assert.Contains("\uFFFD坏", replaced.Stdout);
    }

    [Fact]
    public void InvalidUtf8InPerplexityFileAndEvaluateDataIsAnError()
    {
        var file = Tmp("text.txt");
        File.WriteAllBytes(file, [.. "hello\n"u8, 0xFF, .. " world\n"u8]);
        AssertUserError(CliHarness.Run("perplexity", "--model", Fixture("gpt2-tiny"), "--file", file), "text.txt: line 2 is not valid UTF-8");
        var data = Tmp("data.tsv");
        File.WriteAllBytes(data, [.. "好\t正面\n"u8, 0xC3, .. "\t负面\n"u8]);
        AssertUserError(CliHarness.Run("evaluate", "--task", "classify", "--model", Fixture("bert-tiny-seqcls"), "--data", data), "data.tsv: line 2 is not valid UTF-8");
        var output = Tmp("trained");
        AssertUserError(CliHarness.Run("train", "classify", "--model", Fixture("bert-tiny-seqcls"), "--data", data, "--output", output, "--max-steps", "1"),
            "data.tsv: line 2 is not valid UTF-8");
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));
    }

    [Fact]
    public void AFolderGivenAsInputIsNamedAsAFolder()
    {
        AssertUserError(CliHarness.Run("classify", "--model", Fixture("bert-tiny-seqcls"), "--input", _tmp.FullName), $"{_tmp.FullName} is a folder, not a file");
        AssertUserError(CliHarness.Run("perplexity", "--model", Fixture("gpt2-tiny"), "--file", _tmp.FullName), "is a folder, not a file");
    }

    // ---------------------------------------------------------------- item 5

    [Theory]
    [InlineData("bert-tiny", "embed", "今天天气很好")] [InlineData("bert-tiny", "fill-mask", "今天[MASK]气很好")] [InlineData("bert-tiny", "fill-mask --json", "今天[MASK]气很好")]
    [InlineData("bert-tiny", "fill-mask", "今[MASK]天[MASK]气很好")] [InlineData("bert-tiny", "similarity", "今天天气很好|今天天气不错")] [InlineData("bert-tiny", "nsp", "今天天气很好|适合出门")]
    [InlineData("bert-tiny-seqcls", "classify", "今天天气很好")] [InlineData("bert-tiny-ner", "ner", "马云在杭州")]
    [InlineData("gpt2-tiny", "generate --max-new-tokens 3", "Hello")] [InlineData("gpt2-tiny", "generate --max-new-tokens 3 --temperature 0.7 --seed 1", "Hello")]
    [InlineData("gpt2-tiny", "perplexity", "Hello, my dog is cute")] [InlineData("gpt2-tiny", "perplexity --json", "Hello, my dog is cute")]
    public void NonFiniteModelOutputsAreAnError(string fixture, string command, string texts)
    {
        var dir = Diverged(fixture);
        var r = CliHarness.Run([.. command.Split(' '), "--model", dir, "--", .. texts.Split('|')]);
        AssertUserError(r, "the model produced non-finite values (NaN/inf)");
        Assert.DoesNotContain("NaN", r.Stdout);
    }

    // ---------------------------------------------------------------- item 8

    [Theory]
    [InlineData("bert-tiny/config.json")]
    [InlineData("bert-tiny/tokenizer_config.json")]
    [InlineData("bert-tiny/special_tokens_map.json")]
    [InlineData("gpt2-tiny/tokenizer_config.json")]
    [InlineData("gpt2-tiny/vocab.json")]
    [InlineData("gpt2-tiny/generation_config.json")]
    public void InvalidUtf8InAModelJsonFileNamesTheFile(string fixtureFile)
    {
        var (fixture, file) = (fixtureFile.Split('/')[0], fixtureFile.Split('/')[1]);
        var dir = CopyModel(fixture, "utf8");
        CorruptJson(Path.Combine(dir, file));
        // info reads the config, the tokenizer files and the weights; generation_config.json only generate reads.
        var r = file == "generation_config.json" ? CliHarness.Run("generate", "--model", dir, "--", "hi") : CliHarness.Run("info", "--model", dir);
        AssertUserError(r, $"{file}: line 1 is not valid UTF-8");
    }

    [Fact]
    public void InvalidUtf8InASafetensorsHeaderNamesTheFile()
    {
        var dir = CopyModel("bert-tiny", "header");
        var path = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        // Same length, so every offset stays valid: only a tensor name's byte becomes invalid UTF-8.
        int at = bytes.AsSpan().IndexOf("\"bert.embeddings"u8);
        bytes[at + 1] = 0xFF;
        File.WriteAllBytes(path, bytes);
        AssertUserError(CliHarness.Run("info", "--model", dir), "model.safetensors: safetensors header: line 1 is not valid UTF-8");
    }

    [Fact]
    public void InvalidUtf8InForwardInputsNamesTheFile()
    {
        var inputs = Tmp("inputs.json");
        File.WriteAllBytes(inputs, [.. "{\"cases\": {\""u8, 0xFF, .. "\": {\"input_ids\": [[101, 102]]}}}"u8]);
        var r = CliHarness.Run("forward", "--model", Fixture("bert-tiny"), "--inputs", inputs, "--out", Tmp("out.safetensors"));
        AssertUserError(r, "inputs.json: line 1 is not valid UTF-8");
        Assert.False(File.Exists(Tmp("out.safetensors")));
    }

    // ---------------------------------------------------------------- item 9

    [Theory]
    [InlineData("bert-tiny", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000000", "num_hidden_layers 1000000000 is beyond")]
    [InlineData("bert-tiny", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3", "num_hidden_layers is 3 but model.safetensors has 2 layer(s)")]
    [InlineData("gpt2-tiny", "\"n_layer\": 2", "\"n_layer\": 1000000000", "n_layer 1000000000 is beyond")]
    [InlineData("gpt2-tiny", "\"n_layer\": 2", "\"n_layer\": 5", "n_layer is 5 but model.safetensors has 2 layer(s)")]
    [InlineData("gpt2-tiny", "\"vocab_size\": 50257", "\"vocab_size\": 2000000000", "vocab_size 2000000000 is beyond")]
    public void AConfigThatDoesNotFitItsCheckpointFailsBeforeAllocating(string fixture, string field, string replacement, string message)
    {
        var dir = CopyModel(fixture, "config");
        var config = Path.Combine(dir, "config.json");
        var text = File.ReadAllText(config);
        Assert.Contains(field, text);
        File.WriteAllText(config, text.Replace(field, replacement));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        AssertUserError(CliHarness.Run("info", "--model", dir), message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"info took {clock.Elapsed}");
    }

    // ---------------------------------------------------------------- item 10

    [Fact]
    public void AnOutputInAMissingFolderFailsBeforeAnyTextIsProcessed()
    {
        var input = Tmp("many.txt");
        File.WriteAllLines(input, Enumerable.Range(0, 40).Select(i => $"第{i}句话"));
        var r = CliHarness.Run("classify", "--model", Fixture("bert-tiny-seqcls"), "--input", input, "--output", Tmp("missing/o.jsonl"));
        AssertUserError(r, "does not exist");   // one line: no progress bar, so no text was classified
        Assert.DoesNotContain("progress", r.Stderr);
    }

    [Fact]
    public void AnOutputThatIsAFolderIsRefused()
    {
        AssertUserError(CliHarness.Run("embed", "--model", Fixture("bert-tiny"), "--output", _tmp.FullName, "--", "你好"), $"{_tmp.FullName} is a folder, not a file");
        AssertUserError(CliHarness.Run("forward", "--model", Fixture("bert-tiny"), "--inputs", SharedPaths.Fixture("bert-tiny", "goldens.json"), "--out", _tmp.FullName), "is a folder, not a file");
    }

    [Theory]
    [InlineData("x.jpg", null, "the extension .jpg does not match the format text")]
    [InlineData("x.svg", "png", "the extension .svg does not match the format png")]
    [InlineData("x.txt", "html", "the extension .txt does not match the format html")]
    public void AttentionRefusesAnExtensionThatDoesNotMatchTheFormat(string file, string? format, string message)
    {
        string[] args = ["attention", "--model", Fixture("bert-tiny"), "--out", Tmp(file), .. format is null ? Array.Empty<string>() : ["--format", format], "--", "今天天气很好"];
        AssertUserError(CliHarness.Run(args), message);
        Assert.False(File.Exists(Tmp(file)));
    }

    [Fact]
    public void AttentionInfersTheFormatFromTheExtension()
    {
        var r = CliHarness.Run("attention", "--model", Fixture("bert-tiny"), "--out", Tmp("a.svg"), "--", "今天天气很好");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("<svg", File.ReadAllText(Tmp("a.svg")));
    }
}
