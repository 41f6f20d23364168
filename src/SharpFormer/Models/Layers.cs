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

/// <summary>How a model holds the weight matrices of its dense layers (everything else is float32 tensors).</summary>
/// <param name="Precision">Element type of the packed GEMM weights; the arithmetic stays float32, except with Int8 (integer products, activations quantised per row).</param>
/// <param name="InferenceOnly">
/// Pack each matrix at load straight from the checkpoint and keep no float32 copy of it: about half the memory and a
/// faster load, but those matrices are then absent from the model's Parameters and it cannot be trained
/// (WeightsChanged throws). Word embeddings tied to an output head (GPT-2's lm_head, BERT's MLM decoder) are likewise
/// held only packed in Float32 (the lookup reads the packed copy, exactly); in BFloat16 / Int8 they keep their float32
/// tensor for the lookup.
/// </param>
public readonly record struct WeightOptions(WeightPrecision Precision = WeightPrecision.Float32, bool InferenceOnly = false)
{
    /// <summary>For inference: packed at load, in <paramref name="precision"/>.</summary>
    public static WeightOptions Inference(WeightPrecision precision = WeightPrecision.Float32) => new(precision, InferenceOnly: true);

    /// <summary>Throws unless the model holds every parameter as float32 (what saving and training need).</summary>
    public void RequireParameters(string forWhat)
    {
        if (InferenceOnly) throw new SharpFormerException($"{forWhat} needs every parameter as float32, but the model was loaded for inference only (WeightOptions.InferenceOnly)");
    }
}

/// <summary>
/// Builds a model's parameters from a checkpoint, or initialises the ones it lacks the way HuggingFace's
/// <c>_init_weights</c> does (normal(0, initializer_range) weights, zero biases, unit LayerNorm), with a warning.
/// </summary>
public sealed class ParameterLoader(CheckpointReader? checkpoint, ParameterSet parameters, float initializerRange, int seed, WeightOptions weights = default)
{
    readonly Random _rng = new(seed);
    public List<string> Initialised { get; } = new();

    public Tensor Weight(string name, params int[] shape) => Get(name, shape, Init.Normal);
    public Tensor Bias(string name, params int[] shape) => Get(name, shape, Init.Zeros);
    public Tensor Ones(string name, params int[] shape) => Get(name, shape, Init.Ones);

    /// <summary>
    /// A dense layer's weight [rows, cols] (<paramref name="outIn"/>: nn.Linear's [out, in], else Conv1D's [in, out]):
    /// for inference packed straight from the checkpoint, else (or when the checkpoint lacks it) a parameter.
    /// </summary>
    internal GemmWeight Matrix(string name, int rows, int cols, bool outIn)
    {
        var precision = weights.Precision;
        if (weights.InferenceOnly && checkpoint?.TryUse(name, [rows, cols], w => GemmWeight.Pack(w, rows, cols, outIn, precision)) is { } packed)
            return new GemmWeight(packed);
        return new GemmWeight(Weight(name, rows, cols), outIn, precision);
    }

    /// <summary>
    /// Word embeddings [vocab, width]; <paramref name="tied"/>: their matrix is also an output head's weight (nn.Linear
    /// layout). A tied Float32 inference load packs it straight from the checkpoint and keeps no float32 table.
    /// </summary>
    internal WordEmbeddings WordEmbeddings(string name, int vocab, int width, bool tied)
    {
        if (tied && weights is { InferenceOnly: true, Precision: WeightPrecision.Float32 }
            && checkpoint?.TryUse(name, [vocab, width], w => GemmWeight.Pack(w, vocab, width, outIn: true, WeightPrecision.Float32)) is { } packed)
            return new WordEmbeddings(new GemmWeight(packed));
        var table = Weight(name, vocab, width);
        return new WordEmbeddings(table, new GemmWeight(table, outIn: true, weights.Precision));
    }

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

/// <summary>
/// A dense layer's weight as the GEMM uses it: packed and, unless loaded for inference only, the float32 parameter
/// it is packed from (packed on first use, and again after <see cref="Changed"/>).
/// </summary>
sealed class GemmWeight
{
    readonly bool _outIn;
    readonly WeightPrecision _precision;
    PackedWeight? _packed;

    /// <summary>The float32 parameter; null when the weight was packed straight from the checkpoint.</summary>
    public Tensor? Parameter { get; }
    public int In { get; }
    public int Out { get; }

    public GemmWeight(Tensor parameter, bool outIn, WeightPrecision precision)
    {
        Parameter = parameter;
        _outIn = outIn;
        _precision = precision;
        (Out, In) = outIn ? (parameter.Shape[0], parameter.Shape[1]) : (parameter.Shape[1], parameter.Shape[0]);
    }

    public GemmWeight(PackedWeight packed)
    {
        _packed = packed;
        (In, Out) = (packed.K, packed.N);
    }

    public PackedWeight Packed => _packed ??= Pack(Parameter!.Data, Parameter.Shape[0], Parameter.Shape[1], _outIn, _precision);

    /// <summary>Packs w [rows, cols]: nn.Linear's [out, in] when <paramref name="outIn"/>, else Conv1D's [in, out].</summary>
    public static PackedWeight Pack(ReadOnlySpan<float> w, int rows, int cols, bool outIn, WeightPrecision precision) => outIn
        ? PackedWeight.FromOutIn(w, rows, cols, precision) : PackedWeight.FromInOut(w, rows, cols, precision);

    /// <summary>The parameter changed (training): repack on next use.</summary>
    public void Changed() => _packed = Parameter is not null ? null
        : throw new InvalidOperationException("the model was loaded for inference only (WeightOptions.InferenceOnly): its weights are packed and cannot change");
}

/// <summary>
/// An embedding table [vocab, width] and the output head that may be tied to it (logits = x·Eᵀ, packed on first use
/// unless loaded packed). Without a float32 table the rows are read back from the packed head, which is exact in Float32.
/// </summary>
sealed class WordEmbeddings(Tensor? table, GemmWeight head)
{
    public WordEmbeddings(GemmWeight packedHead) : this(null, packedHead) { }

    /// <summary>The embedding of token <paramref name="id"/> into <paramref name="row"/> [width].</summary>
    public void Lookup(int id, Span<float> row)
    {
        if (table is null) head.Packed.CopyColumn(id, row);
        else table.Span.Slice(id * head.In, head.In).CopyTo(row);
    }

    /// <summary>The tied output head, with <paramref name="bias"/> [vocab] (or none).</summary>
    public Linear Head(Tensor? bias) => new(head, bias);
}

/// <summary>nn.Linear: y = x·Wᵀ + b with W [out, in].</summary>
public sealed class Linear
{
    readonly GemmWeight _weight;
    /// <summary>W [out, in]; null when loaded for inference only (then held packed only).</summary>
    public Tensor? Weight => _weight.Parameter;
    public Tensor? Bias { get; }
    public int In => _weight.In;
    public int Out => _weight.Out;

    /// <summary>A layer over a float32 weight, packed in <paramref name="precision"/> on first use.</summary>
    public Linear(Tensor weight, Tensor? bias, WeightPrecision precision = WeightPrecision.Float32)
        : this(new GemmWeight(weight, outIn: true, precision), bias) { }

    internal Linear(GemmWeight weight, Tensor? bias)
    {
        _weight = weight;
        Bias = bias;
    }

    public static Linear Load(ParameterLoader p, string prefix, int inFeatures, int outFeatures, bool bias = true) =>
        new(p.Matrix(prefix + ".weight", outFeatures, inFeatures, outIn: true), bias ? p.Bias(prefix + ".bias", outFeatures) : null);

    /// <summary>x [rows, In] → y [rows, Out].</summary>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y) =>
        Gemm.Linear(x, rows, _weight.Packed, Bias is null ? default : Bias.Data, y);

    /// <summary>Call after the weight changes (training) so the packed copy is rebuilt.</summary>
    public void WeightsChanged() => _weight.Changed();
}

/// <summary>GPT-2's Conv1D: y = x·W + b with W [in, out] (the transpose of nn.Linear's layout).</summary>
public sealed class Conv1D
{
    readonly GemmWeight _weight;
    /// <summary>W [in, out]; null when loaded for inference only (then held packed only).</summary>
    public Tensor? Weight => _weight.Parameter;
    public Tensor Bias { get; }
    public int In => _weight.In;
    public int Out => _weight.Out;

    public Conv1D(Tensor weight, Tensor bias, WeightPrecision precision = WeightPrecision.Float32)
        : this(new GemmWeight(weight, outIn: false, precision), bias) { }

    Conv1D(GemmWeight weight, Tensor bias)
    {
        _weight = weight;
        Bias = bias;
    }

    public static Conv1D Load(ParameterLoader p, string prefix, int inFeatures, int outFeatures) =>
        new(p.Matrix(prefix + ".weight", inFeatures, outFeatures, outIn: false), p.Bias(prefix + ".bias", outFeatures));

    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y) => Gemm.Linear(x, rows, _weight.Packed, Bias.Data, y);

    public void WeightsChanged() => _weight.Changed();
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
