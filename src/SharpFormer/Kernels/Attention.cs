using System.Numerics.Tensors;

namespace SharpFormer.Kernels;

/// <summary>
/// Multi-head scaled dot-product attention over row-major activations where head h of a row sits at
/// columns [h·D, (h+1)·D): no transposes. One query row at a time per head: scores, scale, mask, softmax,
/// weighted sum of values; the probabilities are kept only when the caller asks for them.
/// </summary>
public static class Attention
{
    /// <summary>What a key contributes to a score before softmax: 0 to attend, float.MinValue to mask (HuggingFace's finfo.min).</summary>
    public const float Masked = float.MinValue;

    /// <param name="q">[tq, qStride] queries.</param>
    /// <param name="k">[tk, kvStride] keys.</param>
    /// <param name="v">[tk, kvStride] values.</param>
    /// <param name="causal">Query i (at absolute position queryOffset + i) sees keys 0..queryOffset + i only.</param>
    /// <param name="keyBias">Empty, or tk additive biases (0 or <see cref="Masked"/>) from the attention mask.</param>
    /// <param name="output">[tq, outStride]; head h written to columns [h·D, (h+1)·D).</param>
    /// <param name="probs">Empty, or [heads, tq, tk] to receive the attention probabilities.</param>
    public static void Forward(
        ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        int tq, int tk, int heads, int headDim, float scale, bool causal, int queryOffset,
        ReadOnlySpan<float> keyBias, Span<float> output, int outStride, Span<float> probs)
    {
        unsafe
        {
            fixed (float* pq = q, pk = k, pv = v, pb = keyBias, po = output, pp = probs)
            {
                nint qs = (nint)pq, ks = (nint)pk, vs = (nint)pv, bs = (nint)pb, os = (nint)po, ps = (nint)pp;
                bool hasBias = !keyBias.IsEmpty, keepProbs = !probs.IsEmpty;
                Threading.For(heads, 4L * tq * tk * headDim, h =>
                {
                    var scores = new float[tk];
                    for (int i = 0; i < tq; i++)
                    {
                        var qi = new ReadOnlySpan<float>((float*)qs + (long)i * qStride + h * headDim, headDim);
                        int visible = causal ? Math.Min(tk, queryOffset + i + 1) : tk;
                        for (int j = 0; j < visible; j++)
                        {
                            var kj = new ReadOnlySpan<float>((float*)ks + (long)j * kvStride + h * headDim, headDim);
                            float s = TensorPrimitives.Dot(qi, kj) * scale;
                            if (hasBias) s += ((float*)bs)[j];
                            scores[j] = s;
                        }
                        // Causally hidden keys get exactly zero weight, as in HuggingFace.
                        scores.AsSpan(visible).Fill(float.NegativeInfinity);
                        Softmax.InPlace(scores.AsSpan(0, tk));
                        var oi = new Span<float>((float*)os + (long)i * outStride + h * headDim, headDim);
                        oi.Clear();
                        for (int j = 0; j < visible; j++)
                        {
                            float p = scores[j];
                            if (p != 0f)
                                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>((float*)vs + (long)j * kvStride + h * headDim, headDim), p, oi, oi);
                        }
                        if (keepProbs) scores.AsSpan(0, tk).CopyTo(new Span<float>((float*)ps + ((long)h * tq + i) * tk, tk));
                    }
                });
            }
        }
    }
}
