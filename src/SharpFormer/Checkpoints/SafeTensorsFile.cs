using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace SharpFormer.Checkpoints;

/// <summary>Where one tensor lies in a safetensors file.</summary>
public sealed record TensorEntry(string Name, DType DType, int[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount => Tensor.ElementCount(Shape);
}

/// <summary>
/// A memory-mapped safetensors file: 8-byte little-endian header length, a JSON header, raw data.
/// Tensors are read (and converted to float32) on demand; the header is validated up front so a
/// truncated or corrupt file fails before any tensor is used.
/// </summary>
public sealed unsafe class SafeTensorsFile : ITensorSource
{
    /// <summary>The file's path.</summary>
    public string Path { get; }
    /// <summary>Every tensor of the file by name.</summary>
    public IReadOnlyDictionary<string, TensorEntry> Entries => _entries;
    /// <summary>The header's <c>__metadata__</c> strings (empty when there are none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    readonly Dictionary<string, TensorEntry> _entries = new(StringComparer.Ordinal);
    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    readonly byte* _base;
    readonly long _dataStart;
    readonly long _length;

    /// <summary>Maps <paramref name="path"/> and validates its header (dtypes, shapes, data offsets that fit the shapes and the file); a bad file is a one-line <see cref="SharpFormerException"/>.</summary>
    public SafeTensorsFile(string path)
    {
        Path = path;
        var name = System.IO.Path.GetFileName(path);
        if (!File.Exists(path)) throw new SharpFormerException($"{path}: file not found");
        // The length of the opened file, not FileInfo's: a symbolic link (HuggingFace's cache snapshots are links into blobs/) has its own.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            _length = stream.Length;
            if (_length < 8) throw new SharpFormerException($"{name}: truncated safetensors file ({_length} bytes, no header)");
            _map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();   // until the map owns it
            throw;
        }
        var metadata = new Dictionary<string, string>();
        Metadata = metadata;

        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;

        ulong headerLen = *(ulong*)_base;
        if (headerLen > (ulong)(_length - 8) || headerLen > 100_000_000)
            throw Fail($"{name}: corrupt or truncated safetensors file (header claims {headerLen} bytes, file has {_length})");
        _dataStart = 8 + (long)headerLen;
        long dataLength = _length - _dataStart;

        var header = new ReadOnlySpan<byte>(_base + 8, (int)headerLen).ToArray();
        JsonDocument doc;
        try
        {
            Utf8Text.Require(header, $"{name}: safetensors header");   // System.Text.Json would fail later, on the first bad string
            doc = JsonDocument.Parse(header);
        }
        catch (InvalidUtf8Exception e) { throw Fail($"{e.Message}; the file is corrupt"); }
        catch (JsonException e) { throw Fail($"{name}: corrupt safetensors header ({e.Message.Split('\n')[0]})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Fail($"{name}: corrupt safetensors header (not a JSON object)");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind == JsonValueKind.Object)
                        foreach (var m in prop.Value.EnumerateObject())
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                _entries[prop.Name] = ParseEntry(name, prop.Name, prop.Value, dataLength);
            }
        }
    }

    TensorEntry ParseEntry(string file, string tensor, JsonElement e, long dataLength)
    {
        try
        {
            var dtypeName = e.GetProperty("dtype").GetString() ?? "";
            if (!DTypes.TryParse(dtypeName, out var dtype))
                throw Fail($"{file}: tensor '{tensor}' has unsupported dtype {dtypeName}");
            var shape = e.GetProperty("shape").EnumerateArray().Select(d => checked((int)d.GetInt64())).ToArray();
            if (shape.Any(d => d < 0)) throw Fail($"{file}: tensor '{tensor}' has a negative dimension");
            var offs = e.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (offs.Length != 2) throw Fail($"{file}: tensor '{tensor}' has malformed data_offsets");
            long expected = Tensor.ElementCount(shape) * dtype.Size();
            if (offs[0] < 0 || offs[1] < offs[0] || offs[1] - offs[0] != expected)
                throw Fail($"{file}: tensor '{tensor}' data_offsets [{offs[0]}, {offs[1]}] do not fit its shape [{string.Join(", ", shape)}] of {dtype}");
            if (offs[1] > dataLength)
                throw Fail($"{file}: truncated: tensor '{tensor}' ends at byte {offs[1]} but the file holds only {dataLength} data bytes");
            return new TensorEntry(tensor, dtype, shape, offs[0], offs[1]);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            throw Fail($"{file}: tensor '{tensor}' has a malformed header entry");
        }
    }

    SharpFormerException Fail(string message)
    {
        Dispose();
        return new SharpFormerException(message);
    }

    /// <inheritdoc/>
    public string Describe => System.IO.Path.GetFileName(Path);
    /// <inheritdoc/>
    public IEnumerable<string> Names => _entries.Keys;
    /// <inheritdoc/>
    public bool Contains(string name) => _entries.ContainsKey(name);
    /// <inheritdoc/>
    public int[] ShapeOf(string name) => Get(name).Shape;

    /// <summary>The tensor's bytes in the mapped file (no copy; valid until the file is disposed).</summary>
    public ReadOnlySpan<byte> RawBytes(TensorEntry e)
    {
        if (_view is null) throw new ObjectDisposedException(Path);
        return new ReadOnlySpan<byte>(_base + _dataStart + e.Begin, checked((int)(e.End - e.Begin)));
    }

    /// <inheritdoc/>
    public Tensor ReadFloat32(string name)
    {
        var e = Get(name);
        if (!e.DType.IsFloat())
            throw new SharpFormerException($"{System.IO.Path.GetFileName(Path)}: tensor '{name}' has dtype {e.DType}, expected a floating-point type");
        var data = new float[e.ElementCount];
        RawConversion.ToFloat32(RawBytes(e), e.DType, data);
        DropPages(e);
        return new Tensor(e.Shape, data);
    }

    /// <inheritdoc/>
    public bool TryUseInPlace<T>(string name, Func<ReadOnlySpan<float>, T> use, out T result)
    {
        var e = Get(name);
        if (e.DType != DType.F32)
        {
            result = default!;
            return false;
        }
        result = use(MemoryMarshal.Cast<byte, float>(RawBytes(e)));
        DropPages(e);
        return true;
    }

    /// <summary>
    /// Hands a tensor's pages of the mapping back to the OS once it has been copied or packed: they stay in the file cache
    /// (a later read maps them in again), but a model load no longer holds the whole file resident beside what it built
    /// from it. Advisory, Linux only (elsewhere the pages go when the file is closed).
    /// </summary>
    void DropPages(TensorEntry e)
    {
        if (!OperatingSystem.IsLinux()) return;
        long page = Environment.SystemPageSize;
        long start = (long)(_base + _dataStart + e.Begin), end = start + (e.End - e.Begin);
        long first = (start + page - 1) / page * page, last = end / page * page; // whole pages inside the tensor only
        if (last > first) Madvise((nint)first, (nuint)(last - first), MadvDontNeed);
    }

    const int MadvDontNeed = 4;
    [DllImport("libc", EntryPoint = "madvise")]
    static extern int Madvise(nint address, nuint length, int advice);

    /// <summary>An integer tensor widened to int64.</summary>
    public long[] ReadInt64(string name)
    {
        var e = Get(name);
        return RawConversion.ToInt64(RawBytes(e), e.DType, e.ElementCount);
    }

    TensorEntry Get(string name) => _entries.TryGetValue(name, out var e)
        ? e : throw new SharpFormerException($"{System.IO.Path.GetFileName(Path)}: no tensor named '{name}'");

    /// <summary>Unmaps and closes the file.</summary>
    public void Dispose()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
