using System.Runtime.CompilerServices;

namespace SharpFormer.Kernels;

/// <summary>
/// Rotary position embeddings as HuggingFace's Llama / Qwen2 (transformers 4.40): <c>inv_freq = 1 / θ^(2j/d)</c> in
/// float32, angle = position × inv_freq (float32), and the rotate_half convention — dimension j pairs with j + d/2,
/// <c>x' = x·cos + rotate_half(x)·sin</c>. Scaling: <c>linear</c> divides the position by the factor; <c>dynamic</c>
/// (NTK) enlarges θ once a call reaches past max_position_embeddings — and, as in transformers, keeps the enlarged θ
/// for later calls.
/// </summary>
public sealed class RotaryEmbedding
{
    readonly int _dim;
    readonly float _theta;
    readonly RopeScaling? _scaling;
    readonly int _maxPositions;
    float[] _invFreq;

    /// <summary>The rotary embedding of heads of <paramref name="headDim"/> dimensions.</summary>
    public RotaryEmbedding(int headDim, double theta, RopeScaling? scaling, int maxPositionEmbeddings)
    {
        if (headDim % 2 != 0) throw new SharpFormerException($"rotary embeddings need an even head dimension (got {headDim})");
        _dim = headDim;
        _theta = (float)theta;
        _scaling = scaling;
        _maxPositions = maxPositionEmbeddings;
        _invFreq = InverseFrequencies(_theta);
    }

    float[] InverseFrequencies(float theta)
    {
        var f = new float[_dim / 2];
        for (int j = 0; j < f.Length; j++) f[j] = 1f / (float)Math.Pow(theta, (float)(2 * j) / _dim);
        return f;
    }

    /// <summary>Floats per row of the table <see cref="Prepare"/> writes: cos then sin of the d/2 angles.</summary>
    public int RowWidth => _dim;

    /// <summary>cos and sin of every angle of each row's position into <paramref name="table"/> [rows, d] (cos | sin).</summary>
    public void Prepare(ReadOnlySpan<int> positions, Span<float> table)
    {
        if (_scaling is { Type: RopeScalingType.Dynamic } dyn)
        {
            int seqLen = 0;
            foreach (var p in positions) seqLen = Math.Max(seqLen, p + 1);
            if (seqLen > _maxPositions)
            {
                // transformers 4.40 LlamaDynamicNTKScalingRotaryEmbedding, in float32 as it computes it.
                float ratio = dyn.Factor * seqLen / _maxPositions - (dyn.Factor - 1f);
                float theta = _theta * (float)Math.Pow(ratio, (double)_dim / (_dim - 2));
                _invFreq = InverseFrequencies(theta);
            }
        }
        int half = _dim / 2;
        for (int r = 0; r < positions.Length; r++)
        {
            float pos = positions[r];
            if (_scaling is { Type: RopeScalingType.Linear } lin) pos /= lin.Factor;
            var row = table.Slice(r * _dim, _dim);
            for (int j = 0; j < half; j++)
            {
                float angle = pos * _invFreq[j];
                row[j] = (float)Math.Cos(angle);
                row[half + j] = (float)Math.Sin(angle);
            }
        }
    }

    /// <summary>
    /// Rotates <paramref name="heads"/> consecutive heads of d dimensions at the start of each of <paramref name="rows"/>
    /// rows of <paramref name="x"/> (row stride <paramref name="stride"/>) by that row's angles in <paramref name="table"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Apply(Span<float> x, int rows, int stride, int heads, ReadOnlySpan<float> table)
    {
        int half = _dim / 2;
        for (int r = 0; r < rows; r++)
        {
            var cos = table.Slice(r * _dim, half);
            var sin = table.Slice(r * _dim + half, half);
            for (int h = 0; h < heads; h++)
            {
                var v = x.Slice(r * stride + h * _dim, _dim);
                for (int j = 0; j < half; j++)
                {
                    float a = v[j], b = v[half + j];
                    v[j] = a * cos[j] - b * sin[j];
                    v[half + j] = b * cos[j] + a * sin[j];
                }
            }
        }
    }
}

/// <summary>The <c>rope_scaling</c> kinds transformers 4.40 knows.</summary>
public enum RopeScalingType
{
    /// <summary>Positions divided by the factor.</summary>
    Linear,
    /// <summary>NTK-aware: θ enlarged once a sequence outgrows max_position_embeddings.</summary>
    Dynamic,
}

/// <summary>A config's <c>rope_scaling</c>: {"type": "linear" | "dynamic", "factor": f &gt; 1}.</summary>
public sealed record RopeScaling(RopeScalingType Type, float Factor);
