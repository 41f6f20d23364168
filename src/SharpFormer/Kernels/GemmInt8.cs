using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpFormer.Kernels;

/// <summary>
/// The int8 form of a <see cref="PackedWeight"/>: w[n, k] ≈ q[n, k] · scale[n] with q in [−127, 127] and
/// scale[n] = max_k |w[n, k]| / 127 (symmetric, per output channel).
/// Layout: panel p (columns p·32 .. p·32+31) is one contiguous run of <see cref="KPairs"/> rows of 64 bytes; row i holds
/// q[p·32 + c, 2i + j] at byte 2c + j, i.e. the (k, k+1) pair of each column side by side — what vpmaddwd multiplies
/// once sign-extended to int16. Zero past N, and an odd K gets a zero partner. A panel's K is contiguous: the GEMM cuts
/// it into blocks as it goes, carrying the exact int32 sums from block to block and dequantising once at the end.
/// </summary>
public sealed partial class PackedWeight
{
    float[]? _channelScales;

    internal int KPairs => (K + 1) / 2;
    /// <summary>scale[n] of each output channel, zero past N (pinned).</summary>
    internal unsafe float* ChannelScales => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_channelScales!));

    sbyte[] Int8Storage() => GC.AllocateArray<sbyte>(checked(PaddedN * 2 * KPairs + 64), pinned: true);

    unsafe void PackInt8(float* w, bool outIn)
    {
        int n = N, k = K;
        var scales = _channelScales = GC.AllocateArray<float>(PaddedN, pinned: true);
        var max = new float[n];
        if (outIn)
            for (int c = 0; c < n; c++) max[c] = MathF.Abs(TensorPrimitives.MaxMagnitude(new ReadOnlySpan<float>(w + (long)c * k, k)));
        else
        {
            var abs = new float[n];
            for (int kk = 0; kk < k; kk++)
            {
                TensorPrimitives.Abs(new ReadOnlySpan<float>(w + (long)kk * n, n), abs);
                TensorPrimitives.Max(max, abs, max);
            }
        }
        for (int c = 0; c < n; c++) scales[c] = max[c] / 127f;
        nint src = (nint)w;
        // Panels in parallel (load time, not the hot path).
        KernelContext.Current.For(PanelCount, 2L * PanelWidth * k * PanelCount, pan =>
        {
            sbyte* dst = (sbyte*)Pointer + (long)pan * PanelWidth * 2 * KPairs;
            float* ws = (float*)src;
            for (int c = 0; c < Math.Min(PanelWidth, n - pan * PanelWidth); c++)
            {
                int col = pan * PanelWidth + c;
                float inv = max[col] > 0 ? 127f / max[col] : 0f;
                for (int kk = 0; kk < k; kk++)
                {
                    float v = outIn ? ws[(long)col * k + kk] : ws[(long)kk * n + col];
                    dst[(kk >> 1) * 2 * PanelWidth + 2 * c + (kk & 1)] = (sbyte)MathF.Round(v * inv);
                }
            }
        });
    }
}

/// <summary>
/// y = x·Wᵀ + b with an int8 <see cref="PackedWeight"/>: each row of x is quantised at run time (scale = max|x_row| / 127,
/// round to nearest even), the products are summed exactly in int32 (vpmaddwd: int16 pairs → int32, then an add),
/// and y[m, n] = acc · (rowScale[m] · scale[n]) + b[n] in float32 with one rounding (a fused multiply-add).
/// |q| ≤ 127, so a pair sums to at most 32 258 and int32 cannot overflow below K ≈ 133 000.
/// Mirrors <see cref="Gemm.Linear"/>: A is quantised once per call into mr-row panels (int32 = an int16 (k, k+1) pair)
/// that every thread shares; threads split the weight's panels (or the rows when there are too few panels); rows are
/// taken in chunks whose quantised A stays in L2, and each panel in K blocks of 16 KB that stay in L1 while every row
/// block of the chunk runs over them; few rows (decode) take a streaming path.
/// </summary>
[SkipLocalsInit]
internal static unsafe class GemmInt8
{
    /// <summary>2: AVX-512BW (8×32 tiles), 1: AVX2 (6×16), 0: scalar (4×32), at most the context's <see cref="KernelContext.Isa"/>.</summary>
    static int IsaOf(KernelContext kernels) => kernels.IsaLevel == 2 && Avx512BW.IsSupported ? 2 : kernels.IsaLevel >= 1 && Avx2.IsSupported ? 1 : 0;
    static int MR(int isa) => isa == 2 ? 8 : isa == 1 ? 6 : 4;
    static int NR(int isa) => isa == 1 ? 16 : 32;
    /// <summary>Rows up to which the streaming path is used (A rows contiguous, each weight panel read once for all of them).</summary>
    const int SmallM = 4;
    /// <summary>Bytes of quantised A per row chunk: well inside L2 next to the weight panel being swept.</summary>
    const int AChunkBytes = 256 << 10;
    /// <summary>Rows per chunk at most (a multiple of every mr): the chunk's int32 sums for one panel sit on the stack.</summary>
    const int MCMax = 240;
    /// <summary>k pairs per K block: 64 bytes each, so a panel block is 16 KB of L1.</summary>
    const int KcPairs = 256;
    const int PW = PackedWeight.PanelWidth;

    struct Job
    {
        public float* X, Y, Bias, RowScales, ColScales;
        public int* A;
        public sbyte* B;
        public int M, K, KPairs, N, Panels, Isa, Mr, Tasks;
        public bool SplitM;
    }

    public static void Linear(KernelContext kernels, ReadOnlySpan<float> x, int m, PackedWeight w, ReadOnlySpan<float> bias, Span<float> y)
    {
        int isa = IsaOf(kernels), kp = w.KPairs;
        int mr = m <= SmallM ? 1 : MR(isa);
        int rowBlocks = (m + mr - 1) / mr;
        long aBytes = (long)rowBlocks * mr * kp * 4, bytes = aBytes + rowBlocks * mr * 4;
        // The calling thread's quantised A and row scales (the helpers only read them during the call).
        byte* buffer = (byte*)kernels.Scratch(KernelContext.ScratchSlot.Int8, bytes);
        fixed (float* px = x, py = y, pb = bias)
        {
            var job = new Job
            {
                X = px, Y = py, Bias = bias.IsEmpty ? null : pb, RowScales = (float*)(buffer + aBytes), ColScales = w.ChannelScales,
                A = (int*)buffer, B = (sbyte*)w.Pointer, M = m, K = w.K, KPairs = kp, N = w.N, Panels = w.PanelCount, Isa = isa, Mr = mr,
            };
            job.Tasks = kernels.ThreadsFor(8L * m * w.K, rowBlocks);
            kernels.Run(job.Tasks, job.Tasks, &QuantizeTask, &job);

            // Split the panels (A is shared, so splitting rows saves nothing) unless there are too few of them.
            int t = kernels.ThreadsFor(2L * m * w.N * w.K, int.MaxValue);
            job.SplitM = m > SmallM && job.Panels < t;
            job.Tasks = Math.Max(1, Math.Min(t, job.SplitM ? rowBlocks : job.Panels));
            kernels.Run(job.Tasks, job.Tasks, &GemmTask, &job);
        }
        GC.KeepAlive(w);
    }

    // ---------------------------------------------------------------- activations: quantise and pack
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void QuantizeTask(void* ctx, int t)
    {
        ref Job j = ref *(Job*)ctx;
        int mr = j.Mr, blocks = (j.M + mr - 1) / mr;
        float* inv = stackalloc float[8];
        for (int b = (int)((long)t * blocks / j.Tasks); b < (int)((long)(t + 1) * blocks / j.Tasks); b++)
        {
            int r0 = b * mr, rows = Math.Min(mr, j.M - r0);
            float* x = j.X + (long)r0 * j.K;
            int* dst = j.A + (long)r0 * j.KPairs; // row r0 + r is unit column r of this mr-row panel
            for (int r = 0; r < mr; r++)
            {
                float max = r < rows ? MathF.Abs(TensorPrimitives.MaxMagnitude(new ReadOnlySpan<float>(x + (long)r * j.K, j.K))) : 0f;
                // A row of zeros gets scale 0; a NaN anywhere makes the scale, and so that row of y, NaN.
                inv[r] = max > 0 ? 127f / max : 0f;
                j.RowScales[r0 + r] = max / 127f;
            }
            int i = rows == 8 ? Quantize8Rows(x, j.K, inv, dst) : 0;
            for (int r = 0; r < mr; r++) QuantizeRow(x + (long)r * j.K, i, r < rows ? j.K : 0, inv[r], dst + r, mr, j.KPairs);
        }
    }

    /// <summary>round(x·inv) as an int16 pair (k, k+1) in an int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Pairs(float* x, float inv) => Vector256.Narrow(
        Vector256.ConvertToInt32Native(Vector256.Round(Vector256.Load(x) * inv)),
        Vector256.ConvertToInt32Native(Vector256.Round(Vector256.Load(x + 8) * inv))).AsSingle();

    /// <summary>
    /// Eight full rows, 16 columns at a time: each row gives 8 pairs, and an 8×8 transpose of those int32s (moved as float
    /// bits) writes them in panel order. Returns the column where it stopped (the rest is <see cref="QuantizeRow"/>'s).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static int Quantize8Rows(float* x, int k, float* inv, int* dst)
    {
        if (!Vector256.IsHardwareAccelerated) return 0;
        int i = 0;
        for (; i + 16 <= k; i += 16)
            Gemm.Transpose8x8(Pairs(x + i, inv[0]), Pairs(x + k + i, inv[1]), Pairs(x + 2L * k + i, inv[2]), Pairs(x + 3L * k + i, inv[3]),
                Pairs(x + 4L * k + i, inv[4]), Pairs(x + 5L * k + i, inv[5]), Pairs(x + 6L * k + i, inv[6]), Pairs(x + 7L * k + i, inv[7]),
                (float*)dst + i / 2 * 8);
        return i;
    }

    /// <summary>
    /// Columns [from, k) of one row as round(x·inv) in (k, k+1) int16 pairs, one int32 every <paramref name="stride"/> ints,
    /// then zero pairs up to <paramref name="kp"/> (k = 0 for a padding row).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void QuantizeRow(float* x, int from, int k, float inv, int* dst, int stride, int kp)
    {
        int i = from;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= k; i += 16)
            {
                var pairs = Pairs(x + i, inv).AsInt32();
                if (stride == 1) pairs.Store(dst + i / 2);
                else for (int u = 0; u < 8; u++) dst[(long)(i / 2 + u) * stride] = pairs[u];
            }
        for (; i < k; i += 2)
        {
            int q0 = (int)MathF.Round(x[i] * inv), q1 = i + 1 < k ? (int)MathF.Round(x[i + 1] * inv) : 0;
            dst[(long)(i / 2) * stride] = (ushort)q0 | q1 << 16;
        }
        for (int u = (i + 1) / 2; u < kp; u++) dst[(long)u * stride] = 0;
    }

    // ---------------------------------------------------------------- the product
    static void GemmTask(void* ctx, int t)
    {
        ref Job j = ref *(Job*)ctx;
        int m0 = 0, m1 = j.M, p0 = 0, p1 = j.Panels;
        if (j.SplitM)
        {
            int blocks = (j.M + j.Mr - 1) / j.Mr;
            m0 = (int)((long)t * blocks / j.Tasks) * j.Mr;
            m1 = Math.Min(j.M, (int)((long)(t + 1) * blocks / j.Tasks) * j.Mr);
        }
        else
        {
            p0 = (int)((long)t * j.Panels / j.Tasks);
            p1 = (int)((long)(t + 1) * j.Panels / j.Tasks);
        }
        if (m1 <= m0 || p1 <= p0) return;
        if (j.Mr == 1) Skinny(ref j, p0, p1);
        else Blocked(ref j, m0, m1, p0, p1);
    }

    /// <summary>Where a tile's int32 sums go: y[r, c] = acc·(rowScale[r]·colScale[c]) + bias[c].</summary>
    readonly struct Tile(float* y, int ldy, int rows, int cols, float* rowScales, float* colScales, float* bias)
    {
        public readonly float* Y = y, RowScales = rowScales, ColScales = colScales, Bias = bias;
        public readonly int Ldy = ldy, Rows = rows, Cols = cols;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Blocked(ref Job j, int m0, int m1, int p0, int p1)
    {
        int isa = j.Isa, mr = j.Mr, nr = NR(isa), kp = j.KPairs, n = j.N;
        int mc = Math.Clamp(AChunkBytes / (4 * kp) / mr * mr, mr, MCMax);
        int* acc = stackalloc int[MCMax * PW]; // row block b's mr×nr sums at b·mr·nr
        for (int i0 = m0; i0 < m1; i0 += mc)
        {
            int i1 = Math.Min(m1, i0 + mc);
            for (int p = p0; p < p1; p++)
                for (int s = 0; s < PW; s += nr)
                {
                    int col0 = p * PW + s;
                    if (col0 >= n) break;
                    for (int kb = 0; kb < kp; kb += KcPairs)
                    {
                        int kc = Math.Min(KcPairs, kp - kb);
                        sbyte* b = j.B + ((long)p * kp + kb) * 2 * PW + 2 * s;
                        for (int r = i0; r < i1; r += mr)
                        {
                            int* a = j.A + (long)r * kp + (long)kb * mr;
                            int* t = acc + (r - i0) * nr;
                            if (isa == 2) Kernel8x32(a, b, kc, t, kb > 0);
                            else if (isa == 1) Kernel6x16(a, b, kc, t, kb > 0);
                            else KernelScalar(a, mr, b, kc, t, mr, kb > 0);
                        }
                    }
                    float* bias = j.Bias == null ? null : j.Bias + col0;
                    for (int r = i0; r < i1; r += mr)
                        Store(acc + (r - i0) * nr, nr, new Tile(j.Y + (long)r * n + col0, n, Math.Min(mr, i1 - r), Math.Min(nr, n - col0), j.RowScales + r, j.ColScales + col0, bias));
                }
        }
    }

    /// <summary>m ≤ 4 rows: each of this task's panels is read once (in memory order) and applied to every row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Skinny(ref Job j, int p0, int p1)
    {
        int kp = j.KPairs, n = j.N;
        int* acc = stackalloc int[PW];
        for (int p = p0; p < p1; p++)
        {
            sbyte* bp = j.B + (long)p * 2 * PW * kp;
            int col0 = p * PW;
            for (int r = 0; r < j.M; r++)
            {
                int* a = j.A + (long)r * kp;
                if (j.Isa == 2) Row512(a, bp, kp, acc);
                else if (j.Isa == 1) Row256(a, bp, kp, acc);
                else KernelScalar(a, 1, bp, kp, acc, rows: 1, add: false);
                Store(acc, PW, new Tile(j.Y + (long)r * n + col0, n, 1, Math.Min(PW, n - col0), j.RowScales + r, j.ColScales + col0, j.Bias == null ? null : j.Bias + col0));
            }
        }
    }

    /// <summary>Dequantises a tile of int32 sums (row stride ts) into y, 8 columns at a time where it can.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Store(int* acc, int ts, in Tile o)
    {
        for (int r = 0; r < o.Rows; r++)
        {
            float sa = o.RowScales[r];
            int* ar = acc + r * ts;
            float* yr = o.Y + (long)r * o.Ldy;
            int c = 0;
            if (Vector256.IsHardwareAccelerated)
                for (; c + 8 <= o.Cols; c += 8)
                {
                    var b = o.Bias == null ? Vector256<float>.Zero : Vector256.Load(o.Bias + c);
                    Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Vector256.Load(ar + c)), Vector256.Create(sa) * Vector256.Load(o.ColScales + c), b).Store(yr + c);
                }
            for (; c < o.Cols; c++)
                yr[c] = MathF.FusedMultiplyAdd(ar[c], sa * o.ColScales[c], o.Bias == null ? 0f : o.Bias[c]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<int> Dot(Vector512<short> a, Vector512<short> b) => Avx512BW.MultiplyAddAdjacent(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Dot(Vector256<short> a, Vector256<short> b) => Avx2.MultiplyAddAdjacent(a, b);
    /// <summary>16 columns' (k, k+1) pairs, sign-extended to int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<short> Widen512(sbyte* b) => Avx512BW.ConvertToVector512Int16(Vector256.Load(b));
    /// <summary>8 columns' (k, k+1) pairs, sign-extended to int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<short> Widen256(sbyte* b) => Avx2.ConvertToVector256Int16(Vector128.Load(b));

    // ---------------------------------------------------------------- AVX-512BW: 8 rows × 32 columns
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32(int* a, sbyte* b, int kp, int* acc, bool add)
    {
        Vector512<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<int> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        if (add)
        {
            c00 = Vector512.Load(acc); c01 = Vector512.Load(acc + 16); c10 = Vector512.Load(acc + 32); c11 = Vector512.Load(acc + 48);
            c20 = Vector512.Load(acc + 64); c21 = Vector512.Load(acc + 80); c30 = Vector512.Load(acc + 96); c31 = Vector512.Load(acc + 112);
            c40 = Vector512.Load(acc + 128); c41 = Vector512.Load(acc + 144); c50 = Vector512.Load(acc + 160); c51 = Vector512.Load(acc + 176);
            c60 = Vector512.Load(acc + 192); c61 = Vector512.Load(acc + 208); c70 = Vector512.Load(acc + 224); c71 = Vector512.Load(acc + 240);
        }
        for (int i = 0; i < kp; i++)
        {
            var b0 = Widen512(b); var b1 = Widen512(b + 32);
            var av = Vector512.Create(a[0]).AsInt16(); c00 += Dot(av, b0); c01 += Dot(av, b1);
            av = Vector512.Create(a[1]).AsInt16(); c10 += Dot(av, b0); c11 += Dot(av, b1);
            av = Vector512.Create(a[2]).AsInt16(); c20 += Dot(av, b0); c21 += Dot(av, b1);
            av = Vector512.Create(a[3]).AsInt16(); c30 += Dot(av, b0); c31 += Dot(av, b1);
            av = Vector512.Create(a[4]).AsInt16(); c40 += Dot(av, b0); c41 += Dot(av, b1);
            av = Vector512.Create(a[5]).AsInt16(); c50 += Dot(av, b0); c51 += Dot(av, b1);
            av = Vector512.Create(a[6]).AsInt16(); c60 += Dot(av, b0); c61 += Dot(av, b1);
            av = Vector512.Create(a[7]).AsInt16(); c70 += Dot(av, b0); c71 += Dot(av, b1);
            a += 8; b += 64;
        }
        c00.Store(acc); c01.Store(acc + 16); c10.Store(acc + 32); c11.Store(acc + 48); c20.Store(acc + 64); c21.Store(acc + 80);
        c30.Store(acc + 96); c31.Store(acc + 112); c40.Store(acc + 128); c41.Store(acc + 144); c50.Store(acc + 160); c51.Store(acc + 176);
        c60.Store(acc + 192); c61.Store(acc + 208); c70.Store(acc + 224); c71.Store(acc + 240);
    }

    // ---------------------------------------------------------------- AVX2: 6 rows × 16 columns (b points at the sub-panel's first pair)
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16(int* a, sbyte* b, int kp, int* acc, bool add)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        if (add)
        {
            c00 = Vector256.Load(acc); c01 = Vector256.Load(acc + 8); c10 = Vector256.Load(acc + 16); c11 = Vector256.Load(acc + 24);
            c20 = Vector256.Load(acc + 32); c21 = Vector256.Load(acc + 40); c30 = Vector256.Load(acc + 48); c31 = Vector256.Load(acc + 56);
            c40 = Vector256.Load(acc + 64); c41 = Vector256.Load(acc + 72); c50 = Vector256.Load(acc + 80); c51 = Vector256.Load(acc + 88);
        }
        for (int i = 0; i < kp; i++)
        {
            var b0 = Widen256(b); var b1 = Widen256(b + 16);
            var av = Vector256.Create(a[0]).AsInt16(); c00 += Dot(av, b0); c01 += Dot(av, b1);
            av = Vector256.Create(a[1]).AsInt16(); c10 += Dot(av, b0); c11 += Dot(av, b1);
            av = Vector256.Create(a[2]).AsInt16(); c20 += Dot(av, b0); c21 += Dot(av, b1);
            av = Vector256.Create(a[3]).AsInt16(); c30 += Dot(av, b0); c31 += Dot(av, b1);
            av = Vector256.Create(a[4]).AsInt16(); c40 += Dot(av, b0); c41 += Dot(av, b1);
            av = Vector256.Create(a[5]).AsInt16(); c50 += Dot(av, b0); c51 += Dot(av, b1);
            a += 6; b += 2 * PW;
        }
        c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + 16); c11.Store(acc + 24); c20.Store(acc + 32); c21.Store(acc + 40);
        c30.Store(acc + 48); c31.Store(acc + 56); c40.Store(acc + 64); c41.Store(acc + 72); c50.Store(acc + 80); c51.Store(acc + 88);
    }

    // ---------------------------------------------------------------- scalar: rows × 32 columns, A in mr-row panels
    static void KernelScalar(int* a, int mr, sbyte* b, int kp, int* acc, int rows, bool add)
    {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < PW; c++)
            {
                int s = add ? acc[r * PW + c] : 0;
                for (int i = 0; i < kp; i++)
                {
                    int u = a[(long)i * mr + r];
                    sbyte* bi = b + (long)i * 2 * PW + 2 * c;
                    s += (short)u * bi[0] + (u >> 16) * bi[1];
                }
                acc[r * PW + c] = s;
            }
    }

    // ---------------------------------------------------------------- one row × 32 columns (decode)
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row512(int* a, sbyte* b, int kp, int* acc)
    {
        Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
        int i = 0;
        for (; i + 2 <= kp; i += 2)
        {
            var a0 = Vector512.Create(a[i]).AsInt16(); var a1 = Vector512.Create(a[i + 1]).AsInt16();
            s0 += Dot(a0, Widen512(b)); s1 += Dot(a0, Widen512(b + 32));
            s2 += Dot(a1, Widen512(b + 64)); s3 += Dot(a1, Widen512(b + 96));
            b += 4 * PW;
        }
        if (i < kp)
        {
            var a0 = Vector512.Create(a[i]).AsInt16();
            s0 += Dot(a0, Widen512(b)); s1 += Dot(a0, Widen512(b + 32));
        }
        (s0 + s2).Store(acc); (s1 + s3).Store(acc + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row256(int* a, sbyte* b, int kp, int* acc)
    {
        Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int i = 0; i < kp; i++)
        {
            var av = Vector256.Create(a[i]).AsInt16();
            s0 += Dot(av, Widen256(b)); s1 += Dot(av, Widen256(b + 16));
            s2 += Dot(av, Widen256(b + 32)); s3 += Dot(av, Widen256(b + 48));
            b += 2 * PW;
        }
        s0.Store(acc); s1.Store(acc + 8); s2.Store(acc + 16); s3.Store(acc + 24);
    }
}
