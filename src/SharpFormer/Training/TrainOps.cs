using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using SharpFormer.Kernels;

namespace SharpFormer.Training;

/// <summary>
/// The layer-level forward and backward kernels training needs, one readable function per step (llm.c style).
/// Activations are row-major float[] arrays; "rows" is batch × sequence. Backward functions ACCUMULATE into
/// the parameter gradients (so tied weights and gradient accumulation just add up) and, unless stated
/// otherwise, also accumulate into the input gradient. Parallel loops only ever split disjoint outputs, so
/// every result is deterministic regardless of the thread count.
/// </summary>
public static class TrainOps
{
    const long ParallelFlops = 1 << 16;

    // ---------------------------------------------------------------- matrix products

    // All three go through the packed GEMM: packing an operand costs O(k·n), the product O(m·k·n), so it pays
    // for itself at every batch size training uses.

    /// <summary>C[m, n] (+)= A[m, k] · B[n, k]ᵀ.</summary>
    public static void MatMulABt(float[] a, float[] b, float[] c, int m, int k, int n, bool accumulate) =>
        Product(a, m, PackedWeight.FromOutIn(b, n, k), c, accumulate);

    /// <summary>C[m, n] (+)= A[m, k] · B[k, n].</summary>
    public static void MatMulAB(float[] a, float[] b, float[] c, int m, int k, int n, bool accumulate) =>
        Product(a, m, PackedWeight.FromInOut(b, k, n), c, accumulate);

    /// <summary>C[m, n] (+)= A[k, m]ᵀ · B[k, n] (weight gradients: sums over the k rows of a batch).</summary>
    public static void MatMulAtB(float[] a, float[] b, float[] c, int m, int k, int n, bool accumulate)
    {
        var at = ArrayPool<float>.Shared.Rent(m * k);
        try
        {
            Transpose(a, k, m, at);
            Product(at, m, PackedWeight.FromInOut(b, k, n), c, accumulate);
        }
        finally { ArrayPool<float>.Shared.Return(at); }
    }

    const int TransposeTile = 64;

    /// <summary>
    /// dst[cols, rows] = src[rows, cols]ᵀ in 64×64 tiles (a tile's source and destination lines stay in L1), 8×8 blocks
    /// through registers; tiles are disjoint, so they run in parallel.
    /// </summary>
    static unsafe void Transpose(float[] src, int rows, int cols, float[] dst)
    {
        int rowTiles = (rows + TransposeTile - 1) / TransposeTile, colTiles = (cols + TransposeTile - 1) / TransposeTile;
        Run(rowTiles * colTiles, (long)rows * cols, tile =>
        {
            int r0 = tile / colTiles * TransposeTile, r1 = Math.Min(rows, r0 + TransposeTile);
            int c0 = tile % colTiles * TransposeTile, c1 = Math.Min(cols, c0 + TransposeTile);
            fixed (float* s = src, d = dst)
            {
                int r = r0;
                if (Vector256.IsHardwareAccelerated)
                    for (; r + 8 <= r1; r += 8)
                    {
                        int c = c0;
                        for (; c + 8 <= c1; c += 8)
                        {
                            float* p = s + (long)r * cols + c;
                            Gemm.Transpose8x8(Vector256.Load(p), Vector256.Load(p + cols), Vector256.Load(p + 2L * cols), Vector256.Load(p + 3L * cols),
                                Vector256.Load(p + 4L * cols), Vector256.Load(p + 5L * cols), Vector256.Load(p + 6L * cols), Vector256.Load(p + 7L * cols),
                                d + (long)c * rows + r, rows);
                        }
                        for (; c < c1; c++)
                            for (int i = r; i < r + 8; i++) d[(long)c * rows + i] = s[(long)i * cols + c];
                    }
                for (; r < r1; r++)
                    for (int c = c0; c < c1; c++) d[(long)c * rows + r] = s[(long)r * cols + c];
            }
        });
    }

    static void Product(float[] x, int m, PackedWeight w, float[] c, bool accumulate)
    {
        int len = m * w.N;
        if (!accumulate) { Gemm.Linear(x, m, w, default, c); return; }
        var tmp = ArrayPool<float>.Shared.Rent(len);
        try
        {
            Gemm.Linear(x, m, w, default, tmp);
            TensorPrimitives.Add(c.AsSpan(0, len), tmp.AsSpan(0, len), c.AsSpan(0, len));
        }
        finally { ArrayPool<float>.Shared.Return(tmp); }
    }

    static void Run(int count, long flops, Action<int> body) => Kernels.KernelContext.Current.For(count, flops, body, ParallelFlops);

    // ---------------------------------------------------------------- linear layers

    /// <summary>nn.Linear forward: y[rows, out] = x[rows, in] · Wᵀ + b, W [out, in].</summary>
    public static void LinearForward(float[] x, int rows, float[] w, float[]? b, int inF, int outF, float[] y)
    {
        MatMulABt(x, w, y, rows, inF, outF, accumulate: false);
        if (b is not null) AddBias(y, rows, b);
    }

    /// <summary>nn.Linear backward: dW += dyᵀ·x, db += Σ dy, dx (+)= dy·W (dx may be null).</summary>
    public static void LinearBackward(float[] dy, float[] x, int rows, float[] w, int inF, int outF,
                                      float[]? dx, float[] dw, float[]? db, bool accumulateDx = true)
    {
        MatMulAtB(dy, x, dw, outF, rows, inF, accumulate: true);
        if (db is not null) SumRows(dy, rows, outF, db);
        if (dx is not null) MatMulAB(dy, w, dx, rows, outF, inF, accumulateDx);
    }

    /// <summary>GPT-2 Conv1D forward: y[rows, out] = x[rows, in] · W + b, W [in, out].</summary>
    public static void Conv1DForward(float[] x, int rows, float[] w, float[] b, int inF, int outF, float[] y)
    {
        MatMulAB(x, w, y, rows, inF, outF, accumulate: false);
        AddBias(y, rows, b);
    }

    /// <summary>Conv1D backward: dW += xᵀ·dy, db += Σ dy, dx (+)= dy·Wᵀ.</summary>
    public static void Conv1DBackward(float[] dy, float[] x, int rows, float[] w, int inF, int outF,
                                      float[]? dx, float[] dw, float[] db, bool accumulateDx = true)
    {
        MatMulAtB(x, dy, dw, inF, rows, outF, accumulate: true);
        SumRows(dy, rows, outF, db);
        if (dx is not null) MatMulABt(dy, w, dx, rows, outF, inF, accumulateDx);
    }

    /// <summary>Adds the bias <paramref name="b"/> to each of the <paramref name="rows"/> rows of <paramref name="y"/>.</summary>
    public static void AddBias(float[] y, int rows, float[] b)
    {
        int n = b.Length;
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(y.AsSpan(r * n, n), b, y.AsSpan(r * n, n));
    }

    /// <summary>db[n] += Σ_r dy[r, n].</summary>
    public static void SumRows(float[] dy, int rows, int n, float[] db)
    {
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(db, dy.AsSpan(r * n, n), db);
    }

    // ---------------------------------------------------------------- LayerNorm

    // The LayerNorms are single-threaded: ~1 ms for 4096 × 192, too little to be worth a thread hand-off.

    /// <summary>LayerNorm over rows of width n (biased variance, double accumulation); keeps mean and 1/std per row for the backward.</summary>
    public static unsafe void LayerNormForward(float[] x, int rows, float[] gamma, float[] beta, float eps, float[] y, float[] mean, float[] rstd)
    {
        int n = gamma.Length;
        fixed (float* xp = x, yp = y, g = gamma, bt = beta)
            for (int r = 0; r < rows; r++)
            {
                float* xr = xp + (long)r * n, yr = yp + (long)r * n;
                double mu = RowSum(xr, n, 0, square: false) / n;
                double rs = 1.0 / Math.Sqrt(RowSum(xr, n, mu, square: true) / n + eps);
                mean[r] = (float)mu; rstd[r] = (float)rs;
                float m = (float)mu, q = (float)rs;
                int i = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    var vm = Vector256.Create(m); var vq = Vector256.Create(q);
                    for (; i + 8 <= n; i += 8) ((Vector256.Load(xr + i) - vm) * vq * Vector256.Load(g + i) + Vector256.Load(bt + i)).Store(yr + i);
                }
                for (; i < n; i++) yr[i] = (xr[i] - m) * q * g[i] + bt[i];
            }
    }

    /// <summary>Σ (x[i] − shift), or Σ (x[i] − shift)², accumulated in double.</summary>
    static unsafe double RowSum(float* x, int n, double shift, bool square)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var sh = Vector256.Create(shift); var acc = Vector256<double>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                lo -= sh; hi -= sh;
                acc += square ? lo * lo + hi * hi : lo + hi;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) { double d = x[i] - shift; sum += square ? d * d : d; }
        return sum;
    }

    /// <summary>
    /// LayerNorm backward from the saved input, mean and rstd: dγ += Σ dy·x̂, dβ += Σ dy, and
    /// dx (+)= rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·γ. dx may be dy (in place, accumulate = false).
    /// </summary>
    public static unsafe void LayerNormBackward(float[] dy, float[] x, float[] mean, float[] rstd, int rows, float[] gamma,
                                                float[] dx, float[] dgamma, float[] dbeta, bool accumulate)
    {
        int n = gamma.Length;
        fixed (float* dyp = dy, xp = x, g = gamma, dxp = dx, dg = dgamma, db = dbeta)
            for (int r = 0; r < rows; r++)
            {
                float* dyr = dyp + (long)r * n, xr = xp + (long)r * n, dxr = dxp + (long)r * n;
                float m = mean[r], q = rstd[r];
                // dγ, dβ, and Σ dx̂, Σ dx̂·x̂ in double
                int i = 0;
                double sumD = 0, sumDX = 0;
                var vm = Vector256.Create(m); var vq = Vector256.Create(q);
                if (Vector256.IsHardwareAccelerated)
                {
                    Vector256<double> aD = default, aDX = default;
                    for (; i + 8 <= n; i += 8)
                    {
                        var d = Vector256.Load(dyr + i);
                        var xh = (Vector256.Load(xr + i) - vm) * vq;
                        (Vector256.Load(dg + i) + d * xh).Store(dg + i);
                        (Vector256.Load(db + i) + d).Store(db + i);
                        var (dl, dh) = Vector256.Widen(d * Vector256.Load(g + i));
                        var (xl, xhh) = Vector256.Widen(xh);
                        aD += dl + dh; aDX += dl * xl + dh * xhh;
                    }
                    sumD = Vector256.Sum(aD); sumDX = Vector256.Sum(aDX);
                }
                for (; i < n; i++)
                {
                    float xh = (xr[i] - m) * q, d = dyr[i] * g[i];
                    dg[i] += dyr[i] * xh; db[i] += dyr[i];
                    sumD += d; sumDX += (double)d * xh;
                }
                // dx (after all of the row's dy is read: dx may be dy)
                float meanD = (float)(sumD / n), meanDX = (float)(sumDX / n);
                i = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    var vD = Vector256.Create(meanD); var vDX = Vector256.Create(meanDX);
                    for (; i + 8 <= n; i += 8)
                    {
                        var xh = (Vector256.Load(xr + i) - vm) * vq;
                        var gr = vq * (Vector256.Load(dyr + i) * Vector256.Load(g + i) - vD - xh * vDX);
                        (accumulate ? Vector256.Load(dxr + i) + gr : gr).Store(dxr + i);
                    }
                }
                for (; i < n; i++)
                {
                    float gr = q * (dyr[i] * g[i] - meanD - (xr[i] - m) * q * meanDX);
                    dxr[i] = accumulate ? dxr[i] + gr : gr;
                }
            }
    }

    // ---------------------------------------------------------------- activations

    /// <summary>dx[i] = dy[i] · act'(pre[i]) for the activations BERT and GPT-2 use (in place on dy allowed).</summary>
    public static void ActivationBackward(Activation act, float[] pre, float[] dy, float[] dx, int count)
    {
        if (act == Activation.Mish) throw new SharpFormerException($"training does not support the activation {act}");
        Activations.Backward(act, pre.AsSpan(0, count), dy.AsSpan(0, count), dx.AsSpan(0, count));
    }

    /// <summary>tanh backward from the OUTPUT y = tanh(x): dx = dy·(1 − y²).</summary>
    public static void TanhBackwardFromOutput(float[] y, float[] dy, float[] dx, int count)
    {
        for (int i = 0; i < count; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
    }

    // ---------------------------------------------------------------- attention

    /// <summary>Where a head's q, k, v (and their gradients) live: array, first column, row stride.</summary>
    public readonly record struct Slab(float[] Data, int Offset, int Stride);

    /// <summary>
    /// Multi-head attention forward for B sequences of T rows (rows b·T … b·T + T − 1). Writes the softmax
    /// probabilities P [B, heads, T, T] (kept for the backward), applies the optional dropout mask (kept
    /// probabilities scaled, [B, heads, T, T]) and ctx [B·T, heads·D] = dropout(P)·V.
    /// keyBias: B·T additive biases (0 or <see cref="Attention.Masked"/>) or null.
    /// </summary>
    public static unsafe void AttentionForward(Slab q, Slab k, Slab v, int b, int t, int heads, int d, float scale, bool causal,
                                               float[]? keyBias, float[] probs, float[]? dropMask, float[] ctx)
    {
        int width = heads * d;
        for (int i = 0; i < b; i++)
        {
            int row0 = i * t;
            Attention.Forward(q.Data.AsSpan(row0 * q.Stride + q.Offset), q.Stride,
                k.Data.AsSpan(row0 * k.Stride + k.Offset), v.Data.AsSpan(row0 * v.Stride + v.Offset), k.Stride,
                t, t, heads, d, scale, causal, 0, keyBias is null ? default : keyBias.AsSpan(row0, t),
                ctx.AsSpan(row0 * width, t * width), width, probs.AsSpan(i * heads * t * t, heads * t * t));
        }
        if (dropMask is null) return;
        // Attention-probability dropout: recompute ctx_h = (P ⊙ mask)·V_h per (sequence, head).
        int tt = t * t;
        Run(b * heads, 2L * b * heads * tt * d, bh =>
        {
            int r0 = bh / heads * t, hc = bh % heads * d;
            var pm = ArrayPool<float>.Shared.Rent(tt);
            try
            {
                TensorPrimitives.Multiply(probs.AsSpan(bh * tt, tt), dropMask.AsSpan(bh * tt, tt), pm);
                fixed (float* pmp = pm, vp = v.Data, cp = ctx)
                {
                    HeadProduct(pmp, t, 1, At(vp, v, r0, hc), v.Stride, cp + (long)r0 * width + hc, width, t, t, d, accumulate: false);
                }
            }
            finally { ArrayPool<float>.Shared.Return(pm); }
        });
    }

    /// <summary>
    /// Attention backward: from dctx [B·T, heads·D] and the saved P (pre-dropout) and dropout mask, accumulates
    /// dV += P'ᵀ·dctx, dS = P ⊙ (dP − Σ P·dP) with dP = (dctx·Vᵀ) ⊙ mask, dQ += scale·dS·K, dK += scale·dSᵀ·Q.
    /// Parallel over (sequence, head): each writes its own columns.
    /// </summary>
    public static unsafe void AttentionBackward(float[] dctx, Slab q, Slab k, Slab v, Slab dq, Slab dk, Slab dv,
                                                int b, int t, int heads, int d, float scale, float[] probs, float[]? dropMask)
    {
        int width = heads * d, tt = t * t;
        Run(b * heads, 8L * b * heads * tt * d, bh =>
        {
            int r0 = bh / heads * t, hc = bh % heads * d;
            long po = (long)bh * tt;
            // Scratch: Vᵀ [d, kn], dP then dS [t, kn], P ⊙ mask [t, kn].
            var scratch = ArrayPool<float>.Shared.Rent(d * t + 2 * tt);
            try
            {
                fixed (float* pp = probs, mp = dropMask, sp = scratch, gp = dctx, qp = q.Data, kp = k.Data, vp = v.Data,
                       dqp = dq.Data, dkp = dk.Data, dvp = dv.Data)
                {
                    float* p = pp + po, g = gp + (long)r0 * width + hc;
                    // Keys past the last one any query attends to (padding) take no part in any product.
                    int kn = KeyExtent(p, t);
                    float* vt = sp, ds = sp + d * t, pm = ds + t * kn;
                    float* vh = At(vp, v, r0, hc);
                    for (int j = 0; j < kn; j++)
                        for (int c = 0; c < d; c++) vt[c * kn + j] = vh[(long)j * v.Stride + c];
                    HeadProduct(g, width, 1, vt, kn, ds, kn, t, d, kn, accumulate: false);              // dP = dctx_h·V_hᵀ
                    for (int qi = 0; qi < t; qi++)
                        SoftmaxBackwardRow(p + qi * t, mp is null ? null : mp + po + qi * t, ds + qi * kn, pm + qi * kn, kn, scale);
                    // dV_h += P'ᵀ·dctx_h (P' = P ⊙ mask, or P itself without dropout)
                    float* pd = mp is null ? p : pm;
                    HeadProduct(pd, 1, mp is null ? t : kn, g, width, At(dvp, dv, r0, hc), dv.Stride, kn, t, d, accumulate: true);
                    HeadProduct(ds, kn, 1, At(kp, k, r0, hc), k.Stride, At(dqp, dq, r0, hc), dq.Stride, t, kn, d, accumulate: true); // dQ_h += dS·K_h
                    HeadProduct(ds, 1, kn, At(qp, q, r0, hc), q.Stride, At(dkp, dk, r0, hc), dk.Stride, kn, t, d, accumulate: true); // dK_h += dSᵀ·Q_h
                }
            }
            finally { ArrayPool<float>.Shared.Return(scratch); }
        });
    }

    static unsafe float* At(float* data, Slab s, int row, int col) => data + (long)row * s.Stride + s.Offset + col;

    /// <summary>1 + the largest key index with a nonzero probability in any of the t rows of P [t, t].</summary>
    static unsafe int KeyExtent(float* p, int t)
    {
        int kn = 0;
        for (int qi = t - 1; qi >= 0 && kn < t; qi--) // the last row first: causal attention ends there at once
        {
            float* row = p + qi * t;
            for (int j = t - 1; j >= kn; j--)
                if (row[j] != 0f) { kn = j + 1; break; }
        }
        return kn;
    }

    /// <summary>
    /// One query row of the softmax backward, in place on dp: dP' = dP ⊙ mask, s = Σ P·dP', dS = scale·P ⊙ (dP' − s);
    /// with a mask also writes P' = P ⊙ mask to pm.
    /// </summary>
    static unsafe void SoftmaxBackwardRow(float* p, float* mask, float* dp, float* pm, int n, float scale)
    {
        int w = Vector<float>.Count, j = 0;
        var acc = Vector<float>.Zero;
        float tail = 0f;
        if (mask is null)
        {
            for (; j + w <= n; j += w) acc = Vector.FusedMultiplyAdd(Vector.Load(p + j), Vector.Load(dp + j), acc);
            for (; j < n; j++) tail += p[j] * dp[j];
        }
        else
        {
            for (; j + w <= n; j += w)
            {
                var m = Vector.Load(mask + j); var pj = Vector.Load(p + j);
                var g = Vector.Load(dp + j) * m;
                g.Store(dp + j); (pj * m).Store(pm + j);
                acc = Vector.FusedMultiplyAdd(pj, g, acc);
            }
            for (; j < n; j++) { dp[j] *= mask[j]; pm[j] = p[j] * mask[j]; tail += p[j] * dp[j]; }
        }
        float s = Vector.Sum(acc) + tail;
        var vs = new Vector<float>(s); var vscale = new Vector<float>(scale);
        for (j = 0; j + w <= n; j += w) (Vector.Load(p + j) * (Vector.Load(dp + j) - vs) * vscale).Store(dp + j);
        for (; j < n; j++) dp[j] = p[j] * (dp[j] - s) * scale;
    }

    /// <summary>
    /// C[m, n] (+)= A[m, k]·B[k, n], the per-head products of attention. A's element (r, kk) is a[r·ars + kk·acs], so
    /// a transposed A costs nothing; B and C are row-major with row strides ldb and ldc. Each block of rows runs only
    /// over the k range where its A rows are nonzero: the zeros of causal and padded probabilities are skipped.
    /// </summary>
    static unsafe void HeadProduct(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int m, int k, int n, bool accumulate)
    {
        int nr = 2 * Vector<float>.Count, r = 0;
        for (; r + 4 <= m; r += 4)
        {
            var (k0, k1) = NonzeroRange(a + (long)r * ars, ars, acs, 4, k);
            int j = 0;
            for (; j + nr <= n; j += nr) Tile4(a + (long)r * ars, ars, acs, b + j, ldb, c + (long)r * ldc + j, ldc, k0, k1, accumulate);
            for (int i = r; i < r + 4; i++) RowProduct(a + (long)i * ars, acs, b, ldb, c + (long)i * ldc, j, n, k0, k1, accumulate);
        }
        for (; r < m; r++)
        {
            var (k0, k1) = NonzeroRange(a + (long)r * ars, ars, acs, 1, k);
            RowProduct(a + (long)r * ars, acs, b, ldb, c + (long)r * ldc, 0, n, k0, k1, accumulate);
        }
    }

    /// <summary>[first, last + 1) of the k indices where any of the rows of A is nonzero (empty: k0 ≥ k1).</summary>
    static unsafe (int K0, int K1) NonzeroRange(float* a, int ars, int acs, int rows, int k)
    {
        int k0 = k, k1 = 0;
        for (int i = 0; i < rows; i++)
        {
            float* row = a + (long)i * ars;
            for (int kk = 0; kk < k0; kk++) if (row[(long)kk * acs] != 0f) { k0 = kk; break; }
            for (int kk = k - 1; kk >= k1; kk--) if (row[(long)kk * acs] != 0f) { k1 = kk + 1; break; }
        }
        return (k0, k1);
    }

    /// <summary>4 rows × 2 vectors of C, accumulated in registers over kk ∈ [k0, k1).</summary>
    static unsafe void Tile4(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k0, int k1, bool accumulate)
    {
        int w = Vector<float>.Count;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        if (accumulate)
        {
            c00 = Vector.Load(c); c01 = Vector.Load(c + w);
            c10 = Vector.Load(c + ldc); c11 = Vector.Load(c + ldc + w);
            c20 = Vector.Load(c + 2 * ldc); c21 = Vector.Load(c + 2 * ldc + w);
            c30 = Vector.Load(c + 3 * ldc); c31 = Vector.Load(c + 3 * ldc + w);
        }
        for (int kk = k0; kk < k1; kk++)
        {
            float* bk = b + (long)kk * ldb, ak = a + (long)kk * acs;
            var b0 = Vector.Load(bk); var b1 = Vector.Load(bk + w);
            var x = new Vector<float>(ak[0]); c00 = Vector.FusedMultiplyAdd(x, b0, c00); c01 = Vector.FusedMultiplyAdd(x, b1, c01);
            x = new Vector<float>(ak[ars]); c10 = Vector.FusedMultiplyAdd(x, b0, c10); c11 = Vector.FusedMultiplyAdd(x, b1, c11);
            x = new Vector<float>(ak[2 * ars]); c20 = Vector.FusedMultiplyAdd(x, b0, c20); c21 = Vector.FusedMultiplyAdd(x, b1, c21);
            x = new Vector<float>(ak[3 * ars]); c30 = Vector.FusedMultiplyAdd(x, b0, c30); c31 = Vector.FusedMultiplyAdd(x, b1, c31);
        }
        c00.Store(c); c01.Store(c + w);
        c10.Store(c + ldc); c11.Store(c + ldc + w);
        c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + w);
        c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + w);
    }

    /// <summary>Columns [j0, n) of one row of C: one vector at a time, then scalars.</summary>
    static unsafe void RowProduct(float* a, int acs, float* b, int ldb, float* c, int j0, int n, int k0, int k1, bool accumulate)
    {
        int w = Vector<float>.Count, j = j0;
        for (; j + w <= n; j += w)
        {
            var acc = accumulate ? Vector.Load(c + j) : Vector<float>.Zero;
            for (int kk = k0; kk < k1; kk++) acc = Vector.FusedMultiplyAdd(new Vector<float>(a[(long)kk * acs]), Vector.Load(b + (long)kk * ldb + j), acc);
            acc.Store(c + j);
        }
        for (; j < n; j++)
        {
            float acc = accumulate ? c[j] : 0f;
            for (int kk = k0; kk < k1; kk++) acc = MathF.FusedMultiplyAdd(a[(long)kk * acs], b[(long)kk * ldb + j], acc);
            c[j] = acc;
        }
    }

    // ---------------------------------------------------------------- losses

    /// <summary>
    /// Cross-entropy of rows of logits [rows, classes] against targets (−100 = ignored). Returns the summed
    /// negative log-likelihood (double) and the number of counted rows; writes dlogits = gradScale·(softmax − onehot)
    /// on counted rows and 0 on ignored ones (dlogits may be null for evaluation only).
    /// PyTorch's mean reduction is sum / count, so pass gradScale = 1 / count.
    /// </summary>
    public static unsafe (double Sum, int Count) CrossEntropy(float[] logits, int rows, int classes, ReadOnlySpan<int> targets,
                                                       float[]? dlogits, float gradScale, int ignoreIndex = -100)
    {
        var nll = new double[rows];
        var tg = targets.ToArray();
        for (int r = 0; r < rows; r++)
            if (tg[r] != ignoreIndex && (uint)tg[r] >= (uint)classes)
                throw new SharpFormerException($"label {tg[r]} is outside [0, {classes})");
        Run(rows, (long)rows * classes * 8, r =>
        {
            if (tg[r] == ignoreIndex)
            {
                dlogits?.AsSpan(r * classes, classes).Clear();
                return;
            }
            fixed (float* lp = logits, dp = dlogits)
            {
                float* row = lp + (long)r * classes;
                float max = TensorPrimitives.Max(new ReadOnlySpan<float>(row, classes));
                double lse = max + Math.Log(ExpSum(row, classes, max, null, 0));
                nll[r] = lse - row[tg[r]];
                if (dp is null) return;
                float* dr = dp + (long)r * classes;
                ExpSum(row, classes, lse, dr, gradScale);
                dr[tg[r]] -= gradScale;
            }
        });
        double total = 0; int count = 0;
        for (int r = 0; r < rows; r++) if (tg[r] != ignoreIndex) { total += nll[r]; count++; }
        return (total, count);
    }

    /// <summary>Σ exp(x[i] − shift) on double lanes; with dst, also dst[i] = exp(x[i] − shift)·scale.</summary>
    static unsafe double ExpSum(float* x, int n, double shift, float* dst, double scale)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var sh = Vector256.Create(shift); var sc = Vector256.Create(scale); var acc = Vector256<double>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                var elo = FastMath.Exp(lo - sh); var ehi = FastMath.Exp(hi - sh);
                acc += elo + ehi;
                if (dst != null) Vector256.Narrow(elo * sc, ehi * sc).Store(dst + i);
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            double e = Math.Exp(x[i] - shift);
            sum += e;
            if (dst != null) dst[i] = (float)(e * scale);
        }
        return sum;
    }

    // ---------------------------------------------------------------- dropout

    /// <summary>
    /// Inverted dropout: draws a mask (kept entries 1/(1−p), dropped 0) from the RNG and multiplies x by it in place.
    /// Returns the mask (for the backward), or null when p is 0 (nothing to do).
    /// </summary>
    public static float[]? Dropout(float[] x, int count, float p, TrainRng rng)
    {
        if (p <= 0f) return null;
        var mask = new float[count];
        float keep = 1f / (1f - p);
        for (int i = 0; i < count; i++) mask[i] = rng.NextFloat() < p ? 0f : keep;
        TensorPrimitives.Multiply(x.AsSpan(0, count), mask, x.AsSpan(0, count));
        return mask;
    }

    /// <summary>Dropout mask only (for attention probabilities, applied inside <see cref="AttentionForward"/>).</summary>
    public static float[]? DropoutMask(int count, float p, TrainRng rng)
    {
        if (p <= 0f) return null;
        var mask = new float[count];
        float keep = 1f / (1f - p);
        for (int i = 0; i < count; i++) mask[i] = rng.NextFloat() < p ? 0f : keep;
        return mask;
    }

    /// <summary>Dropout backward in place: dy ⊙= mask (no-op for a null mask).</summary>
    public static void DropoutBackward(float[] dy, float[]? mask)
    {
        if (mask is not null) TensorPrimitives.Multiply(dy.AsSpan(0, mask.Length), mask, dy.AsSpan(0, mask.Length));
    }
}

/// <summary>
/// A tiny deterministic RNG (SplitMix64) whose whole state is one ulong, so a checkpoint can save and restore it
/// and a resumed run draws exactly the same dropout masks and data order.
/// </summary>
public sealed class TrainRng(ulong seed)
{
    /// <summary>The whole generator state (saved in checkpoints).</summary>
    public ulong State { get; set; } = seed;

    /// <summary>The next 64 random bits.</summary>
    public ulong NextULong()
    {
        ulong z = State += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextULong() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, n).</summary>
    public int Next(int n) => (int)(NextULong() % (ulong)n);

    /// <summary>Fisher–Yates shuffle.</summary>
    public void Shuffle<T>(IList<T> list)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }
}
