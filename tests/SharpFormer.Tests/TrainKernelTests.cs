using SharpFormer.Kernels;
using SharpFormer.Training;

namespace SharpFormer.Tests;

/// <summary>The training kernels of <see cref="TrainOps"/> against straightforward double-precision references.</summary>
[Collection("Threading")]
public class TrainKernelTests
{
    public static IEnumerable<object[]> AttentionCases()
    {
        foreach (var (t, d) in new[] { (13, 64), (37, 32), (16, 64) })
            foreach (bool causal in new[] { false, true })
                foreach (bool padding in new[] { false, true })
                    foreach (bool dropout in new[] { false, true })
                        yield return [t, d, causal, padding, dropout];
    }

    /// <summary>
    /// Forward (probabilities, ctx with dropout) and backward (dQ, dK, dV accumulated onto nonzero starting values)
    /// against the definitions, with q, k, v interleaved in one array as GPT-2's c_attn output lays them out.
    /// </summary>
    [Theory]
    [MemberData(nameof(AttentionCases))]
    public void Attention_forward_and_backward_match_reference(int t, int d, bool causal, bool padding, bool dropout)
    {
        const int B = 2, Heads = 3;
        int width = Heads * d, rows = B * t, stride = 3 * width;
        float scale = 1f / MathF.Sqrt(d);
        var qkv = KernelRef.Random(rows * stride, 1, -2f, 2f);
        var dctx = KernelRef.Random(rows * width, 2);
        float[]? keyBias = null;
        if (padding)
        {
            keyBias = new float[rows];
            for (int j = t - 4; j < t; j++) keyBias[t + j] = Attention.Masked; // the second sequence ends in 4 pads
        }
        float[]? mask = null;
        if (dropout)
        {
            var r = new Random(3);
            mask = new float[B * Heads * t * t];
            for (int i = 0; i < mask.Length; i++) mask[i] = r.NextDouble() < 0.3 ? 0f : 1f / 0.7f;
        }
        var (refP, refCtx, refDq, refDk, refDv) = ReferenceAttention(qkv, stride, width, dctx, B, t, Heads, d, scale, causal, keyBias, mask);

        float[]? first = null;
        foreach (int threads in new[] { 1, 2 })
            KernelRef.With(threads, int.MaxValue, () =>
            {
                var probs = new float[B * Heads * t * t];
                var ctx = new float[rows * width];
                TrainOps.AttentionForward(new(qkv, 0, stride), new(qkv, width, stride), new(qkv, 2 * width, stride), B, t, Heads, d, scale, causal,
                    keyBias, probs, mask, ctx);
                Close(refP, probs, 1e-6, 1e-5, "P");
                Close(refCtx, ctx, 1e-5, 1e-4, "ctx");
                // Gradients accumulate into what is already there: start from 1 (dQ, dK, dV interleaved like qkv).
                var grad = Enumerable.Repeat(1f, rows * stride).ToArray();
                TrainOps.AttentionBackward(dctx, new(qkv, 0, stride), new(qkv, width, stride), new(qkv, 2 * width, stride),
                    new(grad, 0, stride), new(grad, width, stride), new(grad, 2 * width, stride), B, t, Heads, d, scale, probs, mask);
                Close(refDq, Column(grad, rows, stride, 0, width), 1e-5, 1e-4, "dQ");
                Close(refDk, Column(grad, rows, stride, width, width), 1e-5, 1e-4, "dK");
                Close(refDv, Column(grad, rows, stride, 2 * width, width), 1e-5, 1e-4, "dV");
                if (padding)
                    for (int j = t - 4; j < t; j++)
                        for (int c = width; c < stride; c++) Assert.Equal(1f, grad[(t + j) * stride + c]); // padded keys: no dK, dV at all
                if (first is null) first = grad;
                else Assert.Equal(first, grad); // bit-identical at any thread count
            });
    }

    [Theory]
    [InlineData(13, 37, 29)]
    [InlineData(70, 130, 9)]
    [InlineData(64, 128, 32)]
    [InlineData(1, 5, 3)]
    public void MatMulAtB_matches_reference(int m, int k, int n)
    {
        var a = KernelRef.Random(k * m, 11);
        var b = KernelRef.Random(k * n, 12);
        var start = KernelRef.Random(m * n, 13);
        foreach (int threads in new[] { 1, 2 })
            foreach (bool accumulate in new[] { false, true })
                KernelRef.With(threads, int.MaxValue, () =>
                {
                    var c = (float[])start.Clone();
                    TrainOps.MatMulAtB(a, b, c, m, k, n, accumulate);
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                        {
                            double e = accumulate ? start[i * n + j] : 0;
                            for (int r = 0; r < k; r++) e += (double)a[r * m + i] * b[r * n + j];
                            Assert.True(Math.Abs(c[i * n + j] - e) <= 1e-5 + 1e-5 * Math.Abs(e), $"C[{i}, {j}] = {c[i * n + j]}, expected {e}");
                        }
                });
    }

    [Theory]
    [InlineData(5, 37)]
    [InlineData(4, 1003)]
    public void CrossEntropy_matches_reference(int rows, int classes)
    {
        var logits = KernelRef.Random(rows * classes, 21, -30, 30);
        var targets = Enumerable.Range(0, rows).Select(r => r == 1 ? -100 : (r * 7919) % classes).ToArray();
        var dlogits = Enumerable.Repeat(9f, rows * classes).ToArray();
        const float Scale = 0.25f;
        var (sum, count) = TrainOps.CrossEntropy(logits, rows, classes, targets, dlogits, Scale);
        Assert.Equal(rows - 1, count);
        double expSum = 0;
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] < 0)
            {
                for (int c = 0; c < classes; c++) Assert.Equal(0f, dlogits[r * classes + c]);
                continue;
            }
            double max = logits.Skip(r * classes).Take(classes).Max(), z = 0;
            for (int c = 0; c < classes; c++) z += Math.Exp(logits[r * classes + c] - max);
            double lse = max + Math.Log(z);
            expSum += lse - logits[r * classes + targets[r]];
            for (int c = 0; c < classes; c++)
            {
                double e = Scale * (Math.Exp(logits[r * classes + c] - lse) - (c == targets[r] ? 1 : 0));
                Assert.True(Math.Abs(dlogits[r * classes + c] - e) <= 1e-12 + 2e-7 * Math.Abs(e), $"dlogits[{r}, {c}] = {dlogits[r * classes + c]}, expected {e}");
            }
        }
        Assert.True(Math.Abs(sum - expSum) <= 1e-12 * Math.Abs(expSum), $"loss sum {sum}, expected {expSum}");
    }

    [Theory]
    [InlineData(7, 37)]
    [InlineData(300, 192)]
    public void LayerNorm_forward_and_backward_match_reference(int rows, int n)
    {
        var x = KernelRef.Random(rows * n, 31, -3, 5);
        var gamma = KernelRef.Random(n, 32, 0.5f, 1.5f);
        var beta = KernelRef.Random(n, 33);
        var dy = KernelRef.Random(rows * n, 34);
        const float Eps = 1e-5f;
        // Reference: per row in double; dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
        var refY = new double[rows * n]; var refDx = new double[rows * n];
        var refDg = Enumerable.Repeat(1.0, n).ToArray(); var refDb = Enumerable.Repeat(1.0, n).ToArray();
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Skip(r * n).Take(n).Select(v => (double)v).ToArray();
            double mu = xr.Average(), rs = 1 / Math.Sqrt(xr.Select(v => (v - mu) * (v - mu)).Average() + Eps);
            var xh = xr.Select(v => (v - mu) * rs).ToArray();
            var dxh = Enumerable.Range(0, n).Select(i => (double)dy[r * n + i] * gamma[i]).ToArray();
            double mD = dxh.Average(), mDX = Enumerable.Range(0, n).Select(i => dxh[i] * xh[i]).Average();
            for (int i = 0; i < n; i++)
            {
                refY[r * n + i] = xh[i] * gamma[i] + beta[i];
                refDx[r * n + i] = rs * (dxh[i] - mD - xh[i] * mDX);
                refDg[i] += dy[r * n + i] * xh[i];
                refDb[i] += dy[r * n + i];
            }
        }
        float[]? first = null;
        foreach (int threads in new[] { 1, 2 })
            KernelRef.With(threads, int.MaxValue, () =>
            {
                var y = new float[rows * n]; var mean = new float[rows]; var rstd = new float[rows];
                TrainOps.LayerNormForward(x, rows, gamma, beta, Eps, y, mean, rstd);
                Close(refY, y, 1e-5, 1e-5, "y");
                var dg = Enumerable.Repeat(1f, n).ToArray(); var db = Enumerable.Repeat(1f, n).ToArray();
                var dx = (float[])dy.Clone();
                TrainOps.LayerNormBackward(dx, x, mean, rstd, rows, gamma, dx, dg, db, accumulate: false); // in place
                Close(refDx, dx, 1e-5, 1e-4, "dx");
                Close(refDg, dg, 1e-4, 1e-5, "dγ");
                Close(refDb, db, 1e-4, 1e-5, "dβ");
                var dxAcc = Enumerable.Repeat(2f, rows * n).ToArray();
                TrainOps.LayerNormBackward(dy, x, mean, rstd, rows, gamma, dxAcc, dg, db, accumulate: true);
                Close(refDx.Select(v => v + 2).ToArray(), dxAcc, 1e-5, 1e-4, "dx accumulated");
                var all = y.Concat(dx).Concat(dg).Concat(dxAcc).ToArray();
                if (first is null) first = all;
                else Assert.Equal(first, all);
            });
    }

    static readonly Activation[] Vectorised = [Activation.GeluErf, Activation.GeluTanh, Activation.GeluFast, Activation.QuickGelu, Activation.Silu, Activation.Sigmoid];

    [Fact]
    public void Scalar_derivatives_are_the_derivatives_of_the_activations()
    {
        // Central differences of the double reference: error ~h² + ε/h ≈ 1e-10.
        const double H = 1e-5;
        foreach (var act in Vectorised)
            for (double x = -12; x <= 12; x += 0.0937)
            {
                double fd = (Activations.Scalar(act, x + H) - Activations.Scalar(act, x - H)) / (2 * H);
                Assert.True(Math.Abs(Activations.ScalarDerivative(act, x) - fd) <= 1e-8, $"{act}'({x}) = {Activations.ScalarDerivative(act, x)}, finite difference {fd}");
            }
    }

    /// <summary>The vector lanes (512, 256 and scalar tail; split over threads for large spans, in place) against the scalar reference.</summary>
    [Fact]
    public void Activation_backward_matches_scalar_reference()
    {
        foreach (int n in new[] { 1000 + 13, 100_003 })
            foreach (int threads in new[] { 1, 2 })
                KernelRef.With(threads, int.MaxValue, () =>
                {
                    var x = KernelRef.Random(n, 5, -12, 12);
                    var dy = KernelRef.Random(n, 6, -3, 3);
                    foreach (var act in Vectorised)
                    {
                        var dx = (float[])dy.Clone();
                        TrainOps.ActivationBackward(act, x, dx, dx, n);
                        for (int i = 0; i < n; i++)
                        {
                            double e = dy[i] * Activations.ScalarDerivative(act, x[i]);
                            Assert.True(Math.Abs(dx[i] - e) <= 1.5e-7 * Math.Abs(e) + 1e-38, $"{act}'({x[i]})·{dy[i]} = {dx[i]}, expected {e}");
                        }
                    }
                    var relu = new float[n];
                    TrainOps.ActivationBackward(Activation.Relu, x, dy, relu, n);
                    for (int i = 0; i < n; i++) Assert.Equal(x[i] > 0 ? dy[i] : 0f, relu[i]);
                });
    }

    static float[] Column(float[] a, int rows, int stride, int offset, int width)
    {
        var r = new float[rows * width];
        for (int i = 0; i < rows; i++) Array.Copy(a, i * stride + offset, r, i * width, width);
        return r;
    }

    static void Close(double[] expected, float[] actual, double abs, double rel, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= abs + rel * Math.Abs(expected[i]), $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
    }

    /// <summary>The definitions, in double, one (sequence, head) and one element at a time. dQ, dK, dV include the starting 1.</summary>
    static (double[] P, double[] Ctx, double[] Dq, double[] Dk, double[] Dv) ReferenceAttention(float[] qkv, int stride, int width, float[] dctx,
        int b, int t, int heads, int d, float scale, bool causal, float[]? keyBias, float[]? mask)
    {
        int rows = b * t;
        var P = new double[b * heads * t * t];
        var ctx = new double[rows * width];
        var dq = Enumerable.Repeat(1.0, rows * width).ToArray();
        var dk = (double[])dq.Clone(); var dv = (double[])dq.Clone();
        double Q(int r, int c) => qkv[r * stride + c];
        double K(int r, int c) => qkv[r * stride + width + c];
        double V(int r, int c) => qkv[r * stride + 2 * width + c];
        for (int i = 0; i < b; i++)
            for (int h = 0; h < heads; h++)
            {
                int hc = h * d, pb = (i * heads + h) * t * t;
                double M(int qi, int kj) => mask is null ? 1 : mask[pb + qi * t + kj];
                for (int qi = 0; qi < t; qi++)
                {
                    var s = new double[t];
                    double max = double.NegativeInfinity;
                    for (int kj = 0; kj < t; kj++)
                    {
                        bool masked = causal && kj > qi || keyBias is not null && keyBias[i * t + kj] != 0;
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += Q(i * t + qi, hc + c) * K(i * t + kj, hc + c);
                        s[kj] = masked ? double.NegativeInfinity : dot * scale;
                        max = Math.Max(max, s[kj]);
                    }
                    double sum = 0;
                    for (int kj = 0; kj < t; kj++) sum += s[kj] = Math.Exp(s[kj] - max);
                    for (int kj = 0; kj < t; kj++) P[pb + qi * t + kj] = s[kj] / sum;
                    for (int c = 0; c < d; c++)
                    {
                        double o = 0;
                        for (int kj = 0; kj < t; kj++) o += P[pb + qi * t + kj] * M(qi, kj) * V(i * t + kj, hc + c);
                        ctx[(i * t + qi) * width + hc + c] = o;
                    }
                }
                for (int qi = 0; qi < t; qi++)
                {
                    var dP = new double[t];
                    double rowSum = 0;
                    for (int kj = 0; kj < t; kj++)
                    {
                        double g = 0;
                        for (int c = 0; c < d; c++) g += dctx[(i * t + qi) * width + hc + c] * V(i * t + kj, hc + c);
                        dP[kj] = g * M(qi, kj);
                        rowSum += P[pb + qi * t + kj] * dP[kj];
                    }
                    for (int kj = 0; kj < t; kj++)
                    {
                        double p = P[pb + qi * t + kj], ds = p * (dP[kj] - rowSum) * scale;
                        for (int c = 0; c < d; c++)
                        {
                            dv[(i * t + kj) * width + hc + c] += p * M(qi, kj) * dctx[(i * t + qi) * width + hc + c];
                            dq[(i * t + qi) * width + hc + c] += ds * K(i * t + kj, hc + c);
                            dk[(i * t + kj) * width + hc + c] += ds * Q(i * t + qi, hc + c);
                        }
                    }
                }
            }
        return (P, ctx, dq, dk, dv);
    }
}
