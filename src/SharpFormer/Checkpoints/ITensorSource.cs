namespace SharpFormer.Checkpoints;

/// <summary>A checkpoint file (or set of shards) that can list its tensors and hand each one out as float32.</summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file name shown in error messages.</summary>
    string Describe { get; }
    /// <summary>The names of every tensor.</summary>
    IEnumerable<string> Names { get; }
    /// <summary>True when a tensor of that name exists.</summary>
    bool Contains(string name);
    /// <summary>The shape of a tensor.</summary>
    int[] ShapeOf(string name);
    /// <summary>A tensor converted to float32.</summary>
    Tensor ReadFloat32(string name);

    /// <summary>
    /// Calls <paramref name="use"/> with a float32 tensor's values where they lie (e.g. in the mapped file, no copy) and
    /// returns true; false, without calling it, when the source cannot (another dtype or file format).
    /// </summary>
    bool TryUseInPlace<T>(string name, Func<ReadOnlySpan<float>, T> use, out T result)
    {
        result = default!;
        return false;
    }
}
