namespace SharpFormer.Checkpoints;

/// <summary>A dense float32 tensor in row-major order: the one in-memory form of every weight and activation we exchange.</summary>
public sealed class Tensor
{
    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>The elements in row-major order.</summary>
    public float[] Data { get; }

    /// <summary>Wraps <paramref name="data"/> (not copied); its length must be the product of <paramref name="shape"/>.</summary>
    public Tensor(int[] shape, float[] data)
    {
        long n = ElementCount(shape);
        if (n != data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] needs {n} elements, got {data.Length}");
        Shape = shape;
        Data = data;
    }

    /// <summary>A zero-filled tensor of this shape.</summary>
    public Tensor(params int[] shape) : this(shape, new float[ElementCount(shape)]) { }

    /// <summary>
    /// A tensor whose memory is not cleared first: for outputs that a kernel overwrites in full (logits, activations),
    /// where clearing 100 MB costs more than a few percent of the pass that fills it.
    /// </summary>
    public static Tensor Uninitialized(params int[] shape) => new(shape, GC.AllocateUninitializedArray<float>(checked((int)ElementCount(shape))));

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;
    /// <summary>Number of elements.</summary>
    public int Length => Data.Length;
    /// <summary>The elements as a span.</summary>
    public Span<float> Span => Data;

    /// <summary>The number of elements of a shape (product of the dimensions).</summary>
    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    /// <summary>The shape as text, e.g. "[2, 3]".</summary>
    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    /// <summary>True when the shape equals <paramref name="shape"/>.</summary>
    public bool HasShape(params int[] shape) => Shape.AsSpan().SequenceEqual(shape);
}
