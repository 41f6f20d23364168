using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tasks;
using Xunit.Abstractions;

namespace SharpFormer.Tests;

/// <summary>
/// Models loaded for inference (packed straight from the checkpoint, float32 or bfloat16) against the usual trainable
/// float32 load on the fixtures, and the CLI's --dtype.
/// </summary>
public sealed class WeightPrecisionTests(ITestOutputHelper log)
{
    /// <summary>
    /// Largest |bf16 logit − f32 logit| allowed, relative to the largest |f32 logit| of the output. Rounding a weight to
    /// bf16 moves it by at most 2^-9 of itself, so one product moves by at most 2^-9 of Σ|x·w| and, the errors having
    /// random signs, typically much less; a few layers compound that. 2^-6 (1.6 %) leaves room for the compounding while
    /// still failing any misplaced or mis-widened weight, which shifts logits by their own size.
    /// </summary>
    const float RelTol = 1f / 64;

    static string Fixture(string name) => Path.Combine(SharedPaths.Fixtures, name);

    internal static BertInputs BertBatch(string dir)
    {
        using var g = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
        int[][] M(string n)
        {
            var shape = g.Entries[$"batch.{n}"].Shape;
            var flat = g.ReadInt64($"batch.{n}");
            return Enumerable.Range(0, shape[0]).Select(i => flat.Skip(i * shape[1]).Take(shape[1]).Select(x => (int)x).ToArray()).ToArray();
        }
        return new BertInputs(M("input_ids"), M("token_type_ids"), M("attention_mask"));
    }

    internal static int[][] Gpt2Prompts()
    {
        var g = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Fixture("gpt2-tiny"), "goldens.json"))).RootElement;
        return g.GetProperty("prompts").EnumerateObject().Select(p => p.Value.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
    }

    /// <summary>
    /// A reduced-precision output against the float32 one: max |Δ| is logged, must be non-zero (something was rounded)
    /// and at most <paramref name="relTol"/> × max |f32|.
    /// </summary>
    internal static void AssertCloseToFloat32(ITestOutputHelper log, Tensor f32, Tensor reduced, string dtype, float relTol, string what)
    {
        Assert.True(f32.HasShape(reduced.Shape));
        float err = 0, scale = 0;
        for (int i = 0; i < f32.Length; i++)
        {
            err = MathF.Max(err, MathF.Abs(f32.Data[i] - reduced.Data[i]));
            scale = MathF.Max(scale, MathF.Abs(f32.Data[i]));
        }
        log.WriteLine($"{what}: max |{dtype} − f32| = {err:G3}, max |f32| = {scale:G3}, relative {err / scale:G3}");
        Assert.True(err > 0, $"{what}: {dtype} gave exactly the f32 result (the weights were not rounded?)");
        Assert.True(err <= relTol * scale, $"{what}: max |{dtype} − f32| = {err:G3} exceeds {relTol} × {scale:G3}");
    }

    void AssertBf16Close(Tensor f32, Tensor bf16, string what) => AssertCloseToFloat32(log, f32, bf16, "bf16", RelTol, what);

    public static TheoryData<string> BertFixtures() => new() { "bert-tiny", "bert-tiny-seqcls", "bert-tiny-ner" };

    [Theory]
    [MemberData(nameof(BertFixtures))]
    public void Bert_inference_loads_match_the_trainable_load(string fixture)
    {
        var dir = Fixture(fixture);
        var inputs = BertBatch(dir);
        var reference = BertModel.Load(dir).Forward(inputs, outputHiddenStates: true);
        // float32 packed straight from the checkpoint (bert-tiny's word embeddings too, looked up in the packed MLM
        // decoder): the very same numbers, from the embeddings on.
        var f32 = BertModel.Load(dir, weights: WeightOptions.Inference()).Forward(inputs, outputHiddenStates: true);
        Assert.Equal(reference.HiddenStates[0].Data, f32.HiddenStates[0].Data);
        Assert.Equal(reference.LastHiddenState.Data, f32.LastHiddenState.Data);
        var bf16 = BertModel.Load(dir, weights: WeightOptions.Inference(WeightPrecision.BFloat16)).Forward(inputs);
        AssertBf16Close(reference.LastHiddenState, bf16.LastHiddenState, $"{fixture} last_hidden_state");
        foreach (var (name, r, a, b) in new[]
                 {
                     ("prediction_logits", reference.PredictionLogits, f32.PredictionLogits, bf16.PredictionLogits),
                     ("seq_relationship_logits", reference.SeqRelationshipLogits, f32.SeqRelationshipLogits, bf16.SeqRelationshipLogits),
                     ("logits", reference.Logits, f32.Logits, bf16.Logits),
                 })
        {
            if (r is null) continue;
            Assert.Equal(r.Data, a!.Data);
            AssertBf16Close(r, b!, $"{fixture} {name}");
        }
    }

    /// <summary>
    /// BERT runs query, key and value as one GEMM over their stacked weights. After the three HuggingFace parameters
    /// change in place and WeightsChanged(), layer 0's attention map is the one that three separate Linear layers over
    /// the changed weights give, and the outputs are those of a model built from the changed parameters.
    /// </summary>
    [Theory]
    [InlineData(WeightPrecision.Float32)]
    [InlineData(WeightPrecision.BFloat16)]
    [InlineData(WeightPrecision.Int8)]
    public void Bert_stacked_query_key_value_follow_their_parameters(WeightPrecision precision)
    {
        var dir = Fixture("bert-tiny");
        var inputs = BertBatch(dir);
        var weights = new WeightOptions(precision);
        var model = BertModel.Load(dir, weights: weights);
        var before = model.Forward(inputs).LastHiddenState.Data; // packs the stacked weight
        var rng = new Random(7);
        foreach (var part in new[] { "query", "key", "value" })
            foreach (var kind in new[] { "weight", "bias" })
            {
                var values = model.Parameters[$"bert.encoder.layer.0.attention.self.{part}.{kind}"].Data;
                for (int i = 0; i < values.Length; i++) values[i] += 0.1f * (float)(rng.NextDouble() - 0.5);
            }
        model.WeightsChanged();
        var after = model.Forward(inputs, outputHiddenStates: true, outputAttentions: true);
        Assert.NotEqual(before, after.LastHiddenState.Data);

        // Layer 0's attention map from q and k computed by separate Linear layers of the same precision.
        var c = model.Config;
        int b = inputs.Batch, t = inputs.Length, h = c.HiddenSize, heads = c.NumAttentionHeads, rows = b * t;
        float[] Project(string part)
        {
            var pre = $"bert.encoder.layer.0.attention.self.{part}.";
            var y = new float[rows * h];
            new Linear(model.Parameters[pre + "weight"], model.Parameters[pre + "bias"], precision).Forward(after.HiddenStates[0].Data, rows, y);
            return y;
        }
        var (q, k) = (Project("query"), Project("key"));
        var probs = new float[b * heads * t * t];
        for (int i = 0; i < b; i++)
        {
            var keyBias = inputs.AttentionMask![i].Select(m => m != 0 ? 0f : Attention.Masked).ToArray();
            Attention.Forward(q.AsSpan(i * t * h, t * h), h, k.AsSpan(i * t * h, t * h), new float[t * h], h, t, t, heads, c.HeadDim,
                1f / MathF.Sqrt(c.HeadDim), causal: false, queryOffset: 0, keyBias, new float[t * h], h, probs.AsSpan(i * heads * t * t, heads * t * t));
        }
        Assert.Equal(probs, after.Attentions[0].Data);

        // A model built from the changed parameters (packed on first use) gives the very same outputs: v and the biases too.
        var fresh = new BertModel(c, model.Heads, null, weights: weights);
        foreach (var (name, p) in model.Parameters.All) p.Data.CopyTo(fresh.Parameters[name].Data, 0);
        var expected = fresh.Forward(inputs, outputAttentions: true);
        Assert.Equal(expected.LastHiddenState.Data, after.LastHiddenState.Data);
        Assert.Equal(expected.Attentions[^1].Data, after.Attentions[^1].Data);
    }

    [Fact]
    public void Gpt2_inference_loads_match_the_trainable_load_and_generate()
    {
        var dir = Fixture("gpt2-tiny");
        var reference = Gpt2Model.Load(dir);
        var f32 = Gpt2Model.Load(dir, weights: WeightOptions.Inference());
        var bf16 = Gpt2Model.Load(dir, weights: WeightOptions.Inference(WeightPrecision.BFloat16));
        foreach (var ids in Gpt2Prompts())
        {
            var expected = reference.Forward([ids], outputHiddenStates: true);
            var actual = f32.Forward([ids], outputHiddenStates: true);
            Assert.Equal(expected.HiddenStates[0].Data, actual.HiddenStates[0].Data); // wte rows read from the packed lm_head
            Assert.Equal(expected.Logits.Data, actual.Logits.Data);
            AssertBf16Close(expected.Logits, bf16.Forward([ids]).Logits, $"gpt2-tiny logits ({ids.Length} tokens)");
        }
        // Greedy decoding (prefill, then the skinny decode GEMMs) runs in bf16; report whether it picks the same tokens.
        var prompt = Gpt2Prompts()[1];
        var options = new GenerationOptions { MaxNewTokens = 20 };
        var fromF32 = Generation.Generate(f32, [prompt], options).Sequences[0].NewIds;
        var fromBf16 = Generation.Generate(bf16, [prompt], options).Sequences[0].NewIds;
        Assert.Equal(Generation.Generate(reference, [prompt], options).Sequences[0].NewIds, fromF32);
        Assert.Equal(20, fromBf16.Length);
        log.WriteLine($"greedy, 20 new tokens: bf16 agrees with f32 on the first {fromF32.Zip(fromBf16).TakeWhile(p => p.First == p.Second).Count()}");
    }

    [Fact]
    public void Inference_loads_keep_no_float32_copy_of_packed_matrices_and_cannot_be_trained()
    {
        var model = Gpt2Model.Load(Fixture("gpt2-tiny"), weights: WeightOptions.Inference(WeightPrecision.BFloat16));
        Assert.False(model.Parameters.Contains("transformer.h.0.attn.c_attn.weight"));
        Assert.True(model.Parameters.Contains("transformer.h.0.attn.c_attn.bias"));
        Assert.True(model.Parameters.Contains("transformer.wte.weight")); // bf16: the float32 lookup table beside the packed lm_head
        Assert.Throws<InvalidOperationException>(model.WeightsChanged);
        Assert.Contains("inference only", Assert.Throws<SharpFormerException>(() => new Training.Gpt2Training(model)).Message);
        // Float32: the tied embeddings are held once, packed (the lookup reads them back exactly).
        Assert.False(Gpt2Model.Load(Fixture("gpt2-tiny"), weights: WeightOptions.Inference()).Parameters.Contains("transformer.wte.weight"));
        var bert = BertModel.Load(Fixture("bert-tiny"), weights: WeightOptions.Inference());
        Assert.False(bert.Parameters.Contains("bert.encoder.layer.0.attention.self.query.weight"));
        Assert.False(bert.Parameters.Contains("bert.embeddings.word_embeddings.weight")); // tied to the MLM decoder
        Assert.True(bert.Parameters.Contains("bert.embeddings.position_embeddings.weight"));
        // Without an MLM head nothing is tied: the table stays a float32 lookup.
        Assert.True(BertModel.Load(Fixture("bert-tiny-ner"), weights: WeightOptions.Inference()).Parameters.Contains("bert.embeddings.word_embeddings.weight"));
        // The default load is unchanged: every parameter, trainable.
        var trainable = BertModel.Load(Fixture("bert-tiny"));
        Assert.True(trainable.Parameters.Contains("bert.encoder.layer.0.attention.self.query.weight"));
        trainable.WeightsChanged();
    }

    [Fact]
    public void Cli_dtype_bf16_runs_and_an_unknown_dtype_is_one_line()
    {
        var gen = CliHarness.Run("generate", "--model", Fixture("gpt2-tiny"), "--dtype", "bf16", "--greedy", "--max-new-tokens", "5", "--json", "--", "Hello, my dog is cute");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
        Assert.Equal(5, JsonDocument.Parse(gen.Stdout).RootElement.GetProperty("sequences")[0].GetProperty("new_ids").GetArrayLength());
        var fill = CliHarness.Run("fill-mask", "--model", Fixture("bert-tiny"), "--dtype", "bf16", "--json", "--", "今天[MASK]气很好");
        Assert.True(fill.ExitCode == 0, fill.Stderr);
        var bad = CliHarness.Run("fill-mask", "--model", Fixture("bert-tiny"), "--dtype", "foo", "--", "今天[MASK]气很好");
        Assert.Equal(1, bad.ExitCode);
        Assert.Equal("error: --dtype must be f32, bf16 or int8 (got 'foo')", bad.Stderr.TrimEnd());
        Assert.Empty(bad.Stdout);
    }
}
