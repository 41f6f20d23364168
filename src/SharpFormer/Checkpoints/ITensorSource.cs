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
}
