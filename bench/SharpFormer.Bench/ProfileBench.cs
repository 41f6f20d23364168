using System.Diagnostics;
using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Bench;

/// <summary>
/// <c>profile DIR [TOKENS] [f32|bf16|int8] [THREADS] [BATCH]</c>: where a forward pass spends its time, per kernel
/// (<see cref="KernelProfile"/>); "other" is the rest (embeddings, residual adds, copies, rotary positions). A BERT folder:
/// one forward at batch 1 with GEMM GFLOP/s. A decoder folder: a prefill of TOKENS tokens into a cache, then greedy-style
/// decode steps at batch BATCH (default 1) with the weight bytes each step streams.
/// </summary>
static class ProfileBench
{
    public static void Run(string[] args)
    {
        if (args.Length < 1) throw new ArgumentException("usage: profile DIR [TOKENS] [f32|bf16|int8] [THREADS] [BATCH]");
        int t = args.Length > 1 ? int.Parse(args[1]) : 128;
        var precision = args.Length > 2 ? WeightPrecisions.FromName(args[2]) ?? throw new ArgumentException($"unknown dtype {args[2]}") : WeightPrecision.Float32;
        // Every kernel of the run times itself into this context's profile.
        using var kernels = new KernelContext(args.Length > 3 ? int.Parse(args[3]) : null, profile: true);
        using var scope = kernels.Enter();
        if (ModelFamilies.Of(args[0]).Kind == ModelKind.CausalLM)
        {
            Decoder(args[0], t, precision, args.Length > 4 ? int.Parse(args[4]) : 1);
            return;
        }
        var model = BertModel.Load(args[0], weights: WeightOptions.Inference(precision));
        var c = model.Config;
        var r = new Random(1);
        var inputs = new BertInputs([Enumerable.Range(0, t).Select(i => i == 0 ? 2 : i == t - 1 ? 3 : r.Next(5, c.VocabSize)).ToArray()]);
        for (int i = 0; i < 3; i++) model.Forward(inputs);   // warm-up (JIT tiers, buffers)

        long h = c.HiddenSize, inner = c.IntermediateSize;
        double gemmFlops = 2.0 * t * c.NumHiddenLayers * (4 * h * h + 2 * h * inner);
        Report($"{Path.GetFileName(args[0].TrimEnd('/'))}, 1×{t} tokens, {precision}, {kernels.Threads} thread(s): forward", "ms/forward", 15,
               () => model.Forward(inputs), ms => $"   {gemmFlops / (ms / 1000) / 1e9:F0} GFLOP/s (encoder matrices only)");
    }

    static void Decoder(string dir, int t, WeightPrecision precision, int batch)
    {
        var model = AutoModel.LoadCausalLM(dir, WeightOptions.Inference(precision));
        var s = model.Shape;
        var r = new Random(1);
        int[][] Ids(int b, int n) => Enumerable.Range(0, b).Select(_ => Enumerable.Range(0, n).Select(_ => r.Next(s.VocabSize)).ToArray()).ToArray();
        var prompt = Ids(1, t);
        string name = $"{Path.GetFileName(dir.TrimEnd('/'))}, {precision}, {KernelContext.Current.Threads} thread(s)";
        model.Forward(prompt, cache: model.CreateCache(1, t), allLogits: false, outputPresents: false);   // warm-up
        Report($"{name}: prefill 1×{t} tokens", "ms/prefill", 2,
               () => model.Forward(prompt, cache: model.CreateCache(1, t), allLogits: false, outputPresents: false), null);

        const int Steps = 64;
        var cache = model.CreateCache(batch, 16 + 3 * Steps + 1);
        model.Forward(Ids(batch, 16), cache: cache, allLogits: false, outputPresents: false);
        var ids = new int[batch];
        var pos = new int[batch];
        var logits = new float[batch * s.VocabSize];
        void Step()
        {
            Array.Fill(pos, cache.Length);
            model.DecodeStep(ids, pos, cache, logits);
        }
        for (int i = 0; i < Steps; i++) Step();   // warm-up
        long inner = s.Hidden * (long)((s.Heads + 2 * s.KvHeads) * s.HeadDim + s.Heads * s.HeadDim) + 3L * s.Hidden * ((LlamaConfig)model.Config).IntermediateSize;
        double bytes = (s.Layers * inner + (long)s.VocabSize * s.Hidden) * (precision == WeightPrecision.Float32 ? 4 : precision == WeightPrecision.BFloat16 ? 2 : 1);
        Report($"{name}: decode step at batch {batch}", "ms/step", 2 * Steps, Step,
               ms => $"   {bytes / (ms / 1000) / 1e9:F1} GB/s of weights ({bytes / 1e6:F0} MB per step)");
    }

    /// <summary>Times <paramref name="reps"/> runs of <paramref name="run"/> with the kernel profile on and prints the per-kernel table.</summary>
    static void Report(string title, string unit, int reps, Action run, Func<double, string>? gemmNote)
    {
        var totals = new List<double>();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var profile = KernelContext.Current.Profile;
        profile.Reset();   // the warm-up's calls out
        for (int i = 0; i < reps; i++)
        {
            long s = Stopwatch.GetTimestamp();
            run();
            totals.Add(Stopwatch.GetElapsedTime(s).TotalMilliseconds);
        }
        totals.Sort();
        double mean = totals.Average(), median = totals[reps / 2];
        // CPU time per run (all threads, spinning included): on a busy host, wall time also counts the time slices other
        // processes took; CPU time ÷ threads does not.
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / reps;
        Console.WriteLine($"{title} median {median:F2} ms, mean {mean:F2} ms ({reps} runs), CPU {cpu:F2} ms per run");
        Console.WriteLine($"{"kernel",-11} {unit,10} {"share",7} {"calls",7}");
        double accounted = 0;
        foreach (var (kernel, seconds, calls) in profile.Totals())
        {
            double ms = seconds * 1000 / reps;
            accounted += ms;
            string extra = kernel == ProfiledKernel.Gemm && gemmNote is not null ? gemmNote(ms) : "";
            Console.WriteLine($"{kernel,-11} {ms,10:F2} {ms / mean,7:P1} {calls / reps,7}{extra}");
        }
        Console.WriteLine($"{"other",-11} {mean - accounted,10:F2} {(mean - accounted) / mean,7:P1}");
    }
}
