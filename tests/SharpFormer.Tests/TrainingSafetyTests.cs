using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Training;

namespace SharpFormer.Tests;

/// <summary>
/// Training that cannot silently go wrong: options checked before anything is read, divergence stops the run without
/// saving a model, Ctrl-C leaves a resumable checkpoint, checkpoints are complete or absent, output folders are not
/// trained into by accident.
/// </summary>
public partial class TrainingSafetyTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-train-safety-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    string Data()
    {
        var p = Path.Combine(_dir, "en.txt");
        File.WriteAllText(p, "Once upon a time there was a little robot who loved to read books.\nThe robot wanted to learn everything about the world.\n");
        return p;
    }

    /// <summary>A short GPT-2 run on the tiny fixture (dropout on, so the checkpointed RNG state matters).</summary>
    string[] Clm(string output, params string[] more) =>
        ["train", "clm", "--model", SharedPaths.Fixture("gpt2-tiny"), "--data", Data(), "-o", output,
         "--batch-size", "2", "--max-length", "8", "--warmup-steps", "2", .. more];

    static string[] ErrorLines(CliHarness.Result r) =>
        r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();

    static string[] Entries(string dir) => Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    // ------------------------------------------------------------------ item 2: options

    [Theory]
    [InlineData("clm", "--lr", "-1", "--lr must be a finite number > 0, not -1")]
    [InlineData("clm", "--lr", "0", "--lr must be a finite number > 0, not 0")]
    [InlineData("clm", "--lr", "1e400", "--lr must be a finite number > 0, not Infinity")]
    [InlineData("clm", "--warmup-steps", "-5", "--warmup-steps must be an integer >= 0, not -5")]
    [InlineData("clm", "--weight-decay", "-1", "--weight-decay must be a finite number >= 0, not -1")]
    [InlineData("clm", "--max-grad-norm", "-1", "--max-grad-norm must be a finite number >= 0 (0 = no clipping), not -1")]
    [InlineData("clm", "--max-steps", "-3", "--max-steps must be an integer >= 0 (0 = use --epochs), not -3")]
    [InlineData("clm", "--epochs", "0", "--epochs must be an integer >= 1, not 0")]
    [InlineData("clm", "--batch-size", "0", "--batch-size must be an integer >= 1, not 0")]
    [InlineData("clm", "--grad-accum", "0", "--grad-accum must be an integer >= 1, not 0")]
    [InlineData("clm", "--save-steps", "-1", "--save-steps must be an integer >= 0 (0 = no checkpoints), not -1")]
    [InlineData("clm", "--save-total-limit", "-2", "--save-total-limit must be an integer >= 0 (0 = keep all), not -2")]
    [InlineData("clm", "--max-length", "100000", "--max-length must be an integer from 4 to the model's 64 positions, not 100000")]
    [InlineData("clm", "--max-length", "2", "--max-length must be an integer from 4 to the model's 64 positions, not 2")]
    [InlineData("clm", "--schedule", "cubic", "--schedule must be linear, cosine or constant, not cubic")]
    [InlineData("clm", "--dtype", "f8", "--dtype must be f32, f16 or bf16")]
    [InlineData("clm", "--resume", "nowhere", "--resume nowhere: folder not found")]
    [InlineData("mlm", "--mlm-probability", "1.5", "--mlm-probability must be a number in (0, 1], not 1.5")]
    [InlineData("ner", "--reinit-layers", "-1", "--reinit-layers must be an integer >= 0, not -1")]
    public void AnOptionOutOfRangeIsRefusedBeforeTheDataIsRead(string task, string option, string value, string message)
    {
        var model = SharedPaths.Fixture(task == "clm" ? "gpt2-tiny" : task == "ner" ? "bert-tiny-ner" : "bert-tiny");
        var output = Path.Combine(_dir, "out");
        // The data file does not exist: the option's error (not "file not found") shows the check comes first.
        var r = CliHarness.Run("train", task, "--model", model, "--data", Path.Combine(_dir, "missing.txt"), "-o", output, option, value);
        CliHarness.AssertOneLineError(r, message);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void MaxLengthDefaultsToTheModelsPositionsWhenItHasFewerThan128()
    {
        var output = Path.Combine(_dir, "out");
        var r = CliHarness.Run("train", "clm", "--model", SharedPaths.Fixture("gpt2-tiny"), "--data", Data(), "-o", output, "--max-steps", "1");
        Assert.True(r.ExitCode == 0, r.Stderr);
    }

    // ------------------------------------------------------------------ item 2: divergence

    [Fact]
    public void ADivergingRunStopsNamingTheStepAndSavesNoModel()
    {
        var output = Path.Combine(_dir, "out");
        var r = CliHarness.Run([.. Clm(output, "--lr", "1e30", "--max-steps", "4", "--save-steps", "1")]);
        Assert.Equal(1, r.ExitCode);
        Assert.DoesNotContain("   at ", r.Stderr);
        var error = Assert.Single(ErrorLines(r));
        // Step 1 runs at learning rate 0 (warmup), step 2 at 5e29 sends the weights to infinity, step 3 is NaN.
        Assert.Contains("training diverged at step 3: loss NaN", error);
        Assert.Contains($"no model was saved (last checkpoint: {Path.Combine(output, "checkpoint-2")})", error);
        Assert.Equal(["checkpoint-1", "checkpoint-2"], Entries(output));
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void TheTrainerRefusesANonFiniteStepAndKeepsTheLastFiniteParameters()
    {
        var tr = TrainingTests.Gpt2();
        var trainer = new Trainer<Gpt2Batch>(tr, new TrainerOptions { LearningRate = 1e30, Schedule = ScheduleKind.Constant, TotalSteps = 5 });
        var batch = TrainingTests.Gpt2GoldenBatch();
        Assert.True(double.IsFinite(trainer.TrainStep(batch).Loss));
        var before = tr.Parameters.All.ToDictionary(p => p.Name, p => (float[])p.Tensor.Data.Clone());
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.TrainStep(batch));
        Assert.Equal(2, e.Step);
        Assert.Equal(1, trainer.Step);
        foreach (var (name, t) in tr.Parameters.All) Assert.Equal(before[name], t.Data);
    }

    [Fact]
    public void AnMlmBatchWithNothingMaskedIsNotDivergence()
    {
        // PyTorch's mean over no masked token is NaN, but such a batch adds no gradient: training goes on.
        var tr = TrainingTests.Bert("bert-tiny");
        var batch = TrainingTests.BertGoldenBatch();
        batch = batch with { MlmLabels = batch.MlmLabels!.Select(row => row.Select(_ => -100).ToArray()).ToArray() };
        var trainer = new Trainer<BertBatch>(tr, new TrainerOptions { LearningRate = 1e-3, TotalSteps = 2 });
        var rep = trainer.TrainStep(batch);
        Assert.True(double.IsNaN(rep.Loss));
        Assert.True(double.IsFinite(rep.GradNorm) && rep.GradNorm > 0, $"gradient norm {rep.GradNorm}");
        Assert.Equal(1, trainer.Step);
    }

    // ------------------------------------------------------------------ item 6: Ctrl-C

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);

    const int SigInt = 2, SigKill = 9, SigTerm = 15;

    /// <summary>Starts the CLI, sends <paramref name="signal"/> once a stderr line contains <paramref name="when"/>, waits for the exit.</summary>
    static CliHarness.Result SignalAfter(string[] args, string when, int signal)
    {
        using var p = Process.Start(CliHarness.StartInfo(args))!;
        var stderr = new StringBuilder();
        var seen = new TaskCompletionSource();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            if (e.Data.Contains(when, StringComparison.Ordinal)) seen.TrySetResult();
        };
        p.BeginErrorReadLine();
        var stdout = p.StandardOutput.ReadToEndAsync();
        Task.WaitAny([seen.Task, p.WaitForExitAsync()], TimeSpan.FromMinutes(2));
        Assert.True(seen.Task.IsCompleted, $"no \"{when}\" on stderr before the exit: {stderr}");
        Assert.Equal(0, SendSignal(p.Id, signal));
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("the CLI did not stop after the signal"); }
        p.WaitForExit();   // drains the asynchronous stderr reader
        lock (stderr) return new CliHarness.Result(p.ExitCode, stdout.Result, stderr.ToString());
    }

    static void AssertSameWeights(string expectedDir, string actualDir)
    {
        using var a = new SafeTensorsFile(Path.Combine(expectedDir, "model.safetensors"));
        using var b = new SafeTensorsFile(Path.Combine(actualDir, "model.safetensors"));
        Assert.Equal(a.Names.Order(StringComparer.Ordinal), b.Names.Order(StringComparer.Ordinal));
        foreach (var n in a.Names) Assert.Equal(a.ReadFloat32(n).Data, b.ReadFloat32(n).Data);
    }

    static void AssertCompleteCheckpoint(string dir)
    {
        foreach (var f in new[] { "trainer_state.json", "model.safetensors", "optimizer.safetensors", "config.json", "vocab.json", "merges.txt" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{dir} has no {f}");
        Assert.Empty(Gpt2Model.Load(dir).InitialisedParameters);
    }

    [Theory]
    [InlineData(SigInt)]
    [InlineData(SigTerm)]   // a service manager's stop, or `kill`; a background job of a script ignores SIGINT
    public void CtrlCOrSigtermWritesACheckpointThatResumesToTheSameWeights(int signal)
    {
        // Enough steps that the signal lands before the end even when a busy machine delays it (8 steps once finished first).
        const string Steps = "40";
        var reference = Path.Combine(_dir, "reference");
        var full = CliHarness.Run(Clm(reference, "--max-steps", Steps));
        Assert.True(full.ExitCode == 0, full.Stderr);

        var output = Path.Combine(_dir, "out");
        var r = SignalAfter(Clm(output, "--max-steps", Steps), $"step 1/{Steps}", signal);
        Assert.True(r.ExitCode == 128 + signal, $"exit {r.ExitCode}: {r.Stderr}");
        var checkpoint = Assert.Single(Directory.GetDirectories(output));
        Assert.Single(Entries(output));
        Assert.Matches("^checkpoint-[0-9]+$", Path.GetFileName(checkpoint));
        Assert.NotEqual($"checkpoint-{Steps}", Path.GetFileName(checkpoint));
        AssertCompleteCheckpoint(checkpoint);
        Assert.Contains($"run the same command with --resume {checkpoint}\n", r.Stderr.ReplaceLineEndings("\n"));
        Assert.False(File.Exists(Path.Combine(output, "model.safetensors")));

        var resumed = CliHarness.Run([.. Clm(output, "--max-steps", Steps), "--resume", checkpoint]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains("resumed", resumed.Stderr);
        AssertSameWeights(reference, output);
    }

    // ------------------------------------------------------------------ item 7: checkpoints and the output folder

    [Fact]
    public void SigkillDuringCheckpointingLeavesOnlyCompleteCheckpoints()
    {
        var output = Path.Combine(_dir, "out");
        var r = SignalAfter(Clm(output, "--max-steps", "12", "--save-steps", "1"), "saved checkpoint", SigKill);
        Assert.Equal(128 + SigKill, r.ExitCode);
        var checkpoints = new OutputFolder(output).Checkpoints();
        Assert.NotEmpty(checkpoints);
        foreach (var (_, dir) in checkpoints) AssertCompleteCheckpoint(dir);
        // Resuming into the same folder continues from the newest and clears what the killed save left behind.
        var resumed = CliHarness.Run([.. Clm(output, "--max-steps", "12", "--save-steps", "20"), "--resume", checkpoints[^1].Dir]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.DoesNotContain(Entries(output), e => e.StartsWith('.'));
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
    }

    [Fact]
    public void ANonEmptyOutputFolderIsRefusedUnlessOverwriteOutput()
    {
        var output = Path.Combine(_dir, "out");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "notes.txt"), "mine");
        var r = CliHarness.Run(Clm(output, "--max-steps", "1"));
        CliHarness.AssertOneLineError(r, $"--output {output} is not empty: pass --overwrite-output to train into it, or --resume one of its checkpoints");
        Assert.Equal(["notes.txt"], Entries(output));

        var ok = CliHarness.Run([.. Clm(output, "--max-steps", "1"), "--overwrite-output"]);
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(output, "notes.txt")));
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
    }

    [Fact]
    public void SaveTotalLimitKeepsTheNewestCheckpointsAndLeftoversDoNotCount()
    {
        var output = Path.Combine(_dir, "out");
        // What a run killed while saving leaves: a hidden temporary folder. The folder counts as empty and is cleaned.
        var leftover = Directory.CreateDirectory(Path.Combine(output, ".save.sftmp-1-0")).FullName;
        File.WriteAllText(Path.Combine(leftover, "model.safetensors"), "half");
        var r = CliHarness.Run([.. Clm(output, "--max-steps", "4", "--save-steps", "1", "--save-total-limit", "2", "--dtype", "bf16")]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(["checkpoint-3", "checkpoint-4", "config.json", "merges.txt", "model.safetensors", "special_tokens_map.json",
                      "tokenizer_config.json", "vocab.json"], Entries(output));
        using var weights = new SafeTensorsFile(Path.Combine(output, "model.safetensors"));
        Assert.All(weights.Entries.Values, e => Assert.Equal(DType.BF16, e.DType));
    }

    [Fact]
    public void ACheckpointIsCompleteOrAbsent()
    {
        var folder = new OutputFolder(Path.Combine(_dir, "out"));
        Assert.Throws<IOException>(() => folder.SaveCheckpoint(5, dir =>
        {
            File.WriteAllText(Path.Combine(dir, "model.safetensors"), "partial");
            throw new IOException("disk full");
        }));
        Assert.Empty(Entries(folder.Path));
        Assert.True(folder.IsEmpty());

        foreach (var step in new[] { 10, 1, 9, 2 })
            folder.SaveCheckpoint(step, dir => File.WriteAllText(Path.Combine(dir, "trainer_state.json"), step.ToString()));
        Directory.CreateDirectory(Path.Combine(folder.Path, ".save.sftmp-7-0"));
        Directory.CreateDirectory(Path.Combine(folder.Path, "checkpoint-x"));
        Assert.Equal([1, 2, 9, 10], folder.Checkpoints().Select(c => c.Step));
        folder.Rotate(2);
        Assert.Equal([9, 10], folder.Checkpoints().Select(c => c.Step));
        folder.SaveCheckpoint(10, dir => File.WriteAllText(Path.Combine(dir, "trainer_state.json"), "again"));
        Assert.Equal("again", File.ReadAllText(Path.Combine(folder.Path, "checkpoint-10", "trainer_state.json")));
        folder.RemoveLeftovers();
        Assert.Equal(["checkpoint-10", "checkpoint-9", "checkpoint-x"], Entries(folder.Path));
    }
}
