using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>The named parameters of a model (HuggingFace names, each tied parameter once), in creation order.</summary>
public sealed class ParameterSet
{
    readonly Dictionary<string, Tensor> _byName = new(StringComparer.Ordinal);
    readonly List<string> _order = new();

    public Tensor Add(string name, Tensor t)
    {
        _byName.Add(name, t);
        _order.Add(name);
        return t;
    }

    public IEnumerable<(string Name, Tensor Tensor)> All => _order.Select(n => (n, _byName[n]));
    public Tensor this[string name] => _byName[name];
    public bool Contains(string name) => _byName.ContainsKey(name);
    public long ElementCount => _byName.Values.Sum(t => (long)t.Length);
}

/// <summary>
/// Builds a model's parameters from a checkpoint, or initialises the ones it lacks the way HuggingFace's
/// <c>_init_weights</c> does (normal(0, initializer_range) weights, zero biases, unit LayerNorm), with a warning.
/// </summary>
public sealed class ParameterLoader(CheckpointReader? checkpoint, ParameterSet parameters, float initializerRange, int seed)
{
    readonly Random _rng = new(seed);
    public List<string> Initialised { get; } = new();

    public Tensor Weight(string name, params int[] shape) => Get(name, shape, Init.Normal);
    public Tensor Bias(string name, params int[] shape) => Get(name, shape, Init.Zeros);
    public Tensor Ones(string name, params int[] shape) => Get(name, shape, Init.Ones);

    enum Init { Normal, Zeros, Ones }

    Tensor Get(string name, int[] shape, Init init)
    {
        var t = checkpoint?.TryLoad(name, shape);
        if (t is null)
        {
            t = new Tensor(shape);
            if (init == Init.Ones) t.Span.Fill(1f);
            else if (init == Init.Normal) FillNormal(t.Span, initializerRange);
            Initialised.Add(name);
        }
        return parameters.Add(name, t);
    }

    void FillNormal(Span<float> x, float std)
    {
        for (int i = 0; i < x.Length; i++)
        {
            // Box–Muller: seedable and dependency-free.
            double u1 = 1.0 - _rng.NextDouble(), u2 = _rng.NextDouble();
            x[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
    }
}

/// <summary>nn.Linear: y = x·Wᵀ + b with W [out, in]. The weight is packed for the GEMM kernel on first use.</summary>
public sealed class Linear
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int In => Weight.Shape[1];
    public int Out => Weight.Shape[0];
    PackedWeight? _packed;

    public Linear(Tensor weight, Tensor? bias)
    {
        Weight = weight;
        Bias = bias;
    }

    public static Linear Load(ParameterLoader p, string prefix, int inFeatures, int outFeatures, bool bias = true) =>
        new(p.Weight(prefix + ".weight", outFeatures, inFeatures), bias ? p.Bias(prefix + ".bias", outFeatures) : null);

    /// <summary>x [rows, In] → y [rows, Out].</summary>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y)
    {
        _packed ??= PackedWeight.FromOutIn(Weight.Data, Out, In);
        Gemm.Linear(x, rows, _packed, Bias is null ? default : Bias.Data, y);
    }

    /// <summary>Call after the weight changes (training) so the packed copy is rebuilt.</summary>
    public void WeightsChanged() => _packed = null;
}

/// <summary>GPT-2's Conv1D: y = x·W + b with W [in, out] (the transpose of nn.Linear's layout).</summary>
public sealed class Conv1D
{
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public int In => Weight.Shape[0];
    public int Out => Weight.Shape[1];
    PackedWeight? _packed;

    public Conv1D(Tensor weight, Tensor bias)
    {
        Weight = weight;
        Bias = bias;
    }

    public static Conv1D Load(ParameterLoader p, string prefix, int inFeatures, int outFeatures) =>
        new(p.Weight(prefix + ".weight", inFeatures, outFeatures), p.Bias(prefix + ".bias", outFeatures));

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y)
    {
        _packed ??= PackedWeight.FromInOut(Weight.Data, In, Out);
        Gemm.Linear(x, rows, _packed, Bias.Data, y);
    }

    public void WeightsChanged() => _packed = null;
}

public sealed class LayerNormLayer(Tensor weight, Tensor bias, float eps)
{
    public Tensor Weight { get; } = weight;
    public Tensor Bias { get; } = bias;
    public float Eps { get; } = eps;

    public static LayerNormLayer Load(ParameterLoader p, string prefix, int size, float eps) =>
        new(p.Ones(prefix + ".weight", size), p.Bias(prefix + ".bias", size), eps);

    public void Forward(ReadOnlySpan<float> x, Span<float> y) => LayerNorm.Forward(x, Weight.Data, Bias.Data, Eps, y);
}
