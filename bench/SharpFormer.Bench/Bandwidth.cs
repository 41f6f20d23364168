using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Bench;

/// <summary>
/// This machine's memory bandwidth, STREAM-style, on arrays far larger than the caches (3 × 256 MB): <c>read</c> (a
/// sum, what decoding does with the weights), <c>copy</c> (a[i] = b[i]) and <c>triad</c> (a[i] = b[i] + s·c[i]), each
/// counted as STREAM counts it (bytes named in the loop; the write-allocate reads of copy and triad are not counted).
/// The threads split every array into contiguous parts; the figure is the best of <see cref="Reps"/> passes (STREAM's
/// convention: the machine's capability, not its average load). Shared by <c>bench -- bandwidth</c> and SharpFormer.E2E.
/// </summary>
public static unsafe class Bandwidth
{
    const long Floats = 64L << 20;   // 256 MB per array
    const int Reps = 7;

    /// <summary>GB/s (10⁹ bytes) of read, copy and triad with <paramref name="threads"/> threads.</summary>
    public static (double Read, double Copy, double Triad) Measure(int threads)
    {
        float* a = Alloc(), b = Alloc(), c = Alloc();
        try
        {
            // First touch on the threads that use each part (and nothing measured before the pages exist).
            Run(threads, (lo, hi) => { for (long i = lo; i < hi; i++) { a[i] = 0; b[i] = 1; c[i] = 2; } });
            double read = Best(threads, 4.0 * Floats, (lo, hi) => Sum(b + lo, hi - lo));
            double copy = Best(threads, 8.0 * Floats, (lo, hi) => new ReadOnlySpan<float>(b + lo, (int)(hi - lo)).CopyTo(new Span<float>(a + lo, (int)(hi - lo))));
            double triad = Best(threads, 12.0 * Floats, (lo, hi) => Triad(a + lo, b + lo, c + lo, hi - lo, 3f));
            return (read, copy, triad);
        }
        finally
        {
            NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(b); NativeMemory.AlignedFree(c);
        }
    }

    static float* Alloc() => (float*)NativeMemory.AlignedAlloc((nuint)(Floats * sizeof(float)), 4096);

    static double Best(int threads, double bytes, Action<long, long> body)
    {
        double best = 0;
        for (int r = 0; r < Reps; r++)
        {
            long start = Stopwatch.GetTimestamp();
            Run(threads, body);
            best = Math.Max(best, bytes / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e9);
        }
        return best;
    }

    /// <summary>body(lo, hi) on <paramref name="threads"/> threads over contiguous parts of [0, Floats).</summary>
    static void Run(int threads, Action<long, long> body)
    {
        long part = Floats / threads;
        var ts = Enumerable.Range(0, threads).Select(t => new Thread(() => body(t * part, t == threads - 1 ? Floats : (t + 1) * part))).ToArray();
        foreach (var t in ts) t.Start();
        foreach (var t in ts) t.Join();
    }

    static volatile float _sink;   // keeps the read loop's result alive

    /// <summary>
    /// Sums n floats as four streams read in lockstep (the four quarters of the range): one stream per core leaves the
    /// memory system idle between a core's few outstanding misses; several keep more prefetches in flight, as copy and
    /// triad do with their two and three arrays.
    /// </summary>
    static void Sum(float* p, long n)
    {
        long q = n / 4 / 16 * 16;
        float* p1 = p + q, p2 = p + 2 * q, p3 = p + 3 * q;
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (long i = 0; i < q; i += 16)
        {
            s0 += Vector256.Load(p + i) + Vector256.Load(p + i + 8);
            s1 += Vector256.Load(p1 + i) + Vector256.Load(p1 + i + 8);
            s2 += Vector256.Load(p2 + i) + Vector256.Load(p2 + i + 8);
            s3 += Vector256.Load(p3 + i) + Vector256.Load(p3 + i + 8);
        }
        float s = Vector256.Sum(s0 + s1 + s2 + s3);
        for (long i = 4 * q; i < n; i++) s += p[i];
        _sink = s;
    }

    static void Triad(float* a, float* b, float* c, long n, float scalar)
    {
        var k = Vector256.Create(scalar);
        long i = 0;
        for (; i + 8 <= n; i += 8) (Vector256.Load(b + i) + k * Vector256.Load(c + i)).Store(a + i);
        for (; i < n; i++) a[i] = b[i] + scalar * c[i];
    }
}
