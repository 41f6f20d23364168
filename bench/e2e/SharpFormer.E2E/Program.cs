// End-to-end bench runner for one engine and one model; prints one JSON object per line (see ../README.md).
//   SharpFormer.E2E --engine sharp|ort --model bert|gpt2|qwen2 --cache DIR --warmup W --reps R --min-reps M --budget S --max-time T
//                   [--threads N] [--quick] [--new-tokens 128] [--bf16 | --int8]
// SharpFormer loads its models for inference (packed straight from the checkpoint); --bf16 packs the weights as
// bfloat16 (engine "sharpformer-bf16"), --int8 as int8 with per-token activations (engine "sharpformer-int8").
// Each workload: W warm-up runs, then timed runs (Stopwatch, wall clock) by run.sh's rule (Bench.Time, the same as
// torch_bench.py's timed()); the median is reported. The timing numbers have no defaults here: run.sh sets them. The outputs
// of a run are written to DIR/out/<engine>_<workload>.f32|.i32 so that run.sh can compare every engine.
//   SharpFormer.E2E --engine membw --threads N     this machine's memory bandwidth (1 and N threads), no model
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SharpFormer.Kernels;
using SharpFormer.Models;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

var opts = Args.Parse(args);
if (opts.ColdStart) return ColdStart.Run(opts);
if (opts.Engine == "membw")
{
    // This machine's memory bandwidth, measured in the same run as the models (report.py's bandwidth limit).
    foreach (int th in new[] { 1, opts.Threads }.Distinct())
    {
        var (read, copy, triad) = SharpFormer.Bench.Bandwidth.Measure(th);
        Console.WriteLine(new JsonObject { ["engine"] = "membw", ["workload"] = $"membw_{th}t", ["threads"] = th, ["read_gb_s"] = read, ["copy_gb_s"] = copy, ["triad_gb_s"] = triad }.ToJsonString());
    }
    return 0;
}
string outDir = Path.Combine(opts.Cache, "out");
Directory.CreateDirectory(outDir);
var inputs = JsonNode.Parse(File.ReadAllText(Path.Combine(opts.Cache, "inputs.json")))![opts.Model]!.AsObject();
int[][] Ids(string key) => inputs[key]!.AsArray().Select(r => r!.AsArray().Select(x => x!.GetValue<int>()).ToArray()).ToArray();
string modelDir = Path.Combine(opts.Cache, opts.Model switch { "bert" => "bert-base-chinese", "qwen2" => "qwen2.5-0.5b", _ => opts.Model });
string engine = opts.Engine == "sharp" ? (opts.Bf16 ? "sharpformer-bf16" : opts.Int8 ? "sharpformer-int8" : "sharpformer") : "ort";
string[] bertShapes = opts.Quick ? ["1x16", "1x128", "32x128"] : ["1x16", "1x128", "1x512", "32x128"];
int newTokens = opts.NewTokens;

var load = Stopwatch.StartNew();
if (opts.Engine == "sharp")
{
    using var kernels = new KernelContext(opts.Threads);
    using var kernelScope = kernels.Enter();
    if (opts.Model == "bert")
    {
        var model = BertModel.Load(modelDir, weights: opts.Weights);
        Emit(new() { ["workload"] = "load_bert", ["seconds"] = load.Elapsed.TotalSeconds });
        foreach (var shape in bertShapes)
        {
            var ids = Ids(shape);
            var inp = new BertInputs(ids, ids.Select(r => new int[r.Length]).ToArray(), ids.Select(r => Enumerable.Repeat(1, r.Length).ToArray()).ToArray());
            var (med, all, last) = Bench.Time(() => model.Forward(inp).LastHiddenState.Data, opts);
            Bench.Dump(Path.Combine(outDir, $"{engine}_bert_{shape}.f32"), last);
            Emit(new() { ["workload"] = $"bert_{shape}", ["median_s"] = med, ["all_s"] = Bench.Arr(all) });
        }
    }
    else
    {
        // A decoder of any family, through ICausalLM as the CLI reaches it.
        var model = AutoModel.LoadCausalLM(modelDir, opts.Weights);
        Emit(new() { ["workload"] = $"load_{opts.Model}", ["seconds"] = load.Elapsed.TotalSeconds });
        Emit(new() { ["workload"] = $"rss_{opts.Model}_loaded", ["mb"] = Bench.CurrentRssMb() });
        // GPT-2: the full logits of 512 tokens (its rows since the first run of this bench). Qwen2: what generate() does
        // with a prompt — keys and values into a cache, logits of the last position — at 512 and 4096 tokens.
        string[] prefills = opts.Model == "gpt2" ? ["prefill_1x512"] : opts.Quick ? ["prefill_1x512"] : ["prefill_1x512", "prefill_1x4096"];
        foreach (var name in prefills)
        {
            var ids = Ids(name);
            bool allLogits = opts.Model == "gpt2";
            var (med, times, last) = Bench.Time(() => allLogits
                ? model.Forward(ids, allLogits: true, outputPresents: false).Logits.Data
                : model.Forward(ids, cache: model.CreateCache(1, ids[0].Length), allLogits: false, outputPresents: false).Logits.Data, opts);
            Bench.Dump(Path.Combine(outDir, $"{engine}_{opts.Model}_{name}.f32"), last);
            last = null;
            Emit(new() { ["workload"] = $"{opts.Model}_{name}", ["median_s"] = med, ["all_s"] = Bench.Arr(times) });
            // The high-water mark after each prefill: how memory grows with the sequence.
            Emit(new() { ["workload"] = $"rss_{opts.Model}_{name}", ["mb"] = Bench.PeakRssMb() });
        }
        foreach (int b in new[] { 1, 8 })
        {
            var prompt = Ids($"prompt_{b}x16");
            int p = prompt[0].Length, v = model.Shape.VocabSize;
            int[] Greedy()
            {
                var cache = model.CreateCache(b, p + newTokens);
                var logits = model.Forward(prompt, cache: cache, allLogits: false, outputPresents: false).Logits.Data; // [B, 1, V]
                var generated = new int[b * newTokens];
                var next = new int[b];
                var pos = new int[b];
                var stepLogits = new float[b * v];
                for (int i = 0; i < b; i++) next[i] = TensorPrimitives.IndexOfMax(logits.AsSpan(i * v, v));
                for (int s = 0; ; s++)
                {
                    for (int i = 0; i < b; i++) generated[i * newTokens + s] = next[i];
                    if (s == newTokens - 1) break;
                    Array.Fill(pos, p + s);
                    model.DecodeStep(next, pos, cache, stepLogits);
                    for (int i = 0; i < b; i++) next[i] = TensorPrimitives.IndexOfMax(stepLogits.AsSpan(i * v, v));
                }
                return generated;
            }
            var (dmed, dall, gen) = Bench.Time(Greedy, opts);
            Bench.DumpInts(Path.Combine(outDir, $"{engine}_{opts.Model}_decode_b{b}.i32"), gen!);
            Emit(new() { ["workload"] = $"{opts.Model}_decode_b{b}", ["median_s"] = dmed, ["all_s"] = Bench.Arr(dall), ["tokens_per_s"] = b * newTokens / dmed });
        }
    }
}
else
{
    using var so = new SessionOptions
    {
        IntraOpNumThreads = opts.Threads, InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };
    using var session = new InferenceSession(Path.Combine(opts.Cache, "onnx", opts.Model == "bert" ? "bert.onnx" : "gpt2_with_past.onnx"), so);
    Emit(new() { ["workload"] = $"load_{opts.Model}", ["seconds"] = load.Elapsed.TotalSeconds });
    using var ro = new RunOptions();
    if (opts.Model == "bert")
    {
        string[] outNames = ["last_hidden_state", "pooler_output"];
        foreach (var shape in bertShapes)
        {
            var ids = Ids(shape);
            long[] dims = [ids.Length, ids[0].Length];
            var flat = ids.SelectMany(r => r).Select(x => (long)x).ToArray();
            using var vIds = OrtValue.CreateTensorValueFromMemory(flat, dims);
            using var vTypes = OrtValue.CreateTensorValueFromMemory(new long[flat.Length], dims);
            using var vMask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, flat.Length).ToArray(), dims);
            var (med, all, last) = Bench.Time(() =>
            {
                using var res = session.Run(ro, ["input_ids", "token_type_ids", "attention_mask"], [vIds, vTypes, vMask], outNames);
                return res[0].GetTensorDataAsSpan<float>().ToArray();
            }, opts);
            Bench.Dump(Path.Combine(outDir, $"{engine}_bert_{shape}.f32"), last);
            Emit(new() { ["workload"] = $"bert_{shape}", ["median_s"] = med, ["all_s"] = Bench.Arr(all) });
        }
    }
    else
    {
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(modelDir, "config.json")))!;
        int layers = cfg["n_layer"]!.GetValue<int>(), heads = cfg["n_head"]!.GetValue<int>(), d = cfg["n_embd"]!.GetValue<int>() / heads;
        int v = cfg["vocab_size"]!.GetValue<int>();
        var inNames = new List<string> { "input_ids" };
        var outNames = new List<string> { "logits" };
        for (int l = 0; l < layers; l++) { inNames.Add($"past_key_{l}"); inNames.Add($"past_value_{l}"); outNames.Add($"present_key_{l}"); outNames.Add($"present_value_{l}"); }
        List<OrtValue> EmptyPast(int b) => Enumerable.Range(0, 2 * layers)
            .Select(_ => OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float, [b, heads, 0, d])).ToList();

        // Prefill: the whole 512-token prompt with an empty past; full logits.
        var ids = Ids("prefill_1x512");
        var flat = ids[0].Select(x => (long)x).ToArray();
        using var vIds = OrtValue.CreateTensorValueFromMemory(flat, [1, flat.Length]);
        var empty = EmptyPast(1);
        var (med, all, last) = Bench.Time(() =>
        {
            using var res = session.Run(ro, inNames, [vIds, .. empty], outNames);
            return res[0].GetTensorDataAsSpan<float>().ToArray();
        }, opts);
        Bench.Dump(Path.Combine(outDir, $"{engine}_gpt2_prefill_1x512.f32"), last);
        last = null;
        foreach (var e in empty) e.Dispose();
        Emit(new() { ["workload"] = "gpt2_prefill_1x512", ["median_s"] = med, ["all_s"] = Bench.Arr(all) });

        // Greedy decode: the prompt with an empty past, then one token per step feeding the presents back as past.
        foreach (int b in new[] { 1, 8 })
        {
            var prompt = Ids($"prompt_{b}x16");
            int[] Greedy()
            {
                var generated = new int[b * newTokens];
                var stepIds = new long[b];
                using var vPrompt = OrtValue.CreateTensorValueFromMemory(prompt.SelectMany(r => r).Select(x => (long)x).ToArray(), [b, prompt[0].Length]);
                using var vStep = OrtValue.CreateTensorValueFromMemory(stepIds, [b, 1]);
                IDisposableReadOnlyCollection<OrtValue>? prev = null;
                var emptyPast = EmptyPast(b);
                try
                {
                    for (int s = 0; s < newTokens; s++)
                    {
                        var feeds = new List<OrtValue> { s == 0 ? vPrompt : vStep };
                        if (prev is null) feeds.AddRange(emptyPast); else feeds.AddRange(prev.Skip(1));
                        var res = session.Run(ro, inNames, feeds, outNames);
                        prev?.Dispose();
                        prev = res;
                        var logits = res[0].GetTensorDataAsSpan<float>();   // [B, T, V]
                        int t = (int)res[0].GetTensorTypeAndShape().Shape[1];
                        for (int i = 0; i < b; i++)
                        {
                            int next = TensorPrimitives.IndexOfMax(logits.Slice((i * t + t - 1) * v, v));
                            generated[i * newTokens + s] = next;
                            stepIds[i] = next;
                        }
                    }
                }
                finally
                {
                    prev?.Dispose();
                    foreach (var e in emptyPast) e.Dispose();
                }
                return generated;
            }
            var (dmed, dall, gen) = Bench.Time(Greedy, opts);
            Bench.DumpInts(Path.Combine(outDir, $"{engine}_gpt2_decode_b{b}.i32"), gen!);
            Emit(new() { ["workload"] = $"gpt2_decode_b{b}", ["median_s"] = dmed, ["all_s"] = Bench.Arr(dall), ["tokens_per_s"] = b * newTokens / dmed });
        }
    }
}
Emit(new() { ["workload"] = $"peak_rss_{opts.Model}", ["mb"] = Bench.PeakRssMb() });
return 0;

void Emit(JsonObject o)
{
    o["engine"] = engine;
    Console.WriteLine(o.ToJsonString());
}

sealed record Args(string Engine, string Model, string Cache, int Threads, Timing Timing, bool Quick, int NewTokens, bool ColdStart, bool Bf16, bool Int8)
{
    public WeightOptions Weights => WeightOptions.Inference(Bf16 ? WeightPrecision.BFloat16 : Int8 ? WeightPrecision.Int8 : WeightPrecision.Float32);

    public static Args Parse(string[] a)
    {
        string Get(string name, string? fallback = null)
        {
            int i = Array.IndexOf(a, name);
            return i >= 0 && i + 1 < a.Length ? a[i + 1] : fallback ?? throw new ArgumentException($"missing {name}");
        }
        bool coldStart = a.Contains("--coldstart"), membw = Get("--engine") == "membw";
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        // --coldstart runs once and the bandwidth probe has its own repetitions: neither needs timing options (nor membw a model).
        var timing = coldStart || membw ? new Timing(0, 0, 0, 0, 0)
            : new Timing(int.Parse(Get("--warmup")), int.Parse(Get("--reps")), int.Parse(Get("--min-reps")),
                         double.Parse(Get("--budget"), inv), double.Parse(Get("--max-time"), inv));
        return new Args(Get("--engine"), membw ? "" : Get("--model"), Get("--cache", membw ? "" : null), int.Parse(Get("--threads", "2")), timing,
                        a.Contains("--quick"), int.Parse(Get("--new-tokens", "128")), coldStart, a.Contains("--bf16"), a.Contains("--int8"));
    }
}

/// <summary>
/// run.sh's timing rule: <paramref name="Warmup"/> untimed runs, then timed runs while fewer than <paramref name="MinReps"/>,
/// or under <paramref name="BudgetS"/> seconds in total, or fewer than <paramref name="Reps"/> and under <paramref name="MaxTimeS"/>
/// seconds: fast workloads get at least Reps runs and BudgetS seconds, slow ones stop near MaxTimeS.
/// </summary>
sealed record Timing(int Warmup, int Reps, int MinReps, double BudgetS, double MaxTimeS)
{
    public bool More(int runs, double spentS) => runs < MinReps || spentS < BudgetS || (runs < Reps && spentS < MaxTimeS);
}

static class Bench
{
    public static (double Median, double[] All, T? Last) Time<T>(Func<T> run, Args o)
    {
        T? last = default;
        for (int i = 0; i < o.Timing.Warmup; i++) last = run();
        var times = new List<double>();
        double spent = 0;
        while (o.Timing.More(times.Count, spent))
        {
            last = default;
            var sw = Stopwatch.StartNew();
            last = run();
            times.Add(sw.Elapsed.TotalSeconds);
            spent += times[^1];
        }
        var all = times.ToArray();
        var sorted = all.OrderBy(x => x).ToArray();
        double med = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        return (med, all, last);
    }

    public static JsonArray Arr(double[] xs) => new(xs.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray());

    public static void Dump(string path, float[]? data) => File.WriteAllBytes(path, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
    public static void DumpInts(string path, int[] data) => File.WriteAllBytes(path, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    /// <summary>VmHWM (peak resident set) of this process, in MB.</summary>
    public static double PeakRssMb() => StatusMb("VmHWM:");
    /// <summary>VmRSS (resident set now) of this process, in MB.</summary>
    public static double CurrentRssMb() => StatusMb("VmRSS:");

    static double StatusMb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return double.NaN;
    }
}

/// <summary>
/// --coldstart: load BERT-base, run one sentence (fixed ids: [CLS] 今 天 天 气 很 好 。 [SEP]) and print the [CLS]
/// vector's first values — the peer of `sharpformer embed` / coldstart_torch.py for the time-to-first-output row.
/// </summary>
static class ColdStart
{
    public static int Run(Args o)
    {
        int[] ids = [101, 791, 1921, 1921, 3698, 2523, 1962, 511, 102];
        float[] first;
        string dir = Path.Combine(o.Cache, "bert-base-chinese");
        if (o.Engine == "sharp")
        {
            using var kernels = new KernelContext(o.Threads);
            using var kernelScope = kernels.Enter();
            var model = BertModel.Load(dir, weights: o.Weights);
            first = model.Forward(new BertInputs([ids], [new int[ids.Length]], [Enumerable.Repeat(1, ids.Length).ToArray()])).LastHiddenState.Data[..8];
        }
        else
        {
            using var so = new SessionOptions { IntraOpNumThreads = o.Threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            using var session = new InferenceSession(Path.Combine(o.Cache, "onnx", "bert.onnx"), so);
            long[] dims = [1, ids.Length];
            using var vIds = OrtValue.CreateTensorValueFromMemory(ids.Select(x => (long)x).ToArray(), dims);
            using var vTypes = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], dims);
            using var vMask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, ids.Length).ToArray(), dims);
            using var ro = new RunOptions();
            using var res = session.Run(ro, ["input_ids", "token_type_ids", "attention_mask"], [vIds, vTypes, vMask], ["last_hidden_state"]);
            first = res[0].GetTensorDataAsSpan<float>()[..8].ToArray();
        }
        Console.WriteLine(string.Join(" ", first.Select(x => x.ToString("F6", System.Globalization.CultureInfo.InvariantCulture))));
        return 0;
    }
}
