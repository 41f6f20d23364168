using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>
/// What decoder-only families share: token embeddings → pre-norm blocks → final norm → LM head, the KV cache, batched
/// prefill, allocation-free decode steps and chunked scoring. A family supplies its parts (<see cref="Embed"/>, the
/// blocks, the final norm, the head) and, with rotary positions, the per-pass rotary table.
/// </summary>
public abstract class DecoderModel<TConfig> : ICausalLM where TConfig : ModelConfig
{
    /// <summary>The family's config.</summary>
    public TConfig Config { get; }
    ModelConfig ICausalLM.Config => Config;
    /// <inheritdoc/>
    public DecoderShape Shape { get; }
    /// <inheritdoc/>
    public ParameterSet Parameters { get; } = new();
    /// <inheritdoc/>
    public WeightOptions Weights { get; }
    /// <inheritdoc/>
    public IReadOnlyList<string> InitialisedParameters { get; protected set; } = [];

    private protected DecoderBlock[] Blocks { get; set; } = [];
    private protected INorm FinalNorm { get; set; } = null!;
    private protected IDense LmHead { get; set; } = null!;
    /// <summary>The rotary embedding shared by every layer, or null (absolute positions).</summary>
    private protected RotaryEmbedding? Rope { get; set; }

    /// <summary>Sets the config, shape and weight options; the family's constructor then builds the parts.</summary>
    protected DecoderModel(TConfig config, DecoderShape shape, WeightOptions weights)
    {
        Config = config;
        Shape = shape;
        Weights = weights;
    }

    /// <summary>Reads a model folder's config (which must be this family's, <paramref name="family"/> names it in the error) and checkpoint, and builds the model.</summary>
    private protected static TModel LoadFolder<TModel>(string modelDir, string basePrefix, string family, Func<TConfig, CheckpointReader, TModel> create)
    {
        var config = ModelConfig.Load(modelDir) as TConfig
            ?? throw new SharpFormerException($"{modelDir}: not a {family} model (its config.json model_type is another family's)");
        using var checkpoint = CheckpointReader.Open(modelDir, basePrefix);
        return create(config, checkpoint);
    }

    /// <summary>The input embedding of token <paramref name="id"/> at <paramref name="position"/> into <paramref name="row"/> [hidden].</summary>
    private protected abstract void Embed(int id, int position, Span<float> row);

    /// <summary>Call after changing parameter values in place (training), so packed kernel copies are rebuilt.</summary>
    public void WeightsChanged()
    {
        foreach (var b in Blocks) b.WeightsChanged();
        LmHead.WeightsChanged();
    }

    /// <summary>Vocabulary size (rows of the LM head).</summary>
    public int VocabSize => Shape.VocabSize;
    /// <summary>The most positions a sequence may have.</summary>
    public int ContextLength => Shape.ContextLength;

    /// <inheritdoc/>
    public KvCache CreateCache(int batch = 1, int? capacity = null) => new(Shape, batch, capacity);

    /// <inheritdoc/>
    public CausalLMOutputs Forward(int[][] inputIds, int[][]? attentionMask = null, int[][]? positionIds = null, KvCache? cache = null,
                                   bool outputHiddenStates = false, bool outputAttentions = false, bool allLogits = true, bool outputPresents = true)
    {
        int b = inputIds.Length, t = b == 0 ? 0 : inputIds[0].Length;
        if (b == 0 || t == 0) throw new SharpFormerException("the input is empty: the model needs at least one token");
        if (cache is not null && cache.Batch != b) throw new SharpFormerException($"the KV cache holds {cache.Batch} sequences, the input has {b}");
        cache?.RequireUniform();
        int past = cache?.Length ?? 0;
        Validate(inputIds, attentionMask, positionIds, t, past, cache?.Capacity);
        cache ??= new KvCache(Shape, b, t, storesKeysAndValues: outputPresents);
        var outputs = new CausalLMOutputs { Logits = Tensor.Uninitialized(b, allLogits ? t : 1, Shape.VocabSize) };
        RunCore(r => inputIds[r / t][r % t], r => positionIds is null ? past + r % t : positionIds[r / t][r % t],
                attentionMask is null ? null : r => attentionMask[r / t][r % t] != 0, cache, b, t, outputs,
                outputHiddenStates, outputAttentions, allLogits, outputs.Logits.Span);
        if (outputPresents)
            for (int l = 0; l < Shape.Layers; l++)
                outputs.Presents.Add((cache.Present(l, false, Shape.KvHeads), cache.Present(l, true, Shape.KvHeads)));
        return outputs;
    }

    /// <inheritdoc/>
    public void DecodeStep(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, KvCache cache, Span<float> logits)
    {
        int b = cache.Batch;
        if (ids.Length != b || positions.Length != b) throw new ArgumentException("DecodeStep: one id and one position per sequence");
        cache.RequireUniform();
        if (cache.Length + 1 > cache.Capacity)
            throw new SharpFormerException($"the sequence would exceed the model's context of {cache.Capacity} positions");
        for (int i = 0; i < b; i++)
        {
            if ((uint)ids[i] >= (uint)Shape.VocabSize) throw new SharpFormerException($"token id {ids[i]} is outside the vocabulary [0, {Shape.VocabSize})");
            if ((uint)positions[i] >= (uint)Shape.ContextLength) throw new SharpFormerException($"position {positions[i]} is outside [0, {Shape.ContextLength}) (the model's context)");
        }
        var w = cache.Work;
        if (w.Rows.Length < 2 * b) w.Rows = new int[2 * b];
        ids.CopyTo(w.Rows);
        positions.CopyTo(w.Rows.AsSpan(b));
        RunCore(i => w.Rows[i], i => w.Rows[b + i], null, cache, b, 1, null, false, false, false, logits);
    }

    /// <inheritdoc/>
    public void PrefillSlot(int slot, ReadOnlySpan<int> ids, KvCache cache, Span<float> logits)
    {
        var lengths = cache.UseSlots();
        if ((uint)slot >= (uint)cache.Batch) throw new ArgumentOutOfRangeException(nameof(slot), $"slot {slot} is outside the cache's {cache.Batch} slots");
        int t = ids.Length;
        if (t == 0) throw new SharpFormerException("the input is empty: the model needs at least one token");
        if (t > cache.Capacity) throw new SharpFormerException($"the input has {t} tokens, more than the cache's {cache.Capacity} positions");
        foreach (var id in ids)
            if ((uint)id >= (uint)Shape.VocabSize) throw new SharpFormerException($"token id {id} is outside the vocabulary [0, {Shape.VocabSize})");
        var w = cache.Work;
        if (w.Rows.Length < t) w.Rows = new int[t];
        ids.CopyTo(w.Rows);
        lengths[slot] = 0;
        RunCore(j => w.Rows[j], j => j, null, cache, 1, t, null, false, false, false, logits, slots: [slot], pasts: [0]);
    }

    /// <inheritdoc/>
    public void DecodeSlots(ReadOnlySpan<int> slots, ReadOnlySpan<int> ids, KvCache cache, Span<float> logits)
    {
        var lengths = cache.UseSlots();
        int b = slots.Length;
        if (ids.Length != b) throw new ArgumentException("DecodeSlots: one id per slot");
        var w = cache.Work;
        if (w.SlotRows.Length < b) { w.SlotRows = new int[b]; w.SlotPasts = new int[b]; }
        if (w.Rows.Length < b) w.Rows = new int[b];
        for (int i = 0; i < b; i++)
        {
            int s = slots[i];
            if ((uint)s >= (uint)cache.Batch) throw new ArgumentOutOfRangeException(nameof(slots), $"slot {s} is outside the cache's {cache.Batch} slots");
            if (lengths[s] == 0) throw new SharpFormerException($"slot {s} is empty: prefill it first");
            if (lengths[s] + 1 > cache.Capacity) throw new SharpFormerException($"slot {s} would exceed the cache's {cache.Capacity} positions");
            if ((uint)ids[i] >= (uint)Shape.VocabSize) throw new SharpFormerException($"token id {ids[i]} is outside the vocabulary [0, {Shape.VocabSize})");
            w.SlotRows[i] = s; w.SlotPasts[i] = lengths[s]; w.Rows[i] = ids[i];
        }
        for (int i = 0; i < b; i++)
            for (int j = 0; j < i; j++)
                if (w.SlotRows[j] == w.SlotRows[i]) throw new ArgumentException($"DecodeSlots: slot {w.SlotRows[i]} given twice");
        RunCore(i => w.Rows[i], i => w.SlotPasts[i], null, cache, b, 1, null, false, false, false, logits, slots: w.SlotRows, pasts: w.SlotPasts);
    }

    /// <inheritdoc/>
    public double[] TokenNll(int[] ids, int firstTarget = 1)
    {
        int t = ids.Length;
        if (t < 2) throw new SharpFormerException("scoring needs at least 2 tokens (one to condition on, one to predict)");
        if (firstTarget < 1 || firstTarget >= t) throw new ArgumentOutOfRangeException(nameof(firstTarget));
        Validate([ids], null, null, t, 0, null);
        var cache = new KvCache(Shape, 1, t, storesKeysAndValues: false);
        var w = cache.Work;
        RunCore(j => ids[j], j => j, null, cache, 1, t, null, false, false, false, default, logitsNone: true);
        // w.X holds the final norm of the hidden states for all t rows.
        int e = Shape.Hidden, v = Shape.VocabSize, chunk = 32;
        var logits = new float[chunk * v];
        var nll = new double[t - firstTarget];
        for (int r0 = firstTarget - 1; r0 < t - 1; r0 += chunk)
        {
            int rows = Math.Min(chunk, t - 1 - r0);
            LmHead.Forward(w.X.AsSpan(r0 * e, rows * e), rows, logits);
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
        int limit = capacity ?? Shape.ContextLength;
        if (past + t > limit)
            throw new SharpFormerException(past == 0
                ? $"the input has {t} tokens, more than the model's context of {Shape.ContextLength}"
                : $"{past} cached + {t} new tokens exceed the context of {limit} positions");
        if (mask is not null && mask.Length != ids.Length) throw new SharpFormerException($"attention_mask has {mask.Length} rows, input_ids has {ids.Length}");
        if (pos is not null && pos.Length != ids.Length) throw new SharpFormerException($"position_ids has {pos.Length} rows, input_ids has {ids.Length}");
        for (int i = 0; i < ids.Length; i++)
        {
            Check(ids[i], Shape.VocabSize, "input_ids", i);
            if (pos is not null) Check(pos[i], Shape.ContextLength, "position_ids", i);
            if (mask is not null && mask[i].Length != t) throw new SharpFormerException($"attention_mask row {i} has {mask[i].Length} entries, input_ids has {t}");
        }
        if (pos is null && past + t > Shape.ContextLength)
            throw new SharpFormerException($"positions up to {past + t - 1} exceed the model's context of {Shape.ContextLength}");

        void Check(int[] row, int lim, string what, int r)
        {
            if (row.Length != t) throw new SharpFormerException($"{what} row {r} has {row.Length} entries, expected {t} (rows must be padded to one length)");
            foreach (var id in row)
                if ((uint)id >= (uint)lim) throw new SharpFormerException($"{what} row {r} contains {id}, outside [0, {lim})");
        }
    }

    /// <summary>
    /// The forward pass over B×T new rows (row r = sequence r / T, step r % T) appended to the cache. Leaves the final
    /// norm of the hidden states in the workspace's X. Writes logits of every row (allLogits), of each sequence's last
    /// row, or none.
    /// </summary>
    /// <remarks>With <paramref name="slots"/>: sequence i goes to cache slot slots[i] after pasts[i] positions (continuous batching).</remarks>
    void RunCore(Func<int, int> idOf, Func<int, int> posOf, Func<int, bool>? attended, KvCache cache, int b, int t,
                 CausalLMOutputs? outputs, bool hidden, bool attn, bool allLogits, Span<float> logits, bool logitsNone = false,
                 int[]? slots = null, int[]? pasts = null)
    {
        int e = Shape.Hidden, rows = b * t, past = cache.Length, tk = past + t;
        var w = cache.Work;
        var first = Blocks.Length > 0 ? Blocks[0] : null;
        w.Ensure(rows, e, first?.Attn.QkvWidth ?? 0, first?.Attn.ContextWidth ?? 0, first?.Mlp.Scratch(rows) ?? 0, Rope?.RowWidth ?? 0);
        var x = w.X.AsSpan(0, rows * e);
        var positions = w.Positions.AsSpan(0, rows);

        // Embeddings; the new keys' mask goes into the cache.
        for (int r = 0; r < rows; r++)
        {
            positions[r] = posOf(r);
            Embed(idOf(r), positions[r], x.Slice(r * e, e));
        }
        Rope?.Prepare(positions, w.Rope);

        var pass = new DecoderPass(cache, b, t, past, w, slots, pasts);
        for (int r = 0; r < rows; r++)
            cache.KeyBias[pass.CacheRow(r)] = attended is null || attended(r) ? 0f : Attention.Masked;
        for (int l = 0; l < Blocks.Length; l++)
        {
            if (hidden) outputs!.HiddenStates.Add(new Tensor([b, t, e], x.ToArray()));
            var probs = attn ? new Tensor(b, Shape.Heads, t, tk) : null;
            Blocks[l].Forward(x, pass, l, probs);
            if (probs is not null) outputs!.Attentions.Add(probs);
        }
        FinalNorm.Forward(x, x);
        if (hidden) outputs!.HiddenStates.Add(new Tensor([b, t, e], x.ToArray()));
        if (slots is null) cache.Length = tk;
        else for (int i = 0; i < b; i++) cache.SlotLengths![slots[i]] = pasts![i] + t;

        if (logitsNone) return;
        if (allLogits) LmHead.Forward(x, rows, logits);
        else
        {
            // Gather each sequence's last row, then one GEMM.
            var h = w.H.AsSpan(0, rows * e);
            if (t > 1)
                for (int i = 0; i < b; i++) x.Slice(((i + 1) * t - 1) * e, e).CopyTo(h.Slice(i * e, e));
            else x.Slice(0, b * e).CopyTo(h);
            LmHead.Forward(h.Slice(0, b * e), b, logits);
        }
    }
}
