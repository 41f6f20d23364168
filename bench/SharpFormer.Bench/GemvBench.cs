using System.Diagnostics;
using SharpFormer.Kernels;

namespace SharpFormer.Bench;

/// <summary>
/// <c>gemv [THREADS]</c>: decoding's matrix products (one row, Qwen2.5-0.5B's shapes) against this machine's read
/// bandwidth, both as the best of several passes over ≥ 256 MB (on a busy host the best pass is the one nobody preempted).
/// </summary>
static class GemvBench
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 0 ? int.Parse(args[0]) : 2;
        using var kernels = new KernelContext(threads);
        using var scope = kernels.Enter();
        var (read, _, _) = Bandwidth.Measure(threads);
        Console.WriteLine($"read bandwidth, {threads} thread(s): {read:F1} GB/s (best of 7)");
        var shapes = new (int K, int N, string Note)[] { (896, 1152, "q|k|v"), (896, 9728, "gate|up"), (4864, 896, "down"), (896, 151936, "lm_head") };
        foreach (var precision in new[] { WeightPrecision.Float32, WeightPrecision.BFloat16, WeightPrecision.Int8 })
            foreach (var (k, n, note) in shapes)
            {
                // Copies of the matrix, used in turn, ≥ 256 MB in all: as in decoding, the weights come from DRAM, not the caches.
                var first = PackedWeight.FromOutIn(Program.Random(n * k, 2), n, k, precision);
                int copies = (int)Math.Max(1, (256L << 20) / first.Bytes);
                var ws = Enumerable.Range(0, copies).Select(i => i == 0 ? first : PackedWeight.FromOutIn(Program.Random(n * k, 2 + i), n, k, precision)).ToArray();
                var x = Program.Random(k, 1);
                var y = new float[n];
                double best = double.MaxValue;
                for (int i = 0; i < 8; i++)
                {
                    long s = Stopwatch.GetTimestamp();
                    foreach (var w in ws) Gemm.Linear(x, 1, w, default, y);
                    best = Math.Min(best, Stopwatch.GetElapsedTime(s).TotalSeconds / copies);
                }
                double gbs = first.Bytes / best / 1e9;
                Console.WriteLine($"{precision,-9} {k,5}×{n,-6} {note,-8} {first.Bytes / 1e6,7:F1} MB  best {best * 1e3,7:F3} ms  {gbs,5:F1} GB/s  {100 * gbs / read,4:F0} % of read");
            }
    }
}
