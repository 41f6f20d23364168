using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>GPT-2 forward, KV cache, generation and perplexity against HuggingFace on gpt2-tiny (the fixtures' README tolerances).</summary>
public class Gpt2Tests
{
    const float Tol = 1e-4f;
    static string Dir => Path.Combine(SharedPaths.Fixtures, "gpt2-tiny");
    static readonly Lazy<Gpt2Model> ModelLazy = new(() => Gpt2Model.Load(Dir));
    static readonly Lazy<Gpt2Tokenizer> TokLazy = new(() => Gpt2Tokenizer.FromFolder(Dir));
    static readonly Lazy<JsonElement> GoldensJson = new(() => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, "goldens.json"))).RootElement.Clone());
    static Gpt2Model Model => ModelLazy.Value;
    static Gpt2Tokenizer Tok => TokLazy.Value;
    static JsonElement G => GoldensJson.Value;

    static SafeTensorsFile Goldens() => new(Path.Combine(Dir, "goldens.safetensors"));
    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    static int[][] Matrix(JsonElement e) => e.EnumerateArray().Select(Ints).ToArray();

    static int[][] IdsOf(SafeTensorsFile g, string name)
    {
        var shape = g.Entries[name].Shape;
        var flat = g.ReadInt64(name);
        return Enumerable.Range(0, shape[0]).Select(i => flat.Skip(i * shape[1]).Take(shape[1]).Select(x => (int)x).ToArray()).ToArray();
    }

    public static TheoryData<string> Prompts() => new() { "prompt_zh", "prompt_en", "prompt_mixed" };

    [Fact]
    public void LoadsEveryParameter()
    {
        Assert.Empty(Model.InitialisedParameters);
        Assert.Equal(2, Model.Config.NLayer);
        Assert.Equal(128, Model.Config.InnerDim);
    }

    [Theory]
    [MemberData(nameof(Prompts))]
    public void ForwardMatchesGoldens(string p)
    {
        using var g = Goldens();
        var ids = IdsOf(g, $"{p}.input_ids");
        Assert.Equal(Ints(G.GetProperty("prompts").GetProperty(p).GetProperty("input_ids")), ids[0]);
        Assert.Equal(ids[0], Tok.EncodeIds(G.GetProperty("prompts").GetProperty(p).GetProperty("text").GetString()!));
        var o = Model.Forward(ids, outputHiddenStates: true, outputAttentions: true);
        TensorAssert.Close(g.ReadFloat32($"{p}.logits"), o.Logits, Tol, $"{p}.logits");
        Assert.Equal(3, o.HiddenStates.Count);
        for (int i = 0; i < 3; i++) TensorAssert.Close(g.ReadFloat32($"{p}.hidden_states.{i}"), o.HiddenStates[i], Tol, $"{p}.hidden_states.{i}");
        Assert.Equal(2, o.Attentions.Count);
        for (int l = 0; l < 2; l++)
        {
            TensorAssert.Close(g.ReadFloat32($"{p}.attentions.{l}"), o.Attentions[l], Tol, $"{p}.attentions.{l}");
            TensorAssert.Close(g.ReadFloat32($"{p}.present.{l}.key"), o.Presents[l].Key, Tol, $"{p}.present.{l}.key");
            TensorAssert.Close(g.ReadFloat32($"{p}.present.{l}.value"), o.Presents[l].Value, Tol, $"{p}.present.{l}.value");
            // Every weight above the diagonal is exactly 0.
            var a = o.Attentions[l];
            int heads = a.Shape[1], t = a.Shape[2];
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < t; i++)
                    for (int j = i + 1; j < t; j++)
                        Assert.Equal(0f, a.Data[(h * t + i) * t + j]);
        }
    }

    [Fact]
    public void LastLogitsOnlyEqualsFullForward()
    {
        using var g = Goldens();
        var ids = IdsOf(g, "prompt_en.input_ids");
        var full = g.ReadFloat32("prompt_en.logits");
        var last = Model.Forward(ids, allLogits: false, outputPresents: false).Logits;
        Assert.Equal(new[] { 1, 1, Model.VocabSize }, last.Shape);
        int t = ids[0].Length, v = Model.VocabSize;
        TensorAssert.Close(full.Data.AsSpan((t - 1) * v, v), last.Data, Tol, "last logits");
    }

    /// <summary>
    /// Without presents the forward reads keys and values where c_attn wrote them instead of copying them into a cache:
    /// the same logits, bit for bit, for a left-padded batch of two.
    /// </summary>
    [Fact]
    public void ForwardWithoutPresentsEqualsForwardWithPresents()
    {
        int[][] ids = [[0, 0, 11, 12, 13], [21, 22, 23, 24, 25]];
        int[][] mask = [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]];
        var pos = DecoderPositions.FromMask(mask);
        var with = Model.Forward(ids, mask, pos, outputPresents: true);
        var without = Model.Forward(ids, mask, pos, outputPresents: false);
        Assert.Equal(Model.Config.NLayer, with.Presents.Count);
        Assert.Empty(without.Presents);
        Assert.Equal(with.Logits.Data, without.Logits.Data);
    }

    [Fact]
    public void IncrementalCachedLogitsEqualFullForward()
    {
        using var g = Goldens();
        var ids = IdsOf(g, "prompt_en.input_ids")[0];
        var golden = g.ReadFloat32("incremental.incremental_logits");
        int v = Model.VocabSize;
        var cache = Model.CreateCache(1);
        var got = new List<float>();
        got.AddRange(Model.Forward([ids[..2]], cache: cache).Logits.Data);
        for (int t = 2; t < ids.Length; t++)
        {
            var o = Model.Forward([[ids[t]]], cache: cache, outputAttentions: true);
            Assert.Equal(new[] { 1, 4, 1, t + 1 }, o.Attentions[0].Shape);
            Assert.Equal(new[] { 1, 4, t + 1, 8 }, o.Presents[0].Key.Shape);
            got.AddRange(o.Logits.Data);
        }
        TensorAssert.Close(golden.Data, got.ToArray(), Tol, "incremental logits");
        TensorAssert.Close(g.ReadFloat32("prompt_en.logits").Data, got.ToArray(), Tol, "incremental vs full");

        // DecodeStep (the generation path) gives the same logits too.
        cache.Clear();
        Model.Forward([ids[..2]], cache: cache, allLogits: false, outputPresents: false);
        var step = new float[v];
        for (int t = 2; t < ids.Length; t++)
        {
            Model.DecodeStep([ids[t]], [t], cache, step);
            TensorAssert.Close(golden.Data.AsSpan(t * v, v), step, Tol, $"DecodeStep at {t}");
        }
    }

    [Fact]
    public void GreedyGenerationMatchesGoldens()
    {
        foreach (var c in G.GetProperty("generation").EnumerateObject())
        {
            var prompt = Ints(c.Value.GetProperty("prompt_ids"));
            var expected = Ints(c.Value.GetProperty("new_ids"));
            var r = Generation.Generate(Model, [prompt], new GenerationOptions { MaxNewTokens = 20 });
            Assert.Equal(expected, r.Sequences[0].NewIds);
            // Through the tokenizer, with streaming.
            var streamed = new System.Text.StringBuilder();
            var rt = Generation.Generate(Model, Tok, c.Value.GetProperty("text").GetString()!, new GenerationOptions { MaxNewTokens = 20 }, (_, s) => streamed.Append(s));
            Assert.Equal(expected, rt.Sequences[0].NewIds);
            Assert.Equal(c.Value.GetProperty("new_text").GetString(), rt.Sequences[0].Text);
            Assert.Equal(Tok.Decode(expected, skipSpecialTokens: true, cleanUpTokenizationSpaces: false), streamed.ToString());
        }
    }

    [Fact]
    public void LossAndPerTokenNllMatchGoldens()
    {
        foreach (var c in G.GetProperty("loss").EnumerateObject())
        {
            var ids = Ints(c.Value.GetProperty("input_ids"));
            Assert.Equal(ids, Tok.EncodeIds(c.Value.GetProperty("text").GetString()!));
            var nll = Model.TokenNll(ids);
            var expected = c.Value.GetProperty("token_nll").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            Assert.Equal(expected.Length, nll.Length);
            for (int i = 0; i < nll.Length; i++) Assert.True(Math.Abs(nll[i] - expected[i]) <= 1e-4, $"{c.Name} nll[{i}] {nll[i]} vs {expected[i]}");
            var r = Perplexity.Compute(Model, ids);
            double loss = c.Value.GetProperty("loss").GetDouble(), ppl = c.Value.GetProperty("perplexity").GetDouble();
            Assert.True(Math.Abs(r.Loss - loss) <= 1e-5 * loss, $"{c.Name} loss {r.Loss} vs {loss}");
            Assert.True(Math.Abs(r.Perplexity - ppl) <= 1e-4 * ppl, $"{c.Name} perplexity {r.Perplexity} vs {ppl}");
            Assert.Equal(1, r.Windows);
            Assert.Equal(ids.Length, r.Tokens);
        }
    }

    [Fact]
    public void SlidingWindowPerplexityMatchesGoldens()
    {
        var c = G.GetProperty("sliding_window_perplexity");
        var ids = Ints(c.GetProperty("input_ids"));
        Assert.Equal(ids, Tok.EncodeIds(c.GetProperty("text").GetString()!));
        var r = Perplexity.Compute(Model, ids, stride: c.GetProperty("stride").GetInt32());
        var windows = c.GetProperty("windows").EnumerateArray().ToArray();
        Assert.Equal(windows.Length, r.Windows);
        for (int i = 0; i < windows.Length; i++)
        {
            var w = r.WindowDetails[i];
            Assert.Equal(windows[i].GetProperty("begin").GetInt32(), w.Begin);
            Assert.Equal(windows[i].GetProperty("end").GetInt32(), w.End);
            Assert.Equal(windows[i].GetProperty("target_len").GetInt32(), w.TargetLength);
            double loss = windows[i].GetProperty("loss").GetDouble();
            Assert.True(Math.Abs(w.Loss - loss) <= 1e-5 * loss, $"window {i} loss {w.Loss} vs {loss}");
        }
        double ppl = c.GetProperty("perplexity").GetDouble();
        Assert.True(Math.Abs(r.Perplexity - ppl) <= 1e-4 * ppl, $"perplexity {r.Perplexity} vs {ppl}");
        // Through the tokenizer, default stride = n_positions / 2 = 32.
        var rt = Perplexity.Compute(Model, Tok, c.GetProperty("text").GetString()!);
        Assert.Equal(r.Perplexity, rt.Perplexity);
    }

    [Fact]
    public void LeftPaddedBatchMatchesGoldens()
    {
        using var g = Goldens();
        var c = G.GetProperty("batch_left_padded");
        var ids = Matrix(c.GetProperty("input_ids"));
        var mask = Matrix(c.GetProperty("attention_mask"));
        var pos = Matrix(c.GetProperty("position_ids"));
        Assert.Equal(pos, DecoderPositions.FromMask(mask));
        var o = Model.Forward(ids, mask, pos, outputHiddenStates: true, outputAttentions: true);
        int b = 2, t = 8, e = 32, v = Model.VocabSize, heads = 4;
        var lastLogits = g.ReadFloat32("batch_left_padded.last_logits");
        for (int i = 0; i < b; i++)
            TensorAssert.Close(lastLogits.Data.AsSpan(i * v, v), o.Logits.Data.AsSpan((i * t + t - 1) * v, v), Tol, $"last logits {i}");
        var hidden = g.ReadFloat32("batch_left_padded.hidden_states.2");
        for (int l = 0; l < 2; l++)
        {
            var att = g.ReadFloat32($"batch_left_padded.attentions.{l}");
            for (int i = 0; i < b; i++)
                for (int q = 0; q < t; q++)
                {
                    if (mask[i][q] == 0) continue;                  // padded query rows are HF artefacts
                    if (l == 0) TensorAssert.Close(hidden.Data.AsSpan((i * t + q) * e, e), o.HiddenStates[2].Data.AsSpan((i * t + q) * e, e), Tol, $"hidden {i},{q}");
                    for (int h = 0; h < heads; h++)
                    {
                        int off = ((i * heads + h) * t + q) * t;
                        TensorAssert.Close(att.Data.AsSpan(off, t), o.Attentions[l].Data.AsSpan(off, t), Tol, $"attention {l} [{i},{h},{q}]");
                        for (int k = 0; k < t; k++) if (mask[i][k] == 0) Assert.Equal(0f, o.Attentions[l].Data[off + k]);
                    }
                }
        }
        // Batched greedy generation == the goldens == single-prompt generation.
        var expected = Matrix(c.GetProperty("generated_ids"));
        var prompts = ids.Select((row, i) => row.Where((_, j) => mask[i][j] == 1).ToArray()).ToArray();
        var r = Generation.Generate(Model, prompts, new GenerationOptions { MaxNewTokens = 20 });
        for (int i = 0; i < b; i++)
        {
            Assert.Equal(expected[i][t..], r.Sequences[i].NewIds);
            Assert.Equal(Generation.Generate(Model, [prompts[i]], new GenerationOptions { MaxNewTokens = 20 }).Sequences[0].NewIds, r.Sequences[i].NewIds);
        }
    }

    static readonly int[] EnPrompt = [15496, 11, 616, 3290, 318, 13779];

    [Fact]
    public void SamplingWithTheSameSeedIsReproducible()
    {
        var opts = new GenerationOptions { DoSample = true, Temperature = 1.5f, TopK = 0, MaxNewTokens = 25, Seed = 1234 };
        var a = Generation.Generate(Model, Tok, "Hello, my dog is cute", opts);
        var b = Generation.Generate(Model, Tok, "Hello, my dog is cute", opts);
        Assert.Equal(a.Sequences[0].NewIds, b.Sequences[0].NewIds);
        Assert.Equal(a.Sequences[0].Text, b.Sequences[0].Text);
        var c = Generation.Generate(Model, Tok, "Hello, my dog is cute", opts with { Seed = 99 });
        Assert.NotEqual(a.Sequences[0].NewIds, c.Sequences[0].NewIds);
        // num_return_sequences: N rows per prompt, reproducible, not all identical.
        var n = Generation.Generate(Model, [EnPrompt], opts with { NumReturnSequences = 3 });
        Assert.Equal(3, n.Sequences.Count);
        Assert.Equal(n.Sequences.Select(s => s.NewIds), Generation.Generate(Model, [EnPrompt], opts with { NumReturnSequences = 3 }).Sequences.Select(s => s.NewIds));
        Assert.True(n.Sequences.Select(s => string.Join(",", s.NewIds)).Distinct().Count() > 1);
    }

    [Fact]
    public void TopK1AndTinyTemperatureEqualGreedy()
    {
        var greedy = Ints(G.GetProperty("generation").GetProperty("gen_en").GetProperty("new_ids"));
        var topk1 = Generation.Generate(Model, [EnPrompt], new GenerationOptions { DoSample = true, TopK = 1, MaxNewTokens = 20, Seed = 7 });
        Assert.Equal(greedy, topk1.Sequences[0].NewIds);
        var cold = Generation.Generate(Model, [EnPrompt], new GenerationOptions { DoSample = true, Temperature = 1e-4f, TopK = 0, MaxNewTokens = 20, Seed = 7 });
        Assert.Equal(greedy, cold.Sequences[0].NewIds);
        var tinyP = Generation.Generate(Model, [EnPrompt], new GenerationOptions { DoSample = true, TopP = 1e-6f, MaxNewTokens = 20, Seed = 7 });
        Assert.Equal(greedy, tinyP.Sequences[0].NewIds);
    }

    [Fact]
    public void NoRepeatNgramIsNeverViolated()
    {
        foreach (int n in new[] { 1, 2, 3 })
            foreach (bool sample in new[] { false, true })
            {
                var r = Generation.Generate(Model, [EnPrompt], new GenerationOptions { NoRepeatNgramSize = n, MaxNewTokens = 40, DoSample = sample, Seed = 3 });
                var all = EnPrompt.Concat(r.Sequences[0].NewIds).ToArray();
                var seen = new HashSet<string>();
                for (int i = 0; i + n <= all.Length; i++)
                    Assert.True(seen.Add(string.Join(",", all[i..(i + n)])), $"n={n} sample={sample}: repeated {n}-gram at {i}");
            }
    }

    [Fact]
    public void RepetitionPenaltyAndLimitsFollowHf()
    {
        // The greedy output repeats "Oklahoma" (10433); a strong penalty makes every new token different from all earlier ones.
        var r = Generation.Generate(Model, [EnPrompt], new GenerationOptions { RepetitionPenalty = 1e6f, MaxNewTokens = 15 });
        var all = EnPrompt.Concat(r.Sequences[0].NewIds).ToArray();
        Assert.Equal(all.Length, all.Distinct().Count());
        // Processor: score < 0 → × p, else ÷ p, once per distinct id.
        var scores = new float[] { 2f, -2f, 3f, 1f };
        Generation.RepetitionPenalty(scores, [0, 1, 1, 0], 2f);
        Assert.Equal(new[] { 1f, -4f, 3f, 1f }, scores);
        // max_length counts the prompt; max_new_tokens wins over it.
        Assert.Equal(4, Generation.Generate(Model, [EnPrompt], new GenerationOptions { MaxLength = 10 }).Sequences[0].NewIds.Length);
        Assert.Equal(14, Generation.Generate(Model, [EnPrompt], new GenerationOptions { MaxLength = 10, MaxNewTokens = 14 }).Sequences[0].NewIds.Length);
        Assert.Equal(14, Generation.Generate(Model, [EnPrompt], new GenerationOptions()).Sequences[0].NewIds.Length);   // HF default max_length 20
        // The context (64) bounds generation.
        var full = Generation.Generate(Model, [EnPrompt], new GenerationOptions { MaxNewTokens = 500 });
        Assert.Equal(64 - EnPrompt.Length, full.Sequences[0].NewIds.Length);
        Assert.True(full.StoppedAtContextLimit);
    }

    [Fact]
    public void TopKAndTopPFollowHfWarpers()
    {
        var work = new Generation.Scratch(4);
        float ninf = float.NegativeInfinity;
        var a = new float[] { 1f, 2f, 3f, 4f };
        Generation.TopK(a, 2, work);
        Assert.Equal(new[] { ninf, ninf, 3f, 4f }, a);
        var ties = new float[] { 1f, 3f, 3f, 2f };
        Generation.TopK(ties, 1, work);                   // every score equal to the k-th largest is kept
        Assert.Equal(new[] { ninf, 3f, 3f, ninf }, ties);
        var logp = new[] { 0.1, 0.2, 0.3, 0.4 }.Select(x => (float)Math.Log(x)).ToArray();
        var p55 = (float[])logp.Clone();
        Generation.TopP(p55, 0.55f, work);                 // cumulative 0.1, 0.3 ≤ 0.45 removed
        Assert.Equal(new[] { ninf, ninf, logp[2], logp[3] }, p55);
        var p75 = (float[])logp.Clone();
        Generation.TopP(p75, 0.75f, work);
        Assert.Equal(new[] { ninf, logp[1], logp[2], logp[3] }, p75);
        var tiny = (float[])logp.Clone();
        Generation.TopP(tiny, 1e-6f, work);               // the most likely token always survives
        Assert.Equal(new[] { ninf, ninf, ninf, logp[3] }, tiny);
        var ngram = new float[] { 0f, 0f, 0f, 0f };
        Generation.BanRepeatedNgrams(ngram, [1, 2, 3, 1, 2], 3);   // "1 2" was followed by 3 → 3 banned
        Assert.Equal(new[] { 0f, 0f, 0f, ninf }, ngram);
    }

    [Fact]
    public void EosStopsAndMinNewTokensSuppressesIt()
    {
        // Make "Oklahoma" (the first greedy token) the EOS: generation stops right after it, unless min_new_tokens forbids it.
        var r = Generation.Generate(Model, [EnPrompt], new GenerationOptions { MaxNewTokens = 20, EosTokenIds = [10433] });
        Assert.Equal(new[] { 10433 }, r.Sequences[0].NewIds);
        Assert.True(r.Sequences[0].StoppedOnEos);
        var m = Generation.Generate(Model, [EnPrompt], new GenerationOptions { MaxNewTokens = 20, MinNewTokens = 5, EosTokenIds = [10433] });
        Assert.DoesNotContain(10433, m.Sequences[0].NewIds[..4]);
        Assert.True(m.Sequences[0].NewIds.Length >= 5);
    }

    [Fact]
    public void BadOptionsThrowOneLineErrors()
    {
        void Bad(GenerationOptions o, int[]? prompt = null)
        {
            var e = Assert.Throws<SharpFormerException>(() => Generation.Generate(Model, [prompt ?? EnPrompt], o));
            Assert.DoesNotContain('\n', e.Message);
        }
        Bad(new GenerationOptions { DoSample = true, TopP = 0f });
        Bad(new GenerationOptions { DoSample = true, TopP = 1.5f });
        Bad(new GenerationOptions { DoSample = true, Temperature = 0f });
        Bad(new GenerationOptions { DoSample = true, Temperature = -1f });
        Bad(new GenerationOptions { TopK = -1 });
        Bad(new GenerationOptions { MaxNewTokens = 0 });
        Bad(new GenerationOptions { RepetitionPenalty = 0f });
        Bad(new GenerationOptions { NumReturnSequences = 2 });          // greedy cannot return several sequences
        Bad(new GenerationOptions(), []);
        Bad(new GenerationOptions(), Enumerable.Repeat(11, 64).ToArray());   // no room left in the 64-position context
        Assert.Throws<SharpFormerException>(() => Generation.Generate(Model, Tok, "", new GenerationOptions()));
        Assert.Throws<SharpFormerException>(() => Model.Forward([Enumerable.Repeat(11, 65).ToArray()]));
        Assert.Throws<SharpFormerException>(() => Perplexity.Compute(Model, [11]));
        Assert.Throws<SharpFormerException>(() => Perplexity.Compute(Model, EnPrompt, stride: 0));
        Assert.Throws<SharpFormerException>(() => Perplexity.Compute(Model, EnPrompt, stride: 65));
    }

    [Fact]
    public void GenerationConfigIsRead()
    {
        var o = GenerationOptions.FromModelFolder(Dir);
        Assert.False(o.DoSample);
        Assert.Equal(new[] { 50256 }, o.EosTokenIds);
    }

    [Fact]
    public void LoadsFromPyTorchBinIdentically()
    {
        var dir = Directory.CreateTempSubdirectory("sf-gpt2bin-").FullName;
        try
        {
            foreach (var f in new[] { "config.json", "pytorch_model.bin" }) File.Copy(Path.Combine(Dir, f), Path.Combine(dir, f));
            var fromBin = Gpt2Model.Load(dir);
            Assert.Empty(fromBin.InitialisedParameters);
            foreach (var (name, t) in Model.Parameters.All) Assert.Equal(t.Data, fromBin.Parameters[name].Data);
            var ids = new[] { EnPrompt };
            Assert.Equal(Model.Forward(ids).Logits.Data, fromBin.Forward(ids).Logits.Data);
        }
        finally { Directory.Delete(dir, true); }
    }
}
