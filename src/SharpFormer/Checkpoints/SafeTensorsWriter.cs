using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace SharpFormer.Checkpoints;

/// <summary>
/// Writes a safetensors file atomically (temporary file in the same folder, then rename), so a crash
/// or an error never leaves a half-written output behind.
/// </summary>
public sealed class SafeTensorsWriter
{
    readonly List<(string Name, DType DType, int[] Shape, byte[] Bytes)> _tensors = new();
    readonly Dictionary<string, string> _metadata = new() { ["format"] = "pt" };

    /// <summary>Adds a float32 tensor.</summary>
    public SafeTensorsWriter Add(string name, Tensor t) =>
        Add(name, DType.F32, t.Shape, MemoryMarshal.AsBytes(t.Data.AsSpan()).ToArray());

    /// <summary>Adds an int64 tensor of the given shape.</summary>
    public SafeTensorsWriter Add(string name, int[] shape, ReadOnlySpan<long> values) =>
        Add(name, DType.I64, shape, MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>Adds a tensor already encoded as <paramref name="dtype"/> little-endian bytes; a duplicate name is an <see cref="ArgumentException"/>.</summary>
    public SafeTensorsWriter Add(string name, DType dtype, int[] shape, byte[] bytes)
    {
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"duplicate tensor name '{name}'");
        _tensors.Add((name, dtype, shape, bytes));
        return this;
    }

    /// <summary>Sets a <c>__metadata__</c> string (<c>format</c> is "pt" unless set).</summary>
    public SafeTensorsWriter Metadata(string key, string value) { _metadata[key] = value; return this; }

    /// <summary>Writes the file atomically (a temporary sibling renamed into place), larger element types first so every tensor is aligned to its element size.</summary>
    public void Save(string path)
    {
        // Like safetensors' own writer: larger elements first so every tensor stays aligned to its element size.
        var ordered = _tensors.OrderByDescending(t => t.DType.Size()).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object> { ["__metadata__"] = _metadata };
        long offset = 0;
        foreach (var t in ordered)
        {
            header[t.Name] = new { dtype = t.DType.ToString(), shape = t.Shape, data_offsets = new[] { offset, offset + t.Bytes.Length } };
            offset += t.Bytes.Length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BitConverter.TryWriteBytes(len, (ulong)padded);
            stream.Write(len);
            stream.Write(json);
            for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var t in ordered) stream.Write(t.Bytes);
        });
    }
}
