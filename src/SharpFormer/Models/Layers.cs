using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>The named parameters of a model (HuggingFace names, each tied parameter once), in creation order.</summary>
public sealed class ParameterSet
{
    readonly Dictionary<string, Tensor> _byName = new(StringComparer.Ordinal);
    readonly List<string> _order = new();

    /// <summary>Adds a parameter (a duplicate name is an error) and returns it.</summary>
    public Tensor Add(string name, Tensor t)
    {
        _byName.Add(name, t);
        _order.Add(name);
        return t;
    }

    /// <summary>Every parameter with its name, in creation order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> All => _order.Select(n => (n, _byName[n]));
    /// <summary>The parameter of that name.</summary>
    public Tensor this[string name] => _byName[name];
    /// <summary>True when a parameter of that name exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);
    /// <summary>Total number of elements of every parameter.</summary>
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
    /// <summary>The names of the parameters the checkpoint lacked and that were initialised.</summary>
    public List<string> Initialised { get; } = new();
    internal WeightPrecision Precision => weights.Precision;

    /// <summary>A weight: from the checkpoint, or normal(0, initializer_range).</summary>
    public Tensor Weight(string name, params int[] shape) => Get(name, shape, Init.Normal);
    /// <summary>A bias: from the checkpoint, or zeros.</summary>
    public Tensor Bias(string name, params int[] shape) => Get(name, shape, Init.Zeros);
    /// <summary>A LayerNorm weight: from the checkpoint, or ones.</summary>
    public Tensor Ones(string name, params int[] shape) => Get(name, shape, Init.Ones);

    /// <summary>
    /// A dense layer's weight [rows, cols] (<paramref name="outIn"/>: nn.Linear's [out, in], else Conv1D's [in, out]):
    /// for inference packed straight from the checkpoint, else (or when the checkpoint lacks it) a parameter.
    /// </summary>
    internal GemmWeight Matrix(string name, int rows, int cols, bool outIn) =>
        TryPack([name], rows, cols, outIn) is { } packed ? new GemmWeight(packed) : new GemmWeight([Weight(name, rows, cols)], outIn, weights.Precision);

    /// <summary>
    /// For an inference load whose checkpoint has every one of <paramref name="names"/> (each [rows, cols]): those
    /// matrices stacked along the first dimension and packed straight from the checkpoint; else null (then they are parameters).
    /// </summary>
    internal PackedWeight? TryPack(IReadOnlyList<string> names, int rows, int cols, bool outIn) =>
        TryPack(names, names.Select(_ => rows).ToArray(), cols, outIn);

    /// <summary>As above, with each matrix's own number of rows (nn.Linear layers of different widths over one input).</summary>
    internal PackedWeight? TryPack(IReadOnlyList<string> names, IReadOnlyList<int> rows, int cols, bool outIn)
    {
        if (!weights.InferenceOnly || checkpoint is null || !names.All(checkpoint.Contains)) return null;
        var precision = weights.Precision;
        if (names.Count == 1) return checkpoint.TryUse(names[0], [rows[0], cols], w => GemmWeight.Pack(w, rows[0], cols, outIn, precision));
        // Several: concatenated into a transient buffer, packed once; no float32 copy outlives the load.
        int total = rows.Sum();
        var stacked = new float[total * cols];
        for (int i = 0, at = 0; i < names.Count; at += rows[i] * cols, i++)
        {
            int start = at;
            checkpoint.TryUse(names[i], [rows[i], cols], w => { w.CopyTo(stacked.AsSpan(start)); return stacked; });
        }
        return GemmWeight.Pack(stacked, total, cols, outIn, precision);
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
        return new WordEmbeddings(table, new GemmWeight([table], outIn: true, weights.Precision));
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
/// A dense layer's weight as the GEMM uses it: packed and, unless loaded for inference only, the float32 parameters
/// it is packed from (packed on first use, and again after <see cref="Changed"/>). Usually one parameter; several are
/// stacked along their first dimension (nn.Linear layers sharing an input, run as one GEMM: <see cref="StackedLinear"/>).
/// </summary>
sealed class GemmWeight
{
    readonly bool _outIn;
    readonly WeightPrecision _precision;
    PackedWeight? _packed;

    /// <summary>The float32 parameters, each [rows, cols]; null when the weight was packed straight from the checkpoint.</summary>
    public IReadOnlyList<Tensor>? Parameters { get; }
    public int In { get; }
    public int Out { get; }

    public GemmWeight(IReadOnlyList<Tensor> parameters, bool outIn, WeightPrecision precision)
    {
        Parameters = parameters;
        _outIn = outIn;
        _precision = precision;
        int rows = parameters.Sum(p => p.Shape[0]), cols = parameters[0].Shape[1];
        (Out, In) = outIn ? (rows, cols) : (cols, rows);
    }

    public GemmWeight(PackedWeight packed)
    {
        _packed = packed;
        (In, Out) = (packed.K, packed.N);
    }

    public PackedWeight Packed => _packed ??= PackParameters();

    PackedWeight PackParameters()
    {
        var w = Parameters is [var single] ? single.Data : Concatenate(Parameters!); // stacked: a transient buffer, packed once
        var (rows, cols) = _outIn ? (Out, In) : (In, Out);
        return Pack(w, rows, cols, _outIn, _precision);
    }

    /// <summary>The values of <paramref name="parts"/> one after another.</summary>
    internal static float[] Concatenate(IReadOnlyList<Tensor> parts)
    {
        var all = new float[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (var p in parts) { p.Data.CopyTo(all, at); at += p.Length; }
        return all;
    }

    /// <summary>Packs w [rows, cols]: nn.Linear's [out, in] when <paramref name="outIn"/>, else Conv1D's [in, out].</summary>
    public static PackedWeight Pack(ReadOnlySpan<float> w, int rows, int cols, bool outIn, WeightPrecision precision) => outIn
        ? PackedWeight.FromOutIn(w, rows, cols, precision) : PackedWeight.FromInOut(w, rows, cols, precision);

    /// <summary>The parameters changed (training): repack on next use.</summary>
    public void Changed() => _packed = Parameters is not null ? null
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
public sealed class Linear : IDense
{
    readonly GemmWeight _weight;
    /// <summary>W [out, in]; null when loaded for inference only (then held packed only).</summary>
    public Tensor? Weight => _weight.Parameters?[0];
    /// <summary>b [out], or null for a layer without bias.</summary>
    public Tensor? Bias { get; }
    /// <summary>Input features.</summary>
    public int In => _weight.In;
    /// <summary>Output features.</summary>
    public int Out => _weight.Out;

    /// <summary>A layer over a float32 weight, packed in <paramref name="precision"/> on first use.</summary>
    public Linear(Tensor weight, Tensor? bias, WeightPrecision precision = WeightPrecision.Float32)
        : this(new GemmWeight([weight], outIn: true, precision), bias) { }

    internal Linear(GemmWeight weight, Tensor? bias)
    {
        _weight = weight;
        Bias = bias;
    }

    /// <summary>Loads <c>prefix.weight</c> [out, in] and, when <paramref name="bias"/>, <c>prefix.bias</c> [out].</summary>
    public static Linear Load(ParameterLoader p, string prefix, int inFeatures, int outFeatures, bool bias = true) =>
        new(p.Matrix(prefix + ".weight", outFeatures, inFeatures, outIn: true), bias ? p.Bias(prefix + ".bias", outFeatures) : null);

    /// <summary>x [rows, In] → y [rows, Out], then the activation, if any (applied inside the GEMM).</summary>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, Activation activation = Activation.Identity) =>
        Gemm.Linear(x, rows, _weight.Packed, Bias is null ? default : Bias.Data, y, activation);

    /// <summary>Call after the weight changes (training) so the packed copy is rebuilt.</summary>
    public void WeightsChanged() => _weight.Changed();
}

/// <summary>
/// Several nn.Linear layers over the same input [rows, In], run as one: y = x·[W₀; W₁; …]ᵀ + [b₀ | b₁ | …], each row of
/// y holding the layers' outputs side by side (BERT's query | key | value, Llama's q | k | v projections, its gate | up).
/// One GEMM packs the input once and is one parallel region instead of one per layer. The parameters stay the separate
/// HuggingFace tensors; the stacked weight and bias are derived from them (again after <see cref="WeightsChanged"/>).
/// </summary>
public sealed class StackedLinear : IDense
{
    readonly GemmWeight _weight;
    readonly Tensor[]? _biases;
    float[]? _bias; // stacked on first use, like the packed weight
    /// <summary>Input features.</summary>
    public int In => _weight.In;
    /// <summary>The layers' outputs together.</summary>
    public int Out => _weight.Out;

    StackedLinear(GemmWeight weight, Tensor[]? biases)
    {
        _weight = weight;
        _biases = biases;
    }

    /// <summary>The layers <paramref name="prefixes"/> (each .weight [outFeatures, inFeatures] and .bias [outFeatures]), in output order.</summary>
    public static StackedLinear Load(ParameterLoader p, IReadOnlyList<string> prefixes, int inFeatures, int outFeatures) =>
        Load(p, prefixes, inFeatures, prefixes.Select(_ => outFeatures).ToArray(), bias: true);

    /// <summary>The layers <paramref name="prefixes"/>, layer i with <paramref name="outFeatures"/>[i] outputs; biases when <paramref name="bias"/>.</summary>
    public static StackedLinear Load(ParameterLoader p, IReadOnlyList<string> prefixes, int inFeatures, IReadOnlyList<int> outFeatures, bool bias)
    {
        var packed = p.TryPack(prefixes.Select(x => x + ".weight").ToArray(), outFeatures, inFeatures, outIn: true);
        var weights = new Tensor[prefixes.Count];
        var biases = bias ? new Tensor[prefixes.Count] : null;
        for (int i = 0; i < prefixes.Count; i++)
        {
            // Each weight just before its bias: the parameters keep the order of separate nn.Linear layers.
            if (packed is null) weights[i] = p.Weight(prefixes[i] + ".weight", outFeatures[i], inFeatures);
            if (biases is not null) biases[i] = p.Bias(prefixes[i] + ".bias", outFeatures[i]);
        }
        return new(packed is not null ? new GemmWeight(packed) : new GemmWeight(weights, outIn: true, p.Precision), biases);
    }

    /// <summary>x [rows, In] → y [rows, Out], then the activation, if any.</summary>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, Activation activation = Activation.Identity) =>
        Gemm.Linear(x, rows, _weight.Packed, _biases is null ? default : _bias ??= GemmWeight.Concatenate(_biases), y, activation);

    /// <summary>Call after the weights or biases change (training) so the stacked copies are rebuilt.</summary>
    public void WeightsChanged()
    {
        _weight.Changed();
        _bias = null;
    }
}

/// <summary>GPT-2's Conv1D: y = x·W + b with W [in, out] (the transpose of nn.Linear's layout).</summary>
public sealed class Conv1D : IDense
{
    readonly GemmWeight _weight;
    /// <summary>W [in, out]; null when loaded for inference only (then held packed only).</summary>
    public Tensor? Weight => _weight.Parameters?[0];
    /// <summary>b [out].</summary>
    public Tensor Bias { get; }
    /// <summary>Input features.</summary>
    public int In => _weight.In;
    /// <summary>Output features.</summary>
    public int Out => _weight.Out;

    /// <summary>A layer over a float32 weight [in, out], packed in <paramref name="precision"/> on first use.</summary>
    public Conv1D(Tensor weight, Tensor bias, WeightPrecision precision = WeightPrecision.Float32)
        : this(new GemmWeight([weight], outIn: false, precision), bias) { }

    Conv1D(GemmWeight weight, Tensor bias)
    {
        _weight = weight;
        Bias = bias;
    }

    /// <summary>Loads <c>prefix.weight</c> [in, out] and <c>prefix.bias</c> [out].</summary>
    public static Conv1D Load(ParameterLoader p, string prefix, int inFeatures, int outFeatures) =>
        new(p.Matrix(prefix + ".weight", inFeatures, outFeatures, outIn: false), p.Bias(prefix + ".bias", outFeatures));

    /// <summary>x [rows, In] → y [rows, Out], then the activation, if any (applied inside the GEMM).</summary>
    public void Forward(ReadOnlySpan<float> x, int rows, Span<float> y, Activation activation = Activation.Identity) =>
        Gemm.Linear(x, rows, _weight.Packed, Bias.Data, y, activation);

    /// <summary>Call after the weight changes (training) so the packed copy is rebuilt.</summary>
    public void WeightsChanged() => _weight.Changed();
}

/// <summary>nn.LayerNorm over the last dimension: y = (x − mean) / √(var + eps) · weight + bias.</summary>
public sealed class LayerNormLayer(Tensor weight, Tensor bias, float eps) : INorm
{
    /// <summary>γ [size].</summary>
    public Tensor Weight { get; } = weight;
    /// <summary>β [size].</summary>
    public Tensor Bias { get; } = bias;
    /// <summary>The epsilon added to the variance.</summary>
    public float Eps { get; } = eps;

    /// <summary>Loads <c>prefix.weight</c> and <c>prefix.bias</c> [size] (ones and zeros when missing).</summary>
    public static LayerNormLayer Load(ParameterLoader p, string prefix, int size, float eps) =>
        new(p.Ones(prefix + ".weight", size), p.Bias(prefix + ".bias", size), eps);

    /// <summary>Normalises each row of x (width = the weight's size) into y.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y) => LayerNorm.Forward(x, Weight.Data, Bias.Data, Eps, y);
    /// <summary>The residual connection before this LayerNorm: x += delta, then y = LayerNorm(x).</summary>
    public void AddAndForward(Span<float> x, ReadOnlySpan<float> delta, Span<float> y) => LayerNorm.AddAndNormalise(x, delta, Weight.Data, Bias.Data, Eps, y);
}
