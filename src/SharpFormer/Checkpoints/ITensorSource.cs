namespace SharpFormer.Checkpoints;

/// <summary>A checkpoint file (or set of shards) that can list its tensors and hand each one out as float32.</summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file name shown in error messages.</summary>
    string Describe { get; }
    IEnumerable<string> Names { get; }
    bool Contains(string name);
    int[] ShapeOf(string name);
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
