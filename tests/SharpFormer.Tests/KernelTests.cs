using SharpFormer.Kernels;

namespace SharpFormer.Tests;

/// <summary>Kernel tests with multi-threaded contexts of their own run one at a time, so that they do not oversubscribe the cores.</summary>
[CollectionDefinition("Threading", DisableParallelization = true)]
public sealed class ThreadingCollection;

static class KernelRef
{
    public static float[] Random(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * r.NextDouble());
        return a;
    }

    /// <summary>The nearest bfloat16 to f as a float (ties to even; beyond the largest bf16, infinity), from its two bf16 neighbours.</summary>
    public static float RoundToBFloat16(float f)
    {
        if (!float.IsFinite(f)) return f;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        int exponent = (int)((bits >> 23) & 0xFF);
        double down = BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000);
        double up = down + Math.CopySign(Math.ScaleB(1.0, Math.Max(exponent, 1) - 127 - 7), f); // one bf16 ulp further out
        double dDown = Math.Abs(f - down), dUp = Math.Abs(up - f);
        return (float)(dDown < dUp ? down : dUp < dDown ? up : ((bits >> 16) & 1) == 0 ? down : up);
    }

    /// <summary>Runs body in a kernel context of <paramref name="threads"/> threads with the GEMM path at most isa (0 Vector128, 1 Vector256, 2 Vector512).</summary>
    public static void With(int threads, int isa, Action body)
    {
        using var kernels = new KernelContext(threads, (KernelIsa)Math.Min(isa, (int)KernelIsa.Vector512));
        using var scope = kernels.Enter();
        body();
    }
}

[Collection("Threading")]
public class KernelTests
{
    public static IEnumerable<object[]> GemmCases()
    {
        foreach (int threads in new[] { 1, 2 })
            foreach (bool inOut in new[] { false, true })
                foreach (bool bias in new[] { false, true })
                    yield return [threads, inOut, bias];
    }

    /// <summary>Against a float64 product; with bf16 packing, of the weights rounded to bf16 (the only error it may add).</summary>
    static void CheckLinear(int m, int k, int n, bool inOut, bool withBias, int seed, WeightPrecision precision = WeightPrecision.Float32)
    {
        var x = KernelRef.Random(m * k, seed);
        var w = KernelRef.Random(n * k, seed + 1);
        var b = KernelRef.Random(n, seed + 2);
        var pw = inOut ? PackedWeight.FromInOut(w, k, n, precision) : PackedWeight.FromOutIn(w, n, k, precision);
        Assert.Equal(k, pw.K);
        Assert.Equal(n, pw.N);
        Assert.Equal(precision, pw.Precision);
        if (precision == WeightPrecision.BFloat16) w = w.Select(KernelRef.RoundToBFloat16).ToArray();
        var y = new float[m * n + 3];
        y[m * n] = 42f; y[m * n + 1] = 43f; y[m * n + 2] = 44f; // sentinels: nothing past m×n may be written
        Gemm.Linear(x, m, pw, withBias ? b : default, y);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = withBias ? b[j] : 0, mag = Math.Abs(s);
                for (int kk = 0; kk < k; kk++)
                {
                    double wv = inOut ? w[kk * n + j] : w[j * k + kk];
                    double t = x[i * k + kk] * wv;
                    s += t; mag += Math.Abs(t);
                }
                double err = Math.Abs(y[i * n + j] - s);
                if (err > 1e-5 * mag + 1e-30)
                    Assert.Fail($"Linear {precision} m={m} k={k} n={n} inOut={inOut} bias={withBias} isa={KernelContext.Current.Isa} threads={KernelContext.Current.Threads}: y[{i},{j}] = {y[i * n + j]}, expected {s}");
            }
        Assert.Equal(42f, y[m * n]); Assert.Equal(43f, y[m * n + 1]); Assert.Equal(44f, y[m * n + 2]);
    }

    static readonly int[] Ms = [1, 2, 3, 5, 8, 9, 17, 64, 130];
    static readonly int[] Ks = [1, 7, 32, 100, 257, 800];
    static readonly int[] Ns = [1, 5, 31, 33, 64, 100, 769];

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void Linear_matches_naive_for_odd_shapes(int threads, bool inOut, bool bias)
    {
        KernelRef.With(threads, int.MaxValue, () =>
        {
            int seed = 1;
            foreach (int m in Ms) foreach (int k in Ks) foreach (int n in Ns) CheckLinear(m, k, n, inOut, bias, seed++);
        });
    }

    /// <summary>The Vector256 (6×16) and portable Vector128 (4×8) paths, forced on this machine.</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    public void Linear_fallback_paths_match_naive(int threads, int isa)
    {
        KernelRef.With(threads, isa, () =>
        {
            int seed = 7;
            foreach (int m in new[] { 1, 3, 5, 7, 13, 130 })
                foreach (int k in new[] { 1, 33, 257, 600 })
                    foreach (int n in new[] { 1, 17, 33, 100 })
                        CheckLinear(m, k, n, inOut: (m + n) % 2 == 0, withBias: (k + n) % 2 == 1, seed++);
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Linear_large_shapes_match_naive(int threads)
    {
        KernelRef.With(threads, int.MaxValue, () =>
        {
            CheckLinear(300, 520, 300, inOut: false, withBias: true, 11);
            CheckLinear(260, 300, 70, inOut: true, withBias: false, 12);
            CheckLinear(4, 1030, 200, inOut: false, withBias: true, 13);
            // A wide weight (≥ 8192 columns, an LM head) takes 256-row A blocks: 600 rows = two full blocks and a partial one.
            CheckLinear(600, 300, 8200, inOut: true, withBias: true, 14);
            // Columns in chunks of 1,024 (128-row blocks) finished over all K blocks one chunk at a time: 1,100 columns =
            // a full chunk and a partial one, 600 = three K blocks, 140 rows = a full row block and a partial one.
            CheckLinear(140, 600, 1100, inOut: false, withBias: true, 15);
        });
    }

    /// <summary>
    /// Decoding's few-row path with Vector512 reads each task's panels as four runs in lockstep, then the panels left
    /// over one by one: runs of 3 panels + 2 left (14 panels on one thread), of 1 + 3 (7 per thread on two), and 64
    /// panels with none left; three K blocks (the last one partial), 1 and 4 rows, f32 and bf16 weights.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Linear_few_rows_in_four_panel_streams_match_naive(int threads)
    {
        KernelRef.With(threads, int.MaxValue, () =>
        {
            int seed = 301;
            foreach (var precision in new[] { WeightPrecision.Float32, WeightPrecision.BFloat16 })
                foreach (int m in new[] { 1, 4 })
                    foreach (int n in new[] { 32 * 13 + 7, 32 * 64 })
                        CheckLinear(m, 600, n, inOut: n % 2 == 0, withBias: m == 1, seed++, precision);
        });
    }

    /// <summary>bf16 weights through every path (Vector512 8×32, Vector256 6×16, Vector128 4×8; blocked and skinny), odd shapes.</summary>
    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 2)]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    public void Linear_bf16_matches_fp32_on_rounded_weights(int threads, int isa)
    {
        KernelRef.With(threads, isa, () =>
        {
            int seed = 101;
            foreach (int m in new[] { 1, 2, 3, 4, 5, 9, 17, 130 })
                foreach (int k in new[] { 1, 7, 33, 257, 600 })
                    foreach (int n in new[] { 1, 17, 31, 33, 100 })
                        CheckLinear(m, k, n, inOut: (m + n) % 2 == 0, withBias: (k + n) % 2 == 1, seed++, WeightPrecision.BFloat16);
            CheckLinear(4, 1030, 769, inOut: false, withBias: true, seed++, WeightPrecision.BFloat16);
            CheckLinear(300, 520, 300, inOut: true, withBias: false, seed, WeightPrecision.BFloat16);
        });
    }

    /// <summary>Packing rounds to nearest even: seen through a product with x = 1 (K = 1), which returns the packed weights exactly.</summary>
    [Fact]
    public void BFloat16_packing_rounds_to_nearest_even()
    {
        float[] w = [.. KernelRef.Random(10_000, 5, -1e4f, 1e4f), 0f, -0f, 1f, float.Epsilon, float.MaxValue, -float.MaxValue,
                     float.PositiveInfinity, float.NegativeInfinity,
                     1f + 1f / 256, 1f + 3f / 256]; // halfway cases: to 1 and to 1 + 2^-6 (the even neighbours)
        var y = new float[w.Length];
        Gemm.Linear([1f], 1, PackedWeight.FromInOut(w, 1, w.Length, WeightPrecision.BFloat16), default, y);
        for (int j = 0; j < w.Length; j++) Assert.Equal(KernelRef.RoundToBFloat16(w[j]), y[j]);
        Assert.Equal([1f, 1f + 1f / 64], y[^2..]);
        Gemm.Linear([1f], 1, PackedWeight.FromInOut([float.NaN], 1, 1, WeightPrecision.BFloat16), default, y);
        Assert.True(float.IsNaN(y[0]));
    }

    /// <summary>A Float32 packed matrix gives back each row of nn.Linear's weight exactly (the tied-embedding lookup).</summary>
    [Fact]
    public void Float32_packed_columns_read_back_exactly()
    {
        const int n = 70, k = 600; // a partial panel and a partial last K block
        var w = KernelRef.Random(n * k, 6);
        var pw = PackedWeight.FromOutIn(w, n, k);
        var row = new float[k];
        for (int j = 0; j < n; j++)
        {
            pw.CopyColumn(j, row);
            Assert.Equal(w.AsSpan(j * k, k).ToArray(), row);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => pw.CopyColumn(n, row));
        Assert.Throws<InvalidOperationException>(() => PackedWeight.FromOutIn(w, n, k, WeightPrecision.BFloat16).CopyColumn(0, row));
    }

    /// <summary>Kernels called from several threads at once (the pool runs one job; the others run inline).</summary>
    [Fact]
    public void Linear_and_attention_are_safe_to_call_concurrently()
    {
        KernelRef.With(2, int.MaxValue, () =>
        {
            var x = KernelRef.Random(40 * 300, 31);
            var pw = PackedWeight.FromOutIn(KernelRef.Random(200 * 300, 32), 200, 300);
            var expected = new float[40 * 200];
            Gemm.Linear(x, 40, pw, default, expected);
            int hid = 4 * 32;
            var q = KernelRef.Random(20 * hid, 33);
            var ao = new float[20 * hid];
            Attention.Forward(q, hid, q, q, hid, 20, 20, 4, 32, 0.2f, true, 0, default, ao, hid, default);
            Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            {
                for (int r = 0; r < 20; r++)
                {
                    var y = new float[40 * 200];
                    Gemm.Linear(x, 40, pw, default, y);
                    Assert.Equal(expected, y);
                    var o = new float[20 * hid];
                    Attention.Forward(q, hid, q, q, hid, 20, 20, 4, 32, 0.2f, true, 0, default, o, hid, default);
                    Assert.Equal(ao, o);
                }
            });
        });
    }

    [Fact]
    public void Linear_with_zero_k_gives_bias()
    {
        var pw = PackedWeight.FromOutIn([], 3, 0);
        var y = new float[6];
        Gemm.Linear([], 2, pw, [1f, 2f, 3f], y);
        Assert.Equal([1f, 2f, 3f, 1f, 2f, 3f], y);
        Gemm.Linear([], 2, pw, default, y);
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    /// <summary>
    /// Linear with an activation gives what Linear then Activations.Apply gives: bit for bit when the rows are a whole
    /// number of 8-float vectors; otherwise a row's last few columns may take the scalar reference instead of the vector
    /// lanes (both within the activation's stated accuracy). Every path: fused tiles, skinny rows, unfused activations.
    /// </summary>
    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 2)]
    [InlineData(2, 1)]
    [InlineData(1, 0)]
    public void Linear_with_activation_matches_linear_then_activation(int threads, int isa)
    {
        KernelRef.With(threads, isa, () =>
        {
            int seed = 40;
            foreach (var act in new[] { Activation.GeluErf, Activation.GeluTanh, Activation.Silu, Activation.Relu, Activation.Tanh, Activation.Identity })
                foreach (var (m, k, n) in new[] { (1, 40, 48), (3, 300, 64), (5, 300, 100), (130, 520, 1100), (9, 33, 31), (140, 600, 1056) })
                {
                    var x = KernelRef.Random(m * k, seed++);
                    var w = KernelRef.Random(n * k, seed++);
                    var b = KernelRef.Random(n, seed++);
                    for (int i = 0; i < x.Length; i++) x[i] *= 4f; // pre-activations over roughly [−8, 8]
                    var pw = PackedWeight.FromOutIn(w, n, k);
                    var fused = new float[m * n];
                    var separate = new float[m * n];
                    Gemm.Linear(x, m, pw, b, fused, act);
                    Gemm.Linear(x, m, pw, b, separate);
                    var pre = (float[])separate.Clone();
                    Activations.Apply(act, separate);
                    for (int i = 0; i < fused.Length; i++)
                    {
                        bool exact = n % 8 == 0;
                        double tol = exact ? 0 : 1e-6 * Math.Max(Math.Abs(pre[i]), 1e-3);
                        if (!(Math.Abs(fused[i] - separate[i]) <= tol))
                            Assert.Fail($"{act} m={m} k={k} n={n} isa={isa} threads={threads}: [{i / n},{i % n}] fused {fused[i]:R}, separate {separate[i]:R}");
                    }
                }
        });
    }

    // ------------------------------------------------------------------ attention
    static void NaiveAttention(float[] q, int qStride, float[] k, float[] v, int kvStride, int tq, int tk, int heads, int d,
        float scale, bool causal, int qo, float[]? bias, double[] outp, int outStride, double[] probs)
    {
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < tq; i++)
            {
                int vis = causal ? Math.Clamp(qo + i + 1, 0, tk) : tk;
                var s = new double[tk];
                double max = double.NegativeInfinity;
                for (int j = 0; j < vis; j++)
                {
                    double dot = 0;
                    for (int e = 0; e < d; e++) dot += (double)q[i * qStride + h * d + e] * k[j * kvStride + h * d + e];
                    // float semantics for the mask: float.MinValue swallows the score, as in the kernel and in PyTorch.
                    float sf = (float)(dot * scale);
                    if (bias != null) sf += bias[j];
                    s[j] = sf;
                    max = Math.Max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < vis; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                for (int j = 0; j < tk; j++) s[j] = vis == 0 ? 1.0 / tk : j < vis ? s[j] / sum : 0;
                for (int e = 0; e < d; e++)
                {
                    double o = 0;
                    for (int j = 0; j < vis; j++) o += s[j] * v[j * kvStride + h * d + e];
                    outp[i * outStride + h * d + e] = o;
                }
                for (int j = 0; j < tk; j++) probs[(h * tq + i) * tk + j] = s[j];
            }
    }

    [Theory]
    [InlineData(1, 1, 1, 8, false, 0, false)]
    [InlineData(5, 5, 2, 16, false, 0, true)]
    [InlineData(16, 16, 3, 64, false, 0, true)]
    [InlineData(37, 37, 2, 64, true, 0, false)]
    [InlineData(37, 37, 2, 64, true, 0, true)]
    [InlineData(33, 70, 2, 40, false, 0, true)]
    [InlineData(1, 50, 4, 64, true, 49, false)]
    [InlineData(3, 50, 2, 64, true, 47, true)]
    [InlineData(20, 45, 2, 24, true, 25, true)]
    [InlineData(130, 130, 12, 64, false, 0, true)]
    [InlineData(7, 9, 1, 3, false, 0, true)]
    [InlineData(9, 9, 1, 5, true, 0, false)]
    public void Attention_matches_naive(int tq, int tk, int heads, int d, bool causal, int qo, bool masked)
    {
        foreach (int threads in new[] { 1, 2 })
            KernelRef.With(threads, int.MaxValue, () =>
            {
                int hid = heads * d, qStride = hid + 3, kvStride = hid + 5, outStride = hid + 1;
                var q = KernelRef.Random(tq * qStride, 1, -2, 2);
                var k = KernelRef.Random(tk * kvStride, 2, -2, 2);
                var v = KernelRef.Random(tk * kvStride, 3);
                float[]? bias = null;
                if (masked)
                {
                    bias = new float[tk];
                    for (int j = 0; j < tk; j++) bias[j] = j % 3 == 1 || j == tk - 1 ? Attention.Masked : 0f;
                }
                float scale = 1f / MathF.Sqrt(d);
                var output = new float[tq * outStride];
                var probs = new float[heads * tq * tk];
                Attention.Forward(q, qStride, k, v, kvStride, tq, tk, heads, d, scale, causal, qo, bias, output, outStride, probs);
                var eo = new double[tq * outStride];
                var ep = new double[heads * tq * tk];
                NaiveAttention(q, qStride, k, v, kvStride, tq, tk, heads, d, scale, causal, qo, bias, eo, outStride, ep);
                for (int i = 0; i < tq; i++)
                    for (int c = 0; c < hid; c++)
                        Assert.True(Math.Abs(output[i * outStride + c] - eo[i * outStride + c]) < 2e-6,
                            $"out[{i},{c}] {output[i * outStride + c]} vs {eo[i * outStride + c]} (threads {threads})");
                for (int i = 0; i < ep.Length; i++)
                {
                    Assert.True(Math.Abs(probs[i] - ep[i]) < 1e-6, $"probs[{i}] {probs[i]} vs {ep[i]}");
                    if (ep[i] == 0) Assert.Equal(0f, probs[i]); // causally hidden / masked keys get exactly zero
                }
                // Without probs the output is identical.
                var output2 = new float[tq * outStride];
                Attention.Forward(q, qStride, k, v, kvStride, tq, tk, heads, d, scale, causal, qo, bias, output2, outStride, default);
                for (int i = 0; i < tq; i++)
                    for (int c = 0; c < hid; c++) Assert.Equal(output[i * outStride + c], output2[i * outStride + c]);
            });
    }

    [Fact]
    public void Attention_all_masked_row_is_uniform()
    {
        int tq = 6, tk = 6, d = 8;
        var q = KernelRef.Random(tq * d, 4); var k = KernelRef.Random(tk * d, 5); var v = KernelRef.Random(tk * d, 6);
        var bias = Enumerable.Repeat(Attention.Masked, tk).ToArray();
        var o = new float[tq * d]; var p = new float[tq * tk];
        Attention.Forward(q, d, k, v, d, tq, tk, 1, d, 0.3f, false, 0, bias, o, d, p);
        Assert.All(p, x => Assert.Equal(1f / tk, x, 1e-6f));
        for (int e = 0; e < d; e++)
        {
            double mean = 0;
            for (int j = 0; j < tk; j++) mean += v[j * d + e] / (double)tk;
            Assert.Equal(mean, o[e], 1e-6);
        }
        // Causal + all masked: uniform over the visible keys only.
        Attention.Forward(q, d, k, v, d, tq, tk, 1, d, 0.3f, true, 0, bias, o, d, p);
        for (int i = 0; i < tq; i++)
            for (int j = 0; j < tk; j++) Assert.Equal(j <= i ? 1f / (i + 1) : 0f, p[i * tk + j], 1e-6f);
    }

    [Fact]
    public void Softmax_matches_double_reference()
    {
        foreach (int n in new[] { 1, 3, 8, 17, 100, 1000, 50257 })
        {
            var x = KernelRef.Random(n, n, -30, 30);
            if (n > 3) x[2] = float.NegativeInfinity;
            var y = (float[])x.Clone();
            Softmax.InPlace(y);
            // x − max is rounded to float (as in every float softmax); the exp and the sum are the reference's.
            float max = x.Max();
            double sum = x.Sum(v => Math.Exp(v - max));
            for (int i = 0; i < n; i++)
            {
                double e = Math.Exp(x[i] - max) / sum;
                Assert.True(Math.Abs(y[i] - e) <= 1e-6 * e + 1e-30, $"n={n} [{i}] {y[i]} vs {e}");
            }
            var l = new float[n];
            Softmax.Log(x, l);
            double lse = max + Math.Log(sum);
            for (int i = 0; i < n; i++)
                if (!float.IsNegativeInfinity(x[i])) Assert.Equal(x[i] - lse, l[i], 2e-5);
        }
        var inf = new[] { float.NegativeInfinity, float.NegativeInfinity };
        Softmax.InPlace(inf);
        Assert.Equal([0.5f, 0.5f], inf);
    }

    // ------------------------------------------------------------------ layer norm
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(4, 33)]
    [InlineData(5, 384)]
    [InlineData(2, 768)]
    [InlineData(2, 1000)]
    public void LayerNorm_matches_double_reference(int rows, int n)
    {
        var x = KernelRef.Random(rows * n, 21, -3, 5);
        for (int i = 0; i < x.Length; i++) x[i] += 100f; // a large offset: naive one-pass variance would fail
        var g = KernelRef.Random(n, 22, 0.5f, 1.5f); var b = KernelRef.Random(n, 23);
        var y = new float[rows * n];
        LayerNorm.Forward(x, g, b, 1e-12f, y);
        var inPlace = (float[])x.Clone();
        LayerNorm.Forward(inPlace, g, b, 1e-12f, inPlace);
        Assert.Equal(y, inPlace);
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, sq = 0;
            for (int i = 0; i < n; i++) mean += x[r * n + i];
            mean /= n;
            for (int i = 0; i < n; i++) sq += (x[r * n + i] - mean) * (x[r * n + i] - mean);
            double rstd = 1 / Math.Sqrt(sq / n + 1e-12);
            for (int i = 0; i < n; i++)
            {
                double e = (x[r * n + i] - mean) * rstd * g[i] + b[i];
                Assert.True(Math.Abs(y[r * n + i] - e) < 2e-6 * (1 + Math.Abs(e)), $"[{r},{i}] {y[r * n + i]} vs {e}");
            }
        }
    }

    /// <summary>x += delta then LayerNorm, in one pass: the same bits as the two steps, for every aliasing the models use.</summary>
    [Theory]
    [InlineData(1, 7)]
    [InlineData(3, 33)]
    [InlineData(130, 768)]
    public void LayerNorm_after_residual_add_equals_add_then_layernorm(int rows, int n)
    {
        var x = KernelRef.Random(rows * n, 31, -3, 5);
        var delta = KernelRef.Random(rows * n, 32, -2, 2);
        var g = KernelRef.Random(n, 33, 0.5f, 1.5f); var b = KernelRef.Random(n, 34);
        var sum = new float[rows * n];
        System.Numerics.Tensors.TensorPrimitives.Add(x, delta, sum);
        var expected = new float[rows * n];
        LayerNorm.Forward(sum, g, b, 1e-5f, expected);

        var x1 = (float[])x.Clone(); var y1 = new float[rows * n];
        LayerNorm.AddAndNormalise(x1, delta, g, b, 1e-5f, y1);          // separate output
        Assert.Equal(sum, x1); Assert.Equal(expected, y1);
        var x2 = (float[])x.Clone();
        LayerNorm.AddAndNormalise(x2, delta, g, b, 1e-5f, x2);          // in place (BERT's post-LN)
        Assert.Equal(expected, x2);
        var x3 = (float[])x.Clone(); var d3 = (float[])delta.Clone();
        LayerNorm.AddAndNormalise(x3, d3, g, b, 1e-5f, d3);             // output over the residual branch (GPT-2's pre-LN)
        Assert.Equal(sum, x3); Assert.Equal(expected, d3);
        Assert.Throws<ArgumentException>(() => LayerNorm.AddAndNormalise(new float[n], new float[2 * n], g, b, 1e-5f, new float[n]));
    }

    // ------------------------------------------------------------------ erf / GELU
    /// <summary>math.erf from Python 3.</summary>
    public static TheoryData<double, double> ErfTable => new()
    {
        { -6.0, -1.0 },
        { -4.5, -0.9999999998033839 },
        { -3.2, -0.9999939742388483 },
        { -2.5, -0.999593047982555 },
        { -1.7, -0.9837904585907745 },
        { -1.0, -0.8427007929497149 },
        { -0.7, -0.6778011938374184 },
        { -0.49, -0.511668261188523 },
        { -0.3, -0.3286267594591274 },
        { -0.1, -0.1124629160182849 },
        { -0.001, -0.0011283787909692365 },
        { 0.0, 0.0 },
        { 1e-05, 1.1283791670579e-05 },
        { 0.05, 0.05637197779701663 },
        { 0.25, 0.2763263901682369 },
        { 0.4999, 0.5204119951613866 },
        { 0.5, 0.5204998778130465 },
        { 0.6, 0.6038560908479259 },
        { 0.9, 0.7969082124228322 },
        { 1.3, 0.9340079449406524 },
        { 2.0, 0.9953222650189527 },
        { 2.7, 0.9998656672600594 },
        { 3.5, 0.9999992569016276 },
        { 3.99, 0.9999999832607886 },
        { 4.0, 0.9999999845827421 },
        { 4.5, 0.9999999998033839 },
        { 5.5, 0.9999999999999927 },
        { 7.0, 1.0 },
    };

    [Theory]
    [MemberData(nameof(ErfTable))]
    public void Erf_matches_python(double x, double expected)
    {
        // Cody's approximations as coded here reach ~1e-13 (1e-10 relative in erfc's far tail): far beyond float needs.
        Assert.Equal(expected, MathF2.Erf(x), 1e-12);
        var v4 = MathF2.Erf(System.Runtime.Intrinsics.Vector256.Create(x));
        Assert.Equal(MathF2.Erf(x), v4[0], 1e-15);
        var v8 = MathF2.Erf(System.Runtime.Intrinsics.Vector512.Create(x));
        Assert.Equal(MathF2.Erf(x), v8[0], 1e-15);
    }

    [Theory]
    [InlineData(0.5, 0.4795001221869535)]
    [InlineData(1.0, 0.15729920705028513)]
    [InlineData(2.0, 0.004677734981047265)]
    [InlineData(3.0, 2.2090496998585438e-05)]
    [InlineData(4.0, 1.541725790028002e-08)]
    [InlineData(5.0, 1.5374597944280351e-12)]
    public void Erfc_matches_python_relatively(double x, double expected)
    {
        Assert.True(Math.Abs(MathF2.Erfc(x) - expected) <= 1e-9 * expected, $"erfc({x}) = {MathF2.Erfc(x)}");
        Assert.Equal(2 - expected, MathF2.Erfc(-x), 1e-12);
    }

    /// <summary>Python: 0.5·x·erfc(−x/√2) and x/(1+exp(−2u)), u = √(2/π)(x + 0.044715x³), for float32 inputs.</summary>
    static readonly (float X, double Erf, double Tanh)[] GeluTable =
    [
        (-9.0f, -1.015729565358458e-18, -1.336459594734881e-28),
        (-7.5f, -2.3931687546831897e-13, -4.016268217514138e-18),
        (-5.0f, -1.4332578593959731e-06, -2.2917961966295044e-07),
        (-3.299999952316284f, -0.0015952999178720317, -0.001311228344819856),
        (-2.0f, -0.04550026389635844, -0.045402305912224966),
        (-1.0f, -0.15865525393145707, -0.15880800939172326),
        (-0.6000000238418579f, -0.16455187242193167, -0.16458480254560537),
        (-0.10000000149011612f, -0.04601721689885652, -0.04601724958112619),
        (-9.999999747378752e-05f, -4.999600931429796e-05, -4.999600931429799e-05),
        (0.0f, 0.0, 0.0),
        (9.999999747378752e-05f, 5.000398815948956e-05, 5.0003988159489526e-05),
        (0.10000000149011612f, 0.0539827845912596, 0.05398275190898993),
        (0.6000000238418579f, 0.43544815141992627, 0.43541522129625254),
        (1.0f, 0.8413447460685429, 0.8411919906082768),
        (2.0f, 1.9544997361036416, 1.9545976940877752),
        (3.299999952316284f, 3.298404652398412, 3.2986887239714644),
        (5.0f, 4.99999856674214, 4.999999770820381),
        (7.5f, 7.499999999999761, 7.5),
        (9.0f, 9.0, 9.0),
    ];

    [Fact]
    public void Gelu_matches_python_to_float_precision()
    {
        // Each value repeated so it lands in the 512-bit, 256-bit and scalar parts of the loop.
        foreach (var (act, pick) in new (Activation, Func<(float X, double Erf, double Tanh), double>)[]
                 { (Activation.GeluErf, t => t.Erf), (Activation.GeluTanh, t => t.Tanh), (Activation.GeluFast, t => t.Tanh) })
            foreach (var t in GeluTable)
            {
                var x = Enumerable.Repeat(t.X, 16 + 8 + 3).ToArray();
                Activations.Apply(act, x);
                double e = pick(t);
                foreach (var y in x)
                    Assert.True(act == Activation.GeluErf ? GeluErfWithinBound(t.X, y, e) : Math.Abs(y - e) <= 1.5e-7 * Math.Abs(e) + 1e-38,
                        $"{act}({t.X}) = {y}, expected {e}");
            }
    }

    /// <summary>
    /// The gated MLP's activation (rows of gate | up, rows spread over the threads) gives exactly what the activation on
    /// each gate row then a product with its up row gives: bit for bit, the vectorised and the plain activations.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Gated_activation_equals_activation_then_product(int threads)
    {
        KernelRef.With(threads, int.MaxValue, () =>
        {
            foreach (var act in new[] { Activation.Silu, Activation.GeluTanh, Activation.Relu })
                foreach (var (rows, n) in new[] { (1, 4864), (37, 100), (5, 13) })
                {
                    var gu = KernelRef.Random(2 * rows * n, rows + n, -8, 8);
                    var expected = new float[rows * n];
                    var gates = (float[])gu.Clone();
                    for (int r = 0; r < rows; r++)
                    {
                        var gate = gates.AsSpan(2 * r * n, n);
                        Activations.Apply(act, gate);
                        System.Numerics.Tensors.TensorPrimitives.Multiply(gate, gates.AsSpan(2 * r * n + n, n), expected.AsSpan(r * n, n));
                    }
                    var h = new float[rows * n + 1];
                    h[^1] = 42f;   // sentinel: nothing past rows × n may be written
                    Activations.ApplyGated(act, gu, rows, n, h);
                    Assert.Equal(expected, h[..^1]);
                    Assert.Equal(gates, gu);
                    Assert.Equal(42f, h[^1]);
                }
        });
    }

    [Fact]
    public void Vectorised_activations_match_scalar_reference()
    {
        var x = KernelRef.Random(1000 + 13, 5, -12, 12);
        foreach (var act in new[] { Activation.GeluTanh, Activation.GeluFast, Activation.QuickGelu, Activation.Silu, Activation.Sigmoid })
        {
            var y = (float[])x.Clone();
            Activations.Apply(act, y);
            for (int i = 0; i < x.Length; i++)
            {
                double e = Activations.Scalar(act, x[i]);
                Assert.True(Math.Abs(y[i] - e) <= 1.5e-7 * Math.Abs(e) + 1e-38, $"{act}({x[i]}) = {y[i]}, expected {e}");
            }
        }
        // Large spans are split over the kernel threads.
        foreach (int threads in new[] { 1, 2 })
            KernelRef.With(threads, int.MaxValue, () =>
            {
                var big = KernelRef.Random(100_003, 9, -8, 8);
                var yb = (float[])big.Clone();
                Activations.Apply(Activation.GeluErf, yb);
                for (int i = 0; i < big.Length; i++)
                {
                    double e = Activations.Scalar(Activation.GeluErf, big[i]);
                    Assert.True(GeluErfWithinBound(big[i], yb[i], e), $"GeluErf({big[i]}) = {yb[i]}, expected {e}");
                }
            });
        var r = (float[])x.Clone();
        Activations.Apply(Activation.Relu, r);
        for (int i = 0; i < x.Length; i++) Assert.Equal(Math.Max(x[i], 0f), r[i]);
    }

    /// <summary>
    /// The float-lane exact GELU's stated bound against the double reference: within 6 float ulps for x ≥ −4 (measured
    /// max 4.94 over every 13th float in [−10, 10]), and within 1e-7·|x| absolute below, where the result is under
    /// 1.3e-4 and vanishes like e^(−x²/2) (measured ≤ 1e-11·|x|). NaN and ±∞ as the reference (GELU(−∞) is NaN there too).
    /// </summary>
    static bool GeluErfWithinBound(float x, float y, double e)
    {
        if (double.IsNaN(e) || double.IsInfinity(e)) return y.Equals((float)e);
        double err = Math.Abs(y - e);
        if (x < -4) return err <= 1e-7 * Math.Abs(x);
        float ef = (float)Math.Abs(e);
        return err <= 6.0 * (MathF.BitIncrement(ef) - ef);
    }

    [Fact]
    public void GeluErf_float_lanes_within_stated_bound_of_double_reference()
    {
        // Dense sweep of [−10, 10] (step 2^-14, plus every float bit pattern near 0, −0.5·√2, √2 and −4), laid out so that
        // the 512-bit, 256-bit and scalar parts of the loop all see it.
        var xs = new List<float>();
        for (int k = -10 * 16384; k <= 10 * 16384; k++) xs.Add(k / 16384f);
        foreach (float c in new[] { 0f, -0.70710677f, 1.4142135f, -4f, 1e-30f, -1e-30f })
        {
            int b = BitConverter.SingleToInt32Bits(c);
            for (int d = -2000; d <= 2000; d++) xs.Add(BitConverter.Int32BitsToSingle(b + d));
        }
        xs.AddRange(new[] { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e30f, -1e30f, float.MaxValue,
            -float.MaxValue, float.Epsilon, -float.Epsilon, 13.9f, -13.9f, 14f, -14f, 20f, -20f, 1e6f, -1e6f });
        foreach (int tail in new[] { 0, 8, 8 + 3 })
        {
            var x = xs.Concat(Enumerable.Repeat(0.5f, tail)).ToArray();
            if ((x.Length - tail) % 16 != 0) x = Enumerable.Repeat(0.25f, 16 - (x.Length - tail) % 16).Concat(x).ToArray();
            var y = (float[])x.Clone();
            Activations.Apply(Activation.GeluErf, y);
            for (int i = 0; i < x.Length; i++)
            {
                double e = Activations.Scalar(Activation.GeluErf, x[i]);
                if (!GeluErfWithinBound(x[i], y[i], e)) Assert.Fail($"GeluErf({x[i]:R}) = {y[i]:R}, expected {e:R}");
            }
        }
        // Signs of zero and the infinities, exactly.
        var s = new[] { -0f, 0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -1e30f };
        var z = Enumerable.Range(0, 16).Select(i => s[i % s.Length]).ToArray();
        Activations.Apply(Activation.GeluErf, z);
        for (int i = 0; i < z.Length; i++)
        {
            float e = (float)Activations.Scalar(Activation.GeluErf, s[i % s.Length]);
            if (float.IsNaN(e)) Assert.True(float.IsNaN(z[i]), $"GeluErf({s[i % s.Length]}) = {z[i]}, expected NaN");
            else Assert.Equal(BitConverter.SingleToInt32Bits(e), BitConverter.SingleToInt32Bits(z[i]));
        }
    }
}
