using System.Diagnostics;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Bench;

/// <summary>
/// <c>batching [--model DIR] [--data FILE] [--count N] [--batch B] [--reps R]</c>: encodes N real sentences of mixed length
/// (default: the first 256 ChnSentiCorp dev reviews, cut to the model's maximum length) three ways and times each:
/// padded to the longest of all, padded per batch in input order, and length-sorted batches (what the task pipelines do).
/// Prints padded tokens, seconds (median of R) and the speed-up, and checks that every way gives the same [CLS] vectors.
/// </summary>
static class BatchingBench
{
    public static void Run(string[] args)
    {
        string repo = FindRepo();
        string model = Arg(args, "--model") ?? Path.Combine(repo, "models", "bert-chinese-small-sentiment");
        string data = Arg(args, "--data") ?? Path.Combine(repo, "..", "shared", "data", "sentiment", "chnsenticorp", "dev.tsv");
        int count = int.Parse(Arg(args, "--count") ?? "256"), batch = int.Parse(Arg(args, "--batch") ?? "16"), reps = int.Parse(Arg(args, "--reps") ?? "5");
        if (!File.Exists(data)) throw new FileNotFoundException($"no data file {data} (pass --data FILE: one text per line, an optional <TAB>label is ignored)");

        var session = EncoderSession.Load(model, BertHeads.None);
        session.BatchSize = batch;
        session.MaxBatchTokens = int.MaxValue;
        var texts = File.ReadLines(data).Select(l => l.Split('\t')[0]).Where(t => t.Trim().Length > 0).Take(count).ToList();
        var encs = texts.Select(t => session.Tokenizer.Encode(t, maxLength: session.MaxLength)).ToList();
        int h = session.Config.HiddenSize;
        var lengths = encs.Select(e => e.Length).ToList();
        Console.WriteLine($"model {model} ({session.Config.NumHiddenLayers} layers, hidden {h}), {encs.Count} texts from {Path.GetFileName(data)}, " +
                          $"{lengths.Min()}–{lengths.Max()} tokens (mean {lengths.Average():F0}), batch {batch}, {SharpFormer.Kernels.KernelContext.Current.Threads} threads");

        // Each way returns the [CLS] vector of every text, in input order.
        float[][] Fixed(bool padToLongest)
        {
            var result = new float[encs.Count][];
            int longest = lengths.Max();
            for (int start = 0; start < encs.Count; start += batch)
            {
                var group = encs.Skip(start).Take(batch).ToList();
                var ids = group.Select(e => Pad(e.InputIds, padToLongest ? longest : group.Max(x => x.Length), session.Config.PadTokenId)).ToList();
                var mask = group.Select(e => Pad(e.AttentionMask, ids[0].Length, 0)).ToList();
                var outputs = session.Model.Forward(new BertInputs(ids.ToArray(), null, mask.ToArray()));
                for (int r = 0; r < group.Count; r++) result[start + r] = Cls(outputs, r, h);
            }
            return result;
        }
        float[][] Sorted() => session.RunBatched(encs, (o, r, _) => Cls(o, r, h));

        var ways = new (string Name, Func<float[][]> Run, long Tokens)[]
        {
            ("pad every text to the longest", () => Fixed(true), (long)lengths.Max() * encs.Count),
            ("pad per batch, input order", () => Fixed(false), encs.Chunk(batch).Sum(g => (long)g.Max(e => e.Length) * g.Length)),
            ("length-sorted batches (pipelines)", Sorted, EncoderSession.LengthSortedBatches(lengths, batch).Sum(g => (long)g.Max(i => lengths[i]) * g.Length)),
        };
        var reference = ways[0].Run();
        double baseline = 0;
        Console.WriteLine($"{"way",-36} {"padded tokens",14} {"real tokens",12} {"seconds",9} {"speed-up",9} {"max |Δ| vs first",17}");
        foreach (var (name, run, tokens) in ways)
        {
            var times = new List<double>();
            float[][] last = [];
            for (int i = 0; i < reps; i++) { var sw = Stopwatch.StartNew(); last = run(); times.Add(sw.Elapsed.TotalSeconds); }
            times.Sort();
            double med = times[times.Count / 2];
            if (baseline == 0) baseline = med;
            float diff = 0;
            for (int i = 0; i < last.Length; i++) for (int j = 0; j < h; j++) diff = Math.Max(diff, Math.Abs(last[i][j] - reference[i][j]));
            Console.WriteLine($"{name,-36} {tokens,14:N0} {lengths.Sum(),12:N0} {med,9:F3} {baseline / med,8:F2}× {diff,17:E1}");
        }
    }

    static int[] Pad(int[] row, int length, int value)
    {
        var r = new int[length];
        row.CopyTo(r, 0);
        Array.Fill(r, value, row.Length, length - row.Length);
        return r;
    }

    static float[] Cls(BertOutputs o, int row, int h) => o.LastHiddenState.Data.AsSpan(row * o.LastHiddenState.Shape[1] * h, h).ToArray();

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static string FindRepo()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "SharpFormer.slnx"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
