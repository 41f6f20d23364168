using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Kernels;

/// <summary>The activation functions HuggingFace's <c>ACT2FN</c> names, by the names configs use.</summary>
public enum Activation
{
    /// <summary>"gelu", "gelu_python": x·Φ(x) with the exact normal CDF (erf).</summary>
    GeluErf,
    /// <summary>"gelu_new", "gelu_pytorch_tanh", "gelu_accurate": the tanh approximation of GELU.</summary>
    GeluTanh,
    /// <summary>"gelu_fast": HuggingFace's FastGELUActivation (the tanh approximation, written differently).</summary>
    GeluFast,
    /// <summary>"quick_gelu": x·sigmoid(1.702·x).</summary>
    QuickGelu,
    /// <summary>"relu": max(x, 0).</summary>
    Relu,
    /// <summary>"silu", "swish": x·sigmoid(x).</summary>
    Silu,
    /// <summary>"tanh".</summary>
    Tanh,
    /// <summary>"sigmoid".</summary>
    Sigmoid,
    /// <summary>"linear": no activation.</summary>
    Identity,
    /// <summary>"mish": x·tanh(softplus(x)).</summary>
    Mish,
}

/// <summary>The activation functions, applied in place with HuggingFace's formulas.</summary>
public static unsafe class Activations
{
    /// <summary>The activation a config names (<c>hidden_act</c> / <c>activation_function</c>); an unknown name is a one-line error.</summary>
    public static Activation Parse(string name) => name switch
    {
        "gelu" or "gelu_python" => Activation.GeluErf,
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_accurate" => Activation.GeluTanh,
        "gelu_fast" => Activation.GeluFast,
        "quick_gelu" => Activation.QuickGelu,
        "relu" => Activation.Relu,
        "silu" or "swish" => Activation.Silu,
        "tanh" => Activation.Tanh,
        "sigmoid" => Activation.Sigmoid,
        "linear" => Activation.Identity,
        "mish" => Activation.Mish,
        _ => throw new SharpFormerException($"config.json: unknown activation function \"{name}\""),
    };

    const double Sqrt2OverPi = 0.7978845608028654;

    /// <summary>
    /// Applies the activation in place. The tanh/sigmoid GELUs, SiLU and sigmoid are evaluated in double precision on
    /// vector lanes (exp by <see cref="FastMath"/>'s double exp), so results are the correctly rounded float of the double
    /// formula up to ~1 ulp — the same as the scalar double reference. The exact (erf) GELU is evaluated on float lanes
    /// (<see cref="GeluErfF(Vector512{float})"/>): within 6 ulps of the double reference for x ≥ −4 (measured max 4.94), and
    /// within 1e-7·|x| absolute below (measured 1e-11·|x|), where the result is below 1.3e-4 and vanishes like e^(−x²/2).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Apply(Activation act, Span<float> x)
    {
        var kernels = KernelContext.Current;
        using var profile = kernels.Profile.Time(ProfiledKernel.Activation);
        if (!Unvectorised(act, x))
            fixed (float* p = x) Split(kernels, new Job { X = p, N = x.Length, Act = act });
    }

    /// <summary>Applies the activations <see cref="Range"/> does not vectorise (true), or does nothing (false).</summary>
    static bool Unvectorised(Activation act, Span<float> x)
    {
        switch (act)
        {
            case Activation.Relu:
                System.Numerics.Tensors.TensorPrimitives.Max(x, 0f, x);
                return true;
            case Activation.Identity:
                return true;
            case Activation.Tanh:
                for (int i = 0; i < x.Length; i++) x[i] = MathF.Tanh(x[i]);
                return true;
            case Activation.Mish:
                for (int i = 0; i < x.Length; i++) { double v = x[i]; x[i] = (float)(v * Math.Tanh(Math.Log(1.0 + Math.Exp(v)))); }
                return true;
        }
        return false;
    }

    /// <summary>
    /// A gated activation over the rows of a stacked gate | up product (Llama's MLP): for each of <paramref name="rows"/>
    /// rows of 2·n floats, the gate half becomes act(gate) (the same values as <see cref="Apply"/>) and
    /// h[row] = act(gate) · up. Rows are spread over the kernel threads: a prefill's rows are many, each short.
    /// </summary>
    public static void ApplyGated(Activation act, Span<float> gateUp, int rows, int n, Span<float> h)
    {
        var kernels = KernelContext.Current;
        using var profile = kernels.Profile.Time(ProfiledKernel.Activation);
        if (rows < 0 || n < 0 || gateUp.Length < 2L * rows * n || h.Length < (long)rows * n) throw new ArgumentException("Activations.ApplyGated: buffers too small");
        fixed (float* gu = gateUp, ph = h)
        {
            var job = new GatedJob { GateUp = gu, H = ph, N = n, Act = act };
            kernels.Run(rows, kernels.ThreadsFor(20L * rows * n, rows), &GatedRow, &job);
        }
    }

    struct GatedJob { public float* GateUp, H; public int N; public Activation Act; }

    static void GatedRow(void* ctx, int r)
    {
        ref GatedJob j = ref *(GatedJob*)ctx;
        float* gate = j.GateUp + 2L * r * j.N;
        if (!Unvectorised(j.Act, new Span<float>(gate, j.N))) Range(j.Act, gate, j.N);
        System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(gate, j.N), new ReadOnlySpan<float>(gate + j.N, j.N), new Span<float>(j.H + (long)r * j.N, j.N));
    }

    /// <summary>
    /// Backward of the activation: dx[i] = dy[i]·act'(pre[i]) (dx may be dy). The vectorised family is evaluated like
    /// <see cref="Apply"/> (double lanes, split over the kernel threads) and matches <see cref="ScalarDerivative"/> to ~1 ulp.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Backward(Activation act, ReadOnlySpan<float> pre, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int n = pre.Length;
        if (dy.Length < n || dx.Length < n) throw new ArgumentException("Activations.Backward: dy and dx must cover pre");
        switch (act)
        {
            case Activation.Relu:
                for (int i = 0; i < n; i++) dx[i] = pre[i] > 0 ? dy[i] : 0f;
                return;
            case Activation.Identity:
                dy.Slice(0, n).CopyTo(dx);
                return;
            case Activation.Tanh:
                for (int i = 0; i < n; i++) { double t = Math.Tanh(pre[i]); dx[i] = (float)(dy[i] * (1 - t * t)); }
                return;
            case Activation.Mish:
                throw new ArgumentOutOfRangeException(nameof(act), "no backward for mish");
        }
        fixed (float* x = pre, g = dy, o = dx) Split(KernelContext.Current, new Job { X = x, Dy = g, Dx = o, N = n, Act = act });
    }

    /// <summary>A forward (Dy null: X in place) or backward (Dx = Dy·act'(X)) pass over N elements.</summary>
    struct Job { public float* X, Dy, Dx; public int N, Chunk; public Activation Act; }

    static void Split(KernelContext kernels, Job job)
    {
        // Large activations (e.g. 128 tokens × 3072) are split over the kernel threads in 16-aligned chunks.
        int n = job.N;
        if (n == 0) return;
        int chunks = n >= 32768 ? Math.Min(4 * kernels.Threads, n / 8192) : 1;
        int threads = kernels.ThreadsFor(20L * n, chunks);
        job.Chunk = threads <= 1 ? n : ((n + chunks - 1) / chunks + 15) & ~15;
        kernels.Run((n + job.Chunk - 1) / job.Chunk, threads, &RunChunk, &job);
    }

    /// <summary>Whether <see cref="ApplyTile"/> can apply this activation (the ones <see cref="Range"/> vectorises).</summary>
    internal static bool HasTileForm(Activation act) =>
        act is Activation.GeluErf or Activation.GeluTanh or Activation.GeluFast or Activation.QuickGelu or Activation.Silu or Activation.Sigmoid;

    /// <summary>
    /// <see cref="Apply"/> on n floats in place on the calling thread, for a GEMM tile just written: the same values as
    /// <see cref="Apply"/> (same lane formulas) except that a tail of fewer than 8 uses the scalar reference.
    /// </summary>
    internal static void ApplyTile(Activation act, float* p, int n) => Range(act, p, n);

    static void RunChunk(void* ctx, int i)
    {
        ref Job j = ref *(Job*)ctx;
        int start = i * j.Chunk, n = Math.Min(j.Chunk, j.N - start);
        if (j.Dy == null) Range(j.Act, j.X + start, n);
        else BackwardRange(j.Act, j.X + start, j.Dy + start, j.Dx + start, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Range(Activation act, float* p, int n)
    {
        int i = 0;
        if (act == Activation.GeluErf)
        {
            // Float lanes (see GeluErfF): ~10× cheaper than widening to double.
            if (Vector512.IsHardwareAccelerated)
                for (; i + 16 <= n; i += 16) GeluErfF(Vector512.Load(p + i)).Store(p + i);
            if (Vector256.IsHardwareAccelerated)
                for (; i + 8 <= n; i += 8) GeluErfF(Vector256.Load(p + i)).Store(p + i);
        }
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(p + i));
                Vector512.Narrow(Eval512(act, lo), Eval512(act, hi)).Store(p + i);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(p + i));
                Vector256.Narrow(Eval256(act, lo), Eval256(act, hi)).Store(p + i);
            }
        for (; i < n; i++) p[i] = (float)Scalar(act, p[i]);
    }

    /// <summary>The reference (scalar double) definition of each vectorised activation.</summary>
    internal static double Scalar(Activation act, double v) => act switch
    {
        // 1 + erf(z) = erfc(−z): no cancellation for large negative inputs.
        Activation.GeluErf => 0.5 * v * MathF2.Erfc(-v * 0.7071067811865476),
        // 0.5·(1 + tanh u) = 1 / (1 + e^(−2u)): no cancellation for large negative inputs.
        Activation.GeluTanh => v / (1.0 + Math.Exp(-2.0 * Sqrt2OverPi * (v + 0.044715 * v * v * v))),
        Activation.GeluFast => v / (1.0 + Math.Exp(-2.0 * (v * Sqrt2OverPi * (1.0 + 0.044715 * v * v)))),
        Activation.QuickGelu => v / (1.0 + Math.Exp(-1.702 * v)),
        Activation.Silu => v / (1.0 + Math.Exp(-v)),
        Activation.Sigmoid => 1.0 / (1.0 + Math.Exp(-v)),
        _ => throw new ArgumentOutOfRangeException(nameof(act)),
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void BackwardRange(Activation act, float* x, float* dy, float* dx, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(x + i));
                var (glo, ghi) = Vector512.Widen(Vector512.Load(dy + i));
                Vector512.Narrow(glo * Derivative512(act, lo), ghi * Derivative512(act, hi)).Store(dx + i);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                var (glo, ghi) = Vector256.Widen(Vector256.Load(dy + i));
                Vector256.Narrow(glo * Derivative256(act, lo), ghi * Derivative256(act, hi)).Store(dx + i);
            }
        for (; i < n; i++) dx[i] = (float)(dy[i] * ScalarDerivative(act, x[i]));
    }

    const double InvSqrt2Pi = 0.3989422804014327;

    /// <summary>
    /// The reference (scalar double) derivative of each vectorised activation. With s the logistic of the tanh argument,
    /// 0.5·(1 + tanh u) = s and 1 − tanh² u = 4·s·(1 − s): no cancellation for large negative inputs.
    /// </summary>
    internal static double ScalarDerivative(Activation act, double v)
    {
        switch (act)
        {
            case Activation.GeluErf:
                return 0.5 * MathF2.Erfc(-v * 0.7071067811865476) + v * InvSqrt2Pi * Math.Exp(-0.5 * v * v);
            case Activation.GeluTanh:
            case Activation.GeluFast:
            {
                double u = Sqrt2OverPi * (v + 0.044715 * v * v * v), du = Sqrt2OverPi * (1 + 3 * 0.044715 * v * v);
                double s = 1.0 / (1.0 + Math.Exp(-2.0 * u));
                return s + 2.0 * v * s * (1.0 - s) * du;
            }
            case Activation.QuickGelu:
            {
                double s = 1.0 / (1.0 + Math.Exp(-1.702 * v));
                return s + 1.702 * v * s * (1.0 - s);
            }
            case Activation.Silu:
            {
                double s = 1.0 / (1.0 + Math.Exp(-v));
                return s + v * s * (1.0 - s);
            }
            case Activation.Sigmoid:
            {
                double s = 1.0 / (1.0 + Math.Exp(-v));
                return s * (1.0 - s);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(act));
        }
    }

    // GELU(x) = ½x·(1 + erf(x/√2)) on float lanes. With z = x/√2:
    //  • −0.5 < z < 1: 1 + erf(z) = 1 + z·P(z²), P a degree-6 Chebyshev fit of erf(z)/z on z² ∈ [0, 1] (≈2e-8 relative).
    //  • otherwise erfc(|z|) = e^(−z²)·t·S(t), t = 1/(1 + |z|), S a degree-10 Chebyshev fit of erfc(z)·e^(z²)·(1 + z) on
    //    |z| ∈ [0.5, 10] (≈1e-8 relative); 1 + erf(z) = erfc(|z|) for z &lt; 0 and 2 − erfc(|z|) for z > 0. e^(−z²) = e^(−x²/2)
    //    is taken from x² split exactly into hi + lo by an FMA (x² rounded would cost up to 8 ulps at x = −4); |x| is
    //    clamped to 14, where the result has underflowed already, so ±∞ behaves like the double reference (+∞, NaN).
    // Measured against the double reference over every 13th float in [−10, 10]: ≤ 4.94 ulps for x ≥ −4 (the float exp,
    // the fits and the roundings), ≤ 1e-11·|x| absolute below (≤ 6 ulps wherever the result is a normal float).
    const float GeluC = 0.70710678118654752f;
    const float E0 = 0.9654687386698889f, E1 = -0.1405360972774967f, E2 = 0.019852497140923485f, E3 = -0.002285419544883625f,
        E4 = 0.00021751354165492183f, E5 = -1.7669068023806744E-05f, E6 = 1.2306054791062186E-06f;
    const float R0 = 0.7922251438430735f, R1 = 0.1611886534834277f, R2 = -0.02495102965675437f, R3 = -0.008252419997751432f,
        R4 = 0.003678199283678579f, R5 = -8.378694080017497E-05f, R6 = -0.0004128297136965548f, R7 = 0.00016320723756183239f,
        R8 = -4.3252111258208394E-06f, R9 = -2.3356496061989095E-05f, R10 = 8.061277532853886E-06f;
    const float RScale = 3.4736842105263164f, ROffset = -1.3157894736842106f; // u = (2t − t(10) − t(0.5)) / (t(0.5) − t(10))

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> GeluErfF(Vector512<float> x)
    {
        var one = Vector512<float>.One;
        var zs = x * Vector512.Create(GeluC);
        var u = Vector512.FusedMultiplyAdd(zs * zs, Vector512.Create(2f), -one);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(E6), u, Vector512.Create(E5));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(E4));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(E3));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(E2));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(E1));
        p = Vector512.FusedMultiplyAdd(p, u, Vector512.Create(E0));
        var small = Vector512.FusedMultiplyAdd(zs, p, one);

        var ax = Vector512.Min(Vector512.Abs(x), Vector512.Create(14f));
        var t = one / Vector512.FusedMultiplyAdd(ax, Vector512.Create(GeluC), one);
        var v = Vector512.FusedMultiplyAdd(t, Vector512.Create(RScale), Vector512.Create(ROffset));
        var r = Vector512.FusedMultiplyAdd(Vector512.Create(R10), v, Vector512.Create(R9));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R8));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R7));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R6));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R5));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R4));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R3));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R2));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R1));
        r = Vector512.FusedMultiplyAdd(r, v, Vector512.Create(R0));
        var hi = ax * ax;
        var lo = Vector512.FusedMultiplyAdd(ax, ax, -hi);
        var e = FastMath.Exp(hi * Vector512.Create(-0.5f)) * Vector512.FusedMultiplyAdd(lo, Vector512.Create(-0.5f), one);
        var erfc = e * (t * r);
        var big = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), erfc, Vector512.Create(2f) - erfc);
        var useSmall = Vector512.LessThan(zs, one) & Vector512.GreaterThan(zs, Vector512.Create(-0.5f));
        return x * Vector512.Create(0.5f) * Vector512.ConditionalSelect(useSmall, small, big);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluErfF(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var zs = x * Vector256.Create(GeluC);
        var u = Vector256.FusedMultiplyAdd(zs * zs, Vector256.Create(2f), -one);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(E6), u, Vector256.Create(E5));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(E4));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(E3));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(E2));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(E1));
        p = Vector256.FusedMultiplyAdd(p, u, Vector256.Create(E0));
        var small = Vector256.FusedMultiplyAdd(zs, p, one);

        var ax = Vector256.Min(Vector256.Abs(x), Vector256.Create(14f));
        var t = one / Vector256.FusedMultiplyAdd(ax, Vector256.Create(GeluC), one);
        var v = Vector256.FusedMultiplyAdd(t, Vector256.Create(RScale), Vector256.Create(ROffset));
        var r = Vector256.FusedMultiplyAdd(Vector256.Create(R10), v, Vector256.Create(R9));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R8));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R7));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R6));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R5));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R4));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R3));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R2));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R1));
        r = Vector256.FusedMultiplyAdd(r, v, Vector256.Create(R0));
        var hi = ax * ax;
        var lo = Vector256.FusedMultiplyAdd(ax, ax, -hi);
        var e = FastMath.Exp(hi * Vector256.Create(-0.5f)) * Vector256.FusedMultiplyAdd(lo, Vector256.Create(-0.5f), one);
        var erfc = e * (t * r);
        var big = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), erfc, Vector256.Create(2f) - erfc);
        var useSmall = Vector256.LessThan(zs, one) & Vector256.GreaterThan(zs, Vector256.Create(-0.5f));
        return x * Vector256.Create(0.5f) * Vector256.ConditionalSelect(useSmall, small, big);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector512<double> Eval512(Activation act, Vector512<double> v)
    {
        var one = Vector512<double>.One;
        switch (act)
        {
            case Activation.GeluErf: return Vector512.Create(0.5) * v * MathF2.OnePlusErf(v * Vector512.Create(0.7071067811865476));
            case Activation.GeluTanh: return v / (one + FastMath.Exp(Vector512.Create(-2.0 * Sqrt2OverPi) * (v + Vector512.Create(0.044715) * v * v * v)));
            case Activation.GeluFast: return v / (one + FastMath.Exp(Vector512.Create(-2.0) * (v * Vector512.Create(Sqrt2OverPi) * (one + Vector512.Create(0.044715) * v * v))));
            case Activation.QuickGelu: return v / (one + FastMath.Exp(Vector512.Create(-1.702) * v));
            case Activation.Silu: return v / (one + FastMath.Exp(-v));
            default: return one / (one + FastMath.Exp(-v)); // Sigmoid
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector256<double> Eval256(Activation act, Vector256<double> v)
    {
        var one = Vector256<double>.One;
        switch (act)
        {
            case Activation.GeluErf: return Vector256.Create(0.5) * v * MathF2.OnePlusErf(v * Vector256.Create(0.7071067811865476));
            case Activation.GeluTanh: return v / (one + FastMath.Exp(Vector256.Create(-2.0 * Sqrt2OverPi) * (v + Vector256.Create(0.044715) * v * v * v)));
            case Activation.GeluFast: return v / (one + FastMath.Exp(Vector256.Create(-2.0) * (v * Vector256.Create(Sqrt2OverPi) * (one + Vector256.Create(0.044715) * v * v))));
            case Activation.QuickGelu: return v / (one + FastMath.Exp(Vector256.Create(-1.702) * v));
            case Activation.Silu: return v / (one + FastMath.Exp(-v));
            default: return one / (one + FastMath.Exp(-v)); // Sigmoid
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector512<double> Derivative512(Activation act, Vector512<double> v)
    {
        var one = Vector512<double>.One;
        switch (act)
        {
            case Activation.GeluErf:
                return Vector512.Create(0.5) * MathF2.OnePlusErf(v * Vector512.Create(0.7071067811865476))
                    + v * Vector512.Create(InvSqrt2Pi) * FastMath.Exp(Vector512.Create(-0.5) * v * v);
            case Activation.GeluTanh:
            case Activation.GeluFast:
            {
                var v2 = v * v;
                var u = Vector512.Create(Sqrt2OverPi) * (v + Vector512.Create(0.044715) * v2 * v);
                var du = Vector512.Create(Sqrt2OverPi) * (one + Vector512.Create(3 * 0.044715) * v2);
                var s = one / (one + FastMath.Exp(Vector512.Create(-2.0) * u));
                return s + Vector512.Create(2.0) * v * s * (one - s) * du;
            }
            case Activation.QuickGelu:
            {
                var s = one / (one + FastMath.Exp(Vector512.Create(-1.702) * v));
                return s + Vector512.Create(1.702) * v * s * (one - s);
            }
            case Activation.Silu:
            {
                var s = one / (one + FastMath.Exp(-v));
                return s + v * s * (one - s);
            }
            default: // Sigmoid
            {
                var s = one / (one + FastMath.Exp(-v));
                return s * (one - s);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector256<double> Derivative256(Activation act, Vector256<double> v)
    {
        var one = Vector256<double>.One;
        switch (act)
        {
            case Activation.GeluErf:
                return Vector256.Create(0.5) * MathF2.OnePlusErf(v * Vector256.Create(0.7071067811865476))
                    + v * Vector256.Create(InvSqrt2Pi) * FastMath.Exp(Vector256.Create(-0.5) * v * v);
            case Activation.GeluTanh:
            case Activation.GeluFast:
            {
                var v2 = v * v;
                var u = Vector256.Create(Sqrt2OverPi) * (v + Vector256.Create(0.044715) * v2 * v);
                var du = Vector256.Create(Sqrt2OverPi) * (one + Vector256.Create(3 * 0.044715) * v2);
                var s = one / (one + FastMath.Exp(Vector256.Create(-2.0) * u));
                return s + Vector256.Create(2.0) * v * s * (one - s) * du;
            }
            case Activation.QuickGelu:
            {
                var s = one / (one + FastMath.Exp(Vector256.Create(-1.702) * v));
                return s + Vector256.Create(1.702) * v * s * (one - s);
            }
            case Activation.Silu:
            {
                var s = one / (one + FastMath.Exp(-v));
                return s + v * s * (one - s);
            }
            default: // Sigmoid
            {
                var s = one / (one + FastMath.Exp(-v));
                return s * (one - s);
            }
        }
    }
}

/// <summary>Math .NET lacks.</summary>
public static class MathF2
{
    /// <summary>erf(x) to ~1e-15 relative (W. J. Cody's rational approximations via erfc), enough for float32 GELU.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 0.5)
        {
            // Maclaurin-like rational approximation (Cody) for small |x|.
            double t = x * x;
            double top = (((0.185777706184603153 * t + 3.16112374387056560) * t + 113.864154151050156) * t + 377.485237685302021) * t + 3209.37758913846947;
            double bot = (((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t + 2844.23683343917062;
            return x * top / bot;
        }
        double r = ax < 4.0 ? ErfcMid(ax) : ErfcLarge(ax);
        return x > 0 ? 1.0 - r : r - 1.0;
    }

    /// <summary>erfc(x) = 1 − erf(x), accurate in relative terms for large x.</summary>
    public static double Erfc(double x)
    {
        double ax = Math.Abs(x);
        if (ax < 0.5) return 1.0 - Erf(x);
        double r = ax < 4.0 ? ErfcMid(ax) : ErfcLarge(ax);
        return x > 0 ? r : 2.0 - r;
    }

    static double ErfcMid(double x)
    {
        double top = ((((((((1.85631510434052658e-8 * x + 5.64188496988670089e-1) * x + 8.88314979438837594) * x + 66.1191906371416295) * x + 298.635138197400131) * x + 881.952221241769090) * x + 1712.04761263407058) * x + 2051.07837782607147) * x) + 1230.33935479799725;
        double bot = (((((((x + 15.7449261107098347) * x + 117.693950891312499) * x + 537.181101862009858) * x + 1621.38957456669019) * x + 3290.79923573345963) * x + 4362.61909014324716) * x + 3439.36767414372164) * x + 1230.33935480374942;
        return Math.Exp(-x * x) * top / bot;
    }

    static double ErfcLarge(double x)
    {
        double z = 1.0 / (x * x);
        double top = ((((1.63153871373020978e-2 * z + 3.05326634961232344e-1) * z + 3.60344899949804439e-1) * z + 1.25781726111229246e-1) * z + 1.60837851487422766e-2) * z + 6.58749161529837803e-4;
        double bot = ((((z + 2.56852019228982242) * z + 1.87295284992346725) * z + 5.27905102951428412e-1) * z + 6.05183413124413191e-2) * z + 2.33520497626869185e-3;
        double r = 0.5641895835477563 - z * top / bot; // 1/sqrt(pi) - ...
        return Math.Exp(-x * x) * r / x;
    }

    // Cody's coefficients, shared by the scalar and vector forms.
    const double S0 = 0.185777706184603153, S1 = 3.16112374387056560, S2 = 113.864154151050156, S3 = 377.485237685302021, S4 = 3209.37758913846947;
    const double T0 = 23.6012909523441209, T1 = 244.024637934444173, T2 = 1282.61652607737228, T3 = 2844.23683343917062;
    const double M0 = 1.85631510434052658e-8, M1 = 5.64188496988670089e-1, M2 = 8.88314979438837594, M3 = 66.1191906371416295, M4 = 298.635138197400131, M5 = 881.952221241769090, M6 = 1712.04761263407058, M7 = 2051.07837782607147, M8 = 1230.33935479799725;
    const double N0 = 15.7449261107098347, N1 = 117.693950891312499, N2 = 537.181101862009858, N3 = 1621.38957456669019, N4 = 3290.79923573345963, N5 = 4362.61909014324716, N6 = 3439.36767414372164, N7 = 1230.33935480374942;
    const double L0 = 1.63153871373020978e-2, L1 = 3.05326634961232344e-1, L2 = 3.60344899949804439e-1, L3 = 1.25781726111229246e-1, L4 = 1.60837851487422766e-2, L5 = 6.58749161529837803e-4;
    const double K0 = 2.56852019228982242, K1 = 1.87295284992346725, K2 = 5.27905102951428412e-1, K3 = 6.05183413124413191e-2, K4 = 2.33520497626869185e-3;

    /// <summary>Vector erf, same approximations as <see cref="Erf(double)"/> (one rational per lane, coefficients picked by region).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Erf(Vector512<double> x)
    {
        var (r, small, erfc) = Eval(x);
        var big = Vector512<double>.One - erfc;
        return Vector512.ConditionalSelect(small, x * r, Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<double>.Zero), big, -big));
    }

    /// <summary>1 + erf(x) without cancellation for negative x (= erfc(−x)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> OnePlusErf(Vector512<double> x)
    {
        var (r, small, erfc) = Eval(x);
        var one = Vector512<double>.One;
        return Vector512.ConditionalSelect(small, Vector512.FusedMultiplyAdd(x, r, one),
            Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<double>.Zero), Vector512.Create(2.0) - erfc, erfc));
    }

    /// <summary>
    /// Cody's three regions as one degree-8 rational per lane: |x| &lt; 0.5 in t = x² (returns R with erf = x·R), 0.5 ≤ |x| &lt; 4
    /// in a = |x| and |x| ≥ 4 in z = 1/x² (returns erfc(|x|)). Two divisions per vector instead of one per region.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (Vector512<double> R, Vector512<double> Small, Vector512<double> Erfc) Eval(Vector512<double> x)
    {
        var ax = Vector512.Abs(x);
        var small = Vector512.LessThan(ax, Vector512.Create(0.5));
        var large = Vector512.GreaterThanOrEqual(ax, Vector512.Create(4.0));
        bool anyLarge = large != Vector512<double>.Zero;
        var a = Vector512.Max(ax, Vector512.Create(0.5));
        var ia = anyLarge ? Vector512<double>.One / a : default;
        var z = ia * ia;
        var u = Vector512.ConditionalSelect(small, x * x, Vector512.ConditionalSelect(large, z, a));
        // numerator / denominator coefficients, highest degree first: small, mid, large
        var num = C(small, large, 0, M0, 0);
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, 0, M1, 0));
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, 0, M2, 0));
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, 0, M3, L0));
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, S0, M4, L1));
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, S1, M5, L2));
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, S2, M6, L3));
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, S3, M7, L4));
        num = Vector512.FusedMultiplyAdd(num, u, C(small, large, S4, M8, L5));
        var den = C(small, large, 0, 1, 0);
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, 0, N0, 0));
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, 0, N1, 0));
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, 0, N2, 1));
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, 1, N3, K0));
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, T0, N4, K1));
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, T1, N5, K2));
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, T2, N6, K3));
        den = Vector512.FusedMultiplyAdd(den, u, C(small, large, T3, N7, K4));
        var r = num / den;
        if (small == Vector512<double>.AllBitsSet) return (r, small, default);
        var e = FastMath.Exp(-(a * a));
        var erfc = e * r;
        if (anyLarge) erfc = Vector512.ConditionalSelect(large, e * (Vector512.Create(0.5641895835477563) - z * r) * ia, erfc);
        return (r, small, erfc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<double> C(Vector512<double> small, Vector512<double> large, double s, double m, double l) =>
        Vector512.ConditionalSelect(small, Vector512.Create(s), Vector512.ConditionalSelect(large, Vector512.Create(l), Vector512.Create(m)));

    /// <summary>Vector erf, same approximations as <see cref="Erf(double)"/> (one rational per lane, coefficients picked by region).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Erf(Vector256<double> x)
    {
        var (r, small, erfc) = Eval(x);
        var big = Vector256<double>.One - erfc;
        return Vector256.ConditionalSelect(small, x * r, Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<double>.Zero), big, -big));
    }

    /// <summary>1 + erf(x) without cancellation for negative x (= erfc(−x)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> OnePlusErf(Vector256<double> x)
    {
        var (r, small, erfc) = Eval(x);
        var one = Vector256<double>.One;
        return Vector256.ConditionalSelect(small, Vector256.FusedMultiplyAdd(x, r, one),
            Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<double>.Zero), Vector256.Create(2.0) - erfc, erfc));
    }

    /// <summary>
    /// Cody's three regions as one degree-8 rational per lane: |x| &lt; 0.5 in t = x² (returns R with erf = x·R), 0.5 ≤ |x| &lt; 4
    /// in a = |x| and |x| ≥ 4 in z = 1/x² (returns erfc(|x|)). Two divisions per vector instead of one per region.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (Vector256<double> R, Vector256<double> Small, Vector256<double> Erfc) Eval(Vector256<double> x)
    {
        var ax = Vector256.Abs(x);
        var small = Vector256.LessThan(ax, Vector256.Create(0.5));
        var large = Vector256.GreaterThanOrEqual(ax, Vector256.Create(4.0));
        bool anyLarge = large != Vector256<double>.Zero;
        var a = Vector256.Max(ax, Vector256.Create(0.5));
        var ia = anyLarge ? Vector256<double>.One / a : default;
        var z = ia * ia;
        var u = Vector256.ConditionalSelect(small, x * x, Vector256.ConditionalSelect(large, z, a));
        // numerator / denominator coefficients, highest degree first: small, mid, large
        var num = C(small, large, 0, M0, 0);
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, 0, M1, 0));
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, 0, M2, 0));
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, 0, M3, L0));
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, S0, M4, L1));
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, S1, M5, L2));
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, S2, M6, L3));
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, S3, M7, L4));
        num = Vector256.FusedMultiplyAdd(num, u, C(small, large, S4, M8, L5));
        var den = C(small, large, 0, 1, 0);
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, 0, N0, 0));
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, 0, N1, 0));
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, 0, N2, 1));
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, 1, N3, K0));
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, T0, N4, K1));
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, T1, N5, K2));
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, T2, N6, K3));
        den = Vector256.FusedMultiplyAdd(den, u, C(small, large, T3, N7, K4));
        var r = num / den;
        if (small == Vector256<double>.AllBitsSet) return (r, small, default);
        var e = FastMath.Exp(-(a * a));
        var erfc = e * r;
        if (anyLarge) erfc = Vector256.ConditionalSelect(large, e * (Vector256.Create(0.5641895835477563) - z * r) * ia, erfc);
        return (r, small, erfc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<double> C(Vector256<double> small, Vector256<double> large, double s, double m, double l) =>
        Vector256.ConditionalSelect(small, Vector256.Create(s), Vector256.ConditionalSelect(large, Vector256.Create(l), Vector256.Create(m)));
}
