using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Kernels;

/// <summary>
/// Multi-head scaled dot-product attention over row-major activations where head h of a row sits at
/// columns [h·D, (h+1)·D): no transposes of the inputs. Fused per (head, tile of 16 queries): scores
/// (Q·Kᵀ against a per-head transposed copy of K), scale, mask, softmax (vectorised float exp), weighted sum of
/// values; only a 16 × keys score tile is materialised, and the probabilities are copied out only when asked for.
/// Heads are spread over the kernel threads.
/// </summary>
[SkipLocalsInit]
public static unsafe class Attention
{
    /// <summary>What a key contributes to a score before softmax: 0 to attend, float.MinValue to mask (HuggingFace's finfo.min).</summary>
    public const float Masked = float.MinValue;

    const int QTile = 16;

    struct Job
    {
        public float* Q, K, V, Bias, Out, Probs;
        public int QStride, KvStride, OutStride, Tq, Tk, HeadDim, QueryOffset, Group;
        public float Scale;
        public bool Causal;
    }

    /// <summary>Multi-head scaled dot-product attention: per head, softmax(q·kᵀ·scale + keyBias, causal mask) · v.</summary>
    /// <param name="q">[tq, qStride] queries.</param>
    /// <param name="qStride">Floats between consecutive query rows.</param>
    /// <param name="k">[tk, kvStride] keys.</param>
    /// <param name="v">[tk, kvStride] values.</param>
    /// <param name="kvStride">Floats between consecutive key (and value) rows.</param>
    /// <param name="tq">Number of queries.</param>
    /// <param name="tk">Number of keys.</param>
    /// <param name="heads">Number of heads; head h reads and writes columns [h·headDim, (h+1)·headDim).</param>
    /// <param name="headDim">Width of one head.</param>
    /// <param name="scale">Multiplies the scores before the softmax (1/√headDim for BERT and GPT-2).</param>
    /// <param name="causal">Query i (at absolute position queryOffset + i) sees keys 0..queryOffset + i only.</param>
    /// <param name="queryOffset">Absolute position of the first query (the cached length when decoding).</param>
    /// <param name="keyBias">Empty, or tk additive biases (0 or <see cref="Masked"/>) from the attention mask.</param>
    /// <param name="output">[tq, outStride]; head h written to columns [h·D, (h+1)·D).</param>
    /// <param name="outStride">Floats between consecutive output rows.</param>
    /// <param name="probs">Empty, or [heads, tq, tk] to receive the attention probabilities.</param>
    /// <param name="kvHeads">
    /// Grouped-query attention: the keys and values hold this many heads (0: as many as the queries), and query head h
    /// reads key/value head h / (heads / kvHeads) (HuggingFace's repeat_kv).
    /// </param>
    public static void Forward(
        ReadOnlySpan<float> q, int qStride, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvStride,
        int tq, int tk, int heads, int headDim, float scale, bool causal, int queryOffset,
        ReadOnlySpan<float> keyBias, Span<float> output, int outStride, Span<float> probs, int kvHeads = 0)
    {
        if (kvHeads == 0) kvHeads = heads;
        if (kvHeads < 0 || heads % kvHeads != 0) throw new ArgumentException($"Attention: {heads} query heads cannot share {kvHeads} key/value heads");
        var kernels = KernelContext.Current;
        using var profile = kernels.Profile.Time(ProfiledKernel.Attention);
        if (tq <= 0 || heads <= 0 || headDim <= 0) return;
        if (!keyBias.IsEmpty && keyBias.Length < tk) throw new ArgumentException("Attention: keyBias shorter than tk");
        if (!probs.IsEmpty && probs.Length < (long)heads * tq * tk) throw new ArgumentException("Attention: probs too small");
        fixed (float* pq = q, pk = k, pv = v, pb = keyBias, po = output, pp = probs)
        {
            var job = new Job
            {
                Q = pq, K = pk, V = pv, Bias = keyBias.IsEmpty ? null : pb, Out = po, Probs = probs.IsEmpty ? null : pp,
                QStride = qStride, KvStride = kvStride, OutStride = outStride, Tq = tq, Tk = tk, HeadDim = headDim,
                QueryOffset = queryOffset, Scale = scale, Causal = causal, Group = heads / kvHeads,
            };
            int threads = kernels.ThreadsFor(4L * tq * tk * headDim * heads, heads);
            kernels.Run(heads, threads, &Head, &job);
        }
    }

    /// <summary>This thread's score / Kᵀ / V tile buffer in the current context (at least 16 KB: short calls do not regrow it).</summary>
    static float* Buffer(long floats) =>
        (float*)KernelContext.Current.Scratch(KernelContext.ScratchSlot.Attention, Math.Max(floats, 4096) * sizeof(float));

    static int Visible(ref Job j, int i) => j.Causal ? Math.Clamp(j.QueryOffset + i + 1, 0, j.Tk) : j.Tk;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Head(void* ctx, int h)
    {
        ref Job j = ref *(Job*)ctx;
        int D = j.HeadDim, tq = j.Tq, tk = j.Tk;
        int kvh = h / j.Group;
        float* qh = j.Q + (long)h * D, kh = j.K + (long)kvh * D, vh = j.V + (long)kvh * D, oh = j.Out + (long)h * D;
        float* probs = j.Probs == null ? null : j.Probs + (long)h * tq * tk;
        // Keys any query of this call can see.
        int kLimit = tk == 0 ? 0 : Visible(ref j, tq - 1);
        // Row stride of the score tile and of Kᵀ: a multiple of 8 floats covering kLimit, and an odd number of
        // 64-byte lines so that walking down a column does not hit the same few L1 sets (512 keys → 528).
        int kPad = ((kLimit + 15) / 16 | 1) * 16;
        bool tiled = Vector256.IsHardwareAccelerated && tq >= 4;
        float* buf = Buffer((long)QTile * kPad + (tiled ? (long)D * kPad + (long)kLimit * D : 0));
        float* S = buf;
        float* kT = buf + (long)QTile * kPad;
        int vStride = j.KvStride;
        if (tiled)
        {
            PackKT(kh, j.KvStride, kLimit, kPad, D, kT);
            // Values copied to a dense [kLimit, D] block: the weighted sum then walks contiguous rows.
            float* vPacked = kT + (long)D * kPad;
            for (int c = 0; c < kLimit; c++)
                new ReadOnlySpan<float>(vh + (long)c * j.KvStride, D).CopyTo(new Span<float>(vPacked + (long)c * D, D));
            vh = vPacked;
            vStride = D;
        }

        for (int i0 = 0; i0 < tq; i0 += QTile)
        {
            int rows = Math.Min(QTile, tq - i0);
            int vmax = Visible(ref j, i0 + rows - 1); // the widest row of the tile
            int vPad = (vmax + 7) & ~7;
            // 1. scores
            if (tiled) Scores(qh + (long)i0 * j.QStride, j.QStride, rows, kT, kPad, vPad, D, S);
            else
                for (int r = 0; r < rows; r++)
                {
                    float* qi = qh + (long)(i0 + r) * j.QStride;
                    int vis = Visible(ref j, i0 + r);
                    for (int c = 0; c < vis; c++) S[(long)r * kPad + c] = Dot(qi, kh + (long)c * j.KvStride, D);
                }
            // 2. scale, mask, softmax (row by row), zero past each row's visible keys up to vPad
            for (int r = 0; r < rows; r++)
            {
                float* s = S + (long)r * kPad;
                int vis = Visible(ref j, i0 + r);
                SoftmaxRow(s, vis, vPad, j.Scale, j.Bias);
                if (probs != null)
                {
                    float* pr = probs + (long)(i0 + r) * tk;
                    if (vis == 0) new Span<float>(pr, tk).Fill(1f / tk);
                    else
                    {
                        new ReadOnlySpan<float>(s, vis).CopyTo(new Span<float>(pr, vis));
                        new Span<float>(pr + vis, tk - vis).Clear();
                    }
                }
            }
            // 3. weighted sum of values
            if (Vector256.IsHardwareAccelerated) WeightedSum(S, kPad, rows, vmax, vh, vStride, D, oh + (long)i0 * j.OutStride, j.OutStride);
            else
                for (int r = 0; r < rows; r++)
                {
                    var oi = new Span<float>(oh + (long)(i0 + r) * j.OutStride, D);
                    oi.Clear();
                    float* s = S + (long)r * kPad;
                    int vis = Visible(ref j, i0 + r);
                    for (int c = 0; c < vis; c++)
                        if (s[c] != 0f) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(vh + (long)c * vStride, D), s[c], oi, oi);
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float s = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> acc0 = default, acc1 = default;
            for (; i + 16 <= n; i += 16)
            {
                acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), acc1);
            }
            if (i + 8 <= n) { acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0); i += 8; }
            s = Vector256.Sum(acc0 + acc1);
        }
        else if (n >= 4) return TensorPrimitives.Dot(new ReadOnlySpan<float>(a, n), new ReadOnlySpan<float>(b, n));
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>kT[d, c] = K[c, d] for c &lt; kLimit, zero for kLimit ≤ c &lt; kPad.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackKT(float* kh, int stride, int kLimit, int kPad, int D, float* kT)
    {
        const int B = 8;
        for (int c0 = 0; c0 < kLimit; c0 += B)
        {
            int cn = Math.Min(B, kLimit - c0);
            for (int d = 0; d < D; d++)
            {
                float* dst = kT + (long)d * kPad + c0;
                float* src = kh + (long)c0 * stride + d;
                for (int c = 0; c < cn; c++) dst[c] = src[(long)c * stride];
            }
        }
        if (kPad > kLimit)
            for (int d = 0; d < D; d++) new Span<float>(kT + (long)d * kPad + kLimit, kPad - kLimit).Clear();
    }

    /// <summary>S[r, c] = q_r · k_c for r &lt; rows, c &lt; vPad (a multiple of 8), from the transposed keys.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Scores(float* q, int qStride, int rows, float* kT, int kPad, int vPad, int D, float* S)
    {
        for (int r0 = 0; r0 < rows; r0 += 4)
        {
            // Rows past the end repeat the last row (computed, then overwritten/ignored): S has QTile rows.
            float* q0 = q + (long)Math.Min(r0, rows - 1) * qStride, q1 = q + (long)Math.Min(r0 + 1, rows - 1) * qStride;
            float* q2 = q + (long)Math.Min(r0 + 2, rows - 1) * qStride, q3 = q + (long)Math.Min(r0 + 3, rows - 1) * qStride;
            float* s0 = S + (long)r0 * kPad, s1 = s0 + kPad, s2 = s1 + kPad, s3 = s2 + kPad;
            int c = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                int cEnd = (vPad + 15) & ~15; // ≤ kPad; Kᵀ is zero-padded up to kPad
                for (; c + 64 <= cEnd; c += 64)
                {
                    Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                    Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
                    float* kp = kT + c;
                    for (int d = 0; d < D; d++, kp += kPad)
                    {
                        var k0 = Vector512.Load(kp); var k1 = Vector512.Load(kp + 16); var k2 = Vector512.Load(kp + 32); var k3 = Vector512.Load(kp + 48);
                        var b = Vector512.Create(q0[d]);
                        a00 = Vector512.FusedMultiplyAdd(b, k0, a00); a01 = Vector512.FusedMultiplyAdd(b, k1, a01); a02 = Vector512.FusedMultiplyAdd(b, k2, a02); a03 = Vector512.FusedMultiplyAdd(b, k3, a03);
                        b = Vector512.Create(q1[d]);
                        a10 = Vector512.FusedMultiplyAdd(b, k0, a10); a11 = Vector512.FusedMultiplyAdd(b, k1, a11); a12 = Vector512.FusedMultiplyAdd(b, k2, a12); a13 = Vector512.FusedMultiplyAdd(b, k3, a13);
                        b = Vector512.Create(q2[d]);
                        a20 = Vector512.FusedMultiplyAdd(b, k0, a20); a21 = Vector512.FusedMultiplyAdd(b, k1, a21); a22 = Vector512.FusedMultiplyAdd(b, k2, a22); a23 = Vector512.FusedMultiplyAdd(b, k3, a23);
                        b = Vector512.Create(q3[d]);
                        a30 = Vector512.FusedMultiplyAdd(b, k0, a30); a31 = Vector512.FusedMultiplyAdd(b, k1, a31); a32 = Vector512.FusedMultiplyAdd(b, k2, a32); a33 = Vector512.FusedMultiplyAdd(b, k3, a33);
                    }
                    a00.Store(s0 + c); a01.Store(s0 + c + 16); a02.Store(s0 + c + 32); a03.Store(s0 + c + 48);
                    a10.Store(s1 + c); a11.Store(s1 + c + 16); a12.Store(s1 + c + 32); a13.Store(s1 + c + 48);
                    a20.Store(s2 + c); a21.Store(s2 + c + 16); a22.Store(s2 + c + 32); a23.Store(s2 + c + 48);
                    a30.Store(s3 + c); a31.Store(s3 + c + 16); a32.Store(s3 + c + 32); a33.Store(s3 + c + 48);
                }
                for (; c < cEnd; c += 16)
                {
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    float* kp = kT + c;
                    for (int d = 0; d < D; d++, kp += kPad)
                    {
                        var k0 = Vector512.Load(kp);
                        a0 = Vector512.FusedMultiplyAdd(Vector512.Create(q0[d]), k0, a0); a1 = Vector512.FusedMultiplyAdd(Vector512.Create(q1[d]), k0, a1);
                        a2 = Vector512.FusedMultiplyAdd(Vector512.Create(q2[d]), k0, a2); a3 = Vector512.FusedMultiplyAdd(Vector512.Create(q3[d]), k0, a3);
                    }
                    a0.Store(s0 + c); a1.Store(s1 + c); a2.Store(s2 + c); a3.Store(s3 + c);
                }
                continue;
            }
            for (; c + 32 <= vPad; c += 32)
            {
                Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
                float* kp = kT + c;
                for (int d = 0; d < D; d++, kp += kPad)
                {
                    var k0 = Vector256.Load(kp); var k1 = Vector256.Load(kp + 8); var k2 = Vector256.Load(kp + 16); var k3 = Vector256.Load(kp + 24);
                    var b = Vector256.Create(q0[d]);
                    a00 = Vector256.FusedMultiplyAdd(b, k0, a00); a01 = Vector256.FusedMultiplyAdd(b, k1, a01); a02 = Vector256.FusedMultiplyAdd(b, k2, a02); a03 = Vector256.FusedMultiplyAdd(b, k3, a03);
                    b = Vector256.Create(q1[d]);
                    a10 = Vector256.FusedMultiplyAdd(b, k0, a10); a11 = Vector256.FusedMultiplyAdd(b, k1, a11); a12 = Vector256.FusedMultiplyAdd(b, k2, a12); a13 = Vector256.FusedMultiplyAdd(b, k3, a13);
                    b = Vector256.Create(q2[d]);
                    a20 = Vector256.FusedMultiplyAdd(b, k0, a20); a21 = Vector256.FusedMultiplyAdd(b, k1, a21); a22 = Vector256.FusedMultiplyAdd(b, k2, a22); a23 = Vector256.FusedMultiplyAdd(b, k3, a23);
                    b = Vector256.Create(q3[d]);
                    a30 = Vector256.FusedMultiplyAdd(b, k0, a30); a31 = Vector256.FusedMultiplyAdd(b, k1, a31); a32 = Vector256.FusedMultiplyAdd(b, k2, a32); a33 = Vector256.FusedMultiplyAdd(b, k3, a33);
                }
                a00.Store(s0 + c); a01.Store(s0 + c + 8); a02.Store(s0 + c + 16); a03.Store(s0 + c + 24);
                a10.Store(s1 + c); a11.Store(s1 + c + 8); a12.Store(s1 + c + 16); a13.Store(s1 + c + 24);
                a20.Store(s2 + c); a21.Store(s2 + c + 8); a22.Store(s2 + c + 16); a23.Store(s2 + c + 24);
                a30.Store(s3 + c); a31.Store(s3 + c + 8); a32.Store(s3 + c + 16); a33.Store(s3 + c + 24);
            }
            for (; c < vPad; c += 8)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                float* kp = kT + c;
                for (int d = 0; d < D; d++, kp += kPad)
                {
                    var k0 = Vector256.Load(kp);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Create(q0[d]), k0, a0); a1 = Vector256.FusedMultiplyAdd(Vector256.Create(q1[d]), k0, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.Create(q2[d]), k0, a2); a3 = Vector256.FusedMultiplyAdd(Vector256.Create(q3[d]), k0, a3);
                }
                a0.Store(s0 + c); a1.Store(s1 + c); a2.Store(s2 + c); a3.Store(s3 + c);
            }
        }
    }

    /// <summary>s[0..vis) ← softmax(s·scale + bias); s[vis..vPad) ← 0. vis = 0 leaves zeros (the output is then 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SoftmaxRow(float* s, int vis, int vPad, float scale, float* bias)
    {
        int c = 0;
        float max = float.NegativeInfinity;
        if (Vector256.IsHardwareAccelerated)
        {
            var sc = Vector256.Create(scale);
            var m = Vector256.Create(float.NegativeInfinity);
            for (; c + 8 <= vis; c += 8)
            {
                var x = Vector256.Load(s + c) * sc;
                if (bias != null) x += Vector256.Load(bias + c);
                x.Store(s + c);
                m = Vector256.Max(m, x);
            }
            for (int l = 0; l < 8; l++) max = MathF.Max(max, m[l]);
        }
        for (; c < vis; c++)
        {
            float x = s[c] * scale;
            if (bias != null) x += bias[c];
            s[c] = x;
            if (x > max) max = x;
        }
        if (vis > 0)
        {
            float sum = FastMath.ExpSubtractSum(s, vis, max);
            FastMath.Scale(s, vis, 1f / sum);
        }
        for (c = vis; c < vPad; c++) s[c] = 0f;
    }

    /// <summary>O[r, 0..D) = Σ_c P[r, c]·V[c, 0..D) for c &lt; vmax (P is zero past each row's visible keys).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightedSum(float* P, int kPad, int rows, int vmax, float* v, int vStride, int D, float* o, int oStride)
    {
        for (int r0 = 0; r0 < rows; r0 += 4)
        {
            int rn = Math.Min(4, rows - r0);
            float* p0 = P + (long)r0 * kPad, p1 = P + (long)Math.Min(r0 + 1, rows - 1) * kPad;
            float* p2 = P + (long)Math.Min(r0 + 2, rows - 1) * kPad, p3 = P + (long)Math.Min(r0 + 3, rows - 1) * kPad;
            int d = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; d + 64 <= D; d += 64)
                {
                    Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                    Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
                    float* vp = v + d;
                    for (int c = 0; c < vmax; c++, vp += vStride)
                    {
                        var v0 = Vector512.Load(vp); var v1 = Vector512.Load(vp + 16); var v2 = Vector512.Load(vp + 32); var v3 = Vector512.Load(vp + 48);
                        var b = Vector512.Create(p0[c]);
                        a00 = Vector512.FusedMultiplyAdd(b, v0, a00); a01 = Vector512.FusedMultiplyAdd(b, v1, a01); a02 = Vector512.FusedMultiplyAdd(b, v2, a02); a03 = Vector512.FusedMultiplyAdd(b, v3, a03);
                        b = Vector512.Create(p1[c]);
                        a10 = Vector512.FusedMultiplyAdd(b, v0, a10); a11 = Vector512.FusedMultiplyAdd(b, v1, a11); a12 = Vector512.FusedMultiplyAdd(b, v2, a12); a13 = Vector512.FusedMultiplyAdd(b, v3, a13);
                        b = Vector512.Create(p2[c]);
                        a20 = Vector512.FusedMultiplyAdd(b, v0, a20); a21 = Vector512.FusedMultiplyAdd(b, v1, a21); a22 = Vector512.FusedMultiplyAdd(b, v2, a22); a23 = Vector512.FusedMultiplyAdd(b, v3, a23);
                        b = Vector512.Create(p3[c]);
                        a30 = Vector512.FusedMultiplyAdd(b, v0, a30); a31 = Vector512.FusedMultiplyAdd(b, v1, a31); a32 = Vector512.FusedMultiplyAdd(b, v2, a32); a33 = Vector512.FusedMultiplyAdd(b, v3, a33);
                    }
                    float* o0 = o + (long)r0 * oStride + d;
                    a00.Store(o0); a01.Store(o0 + 16); a02.Store(o0 + 32); a03.Store(o0 + 48);
                    if (rn > 1) { float* o1 = o0 + oStride; a10.Store(o1); a11.Store(o1 + 16); a12.Store(o1 + 32); a13.Store(o1 + 48); }
                    if (rn > 2) { float* o2 = o0 + 2L * oStride; a20.Store(o2); a21.Store(o2 + 16); a22.Store(o2 + 32); a23.Store(o2 + 48); }
                    if (rn > 3) { float* o3 = o0 + 3L * oStride; a30.Store(o3); a31.Store(o3 + 16); a32.Store(o3 + 32); a33.Store(o3 + 48); }
                }
                for (; d + 16 <= D; d += 16)
                {
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    float* vp = v + d;
                    for (int c = 0; c < vmax; c++, vp += vStride)
                    {
                        var v0 = Vector512.Load(vp);
                        a0 = Vector512.FusedMultiplyAdd(Vector512.Create(p0[c]), v0, a0); a1 = Vector512.FusedMultiplyAdd(Vector512.Create(p1[c]), v0, a1);
                        a2 = Vector512.FusedMultiplyAdd(Vector512.Create(p2[c]), v0, a2); a3 = Vector512.FusedMultiplyAdd(Vector512.Create(p3[c]), v0, a3);
                    }
                    float* o0 = o + (long)r0 * oStride + d;
                    a0.Store(o0);
                    if (rn > 1) a1.Store(o0 + oStride);
                    if (rn > 2) a2.Store(o0 + 2L * oStride);
                    if (rn > 3) a3.Store(o0 + 3L * oStride);
                }
            }
            for (; d + 32 <= D; d += 32)
            {
                Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
                float* vp = v + d;
                for (int c = 0; c < vmax; c++, vp += vStride)
                {
                    var v0 = Vector256.Load(vp); var v1 = Vector256.Load(vp + 8); var v2 = Vector256.Load(vp + 16); var v3 = Vector256.Load(vp + 24);
                    var b = Vector256.Create(p0[c]);
                    a00 = Vector256.FusedMultiplyAdd(b, v0, a00); a01 = Vector256.FusedMultiplyAdd(b, v1, a01); a02 = Vector256.FusedMultiplyAdd(b, v2, a02); a03 = Vector256.FusedMultiplyAdd(b, v3, a03);
                    b = Vector256.Create(p1[c]);
                    a10 = Vector256.FusedMultiplyAdd(b, v0, a10); a11 = Vector256.FusedMultiplyAdd(b, v1, a11); a12 = Vector256.FusedMultiplyAdd(b, v2, a12); a13 = Vector256.FusedMultiplyAdd(b, v3, a13);
                    b = Vector256.Create(p2[c]);
                    a20 = Vector256.FusedMultiplyAdd(b, v0, a20); a21 = Vector256.FusedMultiplyAdd(b, v1, a21); a22 = Vector256.FusedMultiplyAdd(b, v2, a22); a23 = Vector256.FusedMultiplyAdd(b, v3, a23);
                    b = Vector256.Create(p3[c]);
                    a30 = Vector256.FusedMultiplyAdd(b, v0, a30); a31 = Vector256.FusedMultiplyAdd(b, v1, a31); a32 = Vector256.FusedMultiplyAdd(b, v2, a32); a33 = Vector256.FusedMultiplyAdd(b, v3, a33);
                }
                float* o0 = o + (long)r0 * oStride + d;
                a00.Store(o0); a01.Store(o0 + 8); a02.Store(o0 + 16); a03.Store(o0 + 24);
                if (rn > 1) { float* o1 = o0 + oStride; a10.Store(o1); a11.Store(o1 + 8); a12.Store(o1 + 16); a13.Store(o1 + 24); }
                if (rn > 2) { float* o2 = o0 + 2L * oStride; a20.Store(o2); a21.Store(o2 + 8); a22.Store(o2 + 16); a23.Store(o2 + 24); }
                if (rn > 3) { float* o3 = o0 + 3L * oStride; a30.Store(o3); a31.Store(o3 + 8); a32.Store(o3 + 16); a33.Store(o3 + 24); }
            }
            for (; d + 8 <= D; d += 8)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                float* vp = v + d;
                for (int c = 0; c < vmax; c++, vp += vStride)
                {
                    var v0 = Vector256.Load(vp);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Create(p0[c]), v0, a0); a1 = Vector256.FusedMultiplyAdd(Vector256.Create(p1[c]), v0, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.Create(p2[c]), v0, a2); a3 = Vector256.FusedMultiplyAdd(Vector256.Create(p3[c]), v0, a3);
                }
                float* o0 = o + (long)r0 * oStride + d;
                a0.Store(o0);
                if (rn > 1) a1.Store(o0 + oStride);
                if (rn > 2) a2.Store(o0 + 2L * oStride);
                if (rn > 3) a3.Store(o0 + 3L * oStride);
            }
            for (; d < D; d++)
                for (int r = 0; r < rn; r++)
                {
                    float* pr = P + (long)(r0 + r) * kPad;
                    float acc = 0;
                    for (int c = 0; c < vmax; c++) acc = MathF.FusedMultiplyAdd(pr[c], v[(long)c * vStride + d], acc);
                    o[(long)(r0 + r) * oStride + d] = acc;
                }
        }
    }
}
