using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;

namespace SharpFormer.Training;

/// <summary>How to optimise (defaults follow transformers' TrainingArguments where it has one).</summary>
public sealed record TrainerOptions
{
    /// <summary>The peak learning rate.</summary>
    public double LearningRate { get; init; } = 5e-5;
    /// <summary>AdamW's decoupled weight decay.</summary>
    public float WeightDecay { get; init; } = 0.0f;
    /// <summary>true: Trainer-style groups (no decay on biases and LayerNorm); false: decay on every parameter (plain torch AdamW).</summary>
    public bool NoDecayOnBiasAndLayerNorm { get; init; } = true;
    /// <summary>AdamW's β1.</summary>
    public float Beta1 { get; init; } = 0.9f;
    /// <summary>AdamW's β2.</summary>
    public float Beta2 { get; init; } = 0.999f;
    /// <summary>AdamW's ε.</summary>
    public float Eps { get; init; } = 1e-8f;
    /// <summary>Clip gradients to this global L2 norm; 0 or less disables clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>The learning-rate schedule after warm-up.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Linear;
    /// <summary>Steps of linear warm-up from 0.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Optimizer steps the schedule spans.</summary>
    public int TotalSteps { get; init; } = 1;
    /// <summary>Micro-batches whose gradients are summed (each scaled by 1/N) before one optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;
}

/// <summary>
/// Training diverged: step <see cref="Step"/> gave a non-finite loss or gradient norm. Thrown before that step's update,
/// so the parameters are those after the last finite step; nothing should be saved as a trained model.
/// </summary>
public sealed class TrainingDivergedException(int step, double loss, double gradNorm)
    : SharpFormerException(FormattableString.Invariant($"training diverged at step {step}: loss {loss}, gradient norm {gradNorm} (try a lower learning rate, more warmup or gradient clipping)"))
{
    /// <summary>The optimizer step (1-based) whose loss or gradients were not finite.</summary>
    public int Step { get; } = step;
}

/// <summary>What one optimizer step did.</summary>
public sealed record StepReport(int Step, double Loss, double GradNorm, double LearningRate, int Tokens);

/// <summary>
/// The training loop's core, model-agnostic: zero the gradients, forward/backward every micro-batch (gradients
/// scaled by 1/accumulation, like HF dividing the loss), clip by global norm, take the scheduled learning rate,
/// AdamW step. <see cref="SaveCheckpoint"/> / <see cref="LoadCheckpoint"/> capture parameters, optimizer moments,
/// step, and the dropout RNG, so a resumed run continues bit-for-bit.
/// </summary>
public sealed class Trainer<TBatch>
{
    /// <summary>The model being trained.</summary>
    public ITrainable<TBatch> Model { get; }
    /// <summary>The optimisation settings.</summary>
    public TrainerOptions Options { get; }
    /// <summary>The optimizer (its moments are part of a checkpoint).</summary>
    public AdamW Optimizer { get; }
    /// <summary>The learning-rate schedule.</summary>
    public LrSchedule Schedule { get; }
    /// <summary>Optimizer steps taken so far.</summary>
    public int Step { get; private set; }

    /// <summary>A trainer for <paramref name="model"/> with AdamW parameter groups as <paramref name="options"/> say.</summary>
    public Trainer(ITrainable<TBatch> model, TrainerOptions options)
    {
        if (options.GradientAccumulation < 1) throw new SharpFormerException("gradient accumulation must be at least 1");
        Model = model;
        Options = options;
        Optimizer = options.NoDecayOnBiasAndLayerNorm
            ? AdamW.TrainerStyle(model.Parameters, options.WeightDecay, options.Beta1, options.Beta2, options.Eps)
            : AdamW.AllParameters(model.Parameters, options.WeightDecay, options.Beta1, options.Beta2, options.Eps);
        Schedule = new LrSchedule(options.Schedule, options.LearningRate, options.WarmupSteps, Math.Max(1, options.TotalSteps));
    }

    /// <summary>One optimizer step over <paramref name="microBatches"/> (normally GradientAccumulation of them). Loss is the mean of their losses, before the update.</summary>
    public StepReport TrainStep(IReadOnlyList<TBatch> microBatches)
    {
        if (microBatches.Count == 0) throw new ArgumentException("no batches");
        Model.Training = true;
        Model.Gradients.Zero();
        double loss = 0;
        int tokens = 0;
        bool lossDiverged = false;
        float scale = 1f / microBatches.Count;
        foreach (var mb in microBatches)
        {
            var r = Model.Step(mb, backward: true, scale);
            loss += r.Loss;
            lossDiverged |= Diverged(r);
            tokens += Model.TokenCount(mb);
        }
        loss /= microBatches.Count;
        double norm = Options.MaxGradNorm > 0 ? Model.Gradients.ClipByGlobalNorm(Options.MaxGradNorm) : Model.Gradients.GlobalNorm();
        // Checked before the update, so the parameters stay those of the last finite step.
        if (lossDiverged || !double.IsFinite(norm)) throw new TrainingDivergedException(Step + 1, loss, norm);
        double lr = Schedule.At(Step);
        Optimizer.Step(Model.Gradients, lr);
        Model.WeightsChanged();
        Step++;
        return new StepReport(Step, loss, norm, lr, tokens);
    }

    /// <summary>One optimizer step on a single batch.</summary>
    public StepReport TrainStep(TBatch batch) => TrainStep([batch]);

    /// <summary>
    /// A micro-batch's loss is non-finite because the model diverged, not because it had nothing to predict: PyTorch's
    /// mean over no targets is NaN (a GPT-2 batch without targets, an MLM batch where nothing was masked), and such a batch
    /// adds no gradient. A diverged MLM part makes its gradients non-finite, which the gradient-norm check catches.
    /// </summary>
    static bool Diverged(LossResult r) =>
        double.IsInfinity(r.Loss) || (double.IsNaN(r.Loss) && r.Count > 0 && !(r.MaskedLmLoss is double m && double.IsNaN(m)));

    // ------------------------------------------------------------------ checkpoints

    /// <summary>
    /// Writes <c>model.safetensors</c> (HF names), <c>optimizer.safetensors</c> (exp_avg./exp_avg_sq.&lt;name&gt;) and
    /// <c>trainer_state.json</c> (step, RNG state, plus the caller's <paramref name="extra"/> — e.g. data position) into
    /// <paramref name="dir"/>. The caller adds config/tokenizer files (<see cref="ModelSaver"/>) to make it loadable.
    /// </summary>
    public void SaveCheckpoint(string dir, JsonObject? extra = null)
    {
        Directory.CreateDirectory(dir);
        ModelSaver.SaveWeights(Path.Combine(dir, "model.safetensors"), Model.Parameters);
        var (step, m, v) = Optimizer.State;
        var w = new SafeTensorsWriter();
        foreach (var (name, t) in Model.Parameters.All)
        {
            w.Add("exp_avg." + name, new Tensor(t.Shape, m[name]));
            w.Add("exp_avg_sq." + name, new Tensor(t.Shape, v[name]));
        }
        w.Metadata("step", step.ToString());
        w.Save(Path.Combine(dir, "optimizer.safetensors"));
        var state = new JsonObject
        {
            ["global_step"] = Step,
            ["optimizer_step"] = step,
            ["rng_state"] = Model.Rng.State.ToString(),
            ["extra"] = extra?.DeepClone(),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "trainer_state.json"), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Restores parameters, optimizer state, step and RNG from a <see cref="SaveCheckpoint"/> folder; returns the caller's extra state.</summary>
    public JsonObject? LoadCheckpoint(string dir)
    {
        var statePath = Path.Combine(dir, "trainer_state.json");
        if (!File.Exists(statePath)) throw new SharpFormerException($"{dir}: not a training checkpoint (no trainer_state.json)");
        var state = JsonNode.Parse(Utf8Text.ReadAllText(statePath))!.AsObject();
        using (var weights = new SafeTensorsFile(Path.Combine(dir, "model.safetensors")))
            foreach (var (name, t) in Model.Parameters.All)
            {
                if (!weights.Contains(name)) throw new SharpFormerException($"{dir}/model.safetensors: parameter {name} is missing");
                var src = weights.ReadFloat32(name);
                if (src.Length != t.Length) throw new SharpFormerException($"{dir}/model.safetensors: {name} has {src.Length} elements, the model {t.Length}");
                src.Data.CopyTo(t.Data, 0);
            }
        Model.WeightsChanged();
        using (var opt = new SafeTensorsFile(Path.Combine(dir, "optimizer.safetensors")))
        {
            var m = new Dictionary<string, float[]>(); var v = new Dictionary<string, float[]>();
            foreach (var (name, _) in Model.Parameters.All)
            {
                m[name] = opt.ReadFloat32("exp_avg." + name).Data;
                v[name] = opt.ReadFloat32("exp_avg_sq." + name).Data;
            }
            Optimizer.LoadState(state["optimizer_step"]!.GetValue<long>(), m, v);
        }
        Step = state["global_step"]!.GetValue<int>();
        Model.Rng.State = ulong.Parse(state["rng_state"]!.GetValue<string>());
        return state["extra"] as JsonObject;
    }
}
