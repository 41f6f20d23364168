namespace SharpFormer.Kernels;

public static class LayerNorm
{
    /// <summary>y[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta over each row of width gamma.Length (biased variance, like torch).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, Span<float> y)
    {
        int n = gamma.Length;
        int rows = x.Length / n;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * n, n);
            var yr = y.Slice(r * n, n);
            double sum = 0;
            for (int i = 0; i < n; i++) sum += xr[i];
            double mean = sum / n;
            double sq = 0;
            for (int i = 0; i < n; i++) { double d = xr[i] - mean; sq += d * d; }
            double rstd = 1.0 / Math.Sqrt(sq / n + eps);
            for (int i = 0; i < n; i++) yr[i] = (float)((xr[i] - mean) * rstd) * gamma[i] + beta[i];
        }
    }
}
