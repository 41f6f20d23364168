using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Training;

namespace SharpFormer.Tests;

/// <summary><c>sharpformer train ...</c> end to end, the data readers' errors, and the metrics.</summary>
public class TrainingCliTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-train-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    string Write(string name, string text)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    const string Jsonl = """
        {"text": "这部电影真是太精彩了", "label": "正面"}
        {"text": "剧情拖沓,浪费时间", "label": "负面"}
        {"text": "演员演技炸裂,强烈推荐", "label": "正面"}
        {"text": "无聊透顶,不推荐", "label": "负面"}
        """;

    [Fact]
    public void ClassifyFineTunesAndWritesAHuggingFaceFolder()
    {
        var data = Write("train.jsonl", Jsonl);
        var outDir = Path.Combine(_dir, "out");
        var r = CliHarness.Run("train", "classify", "--model", SharedPaths.Fixture("bert-tiny-seqcls"), "--data", data, "--eval", data,
            "-o", outDir, "--epochs", "10", "--batch-size", "2", "--lr", "3e-3", "--no-dropout", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("tok/s", r.Stderr);
        var summary = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(1.0, summary["eval"]!["accuracy"]!.GetValue<double>());
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.Equal("BertForSequenceClassification", cfg["architectures"]![0]!.GetValue<string>());
        Assert.Equal(1, cfg["label2id"]!["正面"]!.GetValue<int>());
        // Save → load → evaluate reproduces the reported metric.
        var model = BertModel.Load(outDir);
        Assert.Empty(model.InitialisedParameters);
        var loaded = new BertTraining(model);
        var tok = Tokenizers.AutoTokenizer.FromFolder(outDir);
        var examples = TrainingData.ReadClassificationJsonl(data, ["负面", "正面"])
            .Select(e => { var enc = tok.Encode(e.Text); return new EncodedExample(enc.InputIds, enc.TokenTypeIds, Label: e.Label == "正面" ? 1 : 0); }).ToList();
        var res = loaded.Evaluate(Batching.Bert(examples, 0));
        Assert.True(Math.Abs(res.Loss - summary["eval"]!["loss"]!.GetValue<double>()) < 1e-5, $"reloaded loss {res.Loss} vs {summary["eval"]!["loss"]}");
    }

    [Fact]
    public void ClmResumeFromCheckpointEndsWithTheSameWeights()
    {
        var data = Write("en.txt", "Once upon a time there was a little robot who loved to read books.\nThe robot wanted to learn everything about the world.\n");
        string[] Args(string o) => ["train", "clm", "--model", SharedPaths.Fixture("gpt2-tiny"), "--data", data, "-o", o, "--max-steps", "6",
                                    "--batch-size", "2", "--max-length", "8", "--lr", "1e-3", "--warmup-steps", "2", "--save-steps", "3"];
        var a = Path.Combine(_dir, "a"); var b = Path.Combine(_dir, "b");
        var r1 = CliHarness.Run(Args(a));
        Assert.True(r1.ExitCode == 0, r1.Stderr);
        var r2 = CliHarness.Run([.. Args(b), "--resume", Path.Combine(a, "checkpoint-3")]);
        Assert.True(r2.ExitCode == 0, r2.Stderr);
        Assert.Contains("resumed", r2.Stderr);
        using var fa = new SafeTensorsFile(Path.Combine(a, "model.safetensors"));
        using var fb = new SafeTensorsFile(Path.Combine(b, "model.safetensors"));
        foreach (var n in fa.Names) Assert.Equal(fa.ReadFloat32(n).Data, fb.ReadFloat32(n).Data);
        Assert.Empty(Gpt2Model.Load(a).InitialisedParameters);
    }

    [Fact]
    public void DataErrorsNameFileAndLine()
    {
        var model = SharedPaths.Fixture("bert-tiny-seqcls");
        var outDir = Path.Combine(_dir, "x");
        var unknown = Write("unknown.jsonl", "{\"text\": \"好\", \"label\": \"正面\"}\n{\"text\": \"坏\", \"label\": \"中性\"}\n");
        CliHarness.AssertOneLineError(CliHarness.Run("train", "classify", "-m", model, "--data", unknown, "-o", outDir), "unknown.jsonl:2: unknown label \"中性\"");
        var malformed = Write("bad.jsonl", "{\"text\": \"好\", \"label\": \"正面\"}\n\n{\"text\": \"坏\" \"label\"}\n");
        CliHarness.AssertOneLineError(CliHarness.Run("train", "classify", "-m", model, "--data", malformed, "-o", outDir), "bad.jsonl:3: malformed JSON line");
        var empty = Write("empty.txt", "\n \n");
        CliHarness.AssertOneLineError(CliHarness.Run("train", "mlm", "-m", SharedPaths.Fixture("bert-tiny"), "--data", empty, "-o", outDir), "empty.txt: the file is empty");
        var bio = Write("bad.bio", "张 B-PER\n三 I-PER\n\n在 X-LOC\n");
        CliHarness.AssertOneLineError(CliHarness.Run("train", "ner", "-m", SharedPaths.Fixture("bert-tiny-ner"), "--data", bio, "-o", outDir), "bad.bio:4: tag \"X-LOC\" is not BIO");
        var unknownTag = Write("tag.bio", "张 B-PER\n三 I-PER\n\n在 B-MISC\n");
        CliHarness.AssertOneLineError(CliHarness.Run("train", "ner", "-m", SharedPaths.Fixture("bert-tiny-ner"), "--data", unknownTag, "-o", outDir), "tag.bio:4: unknown label \"B-MISC\"");
        CliHarness.AssertOneLineError(CliHarness.Run("train", "ner", "-m", SharedPaths.Fixture("bert-tiny-ner"), "--data", Write("ok.bio", "张 B-PER\n三 I-PER\n"), "--reinit-layers", "9", "-o", outDir), "--reinit-layers must be between 0");
    }

    [Fact]
    public void SeqevalEntityScores()
    {
        // seqeval default mode: I- after O starts an entity; a type change ends one.
        Assert.Equal([("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5)], Metrics.Chunks(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"]));
        Assert.Equal([("PER", 0, 1), ("ORG", 1, 2)], Metrics.Chunks(["B-PER", "I-ORG"]));
        IReadOnlyList<string>[] gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]];
        IReadOnlyList<string>[] pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]];
        var (p, r, f) = Metrics.EntityScores(gold, pred);
        Assert.Equal(2 / 3.0, p, 12); Assert.Equal(2 / 3.0, r, 12); Assert.Equal(2 / 3.0, f, 12);
        // F1(0) = 2·2 / (2·2 + 2 + 0) = 2/3, F1(1) = 0 → macro 1/3 (sklearn average="macro").
        Assert.Equal(1 / 3.0, Metrics.MacroF1([0, 0, 1, 1], [0, 0, 0, 0], 2), 12);
        Assert.Equal(0.75, Metrics.Accuracy([0, 0, 1, 1], [0, 0, 1, 0]), 12);
    }
}
