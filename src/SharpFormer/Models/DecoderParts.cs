using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>A dense layer over rows of activations (nn.Linear, GPT-2's Conv1D, or several stacked into one GEMM).</summary>
public interface IDense
{
    /// <summary>Input features.</summary>
    int In { get; }
    /// <summary>Output features.</summary>
    int Out { get; }
    /// <summary>x [rows, In] → y [rows, Out], then the activation, if any (applied inside the GEMM).</summary>
    void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, Activation activation = Activation.Identity);
    /// <summary>Call after the weights change (training) so packed copies are rebuilt.</summary>
    void WeightsChanged();
}

/// <summary>A normalisation over the last dimension (LayerNorm, RMSNorm), with its fused residual-add variant.</summary>
public interface INorm
{
    /// <summary>y = norm(x) row by row; y may alias x.</summary>
    void Forward(ReadOnlySpan<float> x, Span<float> y);
    /// <summary>The residual connection before this norm: x += delta, then y = norm(x).</summary>
    void AddAndForward(Span<float> x, ReadOnlySpan<float> delta, Span<float> y);
}

/// <summary>Llama's / Qwen2's RMSNorm: weight · x / sqrt(mean(x²) + eps), in float32.</summary>
public sealed class RmsNormLayer(Tensor weight, float eps) : INorm
{
    /// <summary>The scale, [hidden].</summary>
    public Tensor Weight { get; } = weight;
    /// <summary>Added to the mean of squares.</summary>
    public float Eps { get; } = eps;

    /// <summary>Loads <c>prefix.weight</c> (ones when absent).</summary>
    public static RmsNormLayer Load(ParameterLoader p, string prefix, int size, float eps) => new(p.Ones(prefix + ".weight", size), eps);

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> x, Span<float> y) => LayerNorm.RmsForward(x, Weight.Data, Eps, y);
    /// <inheritdoc/>
    public void AddAndForward(Span<float> x, ReadOnlySpan<float> delta, Span<float> y) => LayerNorm.RmsAddAndNormalise(x, delta, Weight.Data, Eps, y);
}

/// <summary>A transformer block's feed-forward part.</summary>
internal interface IMlp
{
    /// <summary>Floats of scratch it needs in the workspace's Inner buffer for <paramref name="rows"/> rows.</summary>
    long Scratch(int rows);
    /// <summary>x [rows, hidden] → y [rows, hidden].</summary>
    void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, Span<float> scratch);
    /// <summary>Call after the weights change (training).</summary>
    void WeightsChanged();
}

/// <summary>GPT-2's MLP: c_proj(act(c_fc(x))), the activation applied inside the first GEMM.</summary>
internal sealed class GeluMlp(IDense fc, Activation act, IDense proj) : IMlp
{
    public long Scratch(int rows) => (long)rows * fc.Out;

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, Span<float> scratch)
    {
        var inner = scratch[..(rows * fc.Out)];
        fc.Forward(x, rows, inner, act);
        proj.Forward(inner, rows, y);
    }

    public void WeightsChanged() { fc.WeightsChanged(); proj.WeightsChanged(); }
}

/// <summary>
/// Llama's gated MLP: down_proj(act(gate_proj(x)) · up_proj(x)), gate and up as one stacked GEMM ([rows, 2·I], each
/// row gate | up). A long prefill goes through in equal chunks of at most <see cref="ChunkRows"/> rows: the 3·I floats
/// per row of scratch (≈ 58 KB at Qwen2.5-0.5B's 4864, 239 MB for 4096 rows) then stay in the caches between the three
/// steps and no longer grow with the sequence. Chunks of more than 128 rows take the same GEMM path as the whole, so
/// every row's values are unchanged.
/// </summary>
internal sealed class GatedMlp(StackedLinear gateUp, Activation act, IDense down) : IMlp
{
    const int ChunkRows = 256;
    int Inner => gateUp.Out / 2;
    public long Scratch(int rows) => 3L * Math.Min(rows, ChunkRows) * Inner;

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, Span<float> scratch)
    {
        int n = Inner, e = gateUp.In, chunks = (rows + ChunkRows - 1) / ChunkRows;
        for (int c = 0, r0 = 0; c < chunks; c++)
        {
            int r1 = (int)((long)rows * (c + 1) / chunks), m = r1 - r0;
            var gu = scratch[..(m * 2 * n)];
            var h = scratch.Slice(m * 2 * n, m * n);
            gateUp.Forward(x.Slice(r0 * e, m * e), m, gu);
            Activations.ApplyGated(act, gu, m, n, h);
            down.Forward(h, m, y.Slice(r0 * e, m * e));
            r0 = r1;
        }
    }

    public void WeightsChanged() { gateUp.WeightsChanged(); down.WeightsChanged(); }
}

/// <summary>
/// Causal self-attention with a fused q | k | v projection: multi-head (GPT-2) or grouped-query (Llama, Qwen2: fewer
/// key/value heads, query head h reading kv head h / (heads / kvHeads)), rotary positions or none, the new keys and
/// values appended to the KV cache, then the output projection.
/// </summary>
internal sealed class CausalSelfAttention(IDense qkv, IDense output, int heads, int kvHeads, int headDim, float scale, RotaryEmbedding? rope)
{
    public int QkvWidth => (heads + 2 * kvHeads) * headDim;
    public int ContextWidth => heads * headDim;

    /// <summary>x [rows, hidden] (normalised) → y [rows, hidden]; the attention probabilities into <paramref name="probs"/> [B, heads, T, Tk] if given.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, in DecoderPass pass, int layer, Tensor? probs)
    {
        int rows = pass.Rows, t = pass.Steps, d = headDim;
        int qw = heads * d, kvw = kvHeads * d, width = QkvWidth;
        var cache = pass.Cache;
        int cap = cache.Capacity;
        var q = pass.Work.Qkv.AsSpan(0, rows * width);
        var ctx = pass.Work.Ctx.AsSpan(0, rows * qw);
        qkv.Forward(x, rows, q);
        rope?.Apply(q, rows, width, heads + kvHeads, pass.Rope(d));

        // Keys and values: appended to the cache and read from there, or (a one-pass cache) read where the projection wrote them.
        Span<float> keys = q[qw..], values = q[(qw + kvw)..];
        int kvStride = width, kvSeq = t * width;
        if (cache.StoresKeysAndValues)
        {
            keys = cache.Keys[layer]; values = cache.Values[layer];
            kvStride = kvw; kvSeq = cap * kvw;
            for (int r = 0; r < rows; r++)
            {
                int dst = pass.CacheRow(r) * kvw;
                q.Slice(r * width + qw, kvw).CopyTo(keys.Slice(dst, kvw));
                q.Slice(r * width + qw + kvw, kvw).CopyTo(values.Slice(dst, kvw));
            }
        }
        for (int i = 0; i < pass.Batch; i++)
        {
            int slot = pass.SlotOf(i), past = pass.PastOf(i), tk = past + t;
            Attention.Forward(q.Slice(i * t * width, t * width), width,
                keys.Slice(slot * kvSeq, (tk - 1) * kvStride + kvw), values.Slice(slot * kvSeq, (tk - 1) * kvStride + kvw), kvStride,
                t, tk, heads, d, scale, causal: true, queryOffset: past, cache.KeyBias.AsSpan(slot * cap, tk),
                ctx.Slice(i * t * qw, t * qw), qw,
                probs is null ? default : probs.Span.Slice(i * heads * t * tk, heads * t * tk), kvHeads);
        }
        output.Forward(ctx, rows, y);
    }

    public void WeightsChanged() { qkv.WeightsChanged(); output.WeightsChanged(); }
}

/// <summary>A pre-norm decoder block: <c>x = x + attn(norm1(x)); x = x + mlp(norm2(x))</c>.</summary>
internal sealed class DecoderBlock(INorm norm1, CausalSelfAttention attn, INorm norm2, IMlp mlp)
{
    public CausalSelfAttention Attn => attn;
    public IMlp Mlp => mlp;

    /// <summary>Updates the residual stream x [rows, hidden] in place.</summary>
    public void Forward(Span<float> x, in DecoderPass pass, int layer, Tensor? probs)
    {
        int n = x.Length;
        var h = pass.Work.H.AsSpan(0, n);
        var a = pass.Work.A.AsSpan(0, n);
        norm1.Forward(x, h);
        attn.Forward(h, a, pass, layer, probs);
        norm2.AddAndForward(x, a, h);          // x = x + attn(...); h = norm2(x)
        mlp.Forward(h, pass.Rows, a, pass.Work.Inner);
        TensorPrimitives.Add(x, a, x);         // x = x + mlp(h)
    }

    public void WeightsChanged() { attn.WeightsChanged(); mlp.WeightsChanged(); }
}
