using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Kernels;

/// <summary>
/// Vectorised float exp for softmax (Cephes expf: range reduction by ln 2 in two parts, degree-5 minimax
/// polynomial, ≈1–2 ulp over the range), 3–4× cheaper than <c>TensorPrimitives.Exp</c> (which evaluates in double).
/// Inputs below −87.33 give exactly 0 (like expf underflow, so masked keys get exactly zero weight); inputs above
/// 88 are clamped to 88 (softmax only feeds values ≤ 0).
/// </summary>
internal static class FastMath
{
    const float Log2E = 1.44269504088896341f, C1 = 0.693359375f, C2 = -2.12194440e-4f;
    const float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f, P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;
    const float Lo = -87.33654f, Hi = 88.0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var xc = Vector256.Min(Vector256.Max(x, Vector256.Create(Lo)), Vector256.Create(Hi));
        var fx = Vector256.Floor(Vector256.FusedMultiplyAdd(xc, Vector256.Create(Log2E), Vector256.Create(0.5f)));
        var r = Vector256.FusedMultiplyAdd(fx, Vector256.Create(-C1), xc);
        r = Vector256.FusedMultiplyAdd(fx, Vector256.Create(-C2), r);
        var y = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P2));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P3));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P4));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P5));
        y = Vector256.FusedMultiplyAdd(y, r * r, r + Vector256<float>.One);
        var pow2 = ((Vector256.ConvertToInt32(fx) + Vector256.Create(127)) << 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Lo)), Vector256<float>.Zero, y * pow2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var xc = Vector512.Min(Vector512.Max(x, Vector512.Create(Lo)), Vector512.Create(Hi));
        var fx = Vector512.Floor(Vector512.FusedMultiplyAdd(xc, Vector512.Create(Log2E), Vector512.Create(0.5f)));
        var r = Vector512.FusedMultiplyAdd(fx, Vector512.Create(-C1), xc);
        r = Vector512.FusedMultiplyAdd(fx, Vector512.Create(-C2), r);
        var y = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P2));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P3));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P4));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P5));
        y = Vector512.FusedMultiplyAdd(y, r * r, r + Vector512<float>.One);
        var pow2 = ((Vector512.ConvertToInt32(fx) + Vector512.Create(127)) << 23).AsSingle();
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(Lo)), Vector512<float>.Zero, y * pow2);
    }

    /// <summary>Scalar twin of the vector exp (same polynomial) for tails.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x)
    {
        if (x < Lo) return 0f;
        float xc = MathF.Min(x, Hi);
        float fx = MathF.Floor(MathF.FusedMultiplyAdd(xc, Log2E, 0.5f));
        float r = MathF.FusedMultiplyAdd(fx, -C1, xc);
        r = MathF.FusedMultiplyAdd(fx, -C2, r);
        float y = MathF.FusedMultiplyAdd(P0, r, P1);
        y = MathF.FusedMultiplyAdd(y, r, P2);
        y = MathF.FusedMultiplyAdd(y, r, P3);
        y = MathF.FusedMultiplyAdd(y, r, P4);
        y = MathF.FusedMultiplyAdd(y, r, P5);
        y = MathF.FusedMultiplyAdd(y, r * r, r + 1f);
        return y * BitConverter.Int32BitsToSingle(((int)fx + 127) << 23);
    }

    /// <summary>Σ exp(x[i] − max) written back into x (x[i] ← exp(x[i] − max)); returns the sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe float ExpSubtractSum(float* x, int n, float max)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m = Vector512.Create(max); var s = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16) { var e = Exp(Vector512.Load(x + i) - m); e.Store(x + i); s += e; }
            sum = Vector512.Sum(s);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Create(max); var s = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8) { var e = Exp(Vector256.Load(x + i) - m); e.Store(x + i); s += e; }
            sum = Vector256.Sum(s);
        }
        double tail = sum; // the scalar remainder (the whole row without SIMD) accumulates in double
        for (; i < n; i++) { float e = Vector256.IsHardwareAccelerated ? Exp(x[i] - max) : MathF.Exp(x[i] - max); x[i] = e; tail += e; }
        return (float)tail;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe float Max(float* x, int n)
    {
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Create(float.NegativeInfinity);
            for (; i + 8 <= n; i += 8) m = Vector256.Max(m, Vector256.Load(x + i));
            for (int l = 0; l < 8; l++) max = MathF.Max(max, m[l]);
        }
        for (; i < n; i++) if (x[i] > max) max = x[i];
        return max;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Scale(float* x, int n, float s)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var v = Vector256.Create(s);
            for (; i + 8 <= n; i += 8) (Vector256.Load(x + i) * v).Store(x + i);
        }
        for (; i < n; i++) x[i] *= s;
    }

    // ------------------------------------------------------------------ double exp (for the double-precision activations)
    // exp(x) = 2^n · e^r, n = round(x / ln 2), r = x − n·ln 2 (two-part ln 2), e^r by its Taylor series to r^12
    // (|r| ≤ 0.347: truncation < 2e-15 relative). n is read from the low mantissa bits of x·log2(e) + 1.5·2^52,
    // which needs no double→int64 conversion instruction (AVX2 has none). Inputs below −708 give 0, above 709 +∞.
    const double DLog2E = 1.4426950408889634, DLn2Hi = 0.693147180369123816490, DLn2Lo = 1.90821492927058770002e-10, Magic = 6755399441055744.0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Exp(Vector512<double> x)
    {
        var xc = Vector512.Min(Vector512.Max(x, Vector512.Create(-708.0)), Vector512.Create(709.0));
        var k = Vector512.FusedMultiplyAdd(xc, Vector512.Create(DLog2E), Vector512.Create(Magic));
        var n = k - Vector512.Create(Magic);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-DLn2Hi), xc);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-DLn2Lo), r);
        var p = Vector512.Create(1.0 / 479001600);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 39916800));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 3628800));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 362880));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 40320));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 5040));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 720));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0 / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<double>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<double>.One);
        // n ∈ [−1022, 1023]: its two's complement sits in k's low bits; (n + 1023) << 52 is 2^n.
        var pow2 = ((k.AsInt64() + Vector512.Create(1023L)) << 52).AsDouble();
        var y = p * pow2;
        y = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(-708.0)), Vector512<double>.Zero, y);
        return Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(709.0)), Vector512.Create(double.PositiveInfinity), y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Exp(Vector256<double> x)
    {
        var xc = Vector256.Min(Vector256.Max(x, Vector256.Create(-708.0)), Vector256.Create(709.0));
        var k = Vector256.FusedMultiplyAdd(xc, Vector256.Create(DLog2E), Vector256.Create(Magic));
        var n = k - Vector256.Create(Magic);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-DLn2Hi), xc);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-DLn2Lo), r);
        var p = Vector256.Create(1.0 / 479001600);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 39916800));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 3628800));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 362880));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 40320));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 5040));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 720));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 120));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 24));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0 / 6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(0.5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<double>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<double>.One);
        var pow2 = ((k.AsInt64() + Vector256.Create(1023L)) << 52).AsDouble();
        var y = p * pow2;
        y = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(-708.0)), Vector256<double>.Zero, y);
        return Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(709.0)), Vector256.Create(double.PositiveInfinity), y);
    }
}
