using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Models;

namespace SharpFormer.Tests;

/// <summary>BERT forward passes against HuggingFace's outputs on the tiny fixtures (tolerance 1e-4, the fixtures' README).</summary>
public class BertParityTests
{
    const float Tol = 1e-4f;

    public static TheoryData<string, string> Cases() => new()
    {
        { "bert-tiny", "single" }, { "bert-tiny", "pair" }, { "bert-tiny", "batch" },
        { "bert-tiny-seqcls", "batch" }, { "bert-tiny-ner", "batch" },
    };

    static BertInputs Inputs(SafeTensorsFile goldens, string c)
    {
        int[][] M(string n)
        {
            var shape = goldens.Entries[$"{c}.{n}"].Shape;
            var flat = goldens.ReadInt64($"{c}.{n}");
            return Enumerable.Range(0, shape[0]).Select(i => flat.Skip(i * shape[1]).Take(shape[1]).Select(x => (int)x).ToArray()).ToArray();
        }
        return new BertInputs(M("input_ids"), M("token_type_ids"), M("attention_mask"));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryGoldenTensorMatches(string folder, string c)
    {
        var dir = Path.Combine(SharedPaths.Fixtures, folder);
        var model = BertModel.Load(dir);
        Assert.Empty(model.InitialisedParameters);
        using var goldens = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
        var o = model.Forward(Inputs(goldens, c), outputHiddenStates: true, outputAttentions: true);
        int compared = 0;
        foreach (var name in goldens.Entries.Keys.Where(n => n.StartsWith(c + ".")))
        {
            var rest = name[(c.Length + 1)..];
            Tensor? actual = rest switch
            {
                "last_hidden_state" => o.LastHiddenState,
                "pooler_output" => o.PoolerOutput,
                "prediction_logits" => o.PredictionLogits,
                "seq_relationship_logits" => o.SeqRelationshipLogits,
                "logits" => o.Logits,
                _ when rest.StartsWith("hidden_states.") => o.HiddenStates[int.Parse(rest["hidden_states.".Length..])],
                _ when rest.StartsWith("attentions.") => o.Attentions[int.Parse(rest["attentions.".Length..])],
                _ => null,
            };
            if (rest is "input_ids" or "token_type_ids" or "attention_mask") continue;
            if (rest == "probabilities")
            {
                actual = new Tensor(o.Logits!.Shape, (float[])o.Logits.Data.Clone());
                for (int i = 0; i < actual.Shape[0]; i++) Kernels.Softmax.InPlace(actual.Span.Slice(i * actual.Shape[1], actual.Shape[1]));
                TensorAssert.Close(goldens.ReadFloat32(name), actual, 1e-5f, name);
                compared++;
                continue;
            }
            Assert.True(actual is not null, $"{name}: the model produced no such output");
            TensorAssert.Close(goldens.ReadFloat32(name), actual!, Tol, $"{folder}/{name}");
            compared++;
        }
        Assert.True(compared > 0, "no golden tensor was compared");
    }

    [Theory]
    [InlineData("bert-tiny")]
    [InlineData("bert-tiny-seqcls")]
    [InlineData("bert-tiny-ner")]
    public void UnpaddedBatchMatchesHuggingFaceAtRealPositions(string folder)
    {
        var dir = Path.Combine(SharedPaths.Fixtures, folder);
        var model = BertModel.Load(dir);
        using var goldens = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
        var inputs = Inputs(goldens, "batch");
        Assert.Contains(inputs.AttentionMask!, m => m.Contains(0));   // the case must have padding to remove
        var o = model.Forward(inputs, unpadded: true);
        int t = inputs.Length;
        // Compares the real positions of a [B, T, …] tensor with the golden; with paddingIsZero, checks the padding rows were
        // never computed (a head's output there is that of a zero row, so only the hidden states are checked).
        void RealPositions(string name, Tensor actual, bool paddingIsZero)
        {
            var golden = goldens.Entries.ContainsKey($"batch.{name}") ? goldens.ReadFloat32($"batch.{name}") : null;
            int w = actual.Shape[2];
            for (int b = 0; b < inputs.Batch; b++)
                for (int j = 0; j < t; j++)
                {
                    var got = actual.Span.Slice((b * t + j) * w, w);
                    if (inputs.AttentionMask![b][j] != 0) { if (golden is not null) TensorAssert.Close(golden.Span.Slice((b * t + j) * w, w), got, Tol, $"{folder}/{name}[{b},{j}]"); }
                    else if (paddingIsZero) Assert.False(got.ContainsAnyExcept(0f), $"{name}[{b},{j}] is padding but was computed");
                }
        }
        RealPositions("last_hidden_state", o.LastHiddenState, true);
        if (goldens.Entries.ContainsKey("batch.pooler_output")) TensorAssert.Close(goldens.ReadFloat32("batch.pooler_output"), o.PoolerOutput!, Tol, "pooler_output");
        if (o.PredictionLogits is not null) RealPositions("prediction_logits", o.PredictionLogits, false);
        if (o.Logits is { Rank: 2 } seqLogits) TensorAssert.Close(goldens.ReadFloat32("batch.logits"), seqLogits, Tol, "logits");
        if (o.Logits is { Rank: 3 } tokenLogits) RealPositions("logits", tokenLogits, false);
        Assert.True(o.PredictionLogits is not null || o.Logits is not null, "no head output was compared");
    }

    [Fact]
    public void UnpaddingFallsBackWhenTheMaskIsNotRightPadding()
    {
        var dir = Path.Combine(SharedPaths.Fixtures, "bert-tiny");
        var model = BertModel.Load(dir);
        using var goldens = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
        var inputs = Inputs(goldens, "batch");
        // A hole in the middle of row 0's mask: only the padded pass can honour it, so unpadded must give the same numbers.
        var mask = inputs.AttentionMask!.Select(m => (int[])m.Clone()).ToArray();
        mask[0][1] = 0;
        var holed = inputs with { AttentionMask = mask };
        Assert.Equal(model.Forward(holed).LastHiddenState.Data, model.Forward(holed, unpadded: true).LastHiddenState.Data);
    }

    [Fact]
    public void OnlyTheHeadsAskedForRun()
    {
        var model = BertModel.Load(Path.Combine(SharedPaths.Fixtures, "bert-tiny"));   // BertForPreTraining: pooler, MLM, NSP
        var inputs = new BertInputs([[101, 2769, 4263, 102]]);
        var all = model.Forward(inputs);
        Assert.NotNull(all.PredictionLogits);
        Assert.NotNull(all.SeqRelationshipLogits);
        var bare = model.Forward(inputs, heads: BertHeads.None);
        Assert.Null(bare.PredictionLogits);
        Assert.Null(bare.SeqRelationshipLogits);
        Assert.Null(bare.PoolerOutput);
        Assert.Equal(all.LastHiddenState.Data, bare.LastHiddenState.Data);
        var nsp = model.Forward(inputs, heads: BertHeads.NextSentence);   // the pooler runs under the head that needs it
        Assert.Null(nsp.PredictionLogits);
        Assert.Equal(all.SeqRelationshipLogits!.Data, nsp.SeqRelationshipLogits!.Data);
        Assert.Equal(all.PoolerOutput!.Data, nsp.PoolerOutput!.Data);
    }

    [Fact]
    public void PaddedKeysGetExactlyZeroAttention()
    {
        var dir = Path.Combine(SharedPaths.Fixtures, "bert-tiny");
        using var goldens = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
        var inputs = Inputs(goldens, "batch");
        var o = BertModel.Load(dir).Forward(inputs, outputAttentions: true);
        int t = inputs.Length, heads = o.Attentions[0].Shape[1];
        foreach (var a in o.Attentions)
            for (int b = 0; b < inputs.Batch; b++)
                for (int j = 0; j < t; j++)
                    if (inputs.AttentionMask![b][j] == 0)
                        for (int h = 0; h < heads; h++)
                            for (int i = 0; i < t; i++)
                                Assert.Equal(0f, a.Data[((b * heads + h) * t + i) * t + j]);
    }

    [Fact]
    public void SafetensorsAndPytorchBinGiveIdenticalOutputs()
    {
        var dir = Path.Combine(SharedPaths.Fixtures, "bert-tiny");
        using var goldens = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
        var fromSafetensors = BertModel.Load(dir);
        var tmp = Directory.CreateTempSubdirectory("sf-bin-");
        try
        {
            foreach (var f in new[] { "config.json", "pytorch_model.bin", "vocab.txt", "tokenizer_config.json" })
                File.Copy(Path.Combine(dir, f), Path.Combine(tmp.FullName, f));
            var fromBin = BertModel.Load(tmp.FullName);
            foreach (var (name, t) in fromSafetensors.Parameters.All)
                Assert.True(t.Data.AsSpan().SequenceEqual(fromBin.Parameters[name].Data), $"{name} differs between the two files");
            var inputs = Inputs(goldens, "pair");
            Assert.Equal(fromSafetensors.Forward(inputs).PredictionLogits!.Data, fromBin.Forward(inputs).PredictionLogits!.Data);
        }
        finally { tmp.Delete(recursive: true); }
    }

    [Fact]
    public void FillMaskLogitsMatch()
    {
        var dir = Path.Combine(SharedPaths.Fixtures, "bert-tiny");
        using var goldens = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
        var ids = goldens.ReadInt64("fill_mask.input_ids").Select(x => (int)x).ToArray();
        var o = BertModel.Load(dir).Forward(new BertInputs([ids]));
        int v = o.PredictionLogits!.Shape[2];
        int mask = Array.IndexOf(ids, 103);
        TensorAssert.Close(goldens.ReadFloat32("fill_mask.logits_at_mask").Data, o.PredictionLogits.Span.Slice(mask * v, v), Tol, "fill_mask.logits_at_mask");
    }

    [Fact]
    public void MissingHeadIsInitialisedAndReported()
    {
        var dir = Path.Combine(SharedPaths.Fixtures, "bert-tiny");
        var model = BertModel.Load(dir, BertHeads.SequenceClassification, seed: 7);
        Assert.Contains("classifier.weight", model.InitialisedParameters);
        Assert.Contains("classifier.bias", model.InitialisedParameters);
        var w = model.Parameters["classifier.weight"].Data;
        Assert.Equal(w, BertModel.Load(dir, BertHeads.SequenceClassification, seed: 7).Parameters["classifier.weight"].Data);
        // normal(0, initializer_range = 0.2): the sample standard deviation is near 0.2.
        double std = Math.Sqrt(w.Select(x => (double)x * x).Average());
        Assert.InRange(std, 0.12, 0.28);
        Assert.All(model.Parameters["classifier.bias"].Data, b => Assert.Equal(0f, b));
    }

    [Fact]
    public void OverlongInputAndOutOfRangeIdsAreRefused()
    {
        var model = BertModel.Load(Path.Combine(SharedPaths.Fixtures, "bert-tiny"));
        var e = Assert.Throws<SharpFormerException>(() => model.Forward(new BertInputs([Enumerable.Repeat(100, 65).ToArray()])));
        Assert.Contains("max_position_embeddings", e.Message);
        e = Assert.Throws<SharpFormerException>(() => model.Forward(new BertInputs([[101, 999999, 102]])));
        Assert.Contains("999999", e.Message);
    }
}
