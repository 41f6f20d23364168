using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpFormer.Models;
using SharpFormer.Tokenizers;
using SharpFormer.Training;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer train clm|mlm|classify|ner</c>: pre-train or fine-tune in C#, progress on stderr, and a
/// HuggingFace-layout output folder (config.json with id2label/label2id, model.safetensors, tokenizer files).
/// </summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var cmd = new Command("train", "Train or fine-tune a model (AdamW, warmup + decay, clipping, checkpoints); writes a HuggingFace model folder.");
        cmd.Subcommands.Add(TrainClmCommand.Create());
        cmd.Subcommands.Add(TrainMlmCommand.Create());
        cmd.Subcommands.Add(TrainClassifyCommand.Create());
        cmd.Subcommands.Add(TrainNerCommand.Create());
        return cmd;
    }
}

/// <summary>The options every train subcommand has.</summary>
internal sealed class TrainOptionSet
{
    public readonly Option<string?> Model = new("--model", "-m") { Description = "Start from this HuggingFace model folder (fine-tune / continue pre-training)." };
    public readonly Option<string?> Config = new("--config") { Description = "Train from scratch with this config.json (needs --tokenizer)." };
    public readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "Folder with the tokenizer files (default: the --model folder)." };
    public readonly Option<string> Data = new("--data") { Description = "Training data file.", Required = true };
    public readonly Option<string?> Eval = new("--eval") { Description = "Evaluation data file (same format), evaluated after every epoch." };
    public readonly Option<string> Output = new("--output", "-o") { Description = "Output folder for the trained model.", Required = true };
    public readonly Option<int> Epochs = new("--epochs") { Description = "Passes over the data.", DefaultValueFactory = _ => 3 };
    public readonly Option<int> MaxSteps = new("--max-steps") { Description = "Stop after this many optimizer steps (overrides --epochs when > 0).", DefaultValueFactory = _ => 0 };
    public readonly Option<int> BatchSize = new("--batch-size") { Description = "Examples per micro-batch.", DefaultValueFactory = _ => 8 };
    public readonly Option<int> GradAccum = new("--grad-accum") { Description = "Micro-batches per optimizer step (gradient accumulation).", DefaultValueFactory = _ => 1 };
    public readonly Option<double?> Lr = new("--lr") { Description = "Peak learning rate (default 5e-5 fine-tuning, 1e-3 from scratch)." };
    public readonly Option<float> WeightDecay = new("--weight-decay") { Description = "AdamW decoupled weight decay (not on biases and LayerNorm).", DefaultValueFactory = _ => 0.01f };
    public readonly Option<int> Warmup = new("--warmup-steps") { Description = "Linear warmup steps.", DefaultValueFactory = _ => 0 };
    public readonly Option<string> Schedule = new("--schedule") { Description = "Decay after warmup: linear, cosine or constant.", DefaultValueFactory = _ => "linear" };
    public readonly Option<double> MaxGradNorm = new("--max-grad-norm") { Description = "Clip gradients to this global norm (0 = off).", DefaultValueFactory = _ => 1.0 };
    public readonly Option<int> MaxLength = new("--max-length") { Description = "Longest input in tokens (block size for clm).", DefaultValueFactory = _ => 128 };
    public readonly Option<int> Seed = new("--seed") { Description = "Seed for initialisation, data order, masking and dropout.", DefaultValueFactory = _ => 42 };
    public readonly Option<bool> NoDropout = new("--no-dropout") { Description = "Train with every dropout off." };
    public readonly Option<int> SaveSteps = new("--save-steps") { Description = "Write a resumable checkpoint to OUTPUT/checkpoint-N every N steps (0 = off).", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> Resume = new("--resume") { Description = "Resume from a checkpoint folder written by --save-steps (same data and options)." };
    public readonly Option<string> Dtype = new("--dtype") { Description = "Storage type of the final model.safetensors: f32, f16 or bf16 (checkpoints stay f32).", DefaultValueFactory = _ => "f32" };
    public readonly Option<bool> Json = CommonOptions.Json();
    /// <summary>Only on the fine-tuning subcommands (classify, ner).</summary>
    public readonly Option<int> ReinitLayers = new("--reinit-layers") { Description = "Re-initialise this many top encoder layers of the pretrained --model before fine-tuning.", DefaultValueFactory = _ => 0 };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Model, Config, Tokenizer, Data, Eval, Output, Epochs, MaxSteps, BatchSize, GradAccum, Lr, WeightDecay, Warmup, Schedule, MaxGradNorm, MaxLength, Seed, NoDropout, SaveSteps, Resume, Dtype, Json })
            c.Options.Add(o);
    }

    public string? TokenizerDir(ParseResult r) => r.GetValue(Tokenizer) ?? r.GetValue(Model)
        ?? throw new SharpFormerException("--config (training from scratch) needs --tokenizer DIR with the tokenizer files");

    public TrainerOptions TrainerOptions(ParseResult r, int totalSteps) => new()
    {
        LearningRate = r.GetValue(Lr) ?? (r.GetValue(Model) is null ? 1e-3 : 5e-5),
        WeightDecay = r.GetValue(WeightDecay),
        NoDecayOnBiasAndLayerNorm = true,
        MaxGradNorm = r.GetValue(MaxGradNorm),
        Schedule = LrSchedule.Parse(r.GetValue(Schedule)!),
        WarmupSteps = r.GetValue(Warmup),
        TotalSteps = totalSteps,
        GradientAccumulation = r.GetValue(GradAccum),
    };

    public void Validate(ParseResult r)
    {
        if (r.GetValue(BatchSize) < 1) throw new SharpFormerException("--batch-size must be at least 1");
        if (r.GetValue(GradAccum) < 1) throw new SharpFormerException("--grad-accum must be at least 1");
        if (r.GetValue(Epochs) < 1 && r.GetValue(MaxSteps) < 1) throw new SharpFormerException("--epochs (or --max-steps) must be at least 1");
        if (r.GetValue(MaxLength) < 4) throw new SharpFormerException("--max-length must be at least 4");
        ModelSaver.ParseStorageDType(r.GetValue(Dtype)!);
    }
}

/// <summary>The epoch/step loop shared by every subcommand: batching, accumulation, progress, evaluation, checkpoints, resume.</summary>
internal static class TrainLoop
{
    /// <summary>
    /// Runs training. <paramref name="epochBatches"/>(epoch) gives that epoch's micro-batches (deterministic per epoch, so a
    /// resumed run sees the same ones); <paramref name="evaluate"/> returns metrics (printed and returned in the summary).
    /// </summary>
    public static JsonObject Run<TBatch>(ParseResult r, TrainOptionSet o, ITrainable<TBatch> model, Func<int, List<TBatch>> epochBatches,
                                         Func<JsonObject>? evaluate, Action<string> saveModel)
    {
        int accum = r.GetValue(o.GradAccum), epochs = r.GetValue(o.Epochs), maxSteps = r.GetValue(o.MaxSteps);
        int batchesPerEpoch = epochBatches(0).Count;
        if (batchesPerEpoch == 0) throw new SharpFormerException($"{r.GetValue(o.Data)}: no training batches");
        int stepsPerEpoch = (batchesPerEpoch + accum - 1) / accum;
        int total = maxSteps > 0 ? maxSteps : epochs * stepsPerEpoch;
        if (maxSteps > 0) epochs = (maxSteps + stepsPerEpoch - 1) / stepsPerEpoch;
        var trainer = new Trainer<TBatch>(model, o.TrainerOptions(r, total));
        int startEpoch = 0, startBatch = 0;
        if (r.GetValue(o.Resume) is string resume)
        {
            var extra = trainer.LoadCheckpoint(resume) ?? throw new SharpFormerException($"{resume}: checkpoint has no data position");
            startEpoch = extra["epoch"]!.GetValue<int>();
            startBatch = extra["batch"]!.GetValue<int>();
            Console.Error.WriteLine($"resumed from {resume} at step {trainer.Step} (epoch {startEpoch + 1}, batch {startBatch})");
        }
        var outDir = r.GetValue(o.Output)!;
        Directory.CreateDirectory(outDir);
        int saveSteps = r.GetValue(o.SaveSteps);
        var progress = new TrainProgress(total);
        var history = new JsonArray();
        JsonObject? lastEval = null;
        double lastLoss = double.NaN;
        for (int epoch = startEpoch; epoch < epochs && trainer.Step < total; epoch++)
        {
            var batches = epochBatches(epoch);
            for (int bi = epoch == startEpoch ? startBatch : 0; bi < batches.Count && trainer.Step < total; bi += accum)
            {
                var group = batches.Skip(bi).Take(accum).ToList();
                var rep = trainer.TrainStep(group);
                lastLoss = rep.Loss;
                progress.Report(rep, epoch);
                if (saveSteps > 0 && trainer.Step % saveSteps == 0)
                {
                    var ck = Path.Combine(outDir, $"checkpoint-{trainer.Step}");
                    trainer.SaveCheckpoint(ck, new JsonObject { ["epoch"] = bi + accum >= batches.Count ? epoch + 1 : epoch, ["batch"] = bi + accum >= batches.Count ? 0 : bi + accum });
                    saveModel(ck);
                    progress.Note($"saved checkpoint {ck}");
                }
            }
            if (evaluate is not null)
            {
                lastEval = evaluate();
                lastEval["epoch"] = epoch + 1;
                lastEval["step"] = trainer.Step;
                history.Add(lastEval.DeepClone());
                progress.Note($"eval after epoch {epoch + 1}: " + string.Join("  ", lastEval.Where(p => p.Key is not ("epoch" or "step")).Select(p => $"{p.Key} {Fmt(p.Value)}")));
            }
        }
        progress.Done();
        saveModel(outDir);
        ModelSaver.ConvertWeights(Path.Combine(outDir, "model.safetensors"), ModelSaver.ParseStorageDType(r.GetValue(o.Dtype)!));
        var summary = new JsonObject
        {
            ["output"] = Path.GetFullPath(outDir), ["steps"] = trainer.Step, ["final_train_loss"] = Round(lastLoss),
            ["eval"] = lastEval?.DeepClone(), ["eval_history"] = history,
        };
        if (r.GetValue(o.Json)) Console.WriteLine(summary.ToJsonString(JsonOutput.Options));
        else
        {
            Console.WriteLine($"trained {trainer.Step} steps, final train loss {lastLoss:F4}");
            if (lastEval is not null) Console.WriteLine("eval: " + string.Join("  ", lastEval.Where(p => p.Key is not ("epoch" or "step")).Select(p => $"{p.Key} {Fmt(p.Value)}")));
            Console.WriteLine($"saved to {Path.GetFullPath(outDir)}");
        }
        return summary;
    }

    static string Fmt(JsonNode? n) => n is JsonValue v && v.TryGetValue<double>(out var d) ? d.ToString("F4") : n?.ToJsonString() ?? "null";

    public static double Round(double v) => double.IsFinite(v) ? Math.Round(v, 6) : double.NaN;

    /// <summary>A deterministic per-epoch RNG (data order, masking).</summary>
    public static TrainRng EpochRng(int seed, int epoch, ulong salt = 0) => new(((ulong)(uint)seed << 32) ^ (ulong)(uint)epoch ^ (salt * 0x9E3779B97F4A7C15UL));

    /// <summary>Shuffles indices 0..n-1 with the epoch RNG, then groups them into batches.</summary>
    public static List<List<int>> ShuffledGroups(int n, int batchSize, TrainRng rng)
    {
        var idx = Enumerable.Range(0, n).ToList();
        rng.Shuffle(idx);
        return idx.Chunk(batchSize).Select(c => c.ToList()).ToList();
    }
}

/// <summary>One progress line on stderr: step, bar, loss, learning rate, tokens/s, ETA (redrawn in place on a terminal).</summary>
internal sealed class TrainProgress(int total)
{
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly bool _tty = !Console.IsErrorRedirected;
    long _tokens;
    int _lastPrinted = -1;

    public void Report(StepReport rep, int epoch)
    {
        _tokens += rep.Tokens;
        double secs = _clock.Elapsed.TotalSeconds;
        double perStep = secs / Math.Max(1, rep.Step - Math.Max(0, _firstStep(rep.Step)));
        var eta = TimeSpan.FromSeconds(Math.Max(0, perStep * (total - rep.Step)));
        int width = 24, filled = (int)Math.Round(width * (double)rep.Step / total);
        string line = $"step {rep.Step}/{total} [{new string('#', filled)}{new string('.', width - filled)}] epoch {epoch + 1} loss {rep.Loss:F4} lr {rep.LearningRate:0.00e+00} {_tokens / Math.Max(secs, 1e-9):F0} tok/s ETA {eta:hh\\:mm\\:ss}";
        if (_tty) Console.Error.Write("\r" + line + "\u001b[K");
        else if (rep.Step == total || rep.Step - _lastPrinted >= Math.Max(1, total / 20)) { Console.Error.WriteLine(line); _lastPrinted = rep.Step; }
    }

    int? _first;
    int _firstStep(int step) => (_first ??= step - 1);

    public void Note(string s)
    {
        if (_tty) Console.Error.Write("\r\u001b[K");
        Console.Error.WriteLine(s);
    }

    public void Done()
    {
        if (_tty) Console.Error.WriteLine();
    }
}
