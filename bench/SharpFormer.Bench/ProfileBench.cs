using System.Diagnostics;
using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Bench;

/// <summary>
/// <c>profile DIR [TOKENS] [f32|bf16|int8] [THREADS]</c>: where a BERT forward pass at batch 1 spends its time, per kernel
/// (<see cref="KernelProfile"/>), with GEMM GFLOP/s; "other" is the rest (embeddings, residual adds, copies, heads).
/// </summary>
static class ProfileBench
{
    public static void Run(string[] args)
    {
        if (args.Length < 1) throw new ArgumentException("usage: profile DIR [TOKENS] [f32|bf16|int8] [THREADS]");
        int t = args.Length > 1 ? int.Parse(args[1]) : 128;
        var precision = args.Length > 2 ? WeightPrecisions.FromName(args[2]) ?? throw new ArgumentException($"unknown dtype {args[2]}") : WeightPrecision.Float32;
        if (args.Length > 3) Threading.Threads = int.Parse(args[3]);
        var model = BertModel.Load(args[0], weights: WeightOptions.Inference(precision));
        var c = model.Config;
        var r = new Random(1);
        var inputs = new BertInputs([Enumerable.Range(0, t).Select(i => i == 0 ? 2 : i == t - 1 ? 3 : r.Next(5, c.VocabSize)).ToArray()]);
        for (int i = 0; i < 3; i++) model.Forward(inputs);   // warm-up (JIT tiers, buffers)

        const int Reps = 15;
        var totals = new List<double>();
        KernelProfile.Reset();
        KernelProfile.Enabled = true;
        try
        {
            for (int i = 0; i < Reps; i++)
            {
                long s = Stopwatch.GetTimestamp();
                model.Forward(inputs);
                totals.Add(Stopwatch.GetElapsedTime(s).TotalMilliseconds);
            }
        }
        finally { KernelProfile.Enabled = false; }
        totals.Sort();
        double mean = totals.Average(), median = totals[Reps / 2];
        long h = c.HiddenSize, inner = c.IntermediateSize;
        double gemmFlops = 2.0 * t * c.NumHiddenLayers * (4 * h * h + 2 * h * inner);
        Console.WriteLine($"{Path.GetFileName(args[0].TrimEnd('/'))}, 1×{t} tokens, {precision}, {Threading.Threads} thread(s): forward median {median:F2} ms, mean {mean:F2} ms ({Reps} runs)");
        Console.WriteLine($"{"kernel",-11} {"ms/forward",10} {"share",7} {"calls",7}");
        double accounted = 0;
        foreach (var (kernel, seconds, calls) in KernelProfile.Totals())
        {
            double ms = seconds * 1000 / Reps;
            accounted += ms;
            string extra = kernel == ProfiledKernel.Gemm ? $"   {gemmFlops / (ms / 1000) / 1e9:F0} GFLOP/s (encoder matrices only)" : "";
            Console.WriteLine($"{kernel,-11} {ms,10:F2} {ms / mean,7:P1} {calls / Reps,7}{extra}");
        }
        Console.WriteLine($"{"other",-11} {mean - accounted,10:F2} {(mean - accounted) / mean,7:P1}");
    }
}
