using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Kernels;

/// <summary>
/// A weight matrix W (N outputs × K inputs) packed once at load into column panels of <see cref="PanelWidth"/>:
/// panel p holds W[p*32 .. p*32+31, 0..K-1] transposed, K rows of 32 contiguous floats, zero-padded past N.
/// The micro-kernel then streams one panel per output block with unit stride.
/// </summary>
public sealed class PackedWeight
{
    public const int PanelWidth = 32;
    public int K { get; }
    public int N { get; }
    internal float[] Panels { get; }
    internal int PanelCount => (N + PanelWidth - 1) / PanelWidth;

    PackedWeight(int k, int n)
    {
        K = k; N = n;
        Panels = new float[(long)PanelCount * PanelWidth * k];
    }

    /// <summary>From nn.Linear's layout: weight[n, k].</summary>
    public static PackedWeight FromOutIn(ReadOnlySpan<float> w, int n, int k)
    {
        var p = new PackedWeight(k, n);
        for (int j = 0; j < n; j++)
        {
            int panel = j / PanelWidth, col = j % PanelWidth;
            var row = w.Slice(j * k, k);
            long baseIdx = (long)panel * PanelWidth * k + col;
            for (int kk = 0; kk < k; kk++) p.Panels[baseIdx + (long)kk * PanelWidth] = row[kk];
        }
        return p;
    }

    /// <summary>From GPT-2's Conv1D layout: weight[k, n].</summary>
    public static PackedWeight FromInOut(ReadOnlySpan<float> w, int k, int n)
    {
        var p = new PackedWeight(k, n);
        for (int kk = 0; kk < k; kk++)
            for (int j = 0; j < n; j++)
                p.Panels[(long)(j / PanelWidth) * PanelWidth * k + (long)kk * PanelWidth + j % PanelWidth] = w[kk * n + j];
        return p;
    }
}

public static class Gemm
{
    const int RowBlock = 4;

    /// <summary>y[m, n] = Σ_k x[m, k]·W[n, k] + bias[n] for m rows (bias may be empty).</summary>
    public static void Linear(ReadOnlySpan<float> x, int m, PackedWeight w, ReadOnlySpan<float> bias, Span<float> y)
    {
        if (x.Length < (long)m * w.K || y.Length < (long)m * w.N) throw new ArgumentException("Gemm.Linear: buffer too small");
        unsafe
        {
            fixed (float* px = x, py = y, pb = bias, pw = w.Panels)
            {
                nint xs = (nint)px, ys = (nint)py, bs = bias.IsEmpty ? 0 : (nint)pb, ws = (nint)pw;
                int panels = w.PanelCount;
                int rowBlocks = (m + RowBlock - 1) / RowBlock;
                // Parallelise over panels (weights stream once per thread) or, for skinny weights, over row blocks.
                int tasks = panels >= Threading.Threads || rowBlocks == 1 ? panels : rowBlocks;
                bool byPanel = tasks == panels;
                Threading.For(tasks, 2L * w.K * PackedWeight.PanelWidth * (byPanel ? m : panels * RowBlock), t =>
                {
                    if (byPanel) for (int r = 0; r < m; r += RowBlock) Block((float*)xs, (float*)ys, (float*)bs, (float*)ws, w, m, r, t);
                    else for (int p = 0; p < panels; p++) Block((float*)xs, (float*)ys, (float*)bs, (float*)ws, w, m, t * RowBlock, p);
                });
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static unsafe void Block(float* x, float* y, float* bias, float* panels, PackedWeight w, int m, int r0, int p)
    {
        int k = w.K, n = w.N;
        int rows = Math.Min(RowBlock, m - r0);
        float* panel = panels + (long)p * PackedWeight.PanelWidth * k;
        float* x0 = x + (long)r0 * k;
        float* x1 = rows > 1 ? x0 + k : x0;
        float* x2 = rows > 2 ? x0 + 2 * k : x0;
        float* x3 = rows > 3 ? x0 + 3 * k : x0;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector256<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (int kk = 0; kk < k; kk++)
        {
            float* wp = panel + kk * PackedWeight.PanelWidth;
            var w0 = Vector256.Load(wp); var w1 = Vector256.Load(wp + 8); var w2 = Vector256.Load(wp + 16); var w3 = Vector256.Load(wp + 24);
            var b = Vector256.Create(x0[kk]);
            a00 = Vector256.FusedMultiplyAdd(w0, b, a00); a01 = Vector256.FusedMultiplyAdd(w1, b, a01); a02 = Vector256.FusedMultiplyAdd(w2, b, a02); a03 = Vector256.FusedMultiplyAdd(w3, b, a03);
            b = Vector256.Create(x1[kk]);
            a10 = Vector256.FusedMultiplyAdd(w0, b, a10); a11 = Vector256.FusedMultiplyAdd(w1, b, a11); a12 = Vector256.FusedMultiplyAdd(w2, b, a12); a13 = Vector256.FusedMultiplyAdd(w3, b, a13);
            b = Vector256.Create(x2[kk]);
            a20 = Vector256.FusedMultiplyAdd(w0, b, a20); a21 = Vector256.FusedMultiplyAdd(w1, b, a21); a22 = Vector256.FusedMultiplyAdd(w2, b, a22); a23 = Vector256.FusedMultiplyAdd(w3, b, a23);
            b = Vector256.Create(x3[kk]);
            a30 = Vector256.FusedMultiplyAdd(w0, b, a30); a31 = Vector256.FusedMultiplyAdd(w1, b, a31); a32 = Vector256.FusedMultiplyAdd(w2, b, a32); a33 = Vector256.FusedMultiplyAdd(w3, b, a33);
        }
        float* tile = stackalloc float[RowBlock * PackedWeight.PanelWidth];
        a00.Store(tile); a01.Store(tile + 8); a02.Store(tile + 16); a03.Store(tile + 24);
        a10.Store(tile + 32); a11.Store(tile + 40); a12.Store(tile + 48); a13.Store(tile + 56);
        a20.Store(tile + 64); a21.Store(tile + 72); a22.Store(tile + 80); a23.Store(tile + 88);
        a30.Store(tile + 96); a31.Store(tile + 104); a32.Store(tile + 112); a33.Store(tile + 120);
        int c0 = p * PackedWeight.PanelWidth;
        int cols = Math.Min(PackedWeight.PanelWidth, n - c0);
        for (int r = 0; r < rows; r++)
        {
            float* yr = y + (long)(r0 + r) * n + c0;
            float* tr = tile + r * PackedWeight.PanelWidth;
            if (bias != null) for (int c = 0; c < cols; c++) yr[c] = tr[c] + bias[c0 + c];
            else for (int c = 0; c < cols; c++) yr[c] = tr[c];
        }
    }

    /// <summary>Plain C[m, n] (+)= A[m, k]·B[k, n] (or B[n, k] when transposeB), row-major, for shapes not worth packing.</summary>
    public static void MatMul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int k, int n, bool transposeB, bool accumulate = false)
    {
        if (!accumulate) c.Slice(0, m * n).Clear();
        for (int i = 0; i < m; i++)
        {
            var ci = c.Slice(i * n, n);
            var ai = a.Slice(i * k, k);
            if (transposeB)
                for (int j = 0; j < n; j++) ci[j] += System.Numerics.Tensors.TensorPrimitives.Dot(ai, b.Slice(j * k, k));
            else
                for (int kk = 0; kk < k; kk++)
                {
                    float av = ai[kk];
                    if (av != 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(b.Slice(kk * n, n), av, ci, ci);
                }
        }
    }
}
