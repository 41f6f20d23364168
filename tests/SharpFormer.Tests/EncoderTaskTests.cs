using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Tasks;

namespace SharpFormer.Tests;

/// <summary>The encoder tasks (fill-mask, NSP, classification, NER, embeddings) against HuggingFace's pipeline goldens.</summary>
public class EncoderTaskTests
{
    const float ProbTol = 1e-5f;
    static string Dir(string name) => Path.Combine(SharedPaths.Fixtures, name);

    static JsonElement Goldens(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir(folder), "goldens.json")));
        return doc.RootElement.Clone();
    }

    // ------------------------------------------------------------------ fill-mask

    [Fact]
    public void FillMask_Top5_EqualsPipelineGolden()
    {
        var g = Goldens("bert-tiny").GetProperty("fill_mask");
        var pipe = FillMaskPipeline.Load(Dir("bert-tiny"));
        Assert.Empty(pipe.Session.InitialisedParameters);
        var res = pipe.Predict(g.GetProperty("text").GetString()!, topK: 5);
        var mask = Assert.Single(res.Masks);
        Assert.Equal(g.GetProperty("mask_index").GetInt32(), mask.TokenIndex);
        Assert.Empty(res.Joint);
        var top5 = g.GetProperty("top5").EnumerateArray().ToList();
        Assert.Equal(top5.Select(t => t.GetProperty("token").GetInt32()), mask.Candidates.Select(c => c.Token));
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(top5[i].GetProperty("token_str").GetString(), mask.Candidates[i].TokenStr);
            Assert.Equal(top5[i].GetProperty("sequence").GetString(), mask.Candidates[i].Sequence);
            Assert.True(MathF.Abs(top5[i].GetProperty("score").GetSingle() - mask.Candidates[i].Score) <= ProbTol,
                $"score {i}: {mask.Candidates[i].Score} vs {top5[i].GetProperty("score").GetSingle()}");
        }
        // The filled sentence keeps the original text around the mask; "##緹" loses its continuation prefix.
        Assert.Equal("今天緹气很好", mask.Candidates[0].Filled);
    }

    [Fact]
    public void FillMask_ScoresAreTheSoftmaxOfTheGoldenLogits()
    {
        using var goldens = new SafeTensorsFile(Path.Combine(Dir("bert-tiny"), "goldens.safetensors"));
        var probs = goldens.ReadFloat32("fill_mask.logits_at_mask").Data.ToArray();
        Kernels.Softmax.InPlace(probs);
        var res = FillMaskPipeline.Load(Dir("bert-tiny")).Predict("今天[MASK]气很好", topK: 20);
        foreach (var c in res.Masks[0].Candidates) Assert.True(MathF.Abs(probs[c.Token] - c.Score) <= ProbTol);
    }

    [Fact]
    public void FillMask_SeveralMasks_GivesPerMaskCandidatesAndJointFillings()
    {
        var pipe = FillMaskPipeline.Load(Dir("bert-tiny"));
        var res = pipe.Predict("今天[MASK][MASK]很好", topK: 3, beam: 4);
        Assert.Equal(2, res.Masks.Count);
        Assert.All(res.Masks, m => Assert.Equal(3, m.Candidates.Count));
        // With several masks HF keeps special tokens in "sequence" so the other [MASK] stays visible.
        Assert.Contains("[MASK]", res.Masks[0].Candidates[0].Sequence);
        Assert.Equal(3, res.Joint.Count);
        for (int i = 1; i < res.Joint.Count; i++) Assert.True(res.Joint[i - 1].Probability >= res.Joint[i].Probability);
        Assert.All(res.Joint, j =>
        {
            Assert.Equal(2, j.Tokens.Count);
            Assert.DoesNotContain("[MASK]", j.Filled);
            Assert.StartsWith("今天", j.Filled);
            Assert.EndsWith("很好", j.Filled);
        });
        // The first joint step is the per-mask distribution of mask 1, so its best token appears among mask 1's candidates
        // and the joint probability never exceeds that token's own probability.
        var first = res.Joint[0];
        var c1 = res.Masks[0].Candidates.FirstOrDefault(c => c.Token == first.Tokens[0]);
        if (c1 is not null) Assert.True(first.Probability <= c1.Score + 1e-7f);
    }

    [Fact]
    public void FillMask_WithoutMask_OrEmpty_IsAOneLineError()
    {
        var pipe = FillMaskPipeline.Load(Dir("bert-tiny"));
        Assert.Contains("[MASK]", Assert.Throws<SharpFormerException>(() => pipe.Predict("今天天气很好")).Message);
        Assert.Throws<SharpFormerException>(() => pipe.Predict(""));
        Assert.Throws<SharpFormerException>(() => pipe.Predict("今天[MASK]" + new string('好', 100)));
    }

    // ------------------------------------------------------------------ NSP

    [Fact]
    public void Nsp_ProbabilityIsSoftmaxOfGoldenSeqRelationshipLogits()
    {
        var pair = Goldens("bert-tiny").GetProperty("cases").GetProperty("pair");
        using var goldens = new SafeTensorsFile(Path.Combine(Dir("bert-tiny"), "goldens.safetensors"));
        var logits = goldens.ReadFloat32("pair.seq_relationship_logits").Data.ToArray();
        var expected = EncoderSession.SoftmaxOf(logits)[0];
        var nsp = NextSentencePredictor.Load(Dir("bert-tiny"));
        var res = nsp.Predict(pair.GetProperty("text").GetString()!, pair.GetProperty("text_pair").GetString()!);
        Assert.True(MathF.Abs(expected - res.IsNextProbability) <= ProbTol, $"{res.IsNextProbability} vs {expected}");
        TensorAssert.Close(logits, res.Logits, 1e-4f, "seq_relationship_logits");
    }

    [Fact]
    public void Nsp_TooLongOrEmpty_IsAOneLineError()
    {
        var nsp = NextSentencePredictor.Load(Dir("bert-tiny"));
        var e = Assert.Throws<SharpFormerException>(() => nsp.Predict(new string('天', 40), new string('气', 40)));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("64", e.Message);
        Assert.Throws<SharpFormerException>(() => nsp.Predict("今天", " "));
    }

    // ------------------------------------------------------------------ classification

    [Fact]
    public void Classify_ProbabilitiesEqualPipelineGoldens_AloneAndBatched()
    {
        var g = Goldens("bert-tiny-seqcls");
        var texts = g.GetProperty("cases").GetProperty("batch").GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var expected = g.GetProperty("pipeline").GetProperty("results").EnumerateArray().ToList();
        var clf = TextClassifier.Load(Dir("bert-tiny-seqcls"));
        Assert.False(clf.Session.HeadUntrained);
        Assert.Equal("softmax", clf.Function);
        var batched = clf.Classify(texts);   // length-sorted batch, results back in input order
        for (int i = 0; i < texts.Count; i++)
        {
            foreach (var res in new[] { batched[i], clf.Classify(texts[i]) })
            {
                var exp = expected[i].EnumerateArray().ToList();
                Assert.Equal(exp.Select(e => e.GetProperty("label").GetString()), res.Scores.Select(s => s.Label));
                for (int k = 0; k < exp.Count; k++)
                    Assert.True(MathF.Abs(exp[k].GetProperty("score").GetSingle() - res.Scores[k].Score) <= ProbTol, $"text {i} label {k}");
                Assert.Equal(texts[i], res.Text);
            }
        }
        var predicted = g.GetProperty("cases").GetProperty("batch").GetProperty("predicted_labels").EnumerateArray().Select(x => x.GetString()).ToList();
        Assert.Equal(predicted, batched.Select(r => r.Label));
    }

    [Fact]
    public void Classify_BaseModel_InitialisesASeededHeadAndSaysItIsUntrained()
    {
        // bert-tiny is a BertForPreTraining checkpoint: it has a pooler but no classifier.
        var a = TextClassifier.Load(Dir("bert-tiny"), seed: 7);
        Assert.True(a.Session.HeadUntrained);
        Assert.Contains("classifier.weight", a.Session.InitialisedParameters);
        Assert.DoesNotContain("bert.pooler.dense.weight", a.Session.InitialisedParameters);
        var b = TextClassifier.Load(Dir("bert-tiny"), seed: 7);
        var c = TextClassifier.Load(Dir("bert-tiny"), seed: 8);
        var ra = a.Classify("今天天气很好"); var rb = b.Classify("今天天气很好"); var rc = c.Classify("今天天气很好");
        Assert.Equal(ra.Logits, rb.Logits);
        Assert.NotEqual(ra.Logits, rc.Logits);
        Assert.Equal(2, ra.Scores.Count);
    }

    [Fact]
    public void Classify_TooLong_FailsUnlessTruncateIsAsked()
    {
        var clf = TextClassifier.Load(Dir("bert-tiny-seqcls"));
        var text = new string('好', 100);
        Assert.Throws<SharpFormerException>(() => clf.Classify(text));
        var res = clf.Classify(text, truncate: true);
        Assert.True(res.Truncated);
        Assert.Throws<SharpFormerException>(() => clf.Classify(""));
    }

    [Fact]
    public void Classify_MultiLabelProblemType_UsesSigmoid()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sf-ml-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(dir);
            foreach (var f in Directory.GetFiles(Dir("bert-tiny-seqcls")).Where(f => !Path.GetFileName(f).StartsWith("goldens")))
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
            config["problem_type"] = "multi_label_classification";
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
            var clf = TextClassifier.Load(dir);
            Assert.Equal("sigmoid", clf.Function);
            var res = clf.Classify("这部电影真是太精彩了,演员演技炸裂!");
            foreach (var s in res.Scores)
            {
                int id = clf.Id2Label.Single(kv => kv.Value == s.Label).Key;
                Assert.Equal(1f / (1f + MathF.Exp(-res.Logits[id])), s.Score, 6);
            }
            Assert.Equal(res.Scores.Where(s => s.Score >= 0.5f).Select(s => s.Label).Order(), res.Labels.Order());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Cli_InputFile_OutputJsonl_KeepsOrderAndInputFields()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sf-io-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string P(string name) => Path.Combine(dir, name);
            var g = Goldens("bert-tiny-seqcls");
            var texts = g.GetProperty("cases").GetProperty("batch").GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
            // Plain lines (blank lines skipped), longest text in the middle so length sorting has to restore the order.
            File.WriteAllText(P("lines.txt"), $"{texts[2]}\n\n{texts[1]}\n{texts[0]}\n");
            var r = CliHarness.Run("classify", "--model", Dir("bert-tiny-seqcls"), "--input", P("lines.txt"), "--output", P("out.jsonl"));
            Assert.True(r.ExitCode == 0, r.Stderr);
            var rows = File.ReadAllLines(P("out.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.Equal(new[] { texts[2], texts[1], texts[0] }, rows.Select(x => x.GetProperty("text").GetString()));
            var expected = g.GetProperty("pipeline").GetProperty("results").EnumerateArray().ToList();
            Assert.Equal(expected[0][0].GetProperty("score").GetSingle(), rows[2].GetProperty("scores")[0].GetProperty("score").GetSingle(), 5);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

            // JSONL pairs keep their own fields ("id"); the pair is the goldens' "pair" case, so its probability is HuggingFace's.
            File.WriteAllText(P("pairs.jsonl"), "{\"id\": 7, \"text\": \"今天天气怎么样?\", \"text_pair\": \"苹果是一种水果。\"}\n");
            r = CliHarness.Run("nsp", "--model", Dir("bert-tiny"), "-i", P("pairs.jsonl"), "-o", P("nsp.jsonl"));
            Assert.True(r.ExitCode == 0, r.Stderr);
            var nsp = JsonDocument.Parse(File.ReadAllLines(P("nsp.jsonl")).Single()).RootElement;
            Assert.Equal(7, nsp.GetProperty("id").GetInt32());
            using (var goldens = new SafeTensorsFile(Path.Combine(Dir("bert-tiny"), "goldens.safetensors")))
            {
                float expectedNsp = EncoderSession.SoftmaxOf(goldens.ReadFloat32("pair.seq_relationship_logits").Data.ToArray())[0];
                Assert.Equal(expectedNsp, nsp.GetProperty("is_next_probability").GetSingle(), ProbTol);
            }

            // Errors are one line.
            CliHarness.AssertOneLineError(CliHarness.Run("classify", "--model", Dir("bert-tiny-seqcls"), "-i", P("lines.txt"), "extra"), "not both");
            CliHarness.AssertOneLineError(CliHarness.Run("nsp", "--model", Dir("bert-tiny"), "", "B"), "empty");
            CliHarness.AssertOneLineError(CliHarness.Run("fill-mask", "--model", Dir("bert-tiny"), "没有掩码"), "[MASK]");
            // A base model used for NER: the head is initialised with a warning and the output says so.
            r = CliHarness.Run("ner", "--model", Dir("bert-tiny"), "--json", "我爱北京");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("warning", r.Stderr);
            Assert.True(JsonDocument.Parse(r.Stdout).RootElement.GetProperty("head_untrained").GetBoolean());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    // ------------------------------------------------------------------ NER

    [Fact]
    public void Ner_NoneAndSimple_EqualPipelineGoldens()
    {
        var g = Goldens("bert-tiny-ner");
        var texts = g.GetProperty("cases").GetProperty("batch").GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        var ner = TokenClassifier.Load(Dir("bert-tiny-ner"));
        Assert.False(ner.Session.HeadUntrained);
        foreach (var (name, strategy) in new[] { ("none", AggregationStrategy.None), ("simple", AggregationStrategy.Simple) })
        {
            var expected = g.GetProperty("pipeline").GetProperty("results").GetProperty(name).EnumerateArray().ToList();
            var results = ner.Predict(texts, strategy);
            for (int i = 0; i < texts.Count; i++)
            {
                var exp = expected[i].EnumerateArray().ToList();
                var got = results[i].Entities;
                Assert.Equal(exp.Count, got.Count);
                for (int k = 0; k < exp.Count; k++)
                {
                    var e = exp[k];
                    Assert.Equal(e.GetProperty(strategy == AggregationStrategy.None ? "entity" : "entity_group").GetString(), got[k].Label);
                    Assert.True(MathF.Abs(e.GetProperty("score").GetSingle() - got[k].Score) <= ProbTol, $"{name} text {i} entity {k}: {got[k].Score} vs {e.GetProperty("score").GetSingle()}");
                    if (strategy == AggregationStrategy.None) Assert.Equal(e.GetProperty("index").GetInt32(), got[k].Index);
                    // HF's slow tokenizer re-joins tokens with spaces ("国 杭"); we slice the original text ("国杭").
                    Assert.Equal(e.GetProperty("word").GetString()!.Replace(" ", ""), got[k].Word);
                    Assert.Equal(texts[i][got[k].Start..got[k].End], got[k].Word);
                }
            }
        }
    }

    [Fact]
    public void Ner_LongText_RunsInOverlappingWindows_CoveringEveryToken()
    {
        var ner = TokenClassifier.Load(Dir("bert-tiny-ner"));
        var text = string.Concat(Enumerable.Repeat("阿里巴巴的总部位于中国杭州市,马云是它的创始人之一。", 6));   // 156 tokens, max 64
        var res = ner.Predict(text, AggregationStrategy.None, stride: 16, ignoreLabels: []);
        Assert.True(res.Windows >= 3, $"{res.Windows} windows");
        Assert.Equal(text.Length, res.Entities.Count);   // one per character token, none lost
        Assert.Equal(Enumerable.Range(1, text.Length), res.Entities.Select(e => e.Index!.Value));
        Assert.All(res.Entities, e => Assert.Equal(text[e.Start..e.End], e.Word));
        // Tokens 0..45 lie only in the first window (the second starts at 62 − 16 = 46), which holds exactly the first
        // 62 characters: their predictions equal a run on that prefix alone.
        var alone = ner.Predict(text[..62], AggregationStrategy.None, ignoreLabels: []);
        Assert.Equal(1, alone.Windows);
        for (int k = 0; k < 46; k++)
        {
            Assert.Equal(alone.Entities[k].Label, res.Entities[k].Label);
            Assert.Equal(alone.Entities[k].Score, res.Entities[k].Score, 5);
        }
        var grouped = ner.Predict(text, AggregationStrategy.Simple, stride: 16);
        Assert.All(grouped.Entities, e => Assert.Equal(text[e.Start..e.End], e.Word));
        Assert.Throws<SharpFormerException>(() => ner.Predict(text, AggregationStrategy.None, stride: 62));
    }

    [Fact]
    public void Ner_EmptyText_IsAnError()
    {
        var ner = TokenClassifier.Load(Dir("bert-tiny-ner"));
        Assert.Throws<SharpFormerException>(() => ner.Predict(""));
        Assert.Throws<SharpFormerException>(() => ner.Predict("   "));
    }

    // ------------------------------------------------------------------ embeddings

    [Fact]
    public void MeanPooling_IgnoresPadding()
    {
        var emb = SentenceEmbedder.Load(Dir("bert-tiny"), Pooling.Mean);
        Assert.Equal(Pooling.Mean, emb.Pooling);
        const string shortText = "深度学习";
        var alone = emb.Embed(shortText);
        var batch = emb.Embed([shortText, "特斯拉是电动汽车公司。人工智能的未来发展"]);
        TensorAssert.Close(alone, batch[0], 1e-5f, "mean pooling alone vs padded batch");
        // And equals the mean of the golden last hidden state over the unpadded positions (batch case, row 2 = "深度学习").
        using var goldens = new SafeTensorsFile(Path.Combine(Dir("bert-tiny"), "goldens.safetensors"));
        var hidden = goldens.ReadFloat32("batch.last_hidden_state");
        var mask = goldens.ReadInt64("batch.attention_mask").Skip(2 * 13).Take(13).Select(x => (int)x).ToArray();
        var expected = SentenceEmbedder.Pool(hidden.Data, 13, 32, 2, mask, Pooling.Mean, false);
        TensorAssert.Close(expected, alone, 1e-4f, "mean pooling vs golden hidden states");
        // Max pooling is padding-aware too.
        var max = SentenceEmbedder.Load(Dir("bert-tiny"), Pooling.Max);
        TensorAssert.Close(max.Embed(shortText), max.Embed([shortText, "特斯拉是电动汽车公司。人工智能的未来发展"])[0], 1e-5f, "max pooling");
    }

    [Fact]
    public void ClsPooling_IsTheDefault_AndSimilarityIsCosine()
    {
        var emb = SentenceEmbedder.Load(Dir("bert-tiny"));
        Assert.Equal(Pooling.Cls, emb.Pooling);
        Assert.False(emb.Normalize);
        using var goldens = new SafeTensorsFile(Path.Combine(Dir("bert-tiny"), "goldens.safetensors"));
        var hidden = goldens.ReadFloat32("single.last_hidden_state");
        TensorAssert.Close(hidden.Data.AsSpan(0, 32), emb.Embed("今天天气很好适合出门"), 1e-4f, "cls vector");
        var m = emb.SimilarityMatrix(["今天天气很好", "今天天气不错", "深度学习"]);
        Assert.True(MathF.Abs(m[0][0] - 1f) < 1e-5f);
        Assert.Equal(m[0][1], m[1][0]);
        Assert.Equal(m[0][1], emb.Similarity("今天天气很好", "今天天气不错"), 5);
        Assert.Throws<SharpFormerException>(() => emb.Similarity("", "今天"));
        Assert.Throws<SharpFormerException>(() => emb.Similarity(new string('好', 80), "今天"));
    }

    [Fact]
    public void SentenceTransformersFolder_ConfigIsRead()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sf-st-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(dir);
            foreach (var f in Directory.GetFiles(Dir("bert-tiny")).Where(f => !Path.GetFileName(f).StartsWith("goldens") && !f.EndsWith(".bin")))
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            File.WriteAllText(Path.Combine(dir, "modules.json"), """
                [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                 {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
                """);
            Directory.CreateDirectory(Path.Combine(dir, "1_Pooling"));
            Directory.CreateDirectory(Path.Combine(dir, "2_Normalize"));
            File.WriteAllText(Path.Combine(dir, "1_Pooling", "config.json"), """
                {"word_embedding_dimension": 32, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true,
                 "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}
                """);
            File.WriteAllText(Path.Combine(dir, "sentence_bert_config.json"), """{"max_seq_length": 16, "do_lower_case": false}""");

            var st = SentenceTransformersConfig.Read(dir)!;
            Assert.Equal(Pooling.Mean, st.Pooling);
            Assert.True(st.Normalize);
            Assert.Equal(16, st.MaxSeqLength);
            Assert.Empty(st.IgnoredModules);

            var emb = SentenceEmbedder.Load(dir);
            Assert.Equal(Pooling.Mean, emb.Pooling);
            Assert.True(emb.Normalize);
            var v = emb.Embed("今天天气很好");
            Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 5);
            var plain = SentenceEmbedder.Load(Dir("bert-tiny"), Pooling.Mean, normalize: true).Embed("今天天气很好");
            TensorAssert.Close(plain, v, 1e-6f, "st folder = mean + normalize");
            Assert.Throws<SharpFormerException>(() => emb.Embed(new string('好', 20)));   // > max_seq_length 16
            // Explicit options override the folder's.
            Assert.Equal(Pooling.Max, SentenceEmbedder.Load(dir, Pooling.Max).Pooling);

            Assert.Null(SentenceTransformersConfig.Read(Dir("bert-tiny")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    // ------------------------------------------------------------------ batching

    [Fact]
    public void LengthSortedBatches_SortStablyAndRespectLimits()
    {
        var lengths = new[] { 5, 3, 9, 3, 7, 1 };
        var batches = EncoderSession.LengthSortedBatches(lengths, batchSize: 2);
        Assert.Equal(new[] { new[] { 5, 1 }, new[] { 3, 0 }, new[] { 4, 2 } }, batches);
        var byTokens = EncoderSession.LengthSortedBatches(lengths, batchSize: 10, maxTokens: 10);
        Assert.All(byTokens, b => Assert.True(b.Length == 1 || b.Length * b.Max(i => lengths[i]) <= 10));
        Assert.Equal(Enumerable.Range(0, 6), byTokens.SelectMany(b => b).Order());
    }
}
