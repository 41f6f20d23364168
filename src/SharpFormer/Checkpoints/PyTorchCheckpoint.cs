using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;

namespace SharpFormer.Checkpoints;

/// <summary>
/// A PyTorch <c>pytorch_model.bin</c> (a pickled state_dict written by <c>torch.save</c>), read without running
/// any Python: the pickle is interpreted by <see cref="RestrictedUnpickler"/>, which only knows the handful of
/// globals a state_dict uses (<c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, the typed
/// storage classes, …) and refuses the file if any other one appears.
/// <para>Both layouts are read: the zip archive of torch ≥ 1.6 (<c>&lt;top&gt;/data.pkl</c> plus one raw
/// <c>&lt;top&gt;/data/&lt;key&gt;</c> entry per storage, optional <c>byteorder</c>) and the legacy stream of
/// pickles (magic number, protocol, sys_info, the state_dict, the storage keys, then each storage's raw bytes).</para>
/// <para>The structure is validated up front (every storage present and large enough for every view of it); tensor
/// bytes are read on demand. Views with arbitrary strides are gathered into row-major order; tensors that share one
/// storage (tied weights) each load. Zip entries are checked against their CRC-32 when first read.</para>
/// </summary>
public sealed class PyTorchCheckpoint : ITensorSource
{
    /// <summary>One storage: a flat run of elements, either a zip entry or a byte range of a legacy file.</summary>
    internal sealed class StorageRecord(string key, DType dtype, long numel)
    {
        public string Key { get; } = key;
        public DType DType { get; } = dtype;
        public long Numel { get; } = numel;
        public ZipArchiveEntry? Entry { get; set; }
        public long FileOffset { get; set; } = -1; // legacy: where its bytes start
    }

    /// <summary>A window of a storage (legacy files may pickle storage views; zip files never do).</summary>
    internal sealed record StorageView(StorageRecord Root, long Offset, long Numel);

    /// <summary>What <c>_rebuild_tensor_v2</c> returns: a strided view of a storage.</summary>
    internal sealed class TensorRef(StorageView storage, long offset, long[] size, long[] stride)
    {
        public StorageView Storage { get; } = storage;
        public long Offset { get; } = offset;
        public long[] Size { get; } = size;
        public long[] Stride { get; } = stride;
    }

    sealed record TensorRecord(string Name, TensorRef Ref, int[] Shape)
    {
        public DType DType => Ref.Storage.Root.DType;
    }

    static readonly Dictionary<string, DType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["torch.FloatStorage"] = DType.F32,
        ["torch.HalfStorage"] = DType.F16,
        ["torch.BFloat16Storage"] = DType.BF16,
        ["torch.DoubleStorage"] = DType.F64,
        ["torch.LongStorage"] = DType.I64,
        ["torch.IntStorage"] = DType.I32,
        ["torch.ShortStorage"] = DType.I16,
        ["torch.CharStorage"] = DType.I8,
        ["torch.ByteStorage"] = DType.U8,
        ["torch.BoolStorage"] = DType.BOOL,
        ["torch.UntypedStorage"] = DType.U8,
    };

    const string OrderedDict = "collections.OrderedDict";
    const string RebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
    const string RebuildTensor = "torch._utils._rebuild_tensor";
    const string RebuildParameter = "torch._utils._rebuild_parameter";
    const string RebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
    const string RebuildFromType = "torch._tensor._rebuild_from_type_v2";

    /// <summary>Every global a state_dict pickle may name. Storage classes, dtypes and tensor types are inert markers.</summary>
    static readonly HashSet<string> AllowedGlobals = new(StringComparer.Ordinal)
    {
        OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState, RebuildFromType,
        "torch.Tensor", "torch.nn.parameter.Parameter",
        "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64", "torch.int32",
        "torch.int16", "torch.int8", "torch.uint8", "torch.bool",
    };

    static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");

    /// <summary>The checkpoint file's path.</summary>
    public string Path { get; }
    /// <summary>True for the pre-zip (torch &lt; 1.6 or <c>_use_new_zipfile_serialization=False</c>) layout.</summary>
    public bool IsLegacyFormat { get; }
    /// <inheritdoc/>
    public string Describe => System.IO.Path.GetFileName(Path);

    readonly string _file;
    readonly FileStream? _stream;
    readonly ZipArchive? _zip;
    readonly object _gate = new();
    readonly Dictionary<string, StorageRecord> _storages = new(StringComparer.Ordinal);
    readonly Dictionary<string, StorageView> _legacyViews = new(StringComparer.Ordinal);
    readonly Dictionary<string, TensorRecord> _tensors = new(StringComparer.Ordinal);
    readonly List<string> _order = new();
    readonly HashSet<string> _crcChecked = new(StringComparer.Ordinal);

    /// <summary>Opens <paramref name="path"/> and reads its pickle with the restricted unpickler (only tensor-rebuilding globals; no code runs); tensor data is read on demand.</summary>
    public PyTorchCheckpoint(string path)
    {
        Path = path;
        _file = System.IO.Path.GetFileName(path);
        if (!File.Exists(path)) throw new SharpFormerException($"{path}: file not found");
        RawConversion.AssertLittleEndian();
        try
        {
            _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var head = new byte[512];
            int got = _stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            _stream.Position = 0;
            if (got == 0) throw new SharpFormerException($"{_file}: empty file, not a PyTorch checkpoint");

            object? root;
            if (got >= 4 && head[0] == 'P' && head[1] == 'K' && (head[2], head[3]) is (3, 4) or (5, 6))
            {
                _zip = OpenZip(_stream);
                root = LoadZip(_zip);
            }
            else if (head[0] == 0x80)
            {
                IsLegacyFormat = true;
                root = LoadLegacy(_stream);
            }
            else if (got >= 262 && Encoding.ASCII.GetString(head, 257, 5) == "ustar")
                throw new SharpFormerException($"{_file}: tar-format checkpoint (PyTorch < 0.4) is not supported; re-save it with a current torch.save");
            else
                throw new SharpFormerException($"{_file}: not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy torch.save pickle)");

            CollectTensors(root);
        }
        catch (PickleCorruptException e)
        {
            Dispose();
            throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint ({e.Message})");
        }
        catch (InvalidDataException e)
        {
            Dispose();
            throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint ({FirstLine(e.Message)})");
        }
        catch (OverflowException)
        {
            Dispose();
            throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint (a size in it is out of range)");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    // ------------------------------------------------------------------ zip layout

    ZipArchive OpenZip(FileStream s)
    {
        try { return new ZipArchive(s, ZipArchiveMode.Read, leaveOpen: true); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or ArgumentException)
        {
            throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint (not a readable zip archive: {FirstLine(e.Message)})");
        }
    }

    object? LoadZip(ZipArchive zip)
    {
        var pkl = zip.Entries
            .Where(e => e.FullName == "data.pkl" || (e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1))
            .OrderBy(e => e.FullName.Length)
            .FirstOrDefault()
            ?? throw new SharpFormerException($"{_file}: corrupt checkpoint: the zip archive has no data.pkl (not written by torch.save?)");
        var prefix = pkl.FullName[..^"data.pkl".Length];
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var e in zip.Entries)
            if (!entries.TryAdd(e.FullName, e))
                throw new SharpFormerException($"{_file}: corrupt checkpoint (the zip archive holds {RestrictedUnpickler.Clean(e.FullName)} twice)");

        if (entries.TryGetValue(prefix + "byteorder", out var bo))
        {
            var order = Encoding.ASCII.GetString(ReadEntry(bo, "byteorder")).Trim();
            if (order == "big")
                throw new SharpFormerException($"{_file}: the checkpoint was saved on a big-endian machine (byteorder 'big'); only little-endian checkpoints are supported");
            if (order != "little")
                throw new SharpFormerException($"{_file}: corrupt checkpoint (byteorder entry says '{RestrictedUnpickler.Clean(order)}')");
        }

        var pickle = ReadEntry(pkl, "data.pkl");
        using var ms = new MemoryStream(pickle, writable: false);
        var root = new RestrictedUnpickler(ms, _file, IsAllowed, ZipPersistentLoad, Call).Load();

        foreach (var st in _storages.Values)
            st.Entry = entries.GetValueOrDefault(prefix + "data/" + st.Key);
        return root;
    }

    byte[] ReadEntry(ZipArchiveEntry e, string what)
    {
        if (e.Length > Array.MaxLength)
            throw new SharpFormerException($"{_file}: corrupt checkpoint ({what} claims {e.Length} bytes)");
        try
        {
            var buf = new byte[e.Length];
            using (var s = e.Open()) s.ReadExactly(buf);
            if (Crc32.Compute(buf) != e.Crc32)
                throw new SharpFormerException($"{_file}: corrupt checkpoint ({what} fails its CRC-32 check)");
            return buf;
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint (cannot read {what}: {FirstLine(ex.Message)})");
        }
    }

    /// <summary>Zip persistent id: ('storage', storage_type, key, location, numel).</summary>
    object? ZipPersistentLoad(object? pid)
    {
        if (pid is not PickleTuple t || t.Count < 5 || t[0] is not "storage")
            throw Corrupt($"unexpected persistent id {DescribePid(pid)}");
        var dtype = StorageDType(t[1]);
        var key = KeyString(t[2]);
        long numel = AsLong(t[4], "storage size");
        return new StorageView(GetStorage(key, dtype, numel), 0, numel);
    }

    // ------------------------------------------------------------------ legacy layout

    object? LoadLegacy(FileStream fs)
    {
        var s = new BufferedStream(fs, 1 << 16);
        Func<PickleGlobal, bool> none = _ => false;
        object? NoPid(object? _) => throw Corrupt("unexpected persistent id in a legacy header pickle");
        object? NoCall(PickleGlobal g, object?[] _) => throw new SharpFormerException(RestrictedUnpickler.RefusalMessage(_file, g.FullName));

        var magic = new RestrictedUnpickler(s, _file, none, NoPid, NoCall).Load();
        if (!(magic is BigInteger m && m == LegacyMagic))
            throw new SharpFormerException($"{_file}: not a PyTorch checkpoint (a pickle, but without torch.save's magic number)");
        var protocol = new RestrictedUnpickler(s, _file, none, NoPid, NoCall).Load();
        if (protocol is not 1001L)
            throw new SharpFormerException($"{_file}: unsupported legacy torch.save protocol version {RestrictedUnpickler.Describe(protocol)}");
        var sysInfo = new RestrictedUnpickler(s, _file, none, NoPid, NoCall).Load();
        if (sysInfo is PickleDict info && info.TryGet("little_endian", out var le) && le is false)
            throw new SharpFormerException($"{_file}: the checkpoint was saved on a big-endian machine; only little-endian checkpoints are supported");

        var root = new RestrictedUnpickler(s, _file, IsAllowed, LegacyPersistentLoad, Call).Load();

        var keys = new RestrictedUnpickler(s, _file, none, NoPid, NoCall).Load();
        if (keys is not List<object?> keyList) throw Corrupt("the storage key list after the state_dict is missing");
        long pos = s.Position;
        long length = fs.Length;
        s.Flush();
        var hdr = new byte[8];
        foreach (var k in keyList)
        {
            var key = KeyString(k);
            if (!_storages.TryGetValue(key, out var st)) throw Corrupt($"storage {key} has data but no tensor uses it");
            if (pos + 8 > length) throw Corrupt($"the file ends before storage {key}");
            fs.Position = pos;
            fs.ReadExactly(hdr);
            long count = BinaryPrimitives.ReadInt64LittleEndian(hdr);
            if (count != st.Numel) throw Corrupt($"storage {key} holds {count} elements but the pickle says {st.Numel}");
            st.FileOffset = pos + 8;
            long bytes = checked(count * st.DType.Size());
            if (st.FileOffset + bytes > length)
                throw Corrupt($"the file ends inside storage {key} ({length - st.FileOffset} of {bytes} bytes present)");
            pos = st.FileOffset + bytes;
        }
        return root;
    }

    /// <summary>Legacy persistent id: ('storage', storage_type, root_key, location, numel, view_metadata).</summary>
    object? LegacyPersistentLoad(object? pid)
    {
        if (pid is not PickleTuple t || t.Count < 5 || t[0] is not "storage")
        {
            if (pid is PickleTuple mt && mt.Count > 0 && mt[0] is "module")
                throw new SharpFormerException($"{_file}: refused to load: the pickle embeds a whole nn.Module (with its source code), not a state_dict");
            throw Corrupt($"unexpected persistent id {DescribePid(pid)}");
        }
        var dtype = StorageDType(t[1]);
        var rootKey = KeyString(t[2]);
        long numel = AsLong(t[4], "storage size");
        var root = GetStorage(rootKey, dtype, numel);
        if (t.Count < 6 || t[5] is null) return new StorageView(root, 0, numel);
        if (t[5] is not PickleTuple v || v.Count != 3) throw Corrupt($"malformed storage view of storage {rootKey}");
        var viewKey = KeyString(v[0]);
        if (_legacyViews.TryGetValue(viewKey, out var known)) return known;
        long offset = AsLong(v[1], "view offset"), size = AsLong(v[2], "view size");
        if (offset < 0 || size < 0 || offset + size > numel)
            throw Corrupt($"storage view {viewKey} [{offset}, {offset + size}) lies outside storage {rootKey} of {numel} elements");
        return _legacyViews[viewKey] = new StorageView(root, offset, size);
    }

    // ------------------------------------------------------------------ shared pickle semantics

    static bool IsAllowed(PickleGlobal g) => AllowedGlobals.Contains(g.FullName) || StorageTypes.ContainsKey(g.FullName);

    StorageRecord GetStorage(string key, DType dtype, long numel)
    {
        if (numel < 0) throw Corrupt($"storage {key} has negative size {numel}");
        if (_storages.TryGetValue(key, out var st))
        {
            if (st.DType != dtype || st.Numel != numel) throw Corrupt($"storage {key} is described inconsistently");
            return st;
        }
        return _storages[key] = new StorageRecord(key, dtype, numel);
    }

    DType StorageDType(object? type)
    {
        if (type is PickleGlobal g && StorageTypes.TryGetValue(g.FullName, out var dt)) return dt;
        throw Corrupt($"unsupported storage type {RestrictedUnpickler.Describe(type)}");
    }

    /// <summary>REDUCE / NEWOBJ of an allowed global: builds plain data, never runs anything.</summary>
    object? Call(PickleGlobal g, object?[] args)
    {
        switch (g.FullName)
        {
            case OrderedDict:
                {
                    var d = new PickleDict();
                    if (args.Length == 1 && args[0] is List<object?> pairs)
                        foreach (var p in pairs)
                        {
                            if (p is not PickleTuple kv || kv.Count != 2) throw Corrupt("OrderedDict built from something other than (key, value) pairs");
                            d.Set(kv[0], kv[1]);
                        }
                    else if (args.Length != 0) throw Corrupt("OrderedDict built with unexpected arguments");
                    return d;
                }
            case RebuildTensorV2 when args.Length is 6 or 7:
            case RebuildTensor when args.Length == 4:
                {
                    if (args[0] is not StorageView storage) throw Corrupt($"{g.FullName} without a storage");
                    long offset = AsLong(args[1], "storage offset");
                    var size = LongTuple(args[2], "size");
                    var stride = LongTuple(args[3], "stride");
                    if (size.Length != stride.Length) throw Corrupt($"tensor with {size.Length} sizes but {stride.Length} strides");
                    return new TensorRef(storage, offset, size, stride);
                }
            case RebuildParameter when args.Length == 3:
            case RebuildParameterWithState when args.Length == 4:
                return args[0] as TensorRef ?? throw Corrupt($"{g.FullName} without a tensor");
            case RebuildFromType when args.Length == 4:
                {
                    if (args[0] is not PickleGlobal func || args[2] is not PickleTuple inner) throw Corrupt($"malformed {g.FullName}");
                    return Call(func, inner.Items);
                }
            default:
                if (AllowedGlobals.Contains(g.FullName) && g.FullName.StartsWith("torch._", StringComparison.Ordinal))
                    throw Corrupt($"{g.FullName} called with {args.Length} arguments");
                throw new SharpFormerException($"{_file}: refused to load: the pickle calls {RestrictedUnpickler.Clean(g.FullName)}, which a state_dict never does (SharpFormer never runs pickled code)");
        }
    }

    void CollectTensors(object? root)
    {
        if (root is not PickleDict dict)
            throw new SharpFormerException($"{_file}: the checkpoint holds a {RestrictedUnpickler.Describe(root)}, not a state_dict");
        if (!dict.Items.Any(kv => kv.Value is TensorRef))
            foreach (var wrapper in new[] { "state_dict", "model_state_dict", "model", "module" })
                if (dict.TryGet(wrapper, out var inner) && inner is PickleDict d && d.Items.Any(kv => kv.Value is TensorRef))
                {
                    dict = d;
                    break;
                }
        foreach (var (k, v) in dict.Items)
        {
            if (k is not string name || v is not TensorRef t) continue; // e.g. _extra_state, step counters
            _tensors[name] = Validate(name, t);
            if (!_order.Contains(name)) _order.Add(name);
        }
        if (_tensors.Count == 0) throw new SharpFormerException($"{_file}: the checkpoint holds no tensors (expected a state_dict)");
    }

    TensorRecord Validate(string name, TensorRef t)
    {
        var view = t.Storage;
        var st = view.Root;
        string where = $"{_file}: tensor '{name}'";
        var shape = new int[t.Size.Length];
        long numel = 1, last = t.Offset;
        try
        {
            for (int i = 0; i < shape.Length; i++)
            {
                if (t.Size[i] < 0 || t.Size[i] > int.MaxValue) throw new SharpFormerException($"{where} has an invalid size {t.Size[i]}");
                if (t.Stride[i] < 0) throw new SharpFormerException($"{where} has a negative stride");
                shape[i] = (int)t.Size[i];
                numel = checked(numel * t.Size[i]);
                if (t.Size[i] > 0) last = checked(last + (t.Size[i] - 1) * t.Stride[i]);
            }
        }
        catch (OverflowException) { throw new SharpFormerException($"{where} has sizes/strides too large to address"); }
        if (numel > Array.MaxLength) throw new SharpFormerException($"{where} has {numel} elements, more than one array can hold");
        if (t.Offset < 0) throw new SharpFormerException($"{where} has a negative storage offset");
        if (numel > 0 && last >= view.Numel)
            throw new SharpFormerException(
                $"{where} (shape [{string.Join(", ", shape)}], stride ({string.Join(", ", t.Stride)}), offset {t.Offset}) reaches element {last} but its storage {st.Key} holds only {view.Numel} elements");

        if (_zip is not null)
        {
            if (st.Entry is null)
                throw new SharpFormerException($"{where}: corrupt or truncated checkpoint (its storage data/{st.Key} is missing from the archive)");
            long need = checked(st.Numel * st.DType.Size());
            if (st.Entry.Length < need)
                throw new SharpFormerException($"{where}: corrupt or truncated checkpoint (storage data/{st.Key} holds {st.Entry.Length} bytes, needs {need})");
        }
        else if (st.FileOffset < 0)
            throw new SharpFormerException($"{where}: corrupt or truncated checkpoint (the data of its storage {st.Key} is missing)");
        return new TensorRecord(name, t, shape);
    }

    // ------------------------------------------------------------------ ITensorSource

    /// <inheritdoc/>
    public IEnumerable<string> Names => _order;
    /// <inheritdoc/>
    public bool Contains(string name) => _tensors.ContainsKey(name);
    /// <inheritdoc/>
    public int[] ShapeOf(string name) => (int[])Get(name).Shape.Clone();
    /// <summary>The element type the tensor is stored in.</summary>
    public DType DTypeOf(string name) => Get(name).DType;

    /// <inheritdoc/>
    public Tensor ReadFloat32(string name)
    {
        var t = Get(name);
        if (!t.DType.IsFloat())
            throw new SharpFormerException($"{_file}: tensor '{name}' has dtype {t.DType}, expected a floating-point type");
        var data = new float[Tensor.ElementCount(t.Shape)];
        RawConversion.ToFloat32(ReadRaw(t), t.DType, data);
        return new Tensor((int[])t.Shape.Clone(), data);
    }

    /// <summary>An integer (or bool) tensor, e.g. a <c>position_ids</c> buffer, widened to int64.</summary>
    public long[] ReadInt64(string name)
    {
        var t = Get(name);
        if (t.DType.IsFloat())
            throw new SharpFormerException($"{_file}: tensor '{name}' has dtype {t.DType}, expected an integer type");
        return RawConversion.ToInt64(ReadRaw(t), t.DType, Tensor.ElementCount(t.Shape));
    }

    TensorRecord Get(string name) => _tensors.TryGetValue(name, out var t)
        ? t : throw new SharpFormerException($"{_file}: no tensor named '{name}'");

    /// <summary>The tensor's elements in row-major order, still in the stored dtype.</summary>
    byte[] ReadRaw(TensorRecord rec)
    {
        var t = rec.Ref;
        var st = t.Storage.Root;
        int es = rec.DType.Size();
        long numel = Tensor.ElementCount(rec.Shape);
        if (numel == 0) return [];
        long first = t.Storage.Offset + t.Offset;
        bool contiguous = IsContiguous(t.Size, t.Stride);
        long span = 1;
        for (int i = 0; i < t.Size.Length; i++) span += (t.Size[i] - 1) * t.Stride[i];
        if (contiguous) span = numel;

        byte[] src;
        long srcBase;
        if (st.Entry is not null && st.Entry.Length <= Array.MaxLength)
        {
            // Zip entry streams cannot seek, and only a whole read can be checked against the entry's CRC-32.
            src = WholeEntry(rec);
            srcBase = first * es;
            if (contiguous && srcBase == 0 && src.Length == numel * es) return src;
        }
        else
        {
            if (span * es > Array.MaxLength)
                throw new SharpFormerException($"{_file}: tensor '{rec.Name}' spans {span} elements of its storage, too many to read at once");
            src = new byte[span * es];
            srcBase = 0;
            ReadRange(rec, first * es, src);
        }
        var dst = new byte[numel * es];
        if (contiguous) Array.Copy(src, srcBase, dst, 0, dst.Length);
        else Gather(src, srcBase, dst, t.Size, t.Stride, es);
        return dst;
    }

    static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (int i = size.Length - 1; i >= 0; i--)
        {
            if (size[i] != 1 && stride[i] != expected) return false;
            expected *= size[i];
        }
        return true;
    }

    /// <summary>Copies a strided view (element offsets Σ index·stride from byte <paramref name="srcBase"/>) to row-major <paramref name="dst"/>.</summary>
    static void Gather(byte[] src, long srcBase, byte[] dst, long[] size, long[] stride, int es)
    {
        int rank = size.Length;
        if (rank == 0) { Array.Copy(src, srcBase, dst, 0, es); return; }
        var idx = new long[rank];
        long inner = size[rank - 1], innerStride = stride[rank - 1];
        long outPos = 0, rows = dst.Length / es / inner;
        for (long r = 0; r < rows; r++)
        {
            long basePos = 0;
            for (int d = 0; d < rank - 1; d++) basePos += idx[d] * stride[d];
            for (long j = 0; j < inner; j++)
            {
                Array.Copy(src, srcBase + (basePos + j * innerStride) * es, dst, outPos, es);
                outPos += es;
            }
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < size[d]) break;
                idx[d] = 0;
            }
        }
    }

    /// <summary>A zip storage entry in full; its CRC-32 is checked the first time it is read.</summary>
    byte[] WholeEntry(TensorRecord rec)
    {
        var st = rec.Ref.Storage.Root;
        var entry = st.Entry!;
        lock (_gate)
        {
            if (_stream is null || !_stream.CanRead) throw new ObjectDisposedException(Path);
            byte[] buf;
            try
            {
                buf = new byte[entry.Length];
                using var s = entry.Open();
                s.ReadExactly(buf);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
            {
                throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint (cannot read storage data/{st.Key} of tensor '{rec.Name}': {FirstLine(e.Message)})");
            }
            if (_crcChecked.Add(st.Key) && Crc32.Compute(buf) != entry.Crc32)
            {
                _crcChecked.Remove(st.Key);
                throw new SharpFormerException($"{_file}: corrupt checkpoint (storage data/{st.Key} of tensor '{rec.Name}' fails its CRC-32 check)");
            }
            return buf;
        }
    }

    /// <summary>Reads <c>dst.Length</c> bytes of a storage from <paramref name="byteOffset"/> (legacy file, or a zip entry too big for one array).</summary>
    void ReadRange(TensorRecord rec, long byteOffset, byte[] dst)
    {
        var st = rec.Ref.Storage.Root;
        lock (_gate)
        {
            if (_stream is null || !_stream.CanRead) throw new ObjectDisposedException(Path);
            try
            {
                if (st.Entry is not null)
                {
                    using var s = st.Entry.Open();
                    var skip = new byte[Math.Min(Math.Max(byteOffset, 1), 1 << 20)];
                    for (long left = byteOffset; left > 0;)
                    {
                        int n = s.Read(skip, 0, (int)Math.Min(left, skip.Length));
                        if (n == 0) throw new EndOfStreamException();
                        left -= n;
                    }
                    s.ReadExactly(dst);
                }
                else
                {
                    _stream.Position = st.FileOffset + byteOffset;
                    _stream.ReadExactly(dst);
                }
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
            {
                throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint (cannot read the storage of tensor '{rec.Name}': {FirstLine(e.Message)})");
            }
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _zip?.Dispose();
            _stream?.Dispose();
        }
    }

    // ------------------------------------------------------------------ helpers

    PickleCorruptException Corrupt(string message) => new(message);

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    static string DescribePid(object? pid) =>
        pid is PickleTuple t ? "(" + string.Join(", ", t.Items.Take(3).Select(RestrictedUnpickler.Describe)) + (t.Count > 3 ? ", …)" : ")") : RestrictedUnpickler.Describe(pid);

    string KeyString(object? k) => k switch
    {
        string s => s,
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => throw Corrupt($"storage key is a {RestrictedUnpickler.Describe(k)}"),
    };

    long AsLong(object? o, string what) => o switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw Corrupt($"{what} is a {RestrictedUnpickler.Describe(o)}, expected an int"),
    };

    long[] LongTuple(object? o, string what) => o switch
    {
        PickleTuple t => t.Items.Select(x => AsLong(x, what)).ToArray(),
        List<object?> l => l.Select(x => AsLong(x, what)).ToArray(),
        _ => throw Corrupt($"tensor {what} is a {RestrictedUnpickler.Describe(o)}, expected a tuple"),
    };

    /// <summary>The zip CRC-32 (polynomial 0xEDB88320), slicing by 8.</summary>
    static class Crc32
    {
        static readonly uint[] Table = Build();

        static uint[] Build()
        {
            var t = new uint[8 * 256];
            for (uint i = 0; i < 256; i++)
            {
                uint c = i;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                t[i] = c;
            }
            for (int i = 0; i < 256; i++)
                for (int s = 1; s < 8; s++)
                    t[s * 256 + i] = (t[(s - 1) * 256 + i] >> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
            return t;
        }

        public static uint Compute(ReadOnlySpan<byte> data)
        {
            var t = Table;
            uint crc = 0xFFFFFFFFu;
            int i = 0;
            for (; i + 8 <= data.Length; i += 8)
            {
                uint lo = BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i)) ^ crc;
                uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(i + 4));
                crc = t[7 * 256 + (lo & 0xff)] ^ t[6 * 256 + ((lo >> 8) & 0xff)] ^ t[5 * 256 + ((lo >> 16) & 0xff)] ^ t[4 * 256 + (lo >> 24)]
                    ^ t[3 * 256 + (hi & 0xff)] ^ t[2 * 256 + ((hi >> 8) & 0xff)] ^ t[256 + ((hi >> 16) & 0xff)] ^ t[hi >> 24];
            }
            for (; i < data.Length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
            return ~crc;
        }
    }
}
