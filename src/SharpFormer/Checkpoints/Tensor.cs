namespace SharpFormer.Checkpoints;

/// <summary>A dense float32 tensor in row-major order: the one in-memory form of every weight and activation we exchange.</summary>
public sealed class Tensor
{
    public int[] Shape { get; }
    public float[] Data { get; }

    public Tensor(int[] shape, float[] data)
    {
        long n = ElementCount(shape);
        if (n != data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] needs {n} elements, got {data.Length}");
        Shape = shape;
        Data = data;
    }

    public Tensor(params int[] shape) : this(shape, new float[ElementCount(shape)]) { }

    /// <summary>
    /// A tensor whose memory is not cleared first: for outputs that a kernel overwrites in full (logits, activations),
    /// where clearing 100 MB costs more than a few percent of the pass that fills it.
    /// </summary>
    public static Tensor Uninitialized(params int[] shape) => new(shape, GC.AllocateUninitializedArray<float>(checked((int)ElementCount(shape))));

    public int Rank => Shape.Length;
    public int Length => Data.Length;
    public Span<float> Span => Data;

    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    public bool HasShape(params int[] shape) => Shape.AsSpan().SequenceEqual(shape);
}
