using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Kernels;

/// <summary>Layer normalisation over rows (HuggingFace's nn.LayerNorm semantics), optionally fused with the residual add before it.</summary>
public static unsafe class LayerNorm
{
    /// <summary>
    /// y[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta over each row of width gamma.Length (biased variance,
    /// like torch). Mean and variance are accumulated in double lanes (two passes); y may alias x.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, Span<float> y) =>
        Run(x, default, gamma, beta, eps, y);

    /// <summary>
    /// A residual connection and the LayerNorm after it in one pass over the rows: x += delta, then y = LayerNorm(x)
    /// (y may alias x or delta). The same values as TensorPrimitives.Add then <see cref="Forward"/>.
    /// </summary>
    public static void AddAndNormalise(Span<float> x, ReadOnlySpan<float> delta, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, Span<float> y)
    {
        if (delta.Length != x.Length) throw new ArgumentException("LayerNorm: the residual and the input differ in length");
        Run(x, delta, gamma, beta, eps, y);
    }

    /// <summary>
    /// RMSNorm (Llama, Qwen2): y[r] = gamma · x[r] / sqrt(mean(x[r]²) + eps) over each row of width gamma.Length, the
    /// mean of squares accumulated in double lanes; y may alias x.
    /// </summary>
    public static void RmsForward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, float eps, Span<float> y) =>
        Run(x, default, gamma, default, eps, y, rms: true);

    /// <summary>A residual connection and the RMSNorm after it in one pass: x += delta, then y = RMSNorm(x).</summary>
    public static void RmsAddAndNormalise(Span<float> x, ReadOnlySpan<float> delta, ReadOnlySpan<float> gamma, float eps, Span<float> y)
    {
        if (delta.Length != x.Length) throw new ArgumentException("RMSNorm: the residual and the input differ in length");
        Run(x, delta, gamma, default, eps, y, rms: true);
    }

    static unsafe void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> delta, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, Span<float> y, bool rms = false)
    {
        var kernels = KernelContext.Current;
        using var profile = kernels.Profile.Time(ProfiledKernel.LayerNorm);
        int n = gamma.Length;
        if (n == 0) return;
        if (!rms && beta.Length < n) throw new ArgumentException("LayerNorm: beta shorter than gamma");
        int rows = x.Length / n;
        if (y.Length < rows * n) throw new ArgumentException("LayerNorm: output too small");
        fixed (float* px = x, pd = delta, py = y, pg = gamma, pb = beta)
        {
            // Rows are independent: chunks of rows across the worker pool (a row costs ~10 flops per element).
            var job = new Job
            {
                X = px, Delta = delta.IsEmpty ? null : pd, Y = py, G = pg, B = pb, N = n, Rows = rows, Eps = eps, Rms = rms,
                Chunk = Math.Max(1, RowsPerChunk / Math.Max(1, n / 256)),
            };
            int chunks = (rows + job.Chunk - 1) / job.Chunk;
            kernels.Run(chunks, kernels.ThreadsFor(10L * rows * n, chunks), &RunChunk, &job);
        }
    }

    const int RowsPerChunk = 64;

    struct Job
    {
        public float* X, Delta, Y, G, B;
        public int N, Rows, Chunk;
        public float Eps;
        public bool Rms;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunChunk(void* ctx, int i)
    {
        ref Job j = ref *(Job*)ctx;
        int r1 = Math.Min(j.Rows, (i + 1) * j.Chunk);
        for (int r = i * j.Chunk; r < r1; r++)
        {
            float* x = j.X + (long)r * j.N;
            if (j.Delta != null)
                TensorPrimitives.Add(new ReadOnlySpan<float>(x, j.N), new ReadOnlySpan<float>(j.Delta + (long)r * j.N, j.N), new Span<float>(x, j.N));
            if (j.Rms) RmsRow(x, j.Y + (long)r * j.N, j.G, j.N, j.Eps);
            else Row(x, j.Y + (long)r * j.N, j.G, j.B, j.N, j.Eps);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void Row(float* x, float* y, float* g, float* b, int n, float eps)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> s0 = default, s1 = default;
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                s0 += lo; s1 += hi;
            }
            sum = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) sum += x[i];
        double mean = sum / n;
        double sq = 0;
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var mv = Vector256.Create(mean);
            Vector256<double> s0 = default, s1 = default;
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                lo -= mv; hi -= mv;
                s0 = Vector256.FusedMultiplyAdd(lo, lo, s0); s1 = Vector256.FusedMultiplyAdd(hi, hi, s1);
            }
            sq = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) { double d = x[i] - mean; sq += d * d; }
        double rstd = 1.0 / Math.Sqrt(sq / n + eps);
        // x − mean in float as (x − hi) − lo: the first difference is exact near the mean, so the centring keeps
        // double quality even for rows with a large common offset.
        float mHi = (float)mean, mLo = (float)(mean - mHi), rstdF = (float)rstd;
        i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var mh = Vector512.Create(mHi); var ml = Vector512.Create(mLo); var s = Vector512.Create(rstdF);
            for (; i + 16 <= n; i += 16)
                Vector512.FusedMultiplyAdd((Vector512.Load(x + i) - mh - ml) * s, Vector512.Load(g + i), Vector512.Load(b + i)).Store(y + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var mh = Vector256.Create(mHi); var ml = Vector256.Create(mLo); var s = Vector256.Create(rstdF);
            for (; i + 8 <= n; i += 8)
                Vector256.FusedMultiplyAdd((Vector256.Load(x + i) - mh - ml) * s, Vector256.Load(g + i), Vector256.Load(b + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd((x[i] - mHi - mLo) * rstdF, g[i], b[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void RmsRow(float* x, float* y, float* g, int n, float eps)
    {
        int i = 0;
        double sq = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> s0 = default, s1 = default;
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                s0 = Vector256.FusedMultiplyAdd(lo, lo, s0); s1 = Vector256.FusedMultiplyAdd(hi, hi, s1);
            }
            sq = Vector256.Sum(s0 + s1);
        }
        for (; i < n; i++) sq += (double)x[i] * x[i];
        float rstd = (float)(1.0 / Math.Sqrt(sq / n + eps));
        i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(rstd);
            for (; i + 16 <= n; i += 16) (Vector512.Load(x + i) * s * Vector512.Load(g + i)).Store(y + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(rstd);
            for (; i + 8 <= n; i += 8) (Vector256.Load(x + i) * s * Vector256.Load(g + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] = x[i] * rstd * g[i];
    }
}
