using System.Diagnostics;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using SharpFormer.Kernels;

namespace SharpFormer.Bench;

/// <summary>
/// Kernel benchmarks.
///   dotnet run -c Release --project bench/SharpFormer.Bench -- gemm       quick Stopwatch table (medians), seconds
///   dotnet run -c Release --project bench/SharpFormer.Bench -- quick      gemm + attention + softmax + layernorm + gelu
///   dotnet run -c Release --project bench/SharpFormer.Bench -- train-step BertTraining.Step tokens/s (1 and 2 threads)
///   dotnet run -c Release --project bench/SharpFormer.Bench -- peak       FP32 FMA peak of this machine (1 and 2 threads)
///   dotnet run -c Release --project bench/SharpFormer.Bench -- bandwidth  memory bandwidth, STREAM-style read/copy/triad (1 and 2 threads)
///   dotnet run -c Release --project bench/SharpFormer.Bench -- gemv [THREADS]   one-row GEMMs (decoding, Qwen2.5-0.5B shapes) vs read bandwidth
///   dotnet run -c Release --project bench/SharpFormer.Bench -- batching [--model DIR]   length-sorted vs padded batches, real texts
///   dotnet run -c Release --project bench/SharpFormer.Bench -- int8       int8 vs bf16 vs f32 GEMM, same shapes, one run
///   dotnet run -c Release --project bench/SharpFormer.Bench -- int8-bert DIR    BERT 1×128 f32 vs int8: latency and error
///   dotnet run -c Release --project bench/SharpFormer.Bench -- profile DIR [TOKENS] [f32|bf16|int8] [THREADS]   BERT batch-1 forward time per kernel
///   dotnet run -c Release --project bench/SharpFormer.Bench -- bdn [BenchmarkDotNet args, e.g. --filter *Gemm*]
/// </summary>
public static class Program
{
    /// <summary>Reference peaks quoted in the issue (Zen 4, 2 cores); <c>peak</c> measures this machine's.</summary>
    public const double Peak1 = 117, Peak2 = 231;

    public static int Main(string[] args)
    {
        string mode = args.Length > 0 ? args[0] : "quick";
        switch (mode)
        {
            case "gemm": Quick.Gemm(); return 0;
            case "attention": Quick.Attention(); return 0;
            case "quick": Quick.Gemm(); Quick.Attention(); Quick.Rows(); return 0;
            case "peak": Quick.FmaPeak(); return 0;
            case "bandwidth":
                foreach (int th in new[] { 1, 2 })
                {
                    var (read, copy, triad) = Bandwidth.Measure(th);
                    Console.WriteLine($"memory bandwidth, {th} thread(s): read {read:F1}, copy {copy:F1}, triad {triad:F1} GB/s");
                }
                return 0;
            case "gemv": GemvBench.Run(args[1..]); return 0;
            case "batching": BatchingBench.Run(args[1..]); return 0;
            case "train-step": TrainStep.Run(); return 0;
            case "int8": Int8Bench.Gemm(); return 0;
            case "int8-bert": Int8Bench.Bert(args[1]); return 0;
            case "profile": ProfileBench.Run(args[1..]); return 0;
            case "bdn":
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args[1..], DefaultConfig.Instance.AddColumn(new GflopsColumn()));
                return 0;
            default:
                Console.Error.WriteLine("usage: SharpFormer.Bench [gemm|attention|quick|peak|bandwidth|gemv|batching|train-step|int8|int8-bert DIR|bdn ...]");
                return 2;
        }
    }

    internal static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }
}

/// <summary>Stopwatch mode: median of several repetitions, each long enough (≥ ~50 ms) to time reliably.</summary>
static class Quick
{
    internal static double Median(Action body, double flops, int reps = 9)
    {
        // Warm up ≥ 0.3 s so the JIT's tiering has finished before timing.
        var sw = Stopwatch.StartNew();
        int calls = 0;
        while (sw.Elapsed.TotalSeconds < 0.3 || calls < 3) { body(); calls++; }
        sw.Restart();
        int inner = 1;
        body();
        double once = Math.Max(sw.Elapsed.TotalSeconds, 1e-7);
        inner = (int)Math.Clamp(0.05 / once, 1, 100_000);
        var ts = new double[reps];
        for (int r = 0; r < reps; r++)
        {
            sw.Restart();
            for (int i = 0; i < inner; i++) body();
            ts[r] = sw.Elapsed.TotalSeconds / inner;
        }
        Array.Sort(ts);
        return ts[reps / 2];
    }

    public static void Gemm()
    {
        Console.WriteLine($"GEMM  y[M,N] = x[M,K]·Wᵀ + b   (Gemm.Linear, packed weight; ISA path {(Vector512.IsHardwareAccelerated ? "Vector512 8x32" : Vector256.IsHardwareAccelerated ? "Vector256 6x16" : "Vector128 4x8")}; reference peaks {Program.Peak1}/{Program.Peak2} GFLOP/s)");
        Console.WriteLine($"{"M",6} {"K",6} {"N",6} {"thr",3} {"median",10} {"GFLOP/s",8} {"%peak",6} {"W GB/s",7}");
        var shapes = new (int M, int K, int N, string Note)[]
        {
            (1024, 1024, 1024, "1024³"),
            (128, 768, 768, "BERT 128 tok: QKV/out"),
            (128, 768, 3072, "BERT 128 tok: FFN up"),
            (128, 3072, 768, "BERT 128 tok: FFN down"),
            (512, 768, 2304, "GPT-2 prefill 512: c_attn"),
            (16, 768, 768, "BERT 16 tok"),
            (8, 768, 3072, "GPT-2 decode batch 8: FFN up"),
            (1, 768, 3072, "GPT-2 decode batch 1: FFN up"),
            (1, 768, 50257, "GPT-2 decode: lm_head (154 MB)"),
        };
        foreach (int threads in new[] { 1, 2 })
        {
            using var kernels = new KernelContext(threads);
            using var scope = kernels.Enter();
            foreach (var (m, k, n, note) in shapes)
            {
                var x = Program.Random(m * k, 1);
                var w = PackedWeight.FromOutIn(Program.Random(n * k, 2), n, k);
                var b = Program.Random(n, 3);
                var y = new float[m * n];
                double flops = 2.0 * m * n * k;
                double t = Median(() => SharpFormer.Kernels.Gemm.Linear(x, m, w, b, y), flops);
                double g = flops / t / 1e9;
                double peak = threads == 1 ? Program.Peak1 : Program.Peak2;
                Console.WriteLine($"{m,6} {k,6} {n,6} {threads,3} {t * 1e3,8:F3}ms {g,8:F1} {100 * g / peak,5:F0}% {4.0 * k * n / t / 1e9,7:F1}  {note}");
            }
        }
    }

    public static void Attention()
    {
        Console.WriteLine();
        Console.WriteLine("Attention (12 heads × 64, fused scores/softmax/weighted sum)");
        Console.WriteLine($"{"tq",6} {"tk",6} {"causal",6} {"thr",3} {"median",10} {"GFLOP/s",8}");
        foreach (int threads in new[] { 1, 2 })
        {
            using var kernels = new KernelContext(threads);
            using var scope = kernels.Enter();
            foreach (var (tq, tk, causal) in new[] { (16, 16, false), (128, 128, false), (512, 512, false), (512, 512, true), (1, 512, true) })
            {
                int heads = 12, d = 64, h = heads * d;
                var q = Program.Random(tq * h, 1); var k = Program.Random(tk * h, 2); var v = Program.Random(tk * h, 3);
                var o = new float[tq * h];
                var bias = new float[tk];
                double flops = 4.0 * tq * tk * h * (causal && tq > 1 ? 0.5 : 1);
                double t = Median(() => SharpFormer.Kernels.Attention.Forward(q, h, k, v, h, tq, tk, heads, d, 0.125f, causal, tk - tq, bias, o, h, default), flops);
                Console.WriteLine($"{tq,6} {tk,6} {causal,6} {threads,3} {t * 1e3,8:F3}ms {flops / t / 1e9,8:F1}");
            }
        }
    }

    public static void Rows()
    {
        Console.WriteLine();
        Console.WriteLine("Row kernels (single thread unless stated)");
        int all = KernelContext.Current.Threads;
        using var one = new KernelContext(1);
        using (one.Enter()) RowsBody(all);
    }

    static void RowsBody(int threads)
    {
        var x = Program.Random(128 * 768, 4);
        var y = new float[x.Length];
        var g = Program.Random(768, 5); var b = Program.Random(768, 6);
        double t = Median(() => LayerNorm.Forward(x, g, b, 1e-12f, y), 0);
        Console.WriteLine($"LayerNorm 128×768        {t * 1e6,9:F1} µs  {t / x.Length * 1e9,6:F3} ns/elem");
        var s = Program.Random(50257, 7);
        var s2 = new float[s.Length];
        t = Median(() => { s.CopyTo(s2, 0); Softmax.InPlace(s2); }, 0);
        Console.WriteLine($"Softmax.InPlace 50257    {t * 1e6,9:F1} µs  {t / s.Length * 1e9,6:F3} ns/elem (incl. copy)");
        t = Median(() => System.Numerics.Tensors.TensorPrimitives.SoftMax(s, s2), 0);
        Console.WriteLine($"TensorPrimitives.SoftMax {t * 1e6,9:F1} µs  {t / s.Length * 1e9,6:F3} ns/elem (for comparison)");
        t = Median(() => Softmax.Log(s, s2), 0);
        Console.WriteLine($"Softmax.Log 50257        {t * 1e6,9:F1} µs  {t / s.Length * 1e9,6:F3} ns/elem");
        var a = Program.Random(128 * 3072, 8);
        var a2 = new float[a.Length];
        foreach (int th in new[] { 1, threads })
            foreach (var act in new[] { Activation.GeluErf, Activation.GeluTanh })
            {
                using var kernels = new KernelContext(th);
                using var scope = kernels.Enter();
                t = Median(() => { a.CopyTo(a2, 0); Activations.Apply(act, a2); }, 0);
                Console.WriteLine($"{act,-9} 128×3072 {th}thr  {t * 1e6,9:F1} µs  {t / a.Length * 1e9,6:F3} ns/elem (incl. copy)");
            }
    }

    public static void FmaPeak()
    {
        Peak.Run(1000);
        foreach (int th in new[] { 1, 2 })
        {
            var gs = new double[7];
            for (int r = 0; r < gs.Length; r++)
            {
                long it = 20_000_000;
                var sw = Stopwatch.StartNew();
                var ts = Enumerable.Range(0, th).Select(_ => new Thread(() => Peak.Run(it))).ToArray();
                foreach (var t in ts) t.Start();
                foreach (var t in ts) t.Join();
                gs[r] = th * it * Peak.FlopsPerIter / sw.Elapsed.TotalSeconds / 1e9;
            }
            Array.Sort(gs);
            Console.WriteLine($"FMA peak, {th} thread(s): median {gs[3]:F1}, best {gs[^1]:F1} GFLOP/s");
        }
    }
}

static class Peak
{
    public const double FlopsPerIter = 12 * 16 * 2;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining | System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static float Run(long iters)
    {
        var a0 = System.Runtime.Intrinsics.Vector512.Create(1f); var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0;
        var a6 = a0; var a7 = a0; var a8 = a0; var a9 = a0; var a10 = a0; var a11 = a0;
        var m = System.Runtime.Intrinsics.Vector512.Create(0.9999999f); var c = System.Runtime.Intrinsics.Vector512.Create(1e-7f);
        for (long i = 0; i < iters; i++)
        {
            a0 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a0, m, c); a1 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a2, m, c); a3 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a4, m, c); a5 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a6, m, c); a7 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a8, m, c); a9 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a10, m, c); a11 = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(a11, m, c);
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).ToScalar();
    }
}

// ---------------------------------------------------------------- BenchmarkDotNet

/// <summary>Adds a GFLOP/s column for benchmarks that expose a <c>Flops</c> property (via the [Params] in their name).</summary>
sealed class GflopsColumn : IColumn
{
    public string Id => "GFLOPs"; public string ColumnName => "GFLOP/s (%1t/%2t peak)";
    public bool AlwaysShow => true; public ColumnCategory Category => ColumnCategory.Custom; public int PriorityInCategory => 0;
    public bool IsNumeric => true; public UnitType UnitType => UnitType.Dimensionless; public string Legend => "GFLOP/s, and % of 117 (1 thread) / 231 (2 threads)";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is null) return "-";
        double flops = 0; int threads = 1;
        foreach (var p in benchmarkCase.Parameters.Items)
        {
            if (p.Name == "Shape" && p.Value is string s) flops = Shapes.Flops(s);
            if (p.Name == "Threads" && p.Value is int t) threads = t;
        }
        if (flops == 0) return "-";
        double g = flops / (report.ResultStatistics.Median * 1e-9) / 1e9;
        return $"{g:F1} ({100 * g / (threads == 1 ? Program.Peak1 : Program.Peak2):F0}%)";
    }
}

static class Shapes
{
    public static (int M, int K, int N) Parse(string s)
    {
        var p = s.Split('x');
        return (int.Parse(p[0]), int.Parse(p[1]), int.Parse(p[2]));
    }
    public static double Flops(string s) { var (m, k, n) = Parse(s); return 2.0 * m * k * n; }
}

[MemoryDiagnoser]
public class GemmBench
{
    [Params("1024x1024x1024", "128x768x768", "128x768x3072", "128x3072x768", "1x768x3072")]
    public string Shape = "";
    [Params(1, 2)] public int Threads;
    float[] _x = [], _y = [], _b = [];
    PackedWeight _w = null!;
    int _m;
    KernelContext _kernels = null!;
    KernelContext.Scope _scope;

    [GlobalSetup]
    public void Setup()
    {
        var (m, k, n) = Shapes.Parse(Shape);
        _m = m;
        _x = Program.Random(m * k, 1); _b = Program.Random(n, 3); _y = new float[m * n];
        _w = PackedWeight.FromOutIn(Program.Random(n * k, 2), n, k);
        // Entered for the rest of the run (the benchmark methods run on this thread); left in GlobalCleanup.
        _kernels = new KernelContext(Threads);
        _scope = _kernels.Enter();
    }

    [GlobalCleanup]
    public void Cleanup() { _scope.Dispose(); _kernels.Dispose(); }

    [Benchmark] public void Linear() => Gemm.Linear(_x, _m, _w, _b, _y);
}

[MemoryDiagnoser]
public class AttentionBench
{
    [Params(128, 512)] public int Tokens;
    [Params(false, true)] public bool Causal;
    [Params(1, 2)] public int Threads;
    float[] _q = [], _k = [], _v = [], _o = [], _bias = [];
    KernelContext _kernels = null!;
    KernelContext.Scope _scope;
    const int Heads = 12, D = 64, H = Heads * D;

    [GlobalSetup]
    public void Setup()
    {
        _q = Program.Random(Tokens * H, 1); _k = Program.Random(Tokens * H, 2); _v = Program.Random(Tokens * H, 3);
        _o = new float[Tokens * H]; _bias = new float[Tokens];
        _kernels = new KernelContext(Threads);
        _scope = _kernels.Enter();
    }

    [GlobalCleanup]
    public void Cleanup() { _scope.Dispose(); _kernels.Dispose(); }

    [Benchmark] public void Forward() => Attention.Forward(_q, H, _k, _v, H, Tokens, Tokens, Heads, D, 0.125f, Causal, 0, _bias, _o, H, default);
}

/// <summary>Single-thread row kernels.</summary>
[MemoryDiagnoser]
public class RowBench
{
    float[] _x = [], _y = [], _g = [], _b = [], _logits = [], _probs = [], _act = [], _actWork = [];
    KernelContext _kernels = null!;
    KernelContext.Scope _scope;

    [GlobalSetup]
    public void Setup()
    {
        _x = Program.Random(128 * 768, 4); _y = new float[_x.Length];
        _g = Program.Random(768, 5); _b = Program.Random(768, 6);
        _logits = Program.Random(50257, 7); _probs = new float[_logits.Length];
        _act = Program.Random(128 * 3072, 8); _actWork = new float[_act.Length];
        _kernels = new KernelContext(1);
        _scope = _kernels.Enter();
    }

    [GlobalCleanup]
    public void Cleanup() { _scope.Dispose(); _kernels.Dispose(); }

    [Benchmark] public void LayerNorm_128x768() => LayerNorm.Forward(_x, _g, _b, 1e-12f, _y);
    [Benchmark] public void Softmax_50257() { _logits.CopyTo(_probs, 0); Softmax.InPlace(_probs); }
    [Benchmark] public void TensorPrimitives_SoftMax_50257() => System.Numerics.Tensors.TensorPrimitives.SoftMax(_logits, _probs);
    [Benchmark] public void LogSoftmax_50257() => Softmax.Log(_logits, _probs);
    // Fresh input each time (copy included): applying GELU repeatedly in place drifts into denormals.
    [Benchmark] public void GeluErf_128x3072() { _act.CopyTo(_actWork, 0); Activations.Apply(Activation.GeluErf, _actWork); }
    [Benchmark] public void GeluTanh_128x3072() { _act.CopyTo(_actWork, 0); Activations.Apply(Activation.GeluTanh, _actWork); }
}
