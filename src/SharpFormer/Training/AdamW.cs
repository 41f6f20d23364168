using SharpFormer.Models;

namespace SharpFormer.Training;

/// <summary>A set of parameters sharing a weight decay (PyTorch's param_groups).</summary>
public sealed record ParamGroup(IReadOnlyList<string> Names, float WeightDecay);

/// <summary>
/// torch.optim.AdamW (amsgrad off), step for step as PyTorch 1.13's single-tensor implementation:
/// <code>
/// p ← p·(1 − lr·wd)                       (decoupled weight decay)
/// m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
/// p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
/// </code>
/// Works on the model's own parameter tensors; the learning rate is set per step (schedules).
/// </summary>
public sealed class AdamW
{
    /// <summary>β1: decay of the first-moment (mean) estimate.</summary>
    public float Beta1 { get; }
    /// <summary>β2: decay of the second-moment (uncentred variance) estimate.</summary>
    public float Beta2 { get; }
    /// <summary>ε added to the denominator.</summary>
    public float Eps { get; }
    /// <summary>The parameter groups, each with its own weight decay.</summary>
    public IReadOnlyList<ParamGroup> Groups { get; }
    /// <summary>Steps taken (PyTorch keeps one per parameter; all parameters here step together).</summary>
    public long StepCount { get; private set; }

    readonly ParameterSet _params;
    readonly Dictionary<string, float[]> _m = new(StringComparer.Ordinal), _v = new(StringComparer.Ordinal);

    /// <summary>An optimizer over <paramref name="parameters"/>; moments start at zero.</summary>
    public AdamW(ParameterSet parameters, IReadOnlyList<ParamGroup> groups, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
    {
        _params = parameters;
        Groups = groups;
        Beta1 = beta1; Beta2 = beta2; Eps = eps;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var g in groups)
            foreach (var n in g.Names)
            {
                if (!seen.Add(n)) throw new ArgumentException($"parameter {n} is in two groups");
                int len = parameters[n].Length;
                _m[n] = new float[len];
                _v[n] = new float[len];
            }
    }

    /// <summary>Every parameter in one group with the same weight decay (the fixtures' plain AdamW).</summary>
    public static AdamW AllParameters(ParameterSet parameters, float weightDecay = 0.01f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f) =>
        new(parameters, [new ParamGroup(parameters.All.Select(p => p.Name).ToList(), weightDecay)], beta1, beta2, eps);

    /// <summary>
    /// transformers.Trainer's grouping: weight decay on every parameter except biases and LayerNorm weights/biases
    /// (<c>get_decay_parameter_names</c>), which get 0.
    /// </summary>
    public static AdamW TrainerStyle(ParameterSet parameters, float weightDecay, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
    {
        var names = parameters.All.Select(p => p.Name).ToList();
        return new(parameters,
            [new ParamGroup(names.Where(n => !IsNoDecay(n)).ToList(), weightDecay), new ParamGroup(names.Where(IsNoDecay).ToList(), 0f)],
            beta1, beta2, eps);
    }

    /// <summary>Biases and LayerNorm parameters (BERT's *.LayerNorm.*, GPT-2's ln_1 / ln_2 / ln_f).</summary>
    public static bool IsNoDecay(string name)
    {
        if (name.Contains("bias", StringComparison.Ordinal)) return true;
        var parts = name.Split('.');
        return parts.Any(p => p is "LayerNorm" or "ln_1" or "ln_2" or "ln_f" or "layer_norm" or "layernorm");
    }

    /// <summary>One update with learning rate <paramref name="lr"/> from the gradients (already clipped/scaled).</summary>
    public void Step(GradientSet grads, double lr)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount);
        double bc2 = 1 - Math.Pow(Beta2, StepCount);
        float stepSize = (float)(lr / bc1);
        float bc2Sqrt = (float)Math.Sqrt(bc2);
        float b1 = Beta1, b2 = Beta2, oneMinusB1 = (float)(1 - (double)Beta1), oneMinusB2 = (float)(1 - (double)Beta2), eps = Eps;
        foreach (var group in Groups)
        {
            float decay = (float)(1 - lr * group.WeightDecay);
            var names = group.Names;
            Parallel.For(0, names.Count, Kernels.KernelContext.Current.ParallelOptions, idx =>
            {
                string n = names[idx];
                var p = _params[n].Data; var g = grads[n]; var m = _m[n]; var v = _v[n];
                for (int i = 0; i < p.Length; i++)
                {
                    float gi = g[i];
                    float pi = p[i] * decay;
                    float mi = m[i] * b1 + gi * oneMinusB1;
                    float vi = v[i] * b2 + gi * gi * oneMinusB2;
                    m[i] = mi; v[i] = vi;
                    float denom = MathF.Sqrt(vi) / bc2Sqrt + eps;
                    p[i] = pi + -stepSize * (mi / denom);
                }
            });
        }
    }

    /// <summary>The moment buffers and step count (for checkpoints), by parameter name.</summary>
    public (long Step, IReadOnlyDictionary<string, float[]> M, IReadOnlyDictionary<string, float[]> V) State => (StepCount, _m, _v);

    /// <summary>Restores a checkpoint's state (copied into the existing buffers).</summary>
    public void LoadState(long step, IReadOnlyDictionary<string, float[]> m, IReadOnlyDictionary<string, float[]> v)
    {
        foreach (var (n, buf) in _m)
        {
            if (!m.TryGetValue(n, out var src) || src.Length != buf.Length) throw new SharpFormerException($"optimizer state lacks (or mis-sizes) exp_avg of {n}");
            src.CopyTo(buf, 0);
        }
        foreach (var (n, buf) in _v)
        {
            if (!v.TryGetValue(n, out var src) || src.Length != buf.Length) throw new SharpFormerException($"optimizer state lacks (or mis-sizes) exp_avg_sq of {n}");
            src.CopyTo(buf, 0);
        }
        StepCount = step;
    }
}

/// <summary>Learning-rate schedules as transformers' <c>get_*_schedule_with_warmup</c> (LambdaLR multipliers of the base lr).</summary>
public enum ScheduleKind
{
    /// <summary>The base rate after warm-up.</summary>
    Constant,
    /// <summary>Linear decay to 0 at the last step.</summary>
    Linear,
    /// <summary>Half a cosine from the base rate to 0.</summary>
    Cosine,
}

/// <summary>A learning-rate schedule: linear warm-up from 0 over <paramref name="WarmupSteps"/>, then constant, linear decay to 0 at <paramref name="TotalSteps"/>, or half a cosine.</summary>
/// <param name="Kind">The shape after warm-up.</param>
/// <param name="BaseLr">The peak learning rate.</param>
/// <param name="WarmupSteps">Steps of linear warm-up.</param>
/// <param name="TotalSteps">Optimizer steps of the whole run.</param>
public sealed record LrSchedule(ScheduleKind Kind, double BaseLr, int WarmupSteps, int TotalSteps)
{
    /// <summary>The learning rate used by optimizer step <paramref name="step"/> (0-based), as HuggingFace's scheduler gives it.</summary>
    public double At(int step)
    {
        if (step < WarmupSteps) return BaseLr * step / Math.Max(1, WarmupSteps);
        return Kind switch
        {
            ScheduleKind.Constant => BaseLr,
            ScheduleKind.Linear => BaseLr * Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps)),
            // get_cosine_schedule_with_warmup with num_cycles = 0.5
            _ => BaseLr * Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * 2.0 * 0.5 * ((double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps))))),
        };
    }

    /// <summary>Parses "constant", "linear" or "cosine" (case-insensitive); anything else is a one-line error.</summary>
    public static ScheduleKind Parse(string s) => s.ToLowerInvariant() switch
    {
        "constant" => ScheduleKind.Constant,
        "linear" => ScheduleKind.Linear,
        "cosine" => ScheduleKind.Cosine,
        _ => throw new SharpFormerException($"unknown learning-rate schedule \"{s}\" (constant, linear, cosine)"),
    };
}
