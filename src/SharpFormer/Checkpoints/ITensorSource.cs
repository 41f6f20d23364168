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

    /// <summary>A float32 tensor's values in place (e.g. in the mapped file), without a copy; false when the source cannot.</summary>
    bool TryMapFloat32(string name, out ReadOnlySpan<float> data)
    {
        data = default;
        return false;
    }
}
