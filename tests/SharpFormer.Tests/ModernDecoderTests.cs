using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Kernels;
using SharpFormer.Tasks;
using Xunit.Abstractions;

namespace SharpFormer.Tests;

/// <summary>
/// Qwen2 (BF16, tied, GQA, q/k/v biases) and Llama (F32, untied, GQA) against HuggingFace transformers 4.40.2 on
/// qwen2-tiny and llama-tiny: hidden states, attentions, presents, logits, incremental decoding, greedy generation,
/// the left-padded batch and losses (tolerances from the fixtures' README).
/// </summary>
public class ModernDecoderTests
{
    const float Tol = 1e-4f;
    public static TheoryData<string> Models() => new() { "qwen2-tiny", "llama-tiny" };
    public static TheoryData<string, string> ModelPrompts()
    {
        var d = new TheoryData<string, string>();
        foreach (var m in new[] { "qwen2-tiny", "llama-tiny" })
            foreach (var p in new[] { "prompt_zh", "prompt_en", "prompt_mixed" }) d.Add(m, p);
        return d;
    }

    static readonly Dictionary<string, Lazy<LlamaModel>> Loaded = new()
    {
        ["qwen2-tiny"] = new(() => LlamaModel.Load(SharedPaths.Fixture("qwen2-tiny"))),
        ["llama-tiny"] = new(() => LlamaModel.Load(SharedPaths.Fixture("llama-tiny"))),
    };
    static LlamaModel Model(string m) => Loaded[m].Value;
    static JsonElement G(string m) => JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture(m, "goldens.json"))).RootElement;
    static SafeTensorsFile Goldens(string m) => new(SharedPaths.Fixture(m, "goldens.safetensors"));
    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    static int[][] Matrix(JsonElement e) => e.EnumerateArray().Select(Ints).ToArray();

    [Theory]
    [MemberData(nameof(Models))]
    public void Loads_every_parameter_through_the_registry(string m)
    {
        var model = AutoModel.LoadCausalLM(SharedPaths.Fixture(m));
        Assert.IsType<LlamaModel>(model);
        Assert.Empty(model.InitialisedParameters);
        Assert.Equal(2, model.Shape.KvHeads);
        Assert.True(model.Shape.Heads > model.Shape.KvHeads);
        // Qwen2 ties lm_head to the embeddings (absent from the file), Llama stores its own.
        Assert.Equal(m == "llama-tiny", model.Parameters.Contains("lm_head.weight"));
    }

    [Theory]
    [MemberData(nameof(ModelPrompts))]
    public void Forward_matches_hidden_states_attentions_presents_and_logits(string m, string p)
    {
        var g = G(m);
        using var t = Goldens(m);
        var model = Model(m);
        int layers = model.Shape.Layers;
        var ids = Ints(g.GetProperty("prompts").GetProperty(p).GetProperty("input_ids"));
        var o = model.Forward([ids], outputHiddenStates: true, outputAttentions: true);
        Assert.Equal(layers + 1, o.HiddenStates.Count);
        for (int i = 0; i <= layers; i++) TensorAssert.Close(t.ReadFloat32($"{p}.hidden_states.{i}"), o.HiddenStates[i], Tol, $"{m} {p} hidden_states.{i}");
        for (int l = 0; l < layers; l++)
        {
            TensorAssert.Close(t.ReadFloat32($"{p}.attentions.{l}"), o.Attentions[l], Tol, $"{m} {p} attentions.{l}");
            TensorAssert.Close(t.ReadFloat32($"{p}.present.{l}.key"), o.Presents[l].Key, Tol, $"{m} {p} present.{l}.key");
            TensorAssert.Close(t.ReadFloat32($"{p}.present.{l}.value"), o.Presents[l].Value, Tol, $"{m} {p} present.{l}.value");
        }
        int v = model.Shape.VocabSize, n = ids.Length;
        if (t.Entries.ContainsKey($"{p}.logits")) TensorAssert.Close(t.ReadFloat32($"{p}.logits"), o.Logits, Tol, $"{m} {p} logits");
        else TensorAssert.Close(t.ReadFloat32($"{p}.logits_last").Data, o.Logits.Span.Slice((n - 1) * v, v), Tol, $"{m} {p} logits_last");
        // Top-20 per position: our logits at the stored ids equal the stored values, and no other id beats the 20th.
        var topIds = t.ReadInt64($"{p}.logits_top20_ids");
        var topValues = t.ReadFloat32($"{p}.logits_top20_values").Data;
        for (int pos = 0; pos < n; pos++)
        {
            var row = o.Logits.Span.Slice(pos * v, v);
            var stored = new HashSet<long>();
            for (int k = 0; k < 20; k++)
            {
                long id = topIds[pos * 20 + k];
                stored.Add(id);
                Assert.True(MathF.Abs(row[(int)id] - topValues[pos * 20 + k]) <= Tol, $"{m} {p} position {pos}: logit of {id}");
            }
            float twentieth = topValues[pos * 20 + 19];
            for (int id = 0; id < v; id++)
                Assert.True(stored.Contains(id) || row[id] <= twentieth + Tol, $"{m} {p} position {pos}: id {id} beats the stored top 20");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Incremental_decoding_equals_the_full_forward(string m)
    {
        var g = G(m).GetProperty("incremental");
        using var t = Goldens(m);
        var model = Model(m);
        var ids = Ints(g.GetProperty("input_ids"));
        int prefix = g.GetProperty("prefix_length").GetInt32(), v = model.Shape.VocabSize;
        var full = t.ReadFloat32("prompt_en.logits");
        var cache = model.CreateCache(1);
        model.Forward([ids[..prefix]], cache: cache, outputPresents: false);
        var logits = new float[v];
        for (int pos = prefix; pos < ids.Length; pos++)
        {
            model.DecodeStep([ids[pos]], [pos], cache, logits);
            TensorAssert.Close(full.Span.Slice(pos * v, v), logits, Tol, $"{m} step at {pos}");
        }
        // The final cache equals the full forward's presents.
        for (int l = 0; l < model.Shape.Layers; l++)
            TensorAssert.Close(t.ReadFloat32($"prompt_en.present.{l}.key"), cache.Present(l, false, model.Shape.KvHeads), Tol, $"{m} cache key {l}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Greedy_generation_ids_are_exact(string m)
    {
        var model = Model(m);
        var options = GenerationOptions.FromModelFolder(SharedPaths.Fixture(m)) with { MaxNewTokens = 12, DoSample = false };
        foreach (var c in G(m).GetProperty("generation").GetProperty("cases").EnumerateObject())
        {
            var result = Generation.Generate(model, [Ints(c.Value.GetProperty("prompt_ids"))], options);
            Assert.Equal(Ints(c.Value.GetProperty("new_ids")), result.Sequences[0].NewIds);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Left_padded_batch_matches_generate(string m)
    {
        var g = G(m).GetProperty("batch_left_padded");
        using var t = Goldens(m);
        var model = Model(m);
        var ids = Matrix(g.GetProperty("input_ids"));
        var mask = Matrix(g.GetProperty("attention_mask"));
        var positions = DecoderPositions.FromMask(mask);
        Assert.Equal(Matrix(g.GetProperty("position_ids")), positions);
        var o = model.Forward(ids, mask, positions, outputHiddenStates: true, outputAttentions: true, allLogits: false);
        TensorAssert.Close(t.ReadFloat32("batch_left_padded.logits_last"), new Tensor([o.Logits.Shape[0], o.Logits.Shape[2]], o.Logits.Data), Tol, $"{m} logits_last");
        // Only the real (attended) rows are meaningful.
        int layers = model.Shape.Layers, e = model.Shape.Hidden, n = ids[0].Length, heads = model.Shape.Heads;
        var hidden = t.ReadFloat32($"batch_left_padded.hidden_states.{layers}");
        var attn = Enumerable.Range(0, layers).Select(l => t.ReadFloat32($"batch_left_padded.attentions.{l}")).ToArray();
        for (int b = 0; b < ids.Length; b++)
            for (int q = 0; q < n; q++)
            {
                if (mask[b][q] == 0) continue;
                TensorAssert.Close(hidden.Span.Slice((b * n + q) * e, e), o.HiddenStates[layers].Span.Slice((b * n + q) * e, e), Tol, $"{m} hidden row {b},{q}");
                for (int l = 0; l < layers; l++)
                    for (int h = 0; h < heads; h++)
                    {
                        int at = ((b * heads + h) * n + q) * n;
                        TensorAssert.Close(attn[l].Span.Slice(at, n), o.Attentions[l].Span.Slice(at, n), Tol, $"{m} attention {l} row {b},{h},{q}");
                    }
            }
        // Batched greedy generation: HF's ids, pads and all.
        var prompts = ids.Select((row, b) => row.Where((_, j) => mask[b][j] != 0).ToArray()).ToArray();
        var options = GenerationOptions.FromModelFolder(SharedPaths.Fixture(m)) with { MaxNewTokens = 12, DoSample = false };
        var result = Generation.Generate(model, prompts, options);
        var expected = Matrix(g.GetProperty("generated_ids"));
        for (int b = 0; b < prompts.Length; b++)
        {
            var newIds = expected[b][n..];
            Assert.Equal(newIds[..result.Sequences[b].NewIds.Length], result.Sequences[b].NewIds);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Losses_match(string m)
    {
        var model = Model(m);
        foreach (var c in G(m).GetProperty("loss").EnumerateObject())
        {
            var ids = Ints(c.Value.GetProperty("input_ids"));
            var nll = model.TokenNll(ids);
            var expected = c.Value.GetProperty("token_nll").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            Assert.Equal(expected.Length, nll.Length);
            for (int i = 0; i < nll.Length; i++) Assert.True(Math.Abs(nll[i] - expected[i]) <= 1e-5 * Math.Abs(expected[i]) + 1e-5, $"{m} {c.Name} nll[{i}] {nll[i]} vs {expected[i]}");
            double loss = c.Value.GetProperty("loss").GetDouble();
            Assert.True(Math.Abs(nll.Average() - loss) <= 1e-5 * loss, $"{m} {c.Name} loss {nll.Average()} vs {loss}");
            var ppl = Perplexity.Compute(model, ids);
            Assert.True(Math.Abs(ppl.Perplexity / c.Value.GetProperty("perplexity").GetDouble() - 1) <= 1e-5, $"{m} {c.Name} perplexity {ppl.Perplexity}");
        }
    }
}

/// <summary>
/// Checkpoint layouts the fixtures do not ship, made in the test from them: sharded safetensors (an index over two
/// files) and F16 weights. Both are compared at tolerance 0 against a single-file load holding the same values, which
/// checks the readers exactly; the F16 model is also within 2e-2 of the goldens (measured 4e-3: the weights' F16
/// rounding, a relative 2⁻¹¹, moves logits of magnitude ≤ 7 by a few thousandths).
/// </summary>
public class ModernDecoderCheckpointTests
{
    static readonly string[] ModelFiles = ["config.json", "generation_config.json", "tokenizer_config.json", "vocab.json", "merges.txt"];

    static string CopyFolderWithout(string model, string tmp)
    {
        Directory.CreateDirectory(tmp);
        foreach (var f in ModelFiles)
            if (File.Exists(SharedPaths.Fixture(model, f))) File.Copy(SharedPaths.Fixture(model, f), Path.Combine(tmp, f));
        return tmp;
    }

    static float[] LastLogits(ICausalLM m, int[] ids) => m.Forward([ids], allLogits: false, outputPresents: false).Logits.Data;

    [Theory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama-tiny")]
    public void Sharded_checkpoint_gives_the_single_file_logits(string model)
    {
        var tmp = CopyFolderWithout(model, Path.Combine(Path.GetTempPath(), "sf-shard-" + Guid.NewGuid().ToString("N")));
        try
        {
            using (var src = new SafeTensorsFile(SharedPaths.Fixture(model, "model.safetensors")))
            {
                var names = src.Names.OrderBy(n => n, StringComparer.Ordinal).ToList();
                var shards = new[] { new SafeTensorsWriter(), new SafeTensorsWriter() };
                var map = new System.Text.Json.Nodes.JsonObject();
                for (int i = 0; i < names.Count; i++)
                {
                    var e = src.Entries[names[i]];
                    string shard = $"model-0000{i % 2 + 1}-of-00002.safetensors";
                    shards[i % 2].Add(names[i], e.DType, e.Shape, src.RawBytes(e).ToArray());
                    map[names[i]] = shard;
                }
                for (int s = 0; s < 2; s++) shards[s].Save(Path.Combine(tmp, $"model-0000{s + 1}-of-00002.safetensors"));
                File.WriteAllText(Path.Combine(tmp, "model.safetensors.index.json"),
                    new System.Text.Json.Nodes.JsonObject { ["metadata"] = new System.Text.Json.Nodes.JsonObject(), ["weight_map"] = map }.ToJsonString());
            }
            int[] ids = [1, 2, 3, 4, 5];
            var expected = LastLogits(LlamaModel.Load(SharedPaths.Fixture(model)), ids);
            var sharded = AutoModel.LoadCausalLM(tmp);
            Assert.Empty(sharded.InitialisedParameters);
            Assert.Equal(expected, LastLogits(sharded, ids));
            // Inference loads pack straight from the shards too.
            Assert.Equal(expected, LastLogits(AutoModel.LoadCausalLM(tmp, WeightOptions.Inference()), ids));
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void F16_checkpoint_reads_exactly_what_it_stores()
    {
        var tmp = Path.Combine(Path.GetTempPath(), "sf-f16-" + Guid.NewGuid().ToString("N"));
        var f16Dir = CopyFolderWithout("llama-tiny", Path.Combine(tmp, "f16"));
        var f32Dir = CopyFolderWithout("llama-tiny", Path.Combine(tmp, "f32"));
        try
        {
            var f16 = new SafeTensorsWriter();
            var f32 = new SafeTensorsWriter();
            using (var src = new SafeTensorsFile(SharedPaths.Fixture("llama-tiny", "model.safetensors")))
                foreach (var name in src.Names)
                {
                    var t = src.ReadFloat32(name);
                    var half = t.Data.Select(x => (Half)x).ToArray();
                    f16.Add(name, DType.F16, t.Shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(half.AsSpan()).ToArray());
                    f32.Add(name, new Tensor(t.Shape, half.Select(h => (float)h).ToArray()));
                }
            f16.Save(Path.Combine(f16Dir, "model.safetensors"));
            f32.Save(Path.Combine(f32Dir, "model.safetensors"));
            var g = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture("llama-tiny", "goldens.json"))).RootElement;
            var ids = g.GetProperty("prompts").GetProperty("prompt_mixed").GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var fromF16 = LastLogits(AutoModel.LoadCausalLM(f16Dir), ids);
            Assert.Equal(LastLogits(AutoModel.LoadCausalLM(f32Dir), ids), fromF16);
            using var goldens = new SafeTensorsFile(SharedPaths.Fixture("llama-tiny", "goldens.safetensors"));
            TensorAssert.Close(goldens.ReadFloat32("prompt_mixed.logits_last").Data, fromF16, 2e-2f, "F16 llama-tiny logits_last");
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void Bad_configs_are_one_line_errors()
    {
        var tmp = CopyFolderWithout("llama-tiny", Path.Combine(Path.GetTempPath(), "sf-badcfg-" + Guid.NewGuid().ToString("N")));
        try
        {
            var path = Path.Combine(tmp, "config.json");
            var original = File.ReadAllText(path);
            void Expect(string field, string value, string message)
            {
                var o = System.Text.Json.Nodes.JsonNode.Parse(original)!.AsObject();
                o[field] = System.Text.Json.Nodes.JsonNode.Parse(value);
                File.WriteAllText(path, o.ToJsonString());
                var e = Assert.Throws<SharpFormerException>(() => ModelConfig.Load(tmp));
                Assert.Contains(message, e.Message);
                Assert.DoesNotContain('\n', e.Message);
            }
            Expect("rope_scaling", """{"type": "yarn", "factor": 4.0}""", "rope_scaling type \"yarn\" is not supported");
            Expect("rope_scaling", """{"type": "linear", "factor": 0.5}""", "factor must be a number greater than 1");
            Expect("num_key_value_heads", "4", "num_attention_heads 6 is not a multiple of num_key_value_heads 4");
            Expect("num_attention_heads", "5", "hidden_size 48 is not a multiple of num_attention_heads 5");
            Expect("model_type", "\"falcon\"", "unknown model_type \"falcon\"");
        }
        finally { Directory.Delete(tmp, true); }
    }

    [Fact]
    public void Linear_rope_scaling_divides_positions_by_the_factor()
    {
        // With factor f, position p rotates as p / f does without scaling: a model whose positions are all multiplied by
        // f must give the unscaled model's outputs (HF's LlamaLinearScalingRotaryEmbedding; positions exact in float32).
        var tmp = CopyFolderWithout("llama-tiny", Path.Combine(Path.GetTempPath(), "sf-rope-" + Guid.NewGuid().ToString("N")));
        try
        {
            File.Copy(SharedPaths.Fixture("llama-tiny", "model.safetensors"), Path.Combine(tmp, "model.safetensors"));
            var o = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(tmp, "config.json")))!.AsObject();
            o["rope_scaling"] = System.Text.Json.Nodes.JsonNode.Parse("""{"type": "linear", "factor": 4.0}""");
            File.WriteAllText(Path.Combine(tmp, "config.json"), o.ToJsonString());
            var scaled = AutoModel.LoadCausalLM(tmp);
            var plain = AutoModel.LoadCausalLM(SharedPaths.Fixture("llama-tiny"));
            int[] ids = [464, 2068, 7586, 21831, 18045];
            var a = plain.Forward([ids], positionIds: [[0, 1, 2, 3, 4]], allLogits: false, outputPresents: false).Logits.Data;
            var b = scaled.Forward([ids], positionIds: [[0, 4, 8, 12, 16]], allLogits: false, outputPresents: false).Logits.Data;
            TensorAssert.Close(a, b, 1e-5f, "linear rope scaling");
            var unscaledFar = plain.Forward([ids], positionIds: [[0, 4, 8, 12, 16]], allLogits: false, outputPresents: false).Logits.Data;
            Assert.True(a.Zip(unscaledFar).Max(p => MathF.Abs(p.First - p.Second)) > 1e-3f, "spreading the positions must change an unscaled model's output");
        }
        finally { Directory.Delete(tmp, true); }
    }
}

/// <summary>--dtype bf16 / int8 on the Llama layout: the tolerances of <see cref="WeightPrecisionTests"/> and <see cref="Int8Tests"/>.</summary>
public sealed class ModernDecoderPrecisionTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama-tiny")]
    public void Reduced_precision_logits_stay_close_to_float32(string model)
    {
        var dir = SharedPaths.Fixture(model);
        int[][] prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8, 7, 6, 5, 4, 3]];
        var f32 = LlamaModel.Load(dir).Forward(prompts, outputPresents: false).Logits;
        var packed = AutoModel.LoadCausalLM(dir, WeightOptions.Inference()).Forward(prompts, outputPresents: false).Logits;
        Assert.Equal(f32.Data, packed.Data);
        var bf16 = AutoModel.LoadCausalLM(dir, WeightOptions.Inference(WeightPrecision.BFloat16)).Forward(prompts, outputPresents: false).Logits;
        // qwen2-tiny's weights are bfloat16 on disk: packing them as bf16 loses nothing.
        if (model == "qwen2-tiny") Assert.Equal(f32.Data, bf16.Data);
        else WeightPrecisionTests.AssertCloseToFloat32(log, f32, bf16, "bf16", 1f / 64, $"{model} logits");
        var int8 = AutoModel.LoadCausalLM(dir, WeightOptions.Inference(WeightPrecision.Int8)).Forward(prompts, outputPresents: false).Logits;
        // Int8 quantises the activations per token too; llama-tiny's 48-wide rows (random weights, std 0.2) leave few values
        // to share a scale: measured 6.9 % of the largest logit (qwen2-tiny 4 %), so 1/8 rather than Int8Tests' 1/16.
        WeightPrecisionTests.AssertCloseToFloat32(log, f32, int8, "int8", 1f / 8, $"{model} logits");
    }
}

/// <summary>The CLI on the Llama layout: forward's tensors against the goldens, generate's greedy ids, perplexity's loss.</summary>
public class ModernDecoderCliTests
{
    [Theory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama-tiny")]
    public void Forward_writes_the_goldens_tensors(string model)
    {
        var dir = SharedPaths.Fixture(model);
        var outPath = Path.Combine(Path.GetTempPath(), $"sf-fwd-{model}-{Guid.NewGuid():N}.safetensors");
        try
        {
            var r = CliHarness.Run("forward", "--model", dir, "--inputs", Path.Combine(dir, "goldens.json"), "--out", outPath);
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var got = new SafeTensorsFile(outPath);
            using var expected = new SafeTensorsFile(Path.Combine(dir, "goldens.safetensors"));
            int compared = 0;
            foreach (var name in got.Names)
            {
                if (!expected.Entries.ContainsKey(name)) continue;   // goldens store full logits for prompt_en only
                TensorAssert.Close(expected.ReadFloat32(name), got.ReadFloat32(name), 1e-4f, $"{model} {name}");
                compared++;
            }
            // Per prompt: hidden states (L + 1), attentions and presents (2 per layer); plus prompt_en's logits.
            int layers = AutoModel.LoadCausalLM(dir).Shape.Layers;
            Assert.Equal(3 * (layers + 1 + 3 * layers) + 1, compared);
        }
        finally { File.Delete(outPath); }
    }

    [Theory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama-tiny")]
    public void Generate_and_perplexity_match_the_goldens(string model)
    {
        var dir = SharedPaths.Fixture(model);
        var g = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "goldens.json"))).RootElement;
        var gen = g.GetProperty("generation").GetProperty("cases").GetProperty("gen_en");
        var r = CliHarness.Run("generate", "--model", dir, "--json", "--max-new-tokens", "12", "--", gen.GetProperty("text").GetString()!);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var o = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(gen.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()), o.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(gen.GetProperty("new_ids").EnumerateArray().Select(x => x.GetInt32()),
                     o.GetProperty("sequences")[0].GetProperty("new_ids").EnumerateArray().Select(x => x.GetInt32()));
        var loss = g.GetProperty("loss").GetProperty("loss_en");
        var p = CliHarness.Run("perplexity", "--model", dir, "--json", "--", loss.GetProperty("text").GetString()!);
        Assert.True(p.ExitCode == 0, p.Stderr);
        double got = JsonDocument.Parse(p.Stdout).RootElement.GetProperty("loss").GetDouble(), want = loss.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(got - want) <= 1e-5 * want, $"{model} loss {got} vs {want}");
    }

    [Fact]
    public void Views_show_grouped_query_heads_and_the_causal_check_passes()
    {
        var dir = SharedPaths.Fixture("qwen2-tiny");
        var report = CliHarness.Run("attention", "--model", dir, "--layer", "1", "--head", "3", "--", "Hello, my dog is cute");
        Assert.True(report.ExitCode == 0, report.Stderr);
        Assert.Contains("grouped-query: 4 query heads share 2 key/value heads", report.Stdout);
        Assert.Contains("layer 1, head 3 (key/value head 1)", report.Stdout);
        var mask = CliHarness.Run("causal-mask", "--model", SharedPaths.Fixture("llama-tiny"), "--", "Hello, my dog is cute");
        Assert.True(mask.ExitCode == 0, mask.Stderr);
        Assert.Contains("checked 3 layers × 6 heads", mask.Stdout);
        Assert.Contains("non-zero weights above the diagonal: 0 of 270", mask.Stdout);
        var compare = CliHarness.Run("compare", "--model", SharedPaths.Fixture("gpt2-tiny"), "--model", dir, "--format", "json");
        Assert.True(compare.ExitCode == 0, compare.Stderr);
        var models = JsonDocument.Parse(compare.Stdout).RootElement.GetProperty("models");
        Assert.Equal([4, 2], models.EnumerateArray().Select(m => m.GetProperty("kv_heads").GetInt32()));
        Assert.Contains("gated", models[1].GetProperty("mlp").GetString());
        Assert.Contains("RMSNorm", models[1].GetProperty("normalisation").GetString());
        Assert.Contains("rotary", models[1].GetProperty("positions").GetString());
    }
}
