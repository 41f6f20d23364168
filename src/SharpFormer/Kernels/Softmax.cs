namespace SharpFormer.Kernels;

public static class Softmax
{
    /// <summary>Numerically stable softmax of one row, in place.</summary>
    public static void InPlace(Span<float> x)
    {
        float max = float.NegativeInfinity;
        foreach (var v in x) if (v > max) max = v;
        if (float.IsNegativeInfinity(max)) { x.Fill(1f / x.Length); return; }
        double sum = 0;
        for (int i = 0; i < x.Length; i++) { float e = MathF.Exp(x[i] - max); x[i] = e; sum += e; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }

    /// <summary>log-softmax of one row into dst (dst may be x).</summary>
    public static void Log(ReadOnlySpan<float> x, Span<float> dst)
    {
        float max = float.NegativeInfinity;
        foreach (var v in x) if (v > max) max = v;
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += Math.Exp(x[i] - max);
        float lse = (float)(max + Math.Log(sum));
        for (int i = 0; i < x.Length; i++) dst[i] = x[i] - lse;
    }
}
