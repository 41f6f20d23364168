using System.Diagnostics;
using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Bench;

/// <summary>
/// <c>int8-bert DIR</c> mode: a BERT checkpoint loaded for inference as f32 and as int8, forwarded on the same 1×128
/// input in alternation (so the host's load hits both alike); median latencies and the last hidden state's error.
/// <c>int8</c> mode: Gemm.Linear with the same x, W and bias packed as f32, bf16 and int8, timed back to back per shape
/// (the host is shared, so only numbers from one run compare). Rates are GFLOP/s-equivalent, 2·M·N·K / time; the int8
/// time includes quantising x.
/// </summary>
static class Int8Bench
{
    public static void Gemm()
    {
        var shapes = new (int M, int K, int N, string Note)[]
        {
            (128, 768, 768, "BERT 128 tok: QKV/out"),
            (128, 768, 3072, "BERT 128 tok: FFN up"),
            (128, 3072, 768, "BERT 128 tok: FFN down"),
            (1, 768, 3072, "decode batch 1: FFN up"),
            (1, 768, 50257, "decode: lm_head"),
        };
        var precisions = new[] { WeightPrecision.Float32, WeightPrecision.BFloat16, WeightPrecision.Int8 };
        Console.WriteLine("GEMM y[M,N] = x[M,K]·Wᵀ + b, GFLOP/s-equivalent (median of 9); W GB/s = packed weight bytes / time");
        Console.WriteLine($"{"M",5} {"K",5} {"N",6} {"thr",3} | {"f32",7} {"bf16",7} {"int8",7} | {"int8/f32",8} | {"int8 ms",8} {"W GB/s",7}");
        foreach (int threads in new[] { 1, 2 })
        {
            using var kernels = new KernelContext(threads);
            using var scope = kernels.Enter();
            foreach (var (m, k, n, note) in shapes)
            {
                var x = Program.Random(m * k, 1);
                var wf = Program.Random(n * k, 2);
                var b = Program.Random(n, 3);
                var y = new float[m * n];
                double flops = 2.0 * m * n * k;
                var rate = new double[precisions.Length];
                double t8 = 0, bytes8 = 0;
                for (int i = 0; i < precisions.Length; i++)
                {
                    var w = PackedWeight.FromOutIn(wf, n, k, precisions[i]);
                    double t = Quick.Median(() => SharpFormer.Kernels.Gemm.Linear(x, m, w, b, y), flops);
                    rate[i] = flops / t / 1e9;
                    (t8, bytes8) = (t, w.Bytes);
                }
                Console.WriteLine($"{m,5} {k,5} {n,6} {threads,3} | {rate[0],7:F1} {rate[1],7:F1} {rate[2],7:F1} | {rate[2] / rate[0],7:F2}× | {t8 * 1e3,8:F3} {bytes8 / t8 / 1e9,7:F1}  {note}");
            }
        }
    }

    public static void Bert(string dir)
    {
        var f32 = BertModel.Load(dir, weights: WeightOptions.Inference());
        var int8 = BertModel.Load(dir, weights: WeightOptions.Inference(WeightPrecision.Int8));
        var r = new Random(1);
        var ids = new[] { Enumerable.Range(0, 128).Select(i => i == 0 ? 101 : i == 127 ? 102 : r.Next(1000, 20000)).ToArray() };
        var inputs = new BertInputs(ids);
        var (a, b) = (f32.Forward(inputs).LastHiddenState.Data, int8.Forward(inputs).LastHiddenState.Data);
        double err = 0, scale = 0, sq = 0, sqRef = 0;
        for (int i = 0; i < a.Length; i++)
        {
            err = Math.Max(err, Math.Abs(a[i] - b[i])); scale = Math.Max(scale, Math.Abs(a[i]));
            sq += (double)(a[i] - b[i]) * (a[i] - b[i]); sqRef += (double)a[i] * a[i];
        }
        Console.WriteLine($"{Path.GetFileName(dir.TrimEnd('/'))} 1×128 last_hidden_state: max |int8 − f32| = {err:G3}, max |f32| = {scale:G3} (relative {err / scale:G3}), rms error / rms = {Math.Sqrt(sq / sqRef):G3}");
        foreach (int threads in new[] { 1, 2 })
        {
            using var kernels = new KernelContext(threads);
            using var scope = kernels.Enter();
            var times = new List<double>[] { new(), new() };
            var sw = new Stopwatch();
            for (int rep = -2; rep < 15; rep++)
                for (int e = 0; e < 2; e++)
                {
                    sw.Restart();
                    (e == 0 ? f32 : int8).Forward(inputs);
                    if (rep >= 0) times[e].Add(sw.Elapsed.TotalMilliseconds);
                }
            double Median(List<double> t) { t.Sort(); return t[t.Count / 2]; }
            Console.WriteLine($"threads {threads}: f32 {Median(times[0]),7:F1} ms, int8 {Median(times[1]),7:F1} ms (median of 15, alternating): {Median(times[0]) / Median(times[1]):F2}×");
        }
    }
}
