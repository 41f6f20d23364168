using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>
/// The models shipped in <c>models/</c> (trained by <c>recipes/train-models.sh</c>): each loads completely, its
/// config, weights and tokenizer agree, and the behaviour a newcomer sees first is sane. Only robust facts are
/// asserted (these are small models trained for minutes on 2 cores).
/// </summary>
public class ShippedModelTests
{
    // Every model is shipped: one missing is a failure (the File.Exists checks below), never a skipped assertion.
    static string Model(string name) => Path.Combine(SharedPaths.Repo, "models", name);

    public const string Gpt = "gpt2-chinese-poems-small";
    public const string Bert = "bert-chinese-small";
    public const string Sentiment = "bert-chinese-small-sentiment";
    public const string Ner = "bert-chinese-small-ner";
    public const string Lcqmc = "bert-chinese-small-lcqmc";
    public const string NerCoarse = "bert-chinese-small-ner-coarse";
    public const string Topic = "bert-chinese-small-tnews";
    public const string Embedding = "bert-chinese-small-embed";

    static readonly string[] Names = [Gpt, Bert, Sentiment, Ner, Lcqmc, NerCoarse, Topic, Embedding];
    public static TheoryData<string> AllModels => new(Names);

    [Fact]
    public void The_test_list_is_the_list_serve_loads()
    {
        Assert.Equal(ShippedModels.All.Order(), Names.Order());
    }

    [Theory]
    [MemberData(nameof(AllModels))]
    public void Folder_is_complete_and_consistent(string name)
    {
        var dir = Model(name);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "README.md" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{name}/{f} is missing");

        // The tokenizer: a BERT character vocabulary with the specials at bert's ids, lower-casing.
        var tc = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")))!.AsObject();
        Assert.Equal("BertTokenizer", tc["tokenizer_class"]!.GetValue<string>());
        Assert.True(tc["do_lower_case"]!.GetValue<bool>());
        var vocab = File.ReadAllLines(Path.Combine(dir, "vocab.txt"));
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], vocab.Take(5));
        Assert.Equal(vocab.Length, vocab.Distinct().Count());
        var tok = AutoTokenizer.FromFolder(dir);
        Assert.IsType<BertTokenizer>(tok);
        Assert.Equal(["床", "前", "明", "月", "光"], tok.Tokenize("床前明月光"));
        Assert.DoesNotContain("[UNK]", tok.Tokenize("今天天气很好，我们去公园散步。"));

        // Config vs vocabulary vs weights; weights stored as F16.
        var config = ModelConfig.Load(dir);
        using var st = new SafeTensorsFile(Path.Combine(dir, "model.safetensors"));
        var raw = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        Assert.Equal(vocab.Length, raw["vocab_size"]!.GetValue<int>());
        string embedding = config is Gpt2Config ? "transformer.wte.weight" : "bert.embeddings.word_embeddings.weight";
        if (!st.Contains(embedding)) embedding = embedding.Replace("transformer.", "").Replace("bert.", "");
        Assert.Equal(vocab.Length, st.ShapeOf(embedding)[0]);
        var header = SafeTensorsHeader(Path.Combine(dir, "model.safetensors"));
        Assert.All(header.Where(p => p.Key != "__metadata__"), p => Assert.Equal("F16", p.Value!["dtype"]!.GetValue<string>()));
        Assert.True(new FileInfo(Path.Combine(dir, "model.safetensors")).Length < 12_000_000, $"{name} grew past 12 MB");

        if (config is Gpt2Config g)
        {
            Assert.Equal("GPT2LMHeadModel", g.Architecture);
            Assert.Equal(3, g.EosTokenId);   // [SEP] ends a document
            var m = Gpt2Model.Load(dir);
            Assert.Equal(vocab.Length, m.Config.VocabSize);
        }
        else
        {
            var b = Assert.IsType<BertConfig>(config);
            Assert.Equal(0, b.PadTokenId);
            var heads = b.Architecture switch
            {
                "BertForSequenceClassification" => BertHeads.SequenceClassification,
                "BertForTokenClassification" => BertHeads.TokenClassification,
                "BertForPreTraining" => BertHeads.MaskedLM | BertHeads.NextSentence,
                "BertModel" => BertHeads.None,
                var a => throw new Xunit.Sdk.XunitException($"{name}: unexpected architecture {a}"),
            };
            if (b.Architecture == "BertModel")
            {
                // A sentence-transformers folder: its pooling is declared, so embed/similarity/serve pool as it was trained.
                Assert.True(File.Exists(Path.Combine(dir, "modules.json")), $"{name}/modules.json is missing");
                var pooling = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "1_Pooling", "config.json")))!.AsObject();
                Assert.True(pooling["pooling_mode_mean_tokens"]!.GetValue<bool>());
            }
            var session = EncoderSession.Load(dir, heads);
            Assert.Empty(session.InitialisedParameters);   // every head is trained, nothing randomly initialised
        }
    }

    static JsonObject SafeTensorsHeader(string path)
    {
        using var f = File.OpenRead(path);
        var len = new byte[8];
        f.ReadExactly(len);
        var json = new byte[BitConverter.ToUInt64(len)];
        f.ReadExactly(json);
        return JsonNode.Parse(json)!.AsObject();
    }

    [Fact]
    public void Heads_have_the_expected_labels()
    {
        Assert.Equal(["negative", "positive"], ModelConfig.Load(Model(Sentiment)).Id2Label.OrderBy(p => p.Key).Select(p => p.Value));
        Assert.Equal(["0", "1"], ModelConfig.Load(Model(Lcqmc)).Id2Label.OrderBy(p => p.Key).Select(p => p.Value));
        var labels = ModelConfig.Load(Model(Ner)).Id2Label.Values.ToList();
        Assert.Equal(21, labels.Count);   // O + B-/I- for CLUENER's 10 types
        Assert.Contains("O", labels);
        foreach (var t in new[] { "address", "book", "company", "game", "government", "movie", "name", "organization", "position", "scene" })
        {
            Assert.Contains("B-" + t, labels);
            Assert.Contains("I-" + t, labels);
        }
        Assert.Equal(["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"], ModelConfig.Load(Model(NerCoarse)).Id2Label.OrderBy(p => p.Key).Select(p => p.Value));
        var topics = ModelConfig.Load(Model(Topic)).Id2Label.OrderBy(p => p.Key).Select(p => p.Value).ToList();
        Assert.Equal(15, topics.Count);   // TNEWS's 15 categories
        Assert.Contains("news_sports", topics);
        Assert.Contains("news_finance", topics);
        Assert.All(topics, t => Assert.StartsWith("news_", t));
    }

    [Fact]
    public void Gpt_continues_a_poem_deterministically_in_chinese()
    {
        var dir = Model(Gpt);
        var model = Gpt2Model.Load(dir);
        var tok = AutoTokenizer.FromFolder(dir);
        var opts = GenerationOptions.FromModelFolder(dir) with { DoSample = true, MinNewTokens = 20, MaxNewTokens = 24, Seed = 7 };
        var a = Generation.Generate(model, tok, "床前明月光", opts);
        var b = Generation.Generate(model, tok, "床前明月光", opts);
        Assert.Equal(a.Sequences[0].NewIds, b.Sequences[0].NewIds);
        var text = a.Sequences[0].Text ?? tok.Decode(a.Sequences[0].NewIds, skipSpecialTokens: true);
        int cjk = text.EnumerateRunes().Count(r => r.Value is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2FFFF);
        Assert.True(cjk >= 8, $"expected Chinese text, got \"{text}\"");
        // Greedy decoding is deterministic without a seed, too.
        var g1 = Generation.Generate(model, tok, "床前明月光", new GenerationOptions { MinNewTokens = 16, MaxNewTokens = 16 });
        var g2 = Generation.Generate(model, tok, "床前明月光", new GenerationOptions { MinNewTokens = 16, MaxNewTokens = 16 });
        Assert.Equal(g1.Sequences[0].NewIds, g2.Sequences[0].NewIds);
    }

    [Fact]
    public void Sentiment_model_gets_obvious_reviews_right()
    {
        var clf = TextClassifier.Load(Model(Sentiment));
        var r = clf.Classify([
            "房间干净整洁，服务热情周到，早餐也很丰富，非常满意，下次还会再来！",
            "太差了，房间又脏又小，服务态度恶劣，再也不会来了。",
            "这本书写得非常好，值得一读，强烈推荐。",
        ]);
        Assert.Equal(["positive", "negative", "positive"], r.Select(x => x.Label));
    }

    [Fact]
    public void Evaluate_command_scores_the_shipped_heads()
    {
        var dir = Directory.CreateTempSubdirectory("sf-eval-cli").FullName;
        // Without --model, evaluate scores the shipped model of its task.
        static void AssertDefaultsTo(string expected, string task, string data)
        {
            var r = CliHarness.Run("evaluate", "--threads", "1", "--task", task, "--data", data, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(expected, Path.GetFileName(JsonNode.Parse(r.Stdout)!["model"]!.GetValue<string>().TrimEnd('/', '\\')));
        }
        // Obvious examples: the shipped heads get every one right (a head that scores nonsense fails here). The STS
        // pairs are a paraphrase, a related question and an unrelated sentence: ranked in that order. A question paired
        // with itself is "same" (issue 19). The topic model is not a default (classify defaults to sentiment).
        (string Model, string Task, string File, string Data, string CountKey, int Count, string ScoreKey, string[] More, bool Default)[] cases =
        [
            (Sentiment, "classify", "senti.tsv", "房间干净整洁，服务热情周到，非常满意，下次还会再来！\tpositive\n太差了，房间又脏又小，服务态度恶劣，再也不会来了。\tnegative\n",
                "examples", 2, "accuracy", [], true),
            (Ner, "ner", "ner.json", "{\"text\": \"他在杭州市工作\", \"label\": {\"address\": {\"杭州市\": [[2, 4]]}}}\n", "sentences", 1, "f1", [], true),
            (NerCoarse, "ner", "ner-coarse.json", "{\"text\": \"他在杭州市工作\", \"label\": {\"LOC\": {\"杭州市\": [[2, 4]]}}}\n", "sentences", 1, "f1", [], false),
            (Lcqmc, "pairs", "pairs.txt", "人和畜生的区别是什么？\t人与畜生的区别是什么！\t1\n谁知道她是网络美女吗？\t爱情这杯酒谁喝都会醉是什么歌\t0\n杭州哪里好玩\t杭州哪里好玩\t1\n",
                "examples", 3, "accuracy", ["--threshold", "0.5"], true),
            (Embedding, "sts", "sts.txt", "a||今天天气很好。||今天天气不错。||5\nb||今天天气很好。||明天会下雨吗？||2\nc||今天天气很好。||我想买一部新手机。||0\n",
                "examples", 3, "spearman", [], true),
            (Topic, "classify", "topics.tsv", "国足1比0战胜对手，晋级世界杯十强赛\tnews_sports\n王者荣耀新赛季上线，新英雄曝光\tnews_game\n高考志愿怎么填？专家给出建议\tnews_edu\n",
                "examples", 3, "accuracy", [], false),
        ];
        try
        {
            foreach (var c in cases)
            {
                var path = Path.Combine(dir, c.File);
                File.WriteAllText(path, c.Data);
                var r = CliHarness.Run(["evaluate", "--threads", "1", "-m", Model(c.Model), "--task", c.Task, "--data", path, "--json", .. c.More]);
                Assert.True(r.ExitCode == 0, r.Stderr);
                var o = JsonNode.Parse(r.Stdout)!.AsObject();
                Assert.Equal(c.Count, o[c.CountKey]!.GetValue<int>());
                Assert.Equal(1.0, o[c.ScoreKey]!.GetValue<double>());
                if (c.Default) AssertDefaultsTo(c.Model, c.Task, path);
            }

            // A model without the task's head is a one-line error, not a meaningless score.
            var one = Path.Combine(dir, "one.tsv");
            File.WriteAllText(one, "很好\tpositive\n");
            CliHarness.AssertOneLineError(CliHarness.Run("evaluate", "--threads", "1", "-m", Model(Bert), "--task", "classify", "--data", one), "no trained head");
        }
        finally { Directory.Delete(dir, true); }
    }
}
