using SharpFormer.Checkpoints;
using SharpFormer.Models;

namespace SharpFormer.Training;

/// <summary>
/// One float[] gradient per parameter of a <see cref="ParameterSet"/>, under the same HuggingFace name and in the
/// same order (tied parameters once, so their gradient already sums every use).
/// </summary>
public sealed class GradientSet
{
    readonly Dictionary<string, float[]> _byName = new(StringComparer.Ordinal);
    readonly List<string> _order = new();

    /// <summary>A zero gradient for every parameter of <paramref name="parameters"/>.</summary>
    public GradientSet(ParameterSet parameters)
    {
        foreach (var (name, t) in parameters.All)
        {
            _byName.Add(name, new float[t.Length]);
            _order.Add(name);
        }
    }

    /// <summary>The gradient of the parameter of that name.</summary>
    public float[] this[string name] => _byName[name];
    /// <summary>True when a gradient of that name exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);
    /// <summary>The parameter names, in the parameter set's order.</summary>
    public IReadOnlyList<string> Names => _order;
    /// <summary>Every gradient with its name.</summary>
    public IEnumerable<(string Name, float[] Grad)> All => _order.Select(n => (n, _byName[n]));

    /// <summary>Sets every gradient to zero.</summary>
    public void Zero()
    {
        foreach (var g in _byName.Values) Array.Clear(g);
    }

    /// <summary>The gradient of one parameter as a tensor of the parameter's shape (a copy).</summary>
    public Tensor ToTensor(string name, int[] shape) => new(shape, (float[])_byName[name].Clone());

    /// <summary>Global L2 norm of all gradients (accumulated in double).</summary>
    public double GlobalNorm()
    {
        double s = 0;
        foreach (var g in _byName.Values)
            foreach (var x in g) s += (double)x * x;
        return Math.Sqrt(s);
    }

    /// <summary>Multiplies every gradient by <paramref name="factor"/>.</summary>
    public void Scale(float factor)
    {
        if (factor == 1f) return;
        foreach (var g in _byName.Values) System.Numerics.Tensors.TensorPrimitives.Multiply(g, factor, g);
    }

    /// <summary>
    /// torch.nn.utils.clip_grad_norm_: total = global L2 norm; if maxNorm / (total + 1e-6) &lt; 1 every gradient is scaled
    /// by that factor. Returns the norm before clipping.
    /// </summary>
    public double ClipByGlobalNorm(double maxNorm)
    {
        double total = GlobalNorm();
        double coef = maxNorm / (total + 1e-6);
        if (coef < 1) Scale((float)coef);
        return total;
    }
}

/// <summary>What one forward(+backward) of a training batch produced.</summary>
public sealed class LossResult
{
    /// <summary>The total loss (the sum of the parts below that apply), as PyTorch's mean reductions give it.</summary>
    public double Loss { get; init; }
    /// <summary>The masked-LM part of the loss, when the batch has MLM labels.</summary>
    public double? MaskedLmLoss { get; init; }
    /// <summary>The next-sentence part of the loss, when the batch has NSP labels.</summary>
    public double? NextSentenceLoss { get; init; }
    /// <summary>Tokens (rows) the loss averaged over — for tokens/s and weighting evaluation means.</summary>
    public int Count { get; init; }
    /// <summary>Classification logits ([B, labels] or [B, T, labels]) when the model has a classifier head, for metrics.</summary>
    public Tensor? Logits { get; init; }
}

/// <summary>A model the generic loop can train: parameters + matching gradients + one forward/backward on a batch.</summary>
public interface ITrainable<TBatch>
{
    /// <summary>The parameters being trained.</summary>
    ParameterSet Parameters { get; }
    /// <summary>Their gradients.</summary>
    GradientSet Gradients { get; }
    /// <summary>Dropout on (train) or off (eval).</summary>
    bool Training { get; set; }
    /// <summary>The dropout RNG (its state is part of a checkpoint).</summary>
    TrainRng Rng { get; }
    /// <summary>Forward; with <paramref name="backward"/> the gradients of the loss are ADDED to <see cref="Gradients"/>, scaled by <paramref name="gradScale"/>.</summary>
    LossResult Step(TBatch batch, bool backward, float gradScale = 1f);
    /// <summary>Number of tokens of a batch (progress reporting).</summary>
    int TokenCount(TBatch batch);
    /// <summary>Parameters were changed in place (optimizer step, checkpoint restore): inference must not use stale packed copies.</summary>
    void WeightsChanged();
}
