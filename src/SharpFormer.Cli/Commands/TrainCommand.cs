using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using SharpFormer.Models;
using SharpFormer.Tokenizers;
using SharpFormer.Training;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer train clm|mlm|classify|ner|embed</c>: pre-train or fine-tune in C#, progress on stderr, and a
/// HuggingFace-layout output folder (config.json with id2label/label2id, model.safetensors, tokenizer files; embed adds
/// the sentence-transformers files).
/// </summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var cmd = new Command("train", "Train or fine-tune a model (AdamW, warmup + decay, clipping, checkpoints); writes a HuggingFace model folder. " +
            "embed trains a sentence-embedding model contrastively (SimCSE on plain text, or JSONL positive pairs).");
        cmd.Subcommands.Add(TrainClmCommand.Create());
        cmd.Subcommands.Add(TrainMlmCommand.Create());
        cmd.Subcommands.Add(TrainClassifyCommand.Create());
        cmd.Subcommands.Add(TrainNerCommand.Create());
        cmd.Subcommands.Add(TrainEmbedCommand.Create());
        return cmd;
    }
}

/// <summary>The options every train subcommand has.</summary>
internal sealed class TrainOptionSet
{
    public readonly Option<string?> Model = new("--model", "-m") { Description = "Start from this HuggingFace model folder or model id ORG/NAME (fine-tune / continue pre-training).", CustomParser = CommonOptions.ModelFolder };
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
    public readonly Option<int?> MaxLength = new("--max-length") { Description = "Longest input in tokens (block size for clm); default 128, or the model's positions if it has fewer." };
    public readonly Option<int> Seed = new("--seed") { Description = "Seed for initialisation, data order, masking and dropout.", DefaultValueFactory = _ => 42 };
    public readonly Option<bool> NoDropout = new("--no-dropout") { Description = "Train with every dropout off." };
    public readonly Option<int> SaveSteps = new("--save-steps") { Description = "Write a resumable checkpoint to OUTPUT/checkpoint-N every N steps (0 = off).", DefaultValueFactory = _ => 0 };
    public readonly Option<int> SaveTotalLimit = new("--save-total-limit") { Description = "Keep only the newest N checkpoints (0 = keep all).", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> Resume = new("--resume") { Description = "Resume from a checkpoint folder written by --save-steps or Ctrl-C (same data and options)." };
    public readonly Option<bool> OverwriteOutput = new("--overwrite-output") { Description = "Train into a non-empty --output folder (its files of the same names are replaced)." };
    public readonly Option<string> Dtype = new("--dtype") { Description = "Storage type of the final model.safetensors: f32, f16 or bf16 (checkpoints stay f32).", DefaultValueFactory = _ => "f32" };
    public readonly Option<bool> Json = CommonOptions.Json();
    /// <summary>Only on the fine-tuning subcommands (classify, ner).</summary>
    public readonly Option<int> ReinitLayers = new("--reinit-layers") { Description = "Re-initialise this many top encoder layers of the pretrained --model before fine-tuning.", DefaultValueFactory = _ => 0 };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Model, Config, Tokenizer, Data, Eval, Output, Epochs, MaxSteps, BatchSize, GradAccum, Lr, WeightDecay, Warmup, Schedule, MaxGradNorm, MaxLength, Seed, NoDropout, SaveSteps, SaveTotalLimit, Resume, OverwriteOutput, Dtype, Json })
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

    /// <summary>
    /// Checks every option before any data or weights are read: a value out of range is refused with the option's name and
    /// accepted range, never clamped. Reads only the model's config.json (for --max-length) and looks at the output folder.
    /// </summary>
    /// <returns>The longest input in tokens: --max-length, by default 128 or the model's positions if fewer.</returns>
    public int Validate(ParseResult r)
    {
        if (r.GetValue(Lr) is double lr) Require(lr > 0 && double.IsFinite(lr), "--lr", "a finite number > 0", lr);
        Require(r.GetValue(WeightDecay) >= 0 && float.IsFinite(r.GetValue(WeightDecay)), "--weight-decay", "a finite number >= 0", r.GetValue(WeightDecay));
        Require(r.GetValue(MaxGradNorm) >= 0 && double.IsFinite(r.GetValue(MaxGradNorm)), "--max-grad-norm", "a finite number >= 0 (0 = no clipping)", r.GetValue(MaxGradNorm));
        Require(r.GetValue(Warmup) >= 0, "--warmup-steps", "an integer >= 0", r.GetValue(Warmup));
        Require(r.GetValue(MaxSteps) >= 0, "--max-steps", "an integer >= 0 (0 = use --epochs)", r.GetValue(MaxSteps));
        Require(r.GetValue(Epochs) >= 1, "--epochs", "an integer >= 1", r.GetValue(Epochs));
        Require(r.GetValue(BatchSize) >= 1, "--batch-size", "an integer >= 1", r.GetValue(BatchSize));
        Require(r.GetValue(GradAccum) >= 1, "--grad-accum", "an integer >= 1", r.GetValue(GradAccum));
        Require(r.GetValue(SaveSteps) >= 0, "--save-steps", "an integer >= 0 (0 = no checkpoints)", r.GetValue(SaveSteps));
        Require(r.GetValue(SaveTotalLimit) >= 0, "--save-total-limit", "an integer >= 0 (0 = keep all)", r.GetValue(SaveTotalLimit));
        Require(r.GetValue(ReinitLayers) >= 0, "--reinit-layers", "an integer >= 0", r.GetValue(ReinitLayers));
        var schedule = r.GetValue(Schedule)!;
        Require(schedule.ToLowerInvariant() is "linear" or "cosine" or "constant", "--schedule", "linear, cosine or constant", schedule);
        ModelSaver.ParseStorageDType(r.GetValue(Dtype)!);
        var config = TrainingModels.LoadConfig(r.GetValue(Model), r.GetValue(Config));
        int positions = config switch { BertConfig b => b.MaxPositionEmbeddings, Gpt2Config g => g.NPositions, _ => int.MaxValue };
        int maxLength = r.GetValue(MaxLength) ?? Math.Min(DefaultMaxLength, positions);
        Require(maxLength >= MinLength && maxLength <= positions, "--max-length", $"an integer from {MinLength} to the model's {positions} positions", maxLength);
        ValidateOutput(r);
        return maxLength;
    }

    const int DefaultMaxLength = 128;

    /// <summary>The shortest --max-length every task can fill: [CLS] + two one-token segments + [SEP], or a block of 4 tokens.</summary>
    const int MinLength = 4;

    static void Require<T>(bool ok, string option, string accepted, T got)
    {
        if (!ok) throw new SharpFormerException(FormattableString.Invariant($"{option} must be {accepted}, not {got}"));
    }

    /// <summary>
    /// --output must be a folder that is empty (or absent), unless --overwrite-output or a --resume checkpoint inside it
    /// says the run continues there; --resume must be a complete checkpoint.
    /// </summary>
    void ValidateOutput(ParseResult r)
    {
        var outDir = r.GetValue(Output)!;
        if (File.Exists(outDir)) throw new SharpFormerException($"--output {outDir} is a file, not a folder");
        string? resume = r.GetValue(Resume);
        if (resume is not null && !File.Exists(Path.Combine(resume, "trainer_state.json")))
            throw new SharpFormerException(Directory.Exists(resume)
                ? $"--resume {resume}: not a complete training checkpoint (no trainer_state.json)"
                : $"--resume {resume}: folder not found");
        var output = new OutputFolder(outDir);
        bool resumesInside = resume is not null && Path.GetDirectoryName(Path.GetFullPath(resume).TrimEnd(Path.DirectorySeparatorChar)) == output.Path;
        if (!output.IsEmpty() && !resumesInside && !r.GetValue(OverwriteOutput))
            throw new SharpFormerException($"--output {outDir} is not empty: pass --overwrite-output to train into it, or --resume one of its checkpoints");
    }
}

/// <summary>The epoch/step loop shared by every subcommand: batching, accumulation, progress, evaluation, checkpoints, resume.</summary>
internal static class TrainLoop
{
    /// <summary>
    /// Runs training and returns the exit code. <paramref name="epochBatches"/>(epoch) gives that epoch's micro-batches
    /// (deterministic per epoch, so a resumed run sees the same ones); <paramref name="evaluate"/> returns metrics (printed
    /// and in the summary); <paramref name="saveModel"/> writes config, weights and tokenizer files into a folder.
    /// Ctrl-C or SIGTERM finishes the current step, writes a checkpoint and returns 128 + the signal; a diverged step stops
    /// the run with an error and saves nothing.
    /// </summary>
    public static int Run<TBatch>(ParseResult r, TrainOptionSet o, ITrainable<TBatch> model, Func<int, List<TBatch>> epochBatches,
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
        var output = new OutputFolder(r.GetValue(o.Output)!);
        output.RemoveLeftovers();
        int saveSteps = r.GetValue(o.SaveSteps), keep = r.GetValue(o.SaveTotalLimit);
        string? lastCheckpoint = null;
        var progress = new TrainProgress(total);
        string SaveCheckpoint(JsonObject position)
        {
            lastCheckpoint = output.SaveCheckpoint(trainer.Step, dir => { trainer.SaveCheckpoint(dir, position); saveModel(dir); });
            output.Rotate(keep);
            progress.Note($"saved checkpoint {lastCheckpoint}");
            return lastCheckpoint;
        }
        using var interrupt = new InterruptSignal();
        var stop = interrupt.Token;
        var history = new JsonArray();
        JsonObject? lastEval = null;
        double lastLoss = double.NaN;
        try
        {
            for (int epoch = startEpoch; epoch < epochs && trainer.Step < total; epoch++)
            {
                var batches = epochBatches(epoch);
                for (int bi = epoch == startEpoch ? startBatch : 0; bi < batches.Count && trainer.Step < total; bi += accum)
                {
                    var rep = trainer.TrainStep(batches.Skip(bi).Take(accum).ToList());
                    lastLoss = rep.Loss;
                    progress.Report(rep, epoch);
                    bool endOfEpoch = bi + accum >= batches.Count;
                    var position = new JsonObject { ["epoch"] = endOfEpoch ? epoch + 1 : epoch, ["batch"] = endOfEpoch ? 0 : bi + accum };
                    bool due = saveSteps > 0 && trainer.Step % saveSteps == 0;
                    if (due || (stop.IsCancellationRequested && trainer.Step < total))
                    {
                        var ck = SaveCheckpoint(position);
                        if (stop.IsCancellationRequested)
                        {
                            progress.Note($"interrupted after step {trainer.Step}; to continue, run the same command with --resume {ck}");
                            return interrupt.ExitCode;
                        }
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
        }
        catch (TrainingDivergedException e)
        {
            progress.Done();
            throw new SharpFormerException(e.Message + "; no model was saved" + (lastCheckpoint is null ? "" : $" (last checkpoint: {lastCheckpoint})"));
        }
        progress.Done();
        var dtype = ModelSaver.ParseStorageDType(r.GetValue(o.Dtype)!);
        output.SaveModel(dir =>
        {
            saveModel(dir);
            ModelSaver.ConvertWeights(Path.Combine(dir, "model.safetensors"), dtype);
        });
        var summary = new JsonObject
        {
            ["output"] = output.Path, ["steps"] = trainer.Step, ["final_train_loss"] = Round(lastLoss),
            ["eval"] = lastEval?.DeepClone(), ["eval_history"] = history,
        };
        if (r.GetValue(o.Json)) Console.WriteLine(summary.ToJsonString(JsonOutput.Options));
        else
        {
            Console.WriteLine($"trained {trainer.Step} steps, final train loss {lastLoss:F4}");
            if (lastEval is not null) Console.WriteLine("eval: " + string.Join("  ", lastEval.Where(p => p.Key is not ("epoch" or "step")).Select(p => $"{p.Key} {Fmt(p.Value)}")));
            Console.WriteLine($"saved to {output.Path}");
        }
        return 0;
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

/// <summary>
/// Ctrl-C (SIGINT) or SIGTERM (a service manager, `kill`, a machine shutting down) while training: the first one sets
/// <see cref="Token"/> (the loop finishes its step and writes a checkpoint, then the process exits with
/// <see cref="ExitCode"/>); a second one terminates the process at once, as usual. SIGTERM matters because a job started in
/// the background by a non-interactive shell ignores SIGINT.
/// </summary>
internal sealed class InterruptSignal : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    readonly PosixSignalRegistration[] _registrations;
    int _signal;

    public InterruptSignal() => _registrations = [Register(PosixSignal.SIGINT, 2, "Ctrl-C"), Register(PosixSignal.SIGTERM, 15, "SIGTERM")];

    PosixSignalRegistration Register(PosixSignal signal, int number, string name) => PosixSignalRegistration.Create(signal, ctx =>
    {
        if (_cts.IsCancellationRequested) return;
        ctx.Cancel = true;
        _signal = number;
        if (!Console.IsErrorRedirected) Console.Error.WriteLine();   // ends the progress line redrawn in place
        Console.Error.WriteLine($"{name}: stopping after this step to write a checkpoint ({name} again to quit without one)");
        _cts.Cancel();
    });

    /// <summary>Cancelled when Ctrl-C is pressed or SIGTERM arrives.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>The exit code of a run stopped by the signal (128 + its number, as shells report it): 130 for Ctrl-C, 143 for SIGTERM.</summary>
    public int ExitCode => 128 + _signal;

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cts.Dispose();
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
