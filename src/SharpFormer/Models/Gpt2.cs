using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>What a GPT-2 forward pass produced; tensors keep the batch dimension first, like HuggingFace.</summary>
public sealed class Gpt2Outputs
{
    /// <summary>[B, T, V], or [B, 1, V] (the last position only) when the forward ran with allLogits = false.</summary>
    public required Tensor Logits { get; init; }
    /// <summary>When asked for: the embeddings, then the output of blocks 1 … n_layer−1, then ln_f(output of the last block) — n_layer + 1 entries of [B, T, n_embd], as HuggingFace.</summary>
    public List<Tensor> HiddenStates { get; } = new();
    /// <summary>When asked for: per layer [B, heads, T, Tk] (Tk = cached + new positions); keys above the diagonal are exactly 0.</summary>
    public List<Tensor> Attentions { get; } = new();
    /// <summary>When asked for: per layer the whole key and value cache [B, heads, Tk, headDim] (HuggingFace's past_key_values).</summary>
    public List<(Tensor Key, Tensor Value)> Presents { get; } = new();
}

/// <summary>
/// The keys and values of every layer for a batch of sequences, preallocated for the model's whole context
/// (n_positions), so that each generated token costs one position. Row j of sequence b of layer l sits at
/// <c>Keys[l][(b·capacity + j)·n_embd …]</c> with head h in columns [h·D, (h+1)·D).
/// Also remembers which cached positions were padding (their keys stay masked).
/// </summary>
public sealed class Gpt2KvCache
{
    /// <summary>Number of sequences (B).</summary>
    public int Batch { get; }
    /// <summary>Positions the cache can hold per sequence.</summary>
    public int Capacity { get; }
    /// <summary>Number of layers.</summary>
    public int Layers { get; }
    /// <summary>Width of a key or value row (n_embd).</summary>
    public int Width { get; }
    /// <summary>Positions already cached (the same for every sequence of the batch).</summary>
    public int Length { get; internal set; }
    internal bool StoresKeysAndValues { get; }
    internal float[][] Keys { get; }
    internal float[][] Values { get; }
    /// <summary>[B · capacity]: 0 for attended keys, <see cref="Attention.Masked"/> for padding.</summary>
    internal float[] KeyBias { get; }
    internal Gpt2Model.Workspace Work { get; } = new();

    /// <summary>A cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> positions (default: the model's n_positions).</summary>
    public Gpt2KvCache(Gpt2Config config, int batch, int? capacity = null) : this(config, batch, capacity, storesKeysAndValues: true) { }

    /// <summary>
    /// Without <paramref name="storesKeysAndValues"/>: a cache for one forward pass whose keys and values nobody reads
    /// afterwards (no presents, no decoding): attention then reads them where c_attn wrote them.
    /// </summary>
    internal Gpt2KvCache(Gpt2Config config, int batch, int? capacity, bool storesKeysAndValues)
    {
        if (batch < 1) throw new SharpFormerException($"a KV cache needs at least one sequence (got {batch})");
        int cap = capacity ?? config.NPositions;
        if (cap < 1 || cap > config.NPositions) throw new SharpFormerException($"KV cache capacity {cap} is outside [1, n_positions = {config.NPositions}]");
        Batch = batch; Capacity = cap; Layers = config.NLayer; Width = config.NEmbd;
        StoresKeysAndValues = storesKeysAndValues;
        Keys = new float[Layers][]; Values = new float[Layers][];
        for (int l = 0; l < Layers && storesKeysAndValues; l++)
        {
            // Positions past Length are never read: no need to clear them.
            Keys[l] = GC.AllocateUninitializedArray<float>(checked(batch * cap * Width));
            Values[l] = GC.AllocateUninitializedArray<float>(checked(batch * cap * Width));
        }
        KeyBias = new float[batch * cap];
    }

    /// <summary>Forgets every cached position (the buffers are reused).</summary>
    public void Clear()
    {
        Length = 0;
        Array.Clear(KeyBias);
    }

    /// <summary>The cached keys (or values) of one layer as HuggingFace's [B, heads, Tk, headDim] tensor (a copy).</summary>
    public Tensor Present(int layer, bool value, int heads)
    {
        int d = Width / heads, tk = Length;
        var src = value ? Values[layer] : Keys[layer];
        var t = new Tensor(Batch, heads, tk, d);
        for (int b = 0; b < Batch; b++)
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < tk; j++)
                    src.AsSpan(((b * Capacity) + j) * Width + h * d, d).CopyTo(t.Span.Slice(((b * heads + h) * tk + j) * d, d));
        return t;
    }
}

/// <summary>
/// GPT-2 (Radford et al. 2019) as HuggingFace's <c>modeling_gpt2.py</c> (<c>GPT2LMHeadModel</c>): token + position
/// embeddings → pre-LN blocks (ln_1 → causal self-attention with Conv1D c_attn/c_proj → residual; ln_2 → MLP
/// c_fc → activation → c_proj → residual) → ln_f → tied lm_head. Parameter names are HuggingFace's verbatim.
/// </summary>
public sealed class Gpt2Model
{
    /// <summary>The model's configuration.</summary>
    public Gpt2Config Config { get; }
    /// <summary>Every parameter as float32, except matrices held only packed (<see cref="WeightOptions.InferenceOnly"/>).</summary>
    public ParameterSet Parameters { get; } = new();
    /// <summary>How the dense layers hold their weights.</summary>
    public WeightOptions Weights { get; }
    /// <summary>Parameters the checkpoint lacked and that were randomly initialised (empty for a complete checkpoint).</summary>
    public IReadOnlyList<string> InitialisedParameters { get; }

    readonly WordEmbeddings _wte;
    readonly Tensor _wpe;
    readonly Block[] _blocks;
    readonly LayerNormLayer _lnF;
    readonly Linear _lmHead;
    readonly Activation _act;

    sealed record Block(LayerNormLayer Ln1, Conv1D CAttn, Conv1D AttnProj, LayerNormLayer Ln2, Conv1D CFc, Conv1D MlpProj);

    /// <summary>Scratch buffers reused across calls (grown on demand) so that decoding allocates nothing per token.</summary>
    internal sealed class Workspace
    {
        public float[] X = [], H = [], Qkv = [], Ctx = [], Inner = [];
        public int[] Rows = [];
        public void Ensure(int rows, int width, int inner)
        {
            if (X.Length < rows * width)
            {
                // Scratch: written before read.
                X = GC.AllocateUninitializedArray<float>(rows * width); H = GC.AllocateUninitializedArray<float>(rows * width);
                Ctx = GC.AllocateUninitializedArray<float>(rows * width); Qkv = GC.AllocateUninitializedArray<float>(rows * 3 * width);
            }
            if (Inner.Length < rows * inner) Inner = GC.AllocateUninitializedArray<float>(rows * inner);
        }
    }

    /// <summary>Loads a model folder; <paramref name="weights"/>: how the dense layers hold their weights (default: trainable float32).</summary>
    public static Gpt2Model Load(string modelDir, int seed = 0, WeightOptions weights = default)
    {
        var config = ModelConfig.Load(modelDir) as Gpt2Config
            ?? throw new SharpFormerException($"{modelDir}: not a GPT-2 model (config.json model_type is not \"gpt2\")");
        using var ckpt = CheckpointReader.Open(modelDir, "transformer.");
        return new Gpt2Model(config, ckpt, seed, weights);
    }

    /// <summary>A model whose weights are read from <paramref name="checkpoint"/>; parameters it lacks (or all, without a checkpoint) are initialised from <paramref name="seed"/> as HuggingFace does.</summary>
    public Gpt2Model(Gpt2Config config, CheckpointReader? checkpoint, int seed = 0, WeightOptions weights = default)
    {
        Config = config;
        Weights = weights;
        _act = Activations.Parse(config.ActivationFunction);
        int e = config.NEmbd, v = config.VocabSize, inner = config.InnerDim;
        float eps = config.LayerNormEpsilon;
        var p = new ParameterLoader(checkpoint, Parameters, config.InitializerRange, seed, weights);
        // lm_head is tied to wte (HuggingFace's tie_word_embeddings); an untied checkpoint's own lm_head.weight wins.
        bool tie = !config.Raw.TryGetPropertyValue("tie_word_embeddings", out var tn) || tn is null || tn.GetValue<bool>();
        bool tied = tie || checkpoint?.Contains("lm_head.weight") != true;
        _wte = p.WordEmbeddings("transformer.wte.weight", v, e, tied);
        _wpe = p.Weight("transformer.wpe.weight", config.NPositions, e);
        _blocks = new Block[config.NLayer];
        for (int i = 0; i < _blocks.Length; i++)
        {
            var pre = $"transformer.h.{i}.";
            _blocks[i] = new Block(
                LayerNormLayer.Load(p, pre + "ln_1", e, eps),
                Conv1D.Load(p, pre + "attn.c_attn", e, 3 * e),
                Conv1D.Load(p, pre + "attn.c_proj", e, e),
                LayerNormLayer.Load(p, pre + "ln_2", e, eps),
                Conv1D.Load(p, pre + "mlp.c_fc", e, inner),
                Conv1D.Load(p, pre + "mlp.c_proj", inner, e));
        }
        _lnF = LayerNormLayer.Load(p, "transformer.ln_f", e, eps);
        if (checkpoint is not null && p.Initialised.Count > 0)
            throw new SharpFormerException($"{checkpoint.FileName}: tensor '{p.Initialised[0]}' is missing");
        _lmHead = tied ? _wte.Head(bias: null) : Linear.Load(p, "lm_head", e, v, bias: false);
        InitialisedParameters = p.Initialised;
    }

    /// <summary>Call after changing parameter values in place (training), so packed kernel copies are rebuilt.</summary>
    public void WeightsChanged()
    {
        foreach (var b in _blocks)
            foreach (var c in new[] { b.CAttn, b.AttnProj, b.CFc, b.MlpProj }) c.WeightsChanged();
        _lmHead.WeightsChanged();
    }

    /// <summary>Vocabulary size (rows of the tied embedding / lm_head).</summary>
    public int VocabSize => Config.VocabSize;
    /// <summary>The longest sequence the model can attend over (n_positions).</summary>
    public int ContextLength => Config.NPositions;

    /// <summary>A cache for <paramref name="batch"/> sequences holding up to n_positions positions.</summary>
    public Gpt2KvCache CreateCache(int batch = 1, int? capacity = null) => new(Config, batch, capacity);

    /// <summary>
    /// HuggingFace generate()'s positions for a (left-padded) batch: cumsum(mask) − 1, and 1 where mask is 0.
    /// </summary>
    public static int[][] PositionIdsFromMask(int[][] attentionMask, int pastLength = 0) =>
        attentionMask.Select(row =>
        {
            var pos = new int[row.Length];
            int c = 0;
            for (int j = 0; j < row.Length; j++) { c += row[j] != 0 ? 1 : 0; pos[j] = row[j] != 0 ? c - 1 : 1; }
            return pos[pastLength..];
        }).ToArray();

    /// <summary>
    /// <c>GPT2LMHeadModel(input_ids, attention_mask, position_ids, past_key_values=cache)</c>. Without position ids,
    /// positions run from the cache length upwards (HuggingFace's model forward; for left padding pass
    /// <see cref="PositionIdsFromMask"/>). The attention mask covers the new tokens only (cached positions keep
    /// theirs). When a cache is given the new keys/values are appended to it.
    /// </summary>
    public Gpt2Outputs Forward(int[][] inputIds, int[][]? attentionMask = null, int[][]? positionIds = null, Gpt2KvCache? cache = null,
                               bool outputHiddenStates = false, bool outputAttentions = false, bool allLogits = true, bool outputPresents = true)
    {
        int b = inputIds.Length, t = b == 0 ? 0 : inputIds[0].Length;
        if (b == 0 || t == 0) throw new SharpFormerException("the input is empty: GPT-2 needs at least one token");
        if (cache is not null && cache.Batch != b) throw new SharpFormerException($"the KV cache holds {cache.Batch} sequences, the input has {b}");
        int past = cache?.Length ?? 0;
        Validate(inputIds, attentionMask, positionIds, t, past, cache?.Capacity);
        cache ??= new Gpt2KvCache(Config, b, t, storesKeysAndValues: outputPresents);
        int v = Config.VocabSize;
        var outputs = new Gpt2Outputs { Logits = Tensor.Uninitialized(b, allLogits ? t : 1, v) };
        Run(inputIds, attentionMask, positionIds, cache, b, t, outputs, outputHiddenStates, outputAttentions, allLogits, outputs.Logits.Span);
        if (outputPresents)
            for (int l = 0; l < Config.NLayer; l++)
                outputs.Presents.Add((cache.Present(l, false, Config.NHead), cache.Present(l, true, Config.NHead)));
        return outputs;
    }

    /// <summary>
    /// One decoding step for every sequence of the cache: token <c>ids[b]</c> at position <c>positions[b]</c>
    /// (attended), logits of that position into <paramref name="logits"/> [B, V]. Allocates nothing.
    /// </summary>
    public void DecodeStep(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, Gpt2KvCache cache, Span<float> logits)
    {
        int b = cache.Batch;
        if (ids.Length != b || positions.Length != b) throw new ArgumentException("DecodeStep: one id and one position per sequence");
        if (cache.Length + 1 > cache.Capacity)
            throw new SharpFormerException($"the sequence would exceed the model's context of {cache.Capacity} positions (n_positions)");
        for (int i = 0; i < b; i++)
        {
            if ((uint)ids[i] >= (uint)Config.VocabSize) throw new SharpFormerException($"token id {ids[i]} is outside the vocabulary [0, {Config.VocabSize})");
            if ((uint)positions[i] >= (uint)Config.NPositions) throw new SharpFormerException($"position {positions[i]} is outside [0, n_positions = {Config.NPositions})");
        }
        var w = cache.Work;
        if (w.Rows.Length < 2 * b) w.Rows = new int[2 * b];
        ids.CopyTo(w.Rows);
        positions.CopyTo(w.Rows.AsSpan(b));
        RunCore(i => w.Rows[i], i => w.Rows[b + i], null, cache, b, 1, null, false, false, false, logits);
    }

    /// <summary>
    /// Negative log-likelihood of each next token: entry i is −log p(ids[i + 1] | ids[..i + 1]) for i ≥ firstTarget − 1
    /// (targets ids[firstTarget..]); computed chunk by chunk, never materialising all [T, V] logits.
    /// </summary>
    public double[] TokenNll(int[] ids, int firstTarget = 1)
    {
        int t = ids.Length;
        if (t < 2) throw new SharpFormerException("scoring needs at least 2 tokens (one to condition on, one to predict)");
        if (firstTarget < 1 || firstTarget >= t) throw new ArgumentOutOfRangeException(nameof(firstTarget));
        Validate([ids], null, null, t, 0, null);
        var cache = new Gpt2KvCache(Config, 1, t, storesKeysAndValues: false);
        var w = cache.Work;
        RunCore(j => ids[j], j => j, null, cache, 1, t, null, false, false, false, default, logitsNone: true);
        // w.X holds ln_f(hidden) for all t rows.
        int e = Config.NEmbd, v = Config.VocabSize, chunk = 32;
        var logits = new float[chunk * v];
        var nll = new double[t - firstTarget];
        for (int r0 = firstTarget - 1; r0 < t - 1; r0 += chunk)
        {
            int rows = Math.Min(chunk, t - 1 - r0);
            _lmHead.Forward(w.X.AsSpan(r0 * e, rows * e), rows, logits);
            for (int r = 0; r < rows; r++)
            {
                var row = logits.AsSpan(r * v, v);
                float max = TensorPrimitives.Max(row);
                double sum = 0;
                foreach (var x in row) sum += Math.Exp(x - max);
                nll[r0 + r - (firstTarget - 1)] = -(row[ids[r0 + r + 1]] - max - Math.Log(sum));
            }
        }
        return nll;
    }

    void Validate(int[][] ids, int[][]? mask, int[][]? pos, int t, int past, int? capacity)
    {
        int limit = capacity ?? Config.NPositions;
        if (past + t > limit)
            throw new SharpFormerException(past == 0
                ? $"the input has {t} tokens, more than the model's context of {Config.NPositions} (n_positions)"
                : $"{past} cached + {t} new tokens exceed the context of {limit} positions (n_positions {Config.NPositions})");
        if (mask is not null && mask.Length != ids.Length) throw new SharpFormerException($"attention_mask has {mask.Length} rows, input_ids has {ids.Length}");
        if (pos is not null && pos.Length != ids.Length) throw new SharpFormerException($"position_ids has {pos.Length} rows, input_ids has {ids.Length}");
        for (int i = 0; i < ids.Length; i++)
        {
            Check(ids[i], Config.VocabSize, "input_ids", i);
            if (pos is not null) Check(pos[i], Config.NPositions, "position_ids", i);
            if (mask is not null && mask[i].Length != t) throw new SharpFormerException($"attention_mask row {i} has {mask[i].Length} entries, input_ids has {t}");
        }
        if (pos is null && past + t > Config.NPositions)
            throw new SharpFormerException($"positions up to {past + t - 1} exceed n_positions {Config.NPositions}");

        void Check(int[] row, int lim, string what, int r)
        {
            if (row.Length != t) throw new SharpFormerException($"{what} row {r} has {row.Length} entries, expected {t} (rows must be padded to one length)");
            foreach (var id in row)
                if ((uint)id >= (uint)lim) throw new SharpFormerException($"{what} row {r} contains {id}, outside [0, {lim})");
        }
    }

    void Run(int[][] ids, int[][]? mask, int[][]? pos, Gpt2KvCache cache, int b, int t, Gpt2Outputs? outputs,
             bool hidden, bool attn, bool allLogits, Span<float> logits)
    {
        int past = cache.Length;
        RunCore(r => ids[r / t][r % t], r => pos is null ? past + r % t : pos[r / t][r % t],
                mask is null ? null : r => mask[r / t][r % t] != 0, cache, b, t, outputs, hidden, attn, allLogits, logits);
    }

    /// <summary>
    /// The forward pass over B×T new rows (row r = sequence r / T, step r % T) appended to the cache. Leaves
    /// ln_f(hidden) in the workspace's X. Writes logits of every row (allLogits), of each sequence's last row, or none.
    /// </summary>
    void RunCore(Func<int, int> idOf, Func<int, int> posOf, Func<int, bool>? attended, Gpt2KvCache cache, int b, int t,
                 Gpt2Outputs? outputs, bool hidden, bool attn, bool allLogits, Span<float> logits, bool logitsNone = false)
    {
        int e = Config.NEmbd, heads = Config.NHead, d = Config.HeadDim, inner = Config.InnerDim, rows = b * t;
        int past = cache.Length, tk = past + t, cap = cache.Capacity;
        var w = cache.Work;
        w.Ensure(rows, e, inner);
        var x = w.X.AsSpan(0, rows * e);
        var h = w.H.AsSpan(0, rows * e);
        var qkv = w.Qkv.AsSpan(0, rows * 3 * e);
        var ctx = w.Ctx.AsSpan(0, rows * e);
        var mlp = w.Inner.AsSpan(0, rows * inner);

        // Embeddings: wte[id] + wpe[position]; the new keys' mask goes into the cache.
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * e, e);
            _wte.Lookup(idOf(r), row);
            TensorPrimitives.Add(row, _wpe.Span.Slice(posOf(r) * e, e), row);
            cache.KeyBias[(r / t) * cap + past + r % t] = attended is null || attended(r) ? 0f : Attention.Masked;
        }

        for (int l = 0; l < _blocks.Length; l++)
        {
            var blk = _blocks[l];
            if (hidden) outputs!.HiddenStates.Add(new Tensor([b, t, e], x.ToArray()));
            // Attention: ln_1 (for l > 0 applied by the previous block, with its residual) → c_attn (q | k | v) → keys and
            // values appended to the cache → causal attention → c_proj.
            if (l == 0) blk.Ln1.Forward(x, h);
            blk.CAttn.Forward(h, rows, qkv);
            // Keys and values: appended to the cache and read from there, or (a one-pass cache) read where c_attn wrote them.
            Span<float> keys = qkv[e..], values = qkv[(2 * e)..];
            int kvStride = 3 * e, kvSeq = t * 3 * e;
            if (cache.StoresKeysAndValues)
            {
                keys = cache.Keys[l]; values = cache.Values[l];
                kvStride = e; kvSeq = cap * e;
                for (int r = 0; r < rows; r++)
                {
                    int dst = ((r / t) * cap + past + r % t) * e;
                    qkv.Slice(r * 3 * e + e, e).CopyTo(keys.Slice(dst, e));
                    qkv.Slice(r * 3 * e + 2 * e, e).CopyTo(values.Slice(dst, e));
                }
            }
            float scale = (Config.ScaleAttnWeights ? 1f / MathF.Sqrt(d) : 1f) / (Config.ScaleAttnByInverseLayerIdx ? l + 1 : 1);
            var probs = attn ? new Tensor(b, heads, t, tk) : null;
            for (int i = 0; i < b; i++)
            {
                Attention.Forward(qkv.Slice(i * t * 3 * e, t * 3 * e), 3 * e,
                    keys.Slice(i * kvSeq, (tk - 1) * kvStride + e), values.Slice(i * kvSeq, (tk - 1) * kvStride + e), kvStride,
                    t, tk, heads, d, scale, causal: true, queryOffset: past, cache.KeyBias.AsSpan(i * cap, tk),
                    ctx.Slice(i * t * e, t * e), e,
                    probs is null ? default : probs.Span.Slice(i * heads * t * tk, heads * t * tk));
            }
            if (probs is not null) outputs!.Attentions.Add(probs);
            blk.AttnProj.Forward(ctx, rows, h);
            // Residual, then MLP: ln_2 → c_fc → activation → c_proj; residual and the next LayerNorm (ln_1 or ln_f).
            blk.Ln2.AddAndForward(x, h, h);
            blk.CFc.Forward(h, rows, mlp, _act);
            blk.MlpProj.Forward(mlp, rows, h);
            if (l + 1 < _blocks.Length) _blocks[l + 1].Ln1.AddAndForward(x, h, h);
            else _lnF.AddAndForward(x, h, x);
        }
        if (_blocks.Length == 0) _lnF.Forward(x, x);
        if (hidden) outputs!.HiddenStates.Add(new Tensor([b, t, e], x.ToArray()));
        cache.Length = tk;

        if (logitsNone) return;
        if (allLogits) _lmHead.Forward(x, rows, logits);
        else
        {
            // Gather each sequence's last row, then one GEMM.
            if (t > 1)
                for (int i = 0; i < b; i++) x.Slice(((i + 1) * t - 1) * e, e).CopyTo(h.Slice(i * e, e));
            else x.Slice(0, b * e).CopyTo(h);
            _lmHead.Forward(h.Slice(0, b * e), b, logits);
        }
    }
}
