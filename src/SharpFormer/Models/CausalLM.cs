using SharpFormer.Checkpoints;

namespace SharpFormer.Models;

/// <summary>What every decoder-only language model exposes, whatever its family (GPT-2, Llama, Qwen2, …).</summary>
public interface ICausalLM
{
    /// <summary>The model's config.json, as parsed for its family.</summary>
    ModelConfig Config { get; }
    /// <summary>The sizes that tasks, views and caches need, family-independent.</summary>
    DecoderShape Shape { get; }
    /// <summary>Every parameter as float32, except matrices held only packed (<see cref="WeightOptions.InferenceOnly"/>).</summary>
    ParameterSet Parameters { get; }
    /// <summary>How the dense layers hold their weights.</summary>
    WeightOptions Weights { get; }
    /// <summary>Parameters the checkpoint lacked and that were randomly initialised (empty for a complete checkpoint).</summary>
    IReadOnlyList<string> InitialisedParameters { get; }

    /// <summary>A KV cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> positions (default: the context).</summary>
    KvCache CreateCache(int batch = 1, int? capacity = null);

    /// <summary>
    /// <c>XxxForCausalLM(input_ids, attention_mask, position_ids, past_key_values=cache)</c>. Without position ids,
    /// positions run from the cache length upwards (HuggingFace's model forward; for left padding pass
    /// <see cref="DecoderPositions.FromMask"/>). The attention mask covers the new tokens only (cached positions keep
    /// theirs). When a cache is given the new keys/values are appended to it.
    /// </summary>
    CausalLMOutputs Forward(int[][] inputIds, int[][]? attentionMask = null, int[][]? positionIds = null, KvCache? cache = null,
                            bool outputHiddenStates = false, bool outputAttentions = false, bool allLogits = true, bool outputPresents = true);

    /// <summary>
    /// One decoding step for every sequence of the cache: token <c>ids[b]</c> at position <c>positions[b]</c>
    /// (attended), logits of that position into <paramref name="logits"/> [B, V]. Allocates nothing.
    /// </summary>
    void DecodeStep(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, KvCache cache, Span<float> logits);

    /// <summary>
    /// Negative log-likelihood of each next token: entry i is −log p(ids[i + 1] | ids[..i + 1]) for i ≥ firstTarget − 1
    /// (targets ids[firstTarget..]); computed chunk by chunk, never materialising all [T, V] logits.
    /// </summary>
    double[] TokenNll(int[] ids, int firstTarget = 1);

    /// <summary>
    /// Continuous batching: runs a prompt into slot <paramref name="slot"/> of the cache (whatever the slot held is
    /// forgotten; positions 0 … n−1, no padding) and writes the last position's logits [V]. The cache's slots then advance
    /// independently (<see cref="DecodeSlots"/>); its uniform-length API (<see cref="Forward"/>, <see cref="DecodeStep"/>)
    /// refuses it from then on.
    /// </summary>
    void PrefillSlot(int slot, ReadOnlySpan<int> ids, KvCache cache, Span<float> logits);

    /// <summary>
    /// Continuous batching: one decoding step for some slots of the cache, each at its own length — token
    /// <c>ids[i]</c> appended to slot <c>slots[i]</c> at position <see cref="KvCache.SlotLength"/> — with the logits of
    /// each into row i of <paramref name="logits"/> [slots, V]. The other slots are neither read nor computed.
    /// </summary>
    void DecodeSlots(ReadOnlySpan<int> slots, ReadOnlySpan<int> ids, KvCache cache, Span<float> logits);
}

/// <summary>A decoder's sizes and special tokens, family-independent.</summary>
/// <param name="ModelType">config.json's model_type.</param>
/// <param name="VocabSize">Rows of the embedding and the LM head.</param>
/// <param name="Hidden">Width of the residual stream.</param>
/// <param name="Layers">Decoder blocks.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads (fewer than Heads with grouped-query attention).</param>
/// <param name="HeadDim">Dimensions per head.</param>
/// <param name="ContextLength">The most positions a sequence may have (n_positions / max_position_embeddings, or a sliding window if smaller).</param>
/// <param name="EosTokenIds">config.json's eos_token_id (a number or a list), possibly empty.</param>
/// <param name="BosTokenId">config.json's bos_token_id, if any.</param>
public sealed record DecoderShape(
    string ModelType, int VocabSize, int Hidden, int Layers, int Heads, int KvHeads, int HeadDim, int ContextLength,
    IReadOnlyList<int> EosTokenIds, int? BosTokenId)
{
    /// <summary>Width of one position's keys (or values) in one layer: kv heads × head dim.</summary>
    public int KvWidth => KvHeads * HeadDim;
}

/// <summary>What a causal LM's forward pass produced; tensors keep the batch dimension first, like HuggingFace.</summary>
public sealed class CausalLMOutputs
{
    /// <summary>[B, T, V], or [B, 1, V] (the last position only) when the forward ran with allLogits = false.</summary>
    public required Tensor Logits { get; init; }
    /// <summary>When asked for: the embeddings, then the output of blocks 1 … L−1, then the final norm of the last block's output — L + 1 entries of [B, T, hidden], as HuggingFace.</summary>
    public List<Tensor> HiddenStates { get; } = new();
    /// <summary>When asked for: per layer [B, heads, T, Tk] (Tk = cached + new positions), per query head; keys above the diagonal are exactly 0.</summary>
    public List<Tensor> Attentions { get; } = new();
    /// <summary>When asked for: per layer the whole key and value cache [B, kvHeads, Tk, headDim] (HuggingFace's past_key_values; keys after RoPE).</summary>
    public List<(Tensor Key, Tensor Value)> Presents { get; } = new();
}

/// <summary>HuggingFace generate()'s position ids.</summary>
public static class DecoderPositions
{
    /// <summary>
    /// The positions <c>prepare_inputs_for_generation</c> builds for a (left-padded) batch: cumsum(mask) − 1, and 1 where
    /// the mask is 0; the columns from <paramref name="pastLength"/> on.
    /// </summary>
    public static int[][] FromMask(int[][] attentionMask, int pastLength = 0) =>
        attentionMask.Select(row =>
        {
            var pos = new int[row.Length];
            int c = 0;
            for (int j = 0; j < row.Length; j++) { c += row[j] != 0 ? 1 : 0; pos[j] = row[j] != 0 ? c - 1 : 1; }
            return pos[pastLength..];
        }).ToArray();
}

/// <summary>
/// The keys and values of every layer for a batch of sequences, preallocated for a capacity of positions, so that
/// each generated token costs one position. Row j of sequence b of layer l sits at
/// <c>Keys[l][(b·capacity + j)·kvWidth …]</c> with kv head h in columns [h·D, (h+1)·D). Also remembers which cached
/// positions were padding (their keys stay masked), and holds the scratch buffers of the passes that use it.
/// </summary>
public sealed class KvCache
{
    /// <summary>Sequences in the batch.</summary>
    public int Batch { get; }
    /// <summary>Positions each sequence can hold.</summary>
    public int Capacity { get; }
    /// <summary>Decoder layers.</summary>
    public int Layers { get; }
    /// <summary>Floats per position per layer (kv heads × head dim).</summary>
    public int Width { get; }
    /// <summary>Positions already cached (the same for every sequence of the batch).</summary>
    public int Length { get; internal set; }
    internal bool StoresKeysAndValues { get; }
    internal float[][] Keys { get; }
    internal float[][] Values { get; }
    /// <summary>[B · capacity]: 0 for attended keys, <see cref="Kernels.Attention.Masked"/> for padding.</summary>
    internal float[] KeyBias { get; }
    internal DecoderWorkspace Work { get; } = new();
    /// <summary>Per-slot lengths once the cache is used slot by slot (continuous batching), else null.</summary>
    internal int[]? SlotLengths { get; private set; }

    /// <summary>Positions cached in slot <paramref name="slot"/> (slot-by-slot use), or <see cref="Length"/> (uniform use).</summary>
    public int SlotLength(int slot) => SlotLengths?[slot] ?? Length;

    /// <summary>Switches the cache to slot-by-slot use (every slot empty the first time).</summary>
    internal int[] UseSlots()
    {
        if (SlotLengths is null)
        {
            if (Length != 0) throw new SharpFormerException("this KV cache already holds a uniform batch; slot-by-slot use needs a new cache");
            SlotLengths = new int[Batch];
        }
        return SlotLengths;
    }

    /// <summary>Refuses a cache in slot-by-slot use to the uniform-length API.</summary>
    internal void RequireUniform()
    {
        if (SlotLengths is not null) throw new SharpFormerException("this KV cache is used slot by slot (continuous batching); use PrefillSlot/DecodeSlots with it");
    }

    /// <summary>A cache for <paramref name="batch"/> sequences of a decoder of this shape.</summary>
    public KvCache(DecoderShape shape, int batch, int? capacity = null) : this(shape, batch, capacity, storesKeysAndValues: true) { }

    /// <summary>
    /// Without <paramref name="storesKeysAndValues"/>: a cache for one forward pass whose keys and values nobody reads
    /// afterwards (no presents, no decoding): attention then reads them where the projection wrote them.
    /// </summary>
    internal KvCache(DecoderShape shape, int batch, int? capacity, bool storesKeysAndValues)
    {
        if (batch < 1) throw new SharpFormerException($"a KV cache needs at least one sequence (got {batch})");
        int cap = capacity ?? shape.ContextLength;
        if (cap < 1 || cap > shape.ContextLength) throw new SharpFormerException($"KV cache capacity {cap} is outside [1, {shape.ContextLength}] (the model's context)");
        Batch = batch; Capacity = cap; Layers = shape.Layers; Width = shape.KvWidth;
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
        SlotLengths = null;
        Array.Clear(KeyBias);
    }

    /// <summary>The cached keys (or values) of one layer as HuggingFace's [B, kvHeads, Tk, headDim] tensor (a copy).</summary>
    public Tensor Present(int layer, bool value, int kvHeads)
    {
        int d = Width / kvHeads, tk = Length;
        var src = value ? Values[layer] : Keys[layer];
        var t = new Tensor(Batch, kvHeads, tk, d);
        for (int b = 0; b < Batch; b++)
            for (int h = 0; h < kvHeads; h++)
                for (int j = 0; j < tk; j++)
                    src.AsSpan(((b * Capacity) + j) * Width + h * d, d).CopyTo(t.Span.Slice(((b * kvHeads + h) * tk + j) * d, d));
        return t;
    }
}

/// <summary>Scratch buffers of a decoder pass, reused across calls (grown on demand) so that decoding allocates nothing per token.</summary>
internal sealed class DecoderWorkspace
{
    public float[] X = [], H = [], A = [], Qkv = [], Ctx = [], Inner = [], Rope = [];
    public int[] Rows = [], Positions = [], SlotRows = [], SlotPasts = [];

    /// <summary>Room for <paramref name="rows"/> rows of every buffer, and <paramref name="innerFloats"/> floats of MLP scratch.</summary>
    public void Ensure(int rows, int width, int qkvWidth, int ctxWidth, long innerFloats, int ropePerRow)
    {
        // Scratch: written before read.
        Grow(ref X, rows * width); Grow(ref H, rows * width); Grow(ref A, rows * width);
        Grow(ref Qkv, rows * qkvWidth); Grow(ref Ctx, rows * ctxWidth); Grow(ref Inner, checked((int)innerFloats)); Grow(ref Rope, rows * ropePerRow);
        if (Positions.Length < rows) Positions = new int[rows];

        static void Grow(ref float[] a, int n)
        {
            if (a.Length < n) a = GC.AllocateUninitializedArray<float>(n);
        }
    }
}

/// <summary>
/// One forward pass over B×T new rows (row r = sequence r / T, step r % T) appended to a cache: sequence i is cache slot i
/// after <see cref="Past"/> cached positions, or (continuous batching) slot <c>Slots[i]</c> after <c>Pasts[i]</c>.
/// </summary>
internal readonly record struct DecoderPass(KvCache Cache, int Batch, int Steps, int Past, DecoderWorkspace Work, int[]? Slots = null, int[]? Pasts = null)
{
    public int Rows => Batch * Steps;
    /// <summary>Cached + new positions (uniform passes).</summary>
    public int Total => Past + Steps;
    /// <summary>The cache slot of sequence <paramref name="i"/>.</summary>
    public int SlotOf(int i) => Slots is null ? i : Slots[i];
    /// <summary>Positions cached before this pass in sequence <paramref name="i"/>'s slot.</summary>
    public int PastOf(int i) => Pasts is null ? Past : Pasts[i];
    /// <summary>Where row <paramref name="r"/> goes in the cache (slot · capacity + position in the slot).</summary>
    public int CacheRow(int r) => SlotOf(r / Steps) * Cache.Capacity + PastOf(r / Steps) + r % Steps;
    /// <summary>The rotary table of the pass's rows ([rows, head dim]), empty for models without RoPE.</summary>
    public ReadOnlySpan<float> Rope(int perRow) => Work.Rope.AsSpan(0, Rows * perRow);
}
