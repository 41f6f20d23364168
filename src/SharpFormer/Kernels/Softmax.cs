namespace SharpFormer.Kernels;

/// <summary>Row softmax.</summary>
public static class Softmax
{
    /// <summary>Numerically stable softmax of one row, in place (vectorised float exp, ≈1e-7 relative).</summary>
    public static unsafe void InPlace(Span<float> x)
    {
        if (x.IsEmpty) return;
        fixed (float* p = x)
        {
            float max = FastMath.Max(p, x.Length);
            if (float.IsNegativeInfinity(max)) { x.Fill(1f / x.Length); return; }
            float sum = FastMath.ExpSubtractSum(p, x.Length, max);
            FastMath.Scale(p, x.Length, 1f / sum);
        }
    }

    /// <summary>log-softmax of one row into dst (dst may be x).</summary>
    public static unsafe void Log(ReadOnlySpan<float> x, Span<float> dst)
    {
        if (x.IsEmpty) return;
        if (dst.Length < x.Length) throw new ArgumentException("Softmax.Log: destination too small");
        float max;
        fixed (float* px = x) max = FastMath.Max(px, x.Length);
        if (float.IsNegativeInfinity(max) || float.IsNaN(max))
        {
            // Degenerate row: keep the exact scalar definition.
            double s0 = 0;
            for (int i = 0; i < x.Length; i++) s0 += Math.Exp(x[i] - max);
            float l0 = (float)(max + Math.Log(s0));
            for (int i = 0; i < x.Length; i++) dst[i] = x[i] - l0;
            return;
        }
        // Σ exp(x − max) in float lanes, summed in double at the end; exp done into a small stack chunk.
        double sum = 0;
        Span<float> chunk = stackalloc float[256];
        fixed (float* pc = chunk)
        {
            for (int i = 0; i < x.Length; i += 256)
            {
                int len = Math.Min(256, x.Length - i);
                x.Slice(i, len).CopyTo(chunk);
                sum += FastMath.ExpSubtractSum(pc, len, max);
            }
        }
        float lse = (float)(max + Math.Log(sum));
        System.Numerics.Tensors.TensorPrimitives.Subtract(x, lse, dst.Slice(0, x.Length));
    }
}
