using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Kernels;

/// <summary>Element type of a <see cref="PackedWeight"/>. The float GEMM widens to float32 and accumulates in float32 either way.</summary>
public enum WeightPrecision
{
    /// <summary>float32, as in the checkpoint.</summary>
    Float32,
    /// <summary>bfloat16 (the top half of a float32, rounded to nearest even): half the memory and weight traffic.</summary>
    BFloat16,
    /// <summary>int8, symmetric per output channel, with activations quantised per row at run time: integer products (see GemmInt8.cs).</summary>
    Int8,
}

/// <summary>Names of <see cref="WeightPrecision"/> values.</summary>
public static class WeightPrecisions
{
    /// <summary>The short name used by <c>--dtype</c> (f32, bf16, int8), or null for any other text.</summary>
    public static WeightPrecision? FromName(string? name) => name switch
    {
        "f32" => WeightPrecision.Float32,
        "bf16" => WeightPrecision.BFloat16,
        "int8" => WeightPrecision.Int8,
        _ => null,
    };
}

/// <summary>
/// A weight matrix W (N outputs × K inputs) packed once at load for <see cref="Gemm.Linear"/>.
/// Layout (internal, may change): K is cut into blocks of <see cref="KBlock"/>; block b (rows k0 .. k0+kc-1 of
/// Wᵀ) starts at k0·PaddedN elements and holds the column panels of <see cref="PanelWidth"/> one after another,
/// each panel kc rows of 32 contiguous elements (W[p·32 .. p·32+31, k] for k in the block), zero-padded past N.
/// Float32 rows are in column order. BFloat16 rows are 16 uints, uint i = bf16(column i) | bf16(column 16 + i) &lt;&lt; 16,
/// so that a shift or a mask (no shuffle) widens 16 columns at once (see <see cref="Gemm"/>'s Bf16Panel).
/// A panel block (at most 32 KB) is what the micro-kernel keeps in L1; the storage is 64-byte aligned.
/// </summary>
public sealed partial class PackedWeight
{
    /// <summary>Output columns per packed panel.</summary>
    public const int PanelWidth = 32;
    internal const int KBlock = 256;

    /// <summary>Inputs (columns of W, rows of the product's right-hand side).</summary>
    public int K { get; }
    /// <summary>Outputs (rows of W).</summary>
    public int N { get; }
    /// <summary>How the weights are stored.</summary>
    public WeightPrecision Precision { get; }
    internal int PanelCount => (N + PanelWidth - 1) / PanelWidth;
    internal int PaddedN => PanelCount * PanelWidth;
    internal int ElementBytes => Precision switch { WeightPrecision.BFloat16 => 2, WeightPrecision.Int8 => 1, _ => 4 };
    /// <summary>Pinned (never moves): float[], ushort[] or sbyte[]; the packed data starts at <see cref="Pointer"/>.</summary>
    readonly Array _storage;
    readonly int _offsetBytes;

    unsafe PackedWeight(int k, int n, WeightPrecision precision)
    {
        if (k < 0 || n < 0) throw new ArgumentOutOfRangeException(nameof(k), "PackedWeight: negative size");
        K = k; N = n; Precision = precision;
        int len = checked((int)((long)PaddedN * k + 32));
        // Not cleared: packing writes every panel in full, zero padding included (a BERT-base is 400 MB of weights).
        _storage = precision switch
        {
            WeightPrecision.BFloat16 => GC.AllocateUninitializedArray<ushort>(len, pinned: true),
            WeightPrecision.Int8 => Int8Storage(),
            _ => GC.AllocateUninitializedArray<float>(len, pinned: true),
        };
        nint addr = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage));
        _offsetBytes = (int)((64 - (addr & 63)) & 63);
    }

    internal unsafe byte* Pointer => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage)) + _offsetBytes;

    /// <summary>Bytes of packed data (what a GEMM streams per use).</summary>
    public long Bytes => (long)PaddedN * K * ElementBytes;

    /// <summary>From nn.Linear's layout: weight[n, k].</summary>
    public static PackedWeight FromOutIn(ReadOnlySpan<float> w, int n, int k, WeightPrecision precision = WeightPrecision.Float32) =>
        Pack(w, n, k, outIn: true, precision);

    /// <summary>From GPT-2's Conv1D layout: weight[k, n].</summary>
    public static PackedWeight FromInOut(ReadOnlySpan<float> w, int k, int n, WeightPrecision precision = WeightPrecision.Float32) =>
        Pack(w, n, k, outIn: false, precision);

    static unsafe PackedWeight Pack(ReadOnlySpan<float> w, int n, int k, bool outIn, WeightPrecision precision)
    {
        if (w.Length < (long)n * k) throw new ArgumentException($"PackedWeight.{(outIn ? "FromOutIn" : "FromInOut")}: weight too small");
        var p = new PackedWeight(k, n, precision);
        if (n == 0 || k == 0) return p;
        fixed (float* src = w)
        {
            if (precision == WeightPrecision.Int8) { p.PackInt8(src, outIn); return p; }
            nint s = (nint)src;
            // Panels in parallel (load time, not the hot path).
            KernelContext.Current.For(p.PanelCount, (long)n * k, pan => p.PackPanel((float*)s, pan, outIn), minWork: 1 << 18);
        }
        return p;
    }

    /// <summary>
    /// Column <paramref name="n"/> of a Float32 matrix (row n of nn.Linear's weight[n, k]) into <paramref name="dst"/>:
    /// exact, so a tied head's packed copy can serve the embedding lookup as well.
    /// </summary>
    public unsafe void CopyColumn(int n, Span<float> dst)
    {
        if (Precision != WeightPrecision.Float32) throw new InvalidOperationException($"PackedWeight.CopyColumn: {Precision} columns are not the original values");
        if ((uint)n >= (uint)N || dst.Length < K) throw new ArgumentOutOfRangeException(nameof(n), $"PackedWeight.CopyColumn: column {n} of {N}, {dst.Length} of {K} values");
        int pan = n / PanelWidth, c = n % PanelWidth;
        for (int k0 = 0; k0 < K; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, K - k0);
            float* src = (float*)Pointer + (long)k0 * PaddedN + (long)pan * PanelWidth * kc + c;
            for (int kk = 0; kk < kc; kk++) dst[k0 + kk] = src[kk * PanelWidth];
        }
    }

    /// <summary>Gathers each K block of panel <paramref name="pan"/> as kc×32 floats, then stores it in this precision.</summary>
    [SkipLocalsInit]
    unsafe void PackPanel(float* w, int pan, bool outIn)
    {
        int n = N, k = K;
        int cols = Math.Min(PanelWidth, n - pan * PanelWidth);
        float* block = stackalloc float[KBlock * PanelWidth];
        for (int k0 = 0; k0 < k; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, k - k0);
            if (cols < PanelWidth) new Span<float>(block, kc * PanelWidth).Clear();
            if (outIn) GatherOutIn(w + (long)pan * PanelWidth * k + k0, k, kc, cols, block); // W[pan·32, k0]
            else
                for (int kk = 0; kk < kc; kk++)
                    new ReadOnlySpan<float>(w + (long)(k0 + kk) * n + pan * PanelWidth, cols).CopyTo(new Span<float>(block + kk * PanelWidth, cols));
            byte* dst = Pointer + ((long)k0 * PaddedN + (long)pan * PanelWidth * kc) * ElementBytes;
            if (Precision == WeightPrecision.Float32) Buffer.MemoryCopy(block, dst, (long)kc * PanelWidth * 4, (long)kc * PanelWidth * 4);
            else
                for (int kk = 0; kk < kc; kk++)
                {
                    // Row layout: uint i = bf16(column i) | bf16(column 16 + i) << 16.
                    float* row = block + kk * PanelWidth;
                    uint* d = (uint*)dst + kk * PanelWidth / 2;
                    for (int i = 0; i < 16; i += 8)
                        ((RoundToBFloat16(Vector256.Load(row + i)) >> 16) | (RoundToBFloat16(Vector256.Load(row + 16 + i)) & Vector256.Create(0xFFFF0000u))).Store(d + i);
                }
        }
    }

    /// <summary>block[kk·32 + c] = src[c·ld + kk]: a transpose, 8×8 blocks through registers.</summary>
    static unsafe void GatherOutIn(float* src, int ld, int kc, int cols, float* block)
    {
        int c = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; c + 8 <= cols; c += 8)
            {
                float* s0 = src + (long)c * ld;
                int kk = 0;
                for (; kk + 8 <= kc; kk += 8)
                    Gemm.Transpose8x8(Vector256.Load(s0 + kk), Vector256.Load(s0 + ld + kk), Vector256.Load(s0 + 2L * ld + kk), Vector256.Load(s0 + 3L * ld + kk),
                        Vector256.Load(s0 + 4L * ld + kk), Vector256.Load(s0 + 5L * ld + kk), Vector256.Load(s0 + 6L * ld + kk), Vector256.Load(s0 + 7L * ld + kk),
                        block + (long)kk * PanelWidth + c, PanelWidth);
                for (; kk < kc; kk++)
                    for (int r = 0; r < 8; r++) block[(long)kk * PanelWidth + c + r] = s0[(long)r * ld + kk];
            }
        for (; c < cols; c++)
        {
            float* row = src + (long)c * ld;
            for (int kk = 0; kk < kc; kk++) block[(long)kk * PanelWidth + c] = row[kk];
        }
    }

    /// <summary>
    /// float32 → bfloat16 in the top half of each lane (low half garbage), rounded to nearest even: the identity on values
    /// already bf16, so a BF16 checkpoint's weights come through bit for bit. NaN stays a (quiet) NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<uint> RoundToBFloat16(Vector256<float> f)
    {
        var bits = f.AsUInt32();
        var rounded = bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One);
        return Vector256.ConditionalSelect(Vector256.IsNaN(f).AsUInt32(), bits | Vector256.Create(0x400000u), rounded);
    }
}

/// <summary>Matrix products against <see cref="PackedWeight"/>s: the linear layers of every model.</summary>
[SkipLocalsInit]
public static unsafe class Gemm
{
    static int MR(int isa) => isa == 2 ? 8 : isa == 1 ? 6 : 4;
    static int NR(int isa) => isa == 2 ? 32 : isa == 1 ? 16 : 8;
    // Rows of A per packed block. A wide weight (an LM head: a K block of B far beyond L3) is streamed from DRAM once per
    // row block, so it gets twice the rows (GPT-2 prefill of 512 tokens: 350 → 325 ms); narrower ones stay in L3 anyway.
    static int MC(int isa, int n) => isa == 2 ? (n >= 8192 ? 256 : 128) : isa == 1 ? 120 : 128;
    const int MCMax = 256;
    /// <summary>Rows up to which the GEMV-like streaming path is used (no A packing, B streamed once).</summary>
    const int SmallM = 4;

    struct Job
    {
        public float* X, Y, Bias;
        public byte* B;
        public int M, K, N, PaddedN, Panels, Isa, Tasks;
        public bool SplitM, BFloat16;
        /// <summary>Applied to each finished C tile while it is in L1 (Identity: none).</summary>
        public Activation Activation;
    }

    /// <summary>
    /// y[m, n] = act(Σ_k x[m, k]·W[n, k] + bias[n]) for m rows (bias may be empty). The activation gives the same values
    /// as <see cref="Activations.Apply"/> on y afterwards; the vectorised ones (the GELUs, SiLU, sigmoid) are applied
    /// to each tile as it is finished, which saves a pass over y. Runs in <see cref="KernelContext.Current"/> (its threads,
    /// SIMD path, profile and scratch).
    /// </summary>
    public static void Linear(ReadOnlySpan<float> x, int m, PackedWeight w, ReadOnlySpan<float> bias, Span<float> y,
                              Activation activation = Activation.Identity)
    {
        var kernels = KernelContext.Current;
        using var profile = kernels.Profile.Time(ProfiledKernel.Gemm);
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m));
        if (x.Length < (long)m * w.K || y.Length < (long)m * w.N) throw new ArgumentException("Gemm.Linear: buffer too small");
        if (!bias.IsEmpty && bias.Length < w.N) throw new ArgumentException("Gemm.Linear: bias too small");
        int k = w.K, n = w.N;
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            for (int r = 0; r < m; r++)
                if (bias.IsEmpty) y.Slice(r * n, n).Clear(); else bias.Slice(0, n).CopyTo(y.Slice(r * n, n));
            Activations.Apply(activation, y[..(m * n)]);
            return;
        }
        if (w.Precision == WeightPrecision.Int8)
        {
            GemmInt8.Linear(kernels, x, m, w, bias, y);
            Activations.Apply(activation, y[..(m * n)]);
            return;
        }
        bool fused = m > SmallM && Activations.HasTileForm(activation);
        fixed (float* px = x, py = y, pb = bias)
        {
            var job = new Job
            {
                X = px, Y = py, Bias = bias.IsEmpty ? null : pb, B = w.Pointer,
                M = m, K = k, N = n, PaddedN = w.PaddedN, Panels = w.PanelCount, Isa = kernels.IsaLevel, BFloat16 = w.Precision == WeightPrecision.BFloat16,
                Activation = fused ? activation : Activation.Identity,
            };
            int mr = MR(job.Isa);
            int rowBlocks = (m + mr - 1) / mr;
            long flops = 2L * m * n * k;
            int t = kernels.ThreadsFor(flops, int.MaxValue);
            // Split the columns (each thread streams its share of the weight once) unless there are many rows
            // (then split rows: A is packed once overall) or too few panels to share.
            if (m <= SmallM) { job.SplitM = false; t = Math.Min(t, job.Panels); }
            else if ((m >= 256 && rowBlocks >= 2 * t) || job.Panels < t) { job.SplitM = true; t = Math.Min(t, rowBlocks); }
            else { job.SplitM = false; t = Math.Min(t, job.Panels); }
            job.Tasks = Math.Max(1, t);
            kernels.Run(job.Tasks, job.Tasks, &Task, &job);
        }
        if (!fused) Activations.Apply(activation, y[..(m * n)]);
        // The workers read the packed weight through a raw pointer: keep its (pinned) array alive until they finish.
        GC.KeepAlive(w);
    }

    static void Task(void* ctx, int t)
    {
        ref Job j = ref *(Job*)ctx;
        int m0 = 0, m1 = j.M, p0 = 0, p1 = j.Panels;
        if (j.SplitM)
        {
            int mr = MR(j.Isa), blocks = (j.M + mr - 1) / mr;
            m0 = (int)((long)t * blocks / j.Tasks) * mr;
            m1 = Math.Min(j.M, (int)((long)(t + 1) * blocks / j.Tasks) * mr);
        }
        else
        {
            p0 = (int)((long)t * j.Panels / j.Tasks);
            p1 = (int)((long)(t + 1) * j.Panels / j.Tasks);
        }
        if (m1 <= m0 || p1 <= p0) return;
        if (j.BFloat16)
        {
            if (j.M <= SmallM) Skinny<Bf16Panel>(ref j, p0, p1);
            else Blocked<Bf16Panel>(ref j, m0, m1, p0, p1);
        }
        else if (j.M <= SmallM) Skinny<F32Panel>(ref j, p0, p1);
        else Blocked<F32Panel>(ref j, m0, m1, p0, p1);
    }

    // Bytes of C that one column chunk × row block may take: the tile stays in L2 while every K block accumulates into it.
    const int CTileBytes = 512 * 1024;

    /// <remarks>
    /// Loops: row block (A packed once for all of K) → column chunk → K block → panel → micro-tiles. C is written
    /// chunk by chunk, each chunk finished over all of K while it is in L2: with K outermost (the textbook order for a
    /// pre-packed B) C made a round trip to DRAM per K block once M·N outgrew the caches (32 × 128 tokens, LM heads).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Blocked<TPanel>(ref Job j, int m0, int m1, int p0, int p1) where TPanel : struct, IPanel
    {
        int isa = j.Isa, mr = MR(isa), nr = NR(isa), mc = MC(isa, j.N);
        int K = j.K, N = j.N, eb = TPanel.ElementBytes, pw = PackedWeight.PanelWidth, kb = PackedWeight.KBlock;
        // This thread's buffer for a packed row block of A (helpers run only their own context's jobs).
        float* abuf = (float*)KernelContext.Current.Scratch(KernelContext.ScratchSlot.GemmA, (long)MCMax * K * sizeof(float));
        int chunk = Math.Max(1, CTileBytes / (mc * pw * sizeof(float)));
        for (int i0 = m0; i0 < m1; i0 += mc)
        {
            int mcur = Math.Min(mc, m1 - i0), mpad = (mcur + mr - 1) / mr * mr, rowBlocks = mpad / mr;
            for (int k0 = 0; k0 < K; k0 += kb) PackA(j.X + (long)i0 * K + k0, K, mcur, Math.Min(kb, K - k0), mr, abuf + (long)mpad * k0);
            for (int c0 = p0; c0 < p1; c0 += chunk)
            {
                int c1 = Math.Min(p1, c0 + chunk);
                for (int k0 = 0; k0 < K; k0 += kb)
                {
                    int kc = Math.Min(kb, K - k0), kcNext = Math.Min(kb, K - k0 - kc);
                    byte* bblk = j.B + (long)k0 * j.PaddedN * eb;
                    long slab = (long)pw * kc * eb;
                    float* ablk = abuf + (long)mpad * k0;
                    bool add = k0 > 0;
                    var act = k0 + kc >= K ? j.Activation : Activation.Identity;
                    for (int p = c0; p < c1; p++)
                    {
                        byte* bp = bblk + (long)p * slab;
                        // A weight slab comes from DRAM at its first use in a pass, faster than one core streams it: while
                        // the row blocks run on this slab, pull the next one into L2, a share per row block. A few rows
                        // (batched decoding) stream faster than the prefetches would spread: left to the hardware.
                        byte* next = null;
                        long nextBytes = 0;
                        if (rowBlocks >= 4)
                        {
                            if (p + 1 < c1) { next = bp + slab; nextBytes = slab; }
                            else if (kcNext > 0) { nextBytes = (long)pw * kcNext * eb; next = bblk + (long)kc * j.PaddedN * eb + c0 * nextBytes; }
                            else if (c1 < p1) { nextBytes = (long)pw * Math.Min(kb, K) * eb; next = j.B + c1 * nextBytes; }
                        }
                        long share = next == null ? 0 : (nextBytes / rowBlocks + 63) & ~63L;
                        for (int s = 0; s < pw; s += nr)
                        {
                            int col0 = p * pw + s;
                            if (col0 >= N) break;
                            int cols = Math.Min(nr, N - col0);
                            float* bias = add || j.Bias == null ? null : j.Bias + col0;
                            float* cbase = j.Y + (long)i0 * N + col0;
                            for (int ir = 0; ir < mcur; ir += mr)
                            {
                                if (s == 0 && share > 0) PrefetchL2(next, (ir / mr) * share, share, nextBytes);
                                int rows = Math.Min(mr, mcur - ir);
                                float* a = ablk + (long)ir * kc;
                                float* c = cbase + (long)ir * N;
                                if (isa == 2) Kernel8x32<TPanel>(a, bp, kc, c, N, rows, cols, add, bias);
                                else if (isa == 1) Kernel6x16<TPanel>(a, bp, s, kc, c, N, rows, cols, add, bias);
                                else Kernel4x8<TPanel>(a, bp, s, kc, c, N, rows, cols, add, bias);
                                if (act != Activation.Identity)
                                    for (int r = 0; r < rows; r++) Activations.ApplyTile(act, c + (long)r * N, cols);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Prefetches bytes [from, from + count) ∩ [0, limit) of <paramref name="p"/> into L2, a cache line at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PrefetchL2(byte* p, long from, long count, long limit)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        long end = Math.Min(from + count, limit);
        for (long o = from; o < end; o += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch1(p + o);
    }

    /// <summary>Packs rows [0, mcur) × cols [0, kc) of A (leading dimension lda) into mr-tall panels, zero-padded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackA(float* src, int lda, int mcur, int kc, int mr, float* dst)
    {
        for (int ir = 0; ir < mcur; ir += mr)
        {
            int rows = Math.Min(mr, mcur - ir);
            float* d = dst + (long)ir * kc;
            float* s = src + (long)ir * lda;
            if (rows == 8 && mr == 8)
            {
                float* r0 = s, r1 = s + lda, r2 = s + 2L * lda, r3 = s + 3L * lda;
                float* r4 = s + 4L * lda, r5 = s + 5L * lda, r6 = s + 6L * lda, r7 = s + 7L * lda;
                int kk = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; kk + 8 <= kc; kk += 8)
                    {
                        Transpose8x8(Vector256.Load(r0 + kk), Vector256.Load(r1 + kk), Vector256.Load(r2 + kk), Vector256.Load(r3 + kk),
                            Vector256.Load(r4 + kk), Vector256.Load(r5 + kk), Vector256.Load(r6 + kk), Vector256.Load(r7 + kk), d);
                        d += 64;
                    }
                }
                for (; kk < kc; kk++)
                {
                    d[0] = r0[kk]; d[1] = r1[kk]; d[2] = r2[kk]; d[3] = r3[kk];
                    d[4] = r4[kk]; d[5] = r5[kk]; d[6] = r6[kk]; d[7] = r7[kk];
                    d += 8;
                }
            }
            else
            {
                for (int r = 0; r < mr; r++)
                {
                    if (r < rows)
                    {
                        float* sr = s + (long)r * lda;
                        for (int kk = 0; kk < kc; kk++) d[kk * mr + r] = sr[kk];
                    }
                    else for (int kk = 0; kk < kc; kk++) d[kk * mr + r] = 0f;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3,
        Vector256<float> a4, Vector256<float> a5, Vector256<float> a6, Vector256<float> a7, float* d, int ds = 8)
    {
        // Portable shuffles (Vector256.Shuffle with constant indices compiles to permutes on AVX2/AVX-512).
        var t0 = UnpackLo(a0, a1); var t1 = UnpackHi(a0, a1); var t2 = UnpackLo(a2, a3); var t3 = UnpackHi(a2, a3);
        var t4 = UnpackLo(a4, a5); var t5 = UnpackHi(a4, a5); var t6 = UnpackLo(a6, a7); var t7 = UnpackHi(a6, a7);
        // t0 = a0_0 a1_0 a0_1 a1_1 | a0_4 a1_4 a0_5 a1_5
        var u0 = Lo64(t0, t2); var u1 = Hi64(t0, t2); var u2 = Lo64(t1, t3); var u3 = Hi64(t1, t3);
        var u4 = Lo64(t4, t6); var u5 = Hi64(t4, t6); var u6 = Lo64(t5, t7); var u7 = Hi64(t5, t7);
        // u0 = a0_0 a1_0 a2_0 a3_0 | a0_4 a1_4 a2_4 a3_4
        Vector256.Create(u0.GetLower(), u4.GetLower()).Store(d);
        Vector256.Create(u1.GetLower(), u5.GetLower()).Store(d + ds);
        Vector256.Create(u2.GetLower(), u6.GetLower()).Store(d + 2 * ds);
        Vector256.Create(u3.GetLower(), u7.GetLower()).Store(d + 3 * ds);
        Vector256.Create(u0.GetUpper(), u4.GetUpper()).Store(d + 4 * ds);
        Vector256.Create(u1.GetUpper(), u5.GetUpper()).Store(d + 5 * ds);
        Vector256.Create(u2.GetUpper(), u6.GetUpper()).Store(d + 6 * ds);
        Vector256.Create(u3.GetUpper(), u7.GetUpper()).Store(d + 7 * ds);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> UnpackLo(Vector256<float> a, Vector256<float> b) =>
        System.Runtime.Intrinsics.X86.Avx.IsSupported ? System.Runtime.Intrinsics.X86.Avx.UnpackLow(a, b)
        : Vector256.Create(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5]);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> UnpackHi(Vector256<float> a, Vector256<float> b) =>
        System.Runtime.Intrinsics.X86.Avx.IsSupported ? System.Runtime.Intrinsics.X86.Avx.UnpackHigh(a, b)
        : Vector256.Create(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7]);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Lo64(Vector256<float> a, Vector256<float> b) =>
        System.Runtime.Intrinsics.X86.Avx.IsSupported ? System.Runtime.Intrinsics.X86.Avx.Shuffle(a, b, 0x44)
        : Vector256.Create(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5]);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Hi64(Vector256<float> a, Vector256<float> b) =>
        System.Runtime.Intrinsics.X86.Avx.IsSupported ? System.Runtime.Intrinsics.X86.Avx.Shuffle(a, b, 0xEE)
        : Vector256.Create(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7]);

    /// <summary>Writes a rows×cols tile t (row stride ts) into C: C = t (+ bias) or C += t.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Merge(float* t, int ts, float* c, int ldc, int rows, int cols, bool add, float* bias)
    {
        for (int r = 0; r < rows; r++)
        {
            float* cr = c + (long)r * ldc, tr = t + r * ts;
            if (add) for (int q = 0; q < cols; q++) cr[q] += tr[q];
            else if (bias != null) for (int q = 0; q < cols; q++) cr[q] = tr[q] + bias[q];
            else for (int q = 0; q < cols; q++) cr[q] = tr[q];
        }
    }

    // ---------------------------------------------------------------- Vector512: 8 rows × 32 columns
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32<TPanel>(float* a, byte* b, int kc, float* c, int ldc, int rows, int cols, bool add, float* bias) where TPanel : struct, IPanel
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int k = 0; k < kc; k++)
        {
            TPanel.Load512(b, out var b0, out var b1);
            var av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            a += 8; b += TPanel.RowBytes;
        }
        if (rows == 8 && cols == 32)
        {
            if (add)
            {
                Acc512(c, c00, c01); Acc512(c + ldc, c10, c11); Acc512(c + 2L * ldc, c20, c21); Acc512(c + 3L * ldc, c30, c31);
                Acc512(c + 4L * ldc, c40, c41); Acc512(c + 5L * ldc, c50, c51); Acc512(c + 6L * ldc, c60, c61); Acc512(c + 7L * ldc, c70, c71);
                return;
            }
            if (bias != null)
            {
                var bb0 = Vector512.Load(bias); var bb1 = Vector512.Load(bias + 16);
                c00 += bb0; c01 += bb1; c10 += bb0; c11 += bb1; c20 += bb0; c21 += bb1; c30 += bb0; c31 += bb1;
                c40 += bb0; c41 += bb1; c50 += bb0; c51 += bb1; c60 += bb0; c61 += bb1; c70 += bb0; c71 += bb1;
            }
            c00.Store(c); c01.Store(c + 16); c10.Store(c + ldc); c11.Store(c + ldc + 16);
            c20.Store(c + 2L * ldc); c21.Store(c + 2L * ldc + 16); c30.Store(c + 3L * ldc); c31.Store(c + 3L * ldc + 16);
            c40.Store(c + 4L * ldc); c41.Store(c + 4L * ldc + 16); c50.Store(c + 5L * ldc); c51.Store(c + 5L * ldc + 16);
            c60.Store(c + 6L * ldc); c61.Store(c + 6L * ldc + 16); c70.Store(c + 7L * ldc); c71.Store(c + 7L * ldc + 16);
            return;
        }
        float* t = stackalloc float[8 * 32];
        c00.Store(t); c01.Store(t + 16); c10.Store(t + 32); c11.Store(t + 48); c20.Store(t + 64); c21.Store(t + 80); c30.Store(t + 96); c31.Store(t + 112);
        c40.Store(t + 128); c41.Store(t + 144); c50.Store(t + 160); c51.Store(t + 176); c60.Store(t + 192); c61.Store(t + 208); c70.Store(t + 224); c71.Store(t + 240);
        Merge(t, 32, c, ldc, rows, cols, add, bias);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Acc512(float* c, Vector512<float> v0, Vector512<float> v1)
    {
        (Vector512.Load(c) + v0).Store(c);
        (Vector512.Load(c + 16) + v1).Store(c + 16);
    }

    // ---------------------------------------------------------------- Vector256: 6 rows × 16 columns (columns s .. s+15 of a panel)
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16<TPanel>(float* a, byte* b, int s, int kc, float* c, int ldc, int rows, int cols, bool add, float* bias) where TPanel : struct, IPanel
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int k = 0; k < kc; k++)
        {
            TPanel.Load256(b, s, out var b0, out var b1);
            var av = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            a += 6; b += TPanel.RowBytes;
        }
        float* t = stackalloc float[6 * 16];
        c00.Store(t); c01.Store(t + 8); c10.Store(t + 16); c11.Store(t + 24); c20.Store(t + 32); c21.Store(t + 40);
        c30.Store(t + 48); c31.Store(t + 56); c40.Store(t + 64); c41.Store(t + 72); c50.Store(t + 80); c51.Store(t + 88);
        if (cols == 16)
        {
            Vector256<float> bb0 = default, bb1 = default;
            if (!add && bias != null) { bb0 = Vector256.Load(bias); bb1 = Vector256.Load(bias + 8); }
            for (int r = 0; r < rows; r++)
            {
                float* cr = c + (long)r * ldc;
                var v0 = Vector256.Load(t + r * 16); var v1 = Vector256.Load(t + r * 16 + 8);
                if (add) { v0 += Vector256.Load(cr); v1 += Vector256.Load(cr + 8); }
                else { v0 += bb0; v1 += bb1; }
                v0.Store(cr); v1.Store(cr + 8);
            }
            return;
        }
        Merge(t, 16, c, ldc, rows, cols, add, bias);
    }

    // ---------------------------------------------------------------- portable Vector128: 4 rows × 8 columns (s .. s+7 of a panel)
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel4x8<TPanel>(float* a, byte* b, int s, int kc, float* c, int ldc, int rows, int cols, bool add, float* bias) where TPanel : struct, IPanel
    {
        Vector128<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int k = 0; k < kc; k++)
        {
            TPanel.Load128(b, s, out var b0, out var b1);
            var av = Vector128.Create(a[0]); c00 = Vector128.FusedMultiplyAdd(av, b0, c00); c01 = Vector128.FusedMultiplyAdd(av, b1, c01);
            av = Vector128.Create(a[1]); c10 = Vector128.FusedMultiplyAdd(av, b0, c10); c11 = Vector128.FusedMultiplyAdd(av, b1, c11);
            av = Vector128.Create(a[2]); c20 = Vector128.FusedMultiplyAdd(av, b0, c20); c21 = Vector128.FusedMultiplyAdd(av, b1, c21);
            av = Vector128.Create(a[3]); c30 = Vector128.FusedMultiplyAdd(av, b0, c30); c31 = Vector128.FusedMultiplyAdd(av, b1, c31);
            a += 4; b += TPanel.RowBytes;
        }
        float* t = stackalloc float[4 * 8];
        c00.Store(t); c01.Store(t + 4); c10.Store(t + 8); c11.Store(t + 12); c20.Store(t + 16); c21.Store(t + 20); c30.Store(t + 24); c31.Store(t + 28);
        Merge(t, 8, c, ldc, rows, cols, add, bias);
    }

    // ---------------------------------------------------------------- few rows (decode): stream B once
    /// <summary>
    /// m ≤ 4 rows: for each K block, each of this task's panels is read once (in memory order) and applied to every row.
    /// With Vector512 the task's panels are taken as four equal runs read in lockstep: four memory streams per core
    /// instead of one. A core has only a few outstanding cache misses, so one stream leaves DRAM idle between them
    /// (<c>bench -- bandwidth</c>, a sum over 256 MB: 10 → 17 GB/s on one core with four streams, 15 → 24 on two).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Skinny<TPanel>(ref Job j, int p0, int p1) where TPanel : struct, IPanel
    {
        int K = j.K, N = j.N, isa = j.Isa, pw = PackedWeight.PanelWidth;
        int quarter = isa == 2 ? (p1 - p0) / 4 : 0;
        float* t = stackalloc float[4 * pw];
        for (int k0 = 0; k0 < K; k0 += PackedWeight.KBlock)
        {
            int kc = Math.Min(PackedWeight.KBlock, K - k0);
            byte* bblk = j.B + (long)k0 * j.PaddedN * TPanel.ElementBytes;
            long slab = (long)pw * kc * TPanel.ElementBytes;
            bool add = k0 > 0;
            for (int q = 0; q < quarter; q++)
            {
                byte* bp = bblk + (p0 + q) * slab;
                for (int r = 0; r < j.M; r++)
                {
                    Row512x4<TPanel>(j.X + (long)r * K + k0, bp, quarter * slab, kc, t);
                    for (int i = 0; i < 4; i++) MergePanel(ref j, t + i * pw, r, p0 + q + i * quarter, add);
                }
            }
            for (int p = p0 + 4 * quarter; p < p1; p++)
            {
                byte* bp = bblk + p * slab;
                for (int r = 0; r < j.M; r++)
                {
                    float* x = j.X + (long)r * K + k0;
                    if (isa == 2) Row512<TPanel>(x, bp, kc, t);
                    else if (isa == 1) Row256<TPanel>(x, bp, kc, t);
                    else Row128<TPanel>(x, bp, kc, t);
                    MergePanel(ref j, t, r, p, add);
                }
            }
        }
    }

    /// <summary>Row r's 32 results t of panel p into y: stored (+ bias) for the first K block, added for the others.</summary>
    static void MergePanel(ref Job j, float* t, int r, int p, bool add)
    {
        int col0 = p * PackedWeight.PanelWidth, cols = Math.Min(PackedWeight.PanelWidth, j.N - col0);
        Merge(t, PackedWeight.PanelWidth, j.Y + (long)r * j.N + col0, j.N, 1, cols, add, add || j.Bias == null ? null : j.Bias + col0);
    }

    /// <summary>t[i·32 .. i·32+31] = x · panel i for the four panels at b + i·<paramref name="gap"/> bytes, read in lockstep.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row512x4<TPanel>(float* x, byte* b, long gap, int kc, float* t) where TPanel : struct, IPanel
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        byte* b1 = b + gap, b2 = b1 + gap, b3 = b2 + gap;
        for (int k = 0; k < kc; k++)
        {
            var xv = Vector512.Create(x[k]);
            TPanel.Load512(b, out var c0, out var c1); TPanel.Load512(b1, out var c2, out var c3);
            TPanel.Load512(b2, out var c4, out var c5); TPanel.Load512(b3, out var c6, out var c7);
            s0 = Vector512.FusedMultiplyAdd(xv, c0, s0); s1 = Vector512.FusedMultiplyAdd(xv, c1, s1);
            s2 = Vector512.FusedMultiplyAdd(xv, c2, s2); s3 = Vector512.FusedMultiplyAdd(xv, c3, s3);
            s4 = Vector512.FusedMultiplyAdd(xv, c4, s4); s5 = Vector512.FusedMultiplyAdd(xv, c5, s5);
            s6 = Vector512.FusedMultiplyAdd(xv, c6, s6); s7 = Vector512.FusedMultiplyAdd(xv, c7, s7);
            b += TPanel.RowBytes; b1 += TPanel.RowBytes; b2 += TPanel.RowBytes; b3 += TPanel.RowBytes;
        }
        s0.Store(t); s1.Store(t + 16); s2.Store(t + 32); s3.Store(t + 48);
        s4.Store(t + 64); s5.Store(t + 80); s6.Store(t + 96); s7.Store(t + 112);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row512<TPanel>(float* x, byte* b, int kc, float* t) where TPanel : struct, IPanel
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        int k = 0;
        for (; k + 2 <= kc; k += 2)
        {
            var x0 = Vector512.Create(x[k]); var x1 = Vector512.Create(x[k + 1]);
            TPanel.Load512(b, out var b0, out var b1); TPanel.Load512(b + TPanel.RowBytes, out var b2, out var b3);
            s0 = Vector512.FusedMultiplyAdd(x0, b0, s0); s1 = Vector512.FusedMultiplyAdd(x0, b1, s1);
            s2 = Vector512.FusedMultiplyAdd(x1, b2, s2); s3 = Vector512.FusedMultiplyAdd(x1, b3, s3);
            b += 2 * TPanel.RowBytes;
        }
        if (k < kc)
        {
            var x0 = Vector512.Create(x[k]);
            TPanel.Load512(b, out var b0, out var b1);
            s0 = Vector512.FusedMultiplyAdd(x0, b0, s0); s1 = Vector512.FusedMultiplyAdd(x0, b1, s1);
        }
        (s0 + s2).Store(t); (s1 + s3).Store(t + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row256<TPanel>(float* x, byte* b, int kc, float* t) where TPanel : struct, IPanel
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int k = 0; k < kc; k++)
        {
            var xv = Vector256.Create(x[k]);
            TPanel.Load256(b, 0, out var b0, out var b1); TPanel.Load256(b, 16, out var b2, out var b3);
            s0 = Vector256.FusedMultiplyAdd(xv, b0, s0); s1 = Vector256.FusedMultiplyAdd(xv, b1, s1);
            s2 = Vector256.FusedMultiplyAdd(xv, b2, s2); s3 = Vector256.FusedMultiplyAdd(xv, b3, s3);
            b += TPanel.RowBytes;
        }
        s0.Store(t); s1.Store(t + 8); s2.Store(t + 16); s3.Store(t + 24);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row128<TPanel>(float* x, byte* b, int kc, float* t) where TPanel : struct, IPanel
    {
        Vector128<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        for (int k = 0; k < kc; k++)
        {
            var xv = Vector128.Create(x[k]);
            TPanel.Load128(b, 0, out var b0, out var b1); TPanel.Load128(b, 8, out var b2, out var b3);
            TPanel.Load128(b, 16, out var b4, out var b5); TPanel.Load128(b, 24, out var b6, out var b7);
            s0 = Vector128.FusedMultiplyAdd(xv, b0, s0); s1 = Vector128.FusedMultiplyAdd(xv, b1, s1);
            s2 = Vector128.FusedMultiplyAdd(xv, b2, s2); s3 = Vector128.FusedMultiplyAdd(xv, b3, s3);
            s4 = Vector128.FusedMultiplyAdd(xv, b4, s4); s5 = Vector128.FusedMultiplyAdd(xv, b5, s5);
            s6 = Vector128.FusedMultiplyAdd(xv, b6, s6); s7 = Vector128.FusedMultiplyAdd(xv, b7, s7);
            b += TPanel.RowBytes;
        }
        s0.Store(t); s1.Store(t + 4); s2.Store(t + 8); s3.Store(t + 12); s4.Store(t + 16); s5.Store(t + 20); s6.Store(t + 24); s7.Store(t + 28);
    }

    // ---------------------------------------------------------------- panel element types
    /// <summary>
    /// How one row of a packed panel (the 32 columns of one k) is stored and widened to float32 in registers.
    /// The kernels are generic over it, so the JIT compiles one specialised copy per element type.
    /// </summary>
    interface IPanel
    {
        static abstract int ElementBytes { get; }
        static abstract int RowBytes { get; }
        /// <summary>Columns 0–15 and 16–31.</summary>
        static abstract void Load512(byte* row, out Vector512<float> c0, out Vector512<float> c1);
        /// <summary>Columns s .. s+7 and s+8 .. s+15 (s = 0 or 16).</summary>
        static abstract void Load256(byte* row, int s, out Vector256<float> c0, out Vector256<float> c1);
        /// <summary>Columns s .. s+3 and s+4 .. s+7 (s = 0, 8, 16 or 24).</summary>
        static abstract void Load128(byte* row, int s, out Vector128<float> c0, out Vector128<float> c1);
    }

    readonly struct F32Panel : IPanel
    {
        public static int ElementBytes => 4;
        public static int RowBytes => 128;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load512(byte* row, out Vector512<float> c0, out Vector512<float> c1)
        {
            c0 = Vector512.Load((float*)row); c1 = Vector512.Load((float*)row + 16);
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load256(byte* row, int s, out Vector256<float> c0, out Vector256<float> c1)
        {
            c0 = Vector256.Load((float*)row + s); c1 = Vector256.Load((float*)row + s + 8);
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load128(byte* row, int s, out Vector128<float> c0, out Vector128<float> c1)
        {
            c0 = Vector128.Load((float*)row + s); c1 = Vector128.Load((float*)row + s + 4);
        }
    }

    /// <summary>
    /// bfloat16 rows of 16 uints, uint i = bf16(column i) | bf16(column 16 + i) &lt;&lt; 16. A bf16 is the top half of a
    /// float32, so the low halves widen with a shift by 16 and the high halves by masking off the low 16 bits.
    /// </summary>
    readonly struct Bf16Panel : IPanel
    {
        public static int ElementBytes => 2;
        public static int RowBytes => 64;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load512(byte* row, out Vector512<float> c0, out Vector512<float> c1)
        {
            var u = Vector512.Load((uint*)row);
            c0 = (u << 16).AsSingle(); c1 = (u & Vector512.Create(0xFFFF0000u)).AsSingle();
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load256(byte* row, int s, out Vector256<float> c0, out Vector256<float> c1)
        {
            // s = 0: the low halves (shift up); s = 16: the high halves (shift 0, mask the low ones off).
            var keep = Vector256.Create(~0u << s);
            c0 = ((Vector256.Load((uint*)row) << (16 - s)) & keep).AsSingle();
            c1 = ((Vector256.Load((uint*)row + 8) << (16 - s)) & keep).AsSingle();
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load128(byte* row, int s, out Vector128<float> c0, out Vector128<float> c1)
        {
            uint* u = (uint*)row + (s & 15);
            int h = s & 16;
            var keep = Vector128.Create(~0u << h);
            c0 = ((Vector128.Load(u) << (16 - h)) & keep).AsSingle();
            c1 = ((Vector128.Load(u + 4) << (16 - h)) & keep).AsSingle();
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
