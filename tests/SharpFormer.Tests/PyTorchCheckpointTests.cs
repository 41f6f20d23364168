using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using SharpFormer.Checkpoints;

namespace SharpFormer.Tests;

public sealed class PyTorchCheckpointTests : IDisposable
{
    readonly string _tmp = Directory.CreateTempSubdirectory("sf-pt-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_tmp, recursive: true); } catch (IOException) { }
    }

    static string Fixture(string model, string file) => Path.Combine(SharedPaths.Fixtures, model, file);

    static void AssertBitIdentical(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.Shape.AsSpan().SequenceEqual(actual.Shape), $"{name}: shape {actual.ShapeString} != {expected.ShapeString}");
        Assert.True(MemoryMarshal.Cast<float, int>(expected.Data.AsSpan()).SequenceEqual(MemoryMarshal.Cast<float, int>(actual.Data.AsSpan())),
            $"{name}: values differ");
    }

    static SharpFormerException Refuses(string path)
    {
        var ex = Assert.Throws<SharpFormerException>(() => { using var _ = new PyTorchCheckpoint(path); });
        Assert.DoesNotContain('\n', ex.Message);
        Assert.StartsWith(Path.GetFileName(path) + ":", ex.Message);
        return ex;
    }

    // ------------------------------------------------------------------ real fixtures

    [Theory]
    [InlineData("bert-tiny")]
    [InlineData("gpt2-tiny")]
    public void EveryTensorMatchesTheSafetensorsFileBitForBit(string model)
    {
        using var st = new SafeTensorsFile(Fixture(model, "model.safetensors"));
        using var pt = new PyTorchCheckpoint(Fixture(model, "pytorch_model.bin"));
        Assert.False(pt.IsLegacyFormat);
        Assert.Equal("pytorch_model.bin", pt.Describe);
        int compared = 0;
        foreach (var name in st.Names)
        {
            Assert.True(pt.Contains(name), $"{name} missing from the .bin");
            Assert.Equal(st.ShapeOf(name), pt.ShapeOf(name));
            Assert.Equal(DType.F32, pt.DTypeOf(name));
            AssertBitIdentical(st.ReadFloat32(name), pt.ReadFloat32(name), name);
            compared++;
        }
        Assert.True(compared > 20);
        Assert.Equal(pt.Names.Count(), pt.Names.Distinct().Count());
    }

    [Theory]
    [InlineData("bert-tiny", "cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight")]
    [InlineData("gpt2-tiny", "lm_head.weight", "transformer.wte.weight")]
    public void TiedWeightsShareAStorageAndBothLoad(string model, string tied, string embedding)
    {
        using var pt = new PyTorchCheckpoint(Fixture(model, "pytorch_model.bin"));
        Assert.Contains(tied, pt.Names);
        AssertBitIdentical(pt.ReadFloat32(embedding), pt.ReadFloat32(tied), tied);
        using var st = new SafeTensorsFile(Fixture(model, "model.safetensors"));
        AssertBitIdentical(st.ReadFloat32(embedding), pt.ReadFloat32(tied), tied);
    }

    [Fact]
    public void UnknownTensorNameIsAClearError()
    {
        using var pt = new PyTorchCheckpoint(Fixture("bert-tiny", "pytorch_model.bin"));
        var ex = Assert.Throws<SharpFormerException>(() => pt.ReadFloat32("no.such.weight"));
        Assert.Equal("pytorch_model.bin: no tensor named 'no.such.weight'", ex.Message);
    }

    // ------------------------------------------------------------------ malicious pickles

    /// <summary>The bytes of a Python bytes-literal body (only \xHH, \n and \\ escapes are understood).</summary>
    static byte[] Py(string literal)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < literal.Length; i++)
        {
            char c = literal[i];
            if (c != '\\') { bytes.Add(checked((byte)c)); continue; }
            char e = literal[++i];
            if (e == 'x') { bytes.Add(Convert.ToByte(literal.Substring(i + 1, 2), 16)); i += 2; }
            else if (e == 'n') bytes.Add((byte)'\n');
            else if (e == '\\') bytes.Add((byte)'\\');
            else throw new ArgumentException($"unsupported escape \\{e}");
        }
        return bytes.ToArray();
    }

    static readonly byte[] OsSystemPickle = Py(@"\x80\x02cos\nsystem\nq\x00X\x05\x00\x00\x00echo hq\x01\x85q\x02Rq\x03.");

    string Zip(string fileName, params (string Name, byte[] Data)[] entries)
    {
        var path = Path.Combine(_tmp, fileName);
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        foreach (var (name, data) in entries)
        {
            var e = zip.CreateEntry(name, CompressionLevel.NoCompression);
            using var s = e.Open();
            s.Write(data);
        }
        return path;
    }

    string WriteFile(string fileName, byte[] bytes)
    {
        var path = Path.Combine(_tmp, fileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void RefusesOsSystemInsteadOfRunningIt()
    {
        var path = Zip("pytorch_model.bin", ("archive/data.pkl", OsSystemPickle), ("archive/version", "3\n"u8.ToArray()));
        var ex = Refuses(path);
        Assert.Equal("pytorch_model.bin: refused to load: the pickle references os.system, which a state_dict never needs (SharpFormer never runs pickled code)", ex.Message);
    }

    [Fact]
    public void RefusesPosixSystem()
    {
        var pickle = Py(@"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00echo hq\x01\x85q\x02Rq\x03.");
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", pickle)));
        Assert.Contains("refused to load", ex.Message);
        Assert.Contains("posix.system", ex.Message);
    }

    [Fact]
    public void RefusesStackGlobalBuiltinsEvalAndNeverRunsTheCommand()
    {
        var marker = Path.Combine(_tmp, "pwned");
        var cmd = $"__import__('os').system('touch {marker}')";
        var p = new PickleBuilder().Proto(4).ShortStr("builtins").ShortStr("eval").Op(0x93).Str(cmd).Op(0x85).Op('R').Op('.');
        var ex = Refuses(Zip("pytorch_model.bin", ("model/data.pkl", p.ToArray())));
        Assert.Contains("builtins.eval", ex.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void RefusesAForbiddenGlobalHiddenInsideAValidStateDict()
    {
        // A normal-looking tensor whose backward_hooks argument is subprocess.Popen(...)
        var p = new PickleBuilder().Proto(2).Global("collections", "OrderedDict").Op(')').Op('R').Op('(')
            .Str("w").Global("torch._utils", "_rebuild_tensor_v2").Op('(')
            .ZipPid("FloatStorage", "0", 4).Op('Q').Int(0).Ints(4).Ints(1).Op(0x89)
            .Global("subprocess", "Popen").Str("id").Op(0x85).Op('R')
            .Op('t').Op('R').Op('u').Op('.');
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray()), ("archive/data/0", new byte[16])));
        Assert.Contains("subprocess.Popen", ex.Message);
    }

    [Fact]
    public void RefusesAMaliciousPlainPickleFile()
    {
        // Not a zip: the legacy path must refuse it just the same.
        var ex = Refuses(WriteFile("pytorch_model.bin", OsSystemPickle));
        Assert.Contains("os.system", ex.Message);
    }

    [Fact]
    public void RefusesUnknownOpcodes()
    {
        var p = new PickleBuilder().Proto(2).Op(0xff).Op('.');
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray())));
        Assert.Contains("unknown pickle opcode 0xff", ex.Message);
    }

    [Fact]
    public void RefusesInstantiatingOpcodes()
    {
        var p = new PickleBuilder().Proto(2).Op('(').Raw(Py(@"iposix\nsystem\n")).Op('.');
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray())));
        Assert.Contains("posix.system", ex.Message);
    }

    // ------------------------------------------------------------------ corrupt files

    [Fact]
    public void TruncatedCheckpointIsAClearError()
    {
        var bytes = File.ReadAllBytes(Fixture("bert-tiny", "pytorch_model.bin"));
        var ex = Refuses(WriteFile("pytorch_model.bin", bytes[..(bytes.Length / 2)]));
        Assert.Contains("corrupt or truncated checkpoint", ex.Message);
    }

    [Fact]
    public void TruncatedPickleInsideTheZipIsAClearError()
    {
        using var zip = ZipFile.OpenRead(Fixture("gpt2-tiny", "pytorch_model.bin"));
        var pkl = zip.GetEntry("pytorch_model/data.pkl")!;
        var data = new byte[pkl.Length];
        using (var s = pkl.Open()) s.ReadExactly(data);
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", data[..(data.Length / 2)])));
        Assert.Contains("corrupt or truncated checkpoint", ex.Message);
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x80)] // looks like a pickle: goes down the legacy path
    public void RandomBytesAreAClearError(int firstByte)
    {
        var bytes = new byte[4096];
        new Random(1234).NextBytes(bytes);
        bytes[0] = (byte)firstByte;
        bytes[1] = 2;
        Refuses(WriteFile("pytorch_model.bin", bytes));
    }

    [Fact]
    public void EmptyFileIsAClearError()
    {
        var ex = Refuses(WriteFile("pytorch_model.bin", []));
        Assert.Contains("empty", ex.Message);
    }

    [Fact]
    public void ZipWithoutDataPklIsAClearError()
    {
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/version", "3\n"u8.ToArray()), ("archive/data/0", new byte[16])));
        Assert.Contains("no data.pkl", ex.Message);
    }

    [Fact]
    public void MissingFileIsAClearError()
    {
        var path = Path.Combine(_tmp, "nope.bin");
        var ex = Assert.Throws<SharpFormerException>(() => new PyTorchCheckpoint(path));
        Assert.Contains("file not found", ex.Message);
    }

    // ------------------------------------------------------------------ synthetic checkpoints: layouts the fixtures do not exercise

    static byte[] F32(params float[] v) => MemoryMarshal.AsBytes(v.AsSpan()).ToArray();

    [Fact]
    public void StridedViewsOffsetsSharedStoragesAndOtherDTypes()
    {
        // storage 0: 12 floats 0..11, seen as
        //   "full"   [3,4] contiguous
        //   "t"      [4,3] stride (1,4)  (a transpose)
        //   "tail"   [2,2] offset 8
        //   "cols"   [3,2] stride (4,2) offset 1  (every other column)
        //   "bcast"  [2,3] stride (0,1) offset 4  (an expanded row)
        // storage 1: 3 halves, storage 2: 2 bfloat16, storage 3: 2 doubles, storage 4: 3 longs
        var s0 = F32(Enumerable.Range(0, 12).Select(i => (float)i).ToArray());
        var s1 = MemoryMarshal.AsBytes(new[] { (Half)1.5f, (Half)(-2f), (Half)0.25f }.AsSpan()).ToArray();
        var s2 = new byte[] { 0x80, 0x3f, 0x40, 0xc0 }; // bf16 1.0, -3.0
        var s3 = MemoryMarshal.AsBytes(new[] { 0.5, 1e10 }.AsSpan()).ToArray();
        var s4 = MemoryMarshal.AsBytes(new long[] { 7, -1, 1L << 40 }.AsSpan()).ToArray();

        var p = new PickleBuilder().StateDict(b => b
            .Entry("full", "FloatStorage", "0", 12, 0, [3, 4], [4, 1])
            .Entry("t", "FloatStorage", "0", 12, 0, [4, 3], [1, 4])
            .Entry("tail", "FloatStorage", "0", 12, 8, [2, 2], [2, 1])
            .Entry("cols", "FloatStorage", "0", 12, 1, [3, 2], [4, 2])
            .Entry("bcast", "FloatStorage", "0", 12, 4, [2, 3], [0, 1])
            .Entry("half", "HalfStorage", "1", 3, 0, [3], [1])
            .Entry("bf16", "BFloat16Storage", "2", 2, 0, [2], [1])
            .Entry("f64", "DoubleStorage", "3", 2, 0, [1, 2], [2, 1])
            .Entry("ids", "LongStorage", "4", 3, 0, [1, 3], [3, 1]));
        var path = Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray()), ("archive/byteorder", "little"u8.ToArray()),
            ("archive/data/0", s0), ("archive/data/1", s1), ("archive/data/2", s2), ("archive/data/3", s3), ("archive/data/4", s4));

        using var pt = new PyTorchCheckpoint(path);
        Assert.Equal(["full", "t", "tail", "cols", "bcast", "half", "bf16", "f64", "ids"], pt.Names);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (float)i), pt.ReadFloat32("full").Data);
        var t = pt.ReadFloat32("t");
        Assert.Equal([4, 3], t.Shape);
        Assert.Equal([0f, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11], t.Data);
        Assert.Equal([8f, 9, 10, 11], pt.ReadFloat32("tail").Data);
        Assert.Equal([1f, 3, 5, 7, 9, 11], pt.ReadFloat32("cols").Data);
        Assert.Equal([4f, 5, 6, 4, 5, 6], pt.ReadFloat32("bcast").Data);
        Assert.Equal([1.5f, -2f, 0.25f], pt.ReadFloat32("half").Data);
        Assert.Equal([1f, -3f], pt.ReadFloat32("bf16").Data);
        Assert.Equal([0.5f, 1e10f], pt.ReadFloat32("f64").Data);
        Assert.Equal(DType.I64, pt.DTypeOf("ids"));
        Assert.Equal([7L, -1, 1L << 40], pt.ReadInt64("ids"));
        var ex = Assert.Throws<SharpFormerException>(() => pt.ReadFloat32("ids"));
        Assert.Equal("pytorch_model.bin: tensor 'ids' has dtype I64, expected a floating-point type", ex.Message);
    }

    [Fact]
    public void ATensorReachingPastItsStorageIsRefusedNamingIt()
    {
        var p = new PickleBuilder().StateDict(b => b
            .Entry("ok", "FloatStorage", "0", 4, 0, [4], [1])
            .Entry("encoder.bad.weight", "FloatStorage", "0", 4, 1, [2, 2], [2, 1]));
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray()), ("archive/data/0", new byte[16])));
        Assert.Contains("tensor 'encoder.bad.weight'", ex.Message);
        Assert.Contains("reaches element 4", ex.Message);
    }

    [Fact]
    public void AStorageShorterThanDeclaredIsRefusedNamingTheTensor()
    {
        var p = new PickleBuilder().StateDict(b => b.Entry("w", "FloatStorage", "0", 4, 0, [4], [1]));
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray()), ("archive/data/0", new byte[12])));
        Assert.Contains("tensor 'w'", ex.Message);
        Assert.Contains("corrupt or truncated", ex.Message);
    }

    [Fact]
    public void AMissingStorageIsRefusedNamingTheTensor()
    {
        var p = new PickleBuilder().StateDict(b => b.Entry("w", "FloatStorage", "7", 4, 0, [4], [1]));
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray())));
        Assert.Contains("tensor 'w'", ex.Message);
        Assert.Contains("data/7", ex.Message);
    }

    [Fact]
    public void ACorruptedStorageFailsItsCrcCheckNamingTheTensor()
    {
        var data = F32(Enumerable.Range(1000, 64).Select(i => (float)i).ToArray());
        var p = new PickleBuilder().StateDict(b => b.Entry("w", "FloatStorage", "0", 64, 0, [8, 8], [8, 1]));
        var path = Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray()), ("archive/data/0", data));
        var bytes = File.ReadAllBytes(path);
        int at = bytes.AsSpan().IndexOf(data);
        Assert.True(at > 0);
        bytes[at + 100] ^= 0x01; // one flipped bit inside the stored (uncompressed) tensor bytes
        File.WriteAllBytes(path, bytes);

        using var pt = new PyTorchCheckpoint(path); // the structure is intact; the damage shows when the bytes are read
        var ex = Assert.Throws<SharpFormerException>(() => pt.ReadFloat32("w"));
        Assert.Equal("pytorch_model.bin: corrupt checkpoint (storage data/0 of tensor 'w' fails its CRC-32 check)", ex.Message);
    }

    [Fact]
    public void BigEndianCheckpointsAreRefused()
    {
        var p = new PickleBuilder().StateDict(b => b.Entry("w", "FloatStorage", "0", 1, 0, [1], [1]));
        var ex = Refuses(Zip("pytorch_model.bin", ("archive/data.pkl", p.ToArray()), ("archive/byteorder", "big"u8.ToArray()), ("archive/data/0", new byte[4])));
        Assert.Contains("big-endian", ex.Message);
    }

    // ------------------------------------------------------------------ legacy (non-zip) format

    /// <summary>Rewrites gpt2-tiny's weights in torch's legacy layout (lm_head tied to wte through one storage).</summary>
    string LegacyGpt2(out SafeTensorsFile st)
    {
        st = new SafeTensorsFile(Fixture("gpt2-tiny", "model.safetensors"));
        var names = st.Names.ToList();
        var storages = new List<(string Key, byte[] Data, long Numel)>();
        var src = st;
        var p = new PickleBuilder().StateDict(b =>
        {
            for (int i = 0; i < names.Count; i++)
            {
                var shape = src.ShapeOf(names[i]).Select(d => (long)d).ToArray();
                var t = src.ReadFloat32(names[i]);
                var key = (9000 + i).ToString(); // legacy keys are arbitrary strings
                storages.Add((key, F32(t.Data), t.Length));
                b.Entry(names[i], "FloatStorage", key, t.Length, 0, shape, RowMajor(shape), legacy: true);
                if (names[i] == "transformer.wte.weight")
                    b.Entry("lm_head.weight", "FloatStorage", key, t.Length, 0, shape, RowMajor(shape), legacy: true);
            }
        });
        return WriteLegacy("pytorch_model.bin", p, storages);
    }

    static long[] RowMajor(long[] shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    string WriteLegacy(string fileName, PickleBuilder main, List<(string Key, byte[] Data, long Numel)> storages, bool littleEndian = true)
    {
        var ms = new MemoryStream();
        ms.Write(Py(@"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")); // magic number
        ms.Write(new PickleBuilder().Proto(2).Int(1001).Op('.').ToArray());
        ms.Write(new PickleBuilder().Proto(2).Op('}').Op('(').Str("protocol_version").Int(1001)
            .Str("little_endian").Op(littleEndian ? 0x88 : 0x89).Str("type_sizes").Op('}').Op('(').Str("short").Int(2).Str("int").Int(4).Str("long").Int(4).Op('u')
            .Op('u').Op('.').ToArray());
        ms.Write(main.ToArray());
        var keys = new PickleBuilder().Proto(2).Op(']').Op('(');
        foreach (var s in storages) keys.Str(s.Key);
        ms.Write(keys.Op('e').Op('.').ToArray());
        var n = new byte[8];
        foreach (var s in storages)
        {
            BinaryPrimitives.WriteInt64LittleEndian(n, s.Numel);
            ms.Write(n);
            ms.Write(s.Data);
        }
        return WriteFile(fileName, ms.ToArray());
    }

    [Fact]
    public void ReadsTheLegacyNonZipFormat()
    {
        var path = LegacyGpt2(out var st);
        using (st)
        using (var pt = new PyTorchCheckpoint(path))
        {
            Assert.True(pt.IsLegacyFormat);
            foreach (var name in st.Names) AssertBitIdentical(st.ReadFloat32(name), pt.ReadFloat32(name), name);
            AssertBitIdentical(st.ReadFloat32("transformer.wte.weight"), pt.ReadFloat32("lm_head.weight"), "lm_head.weight");
        }
    }

    [Fact]
    public void TruncatedLegacyFileIsAClearError()
    {
        var path = LegacyGpt2(out var st);
        st.Dispose();
        var bytes = File.ReadAllBytes(path);
        var ex = Refuses(WriteFile("pytorch_model.bin", bytes[..(bytes.Length - 100)]));
        Assert.Contains("corrupt or truncated checkpoint", ex.Message);
    }

    [Fact]
    public void LegacyStorageViewsAreHonoured()
    {
        // One root storage of 6 floats; tensor "v" sits on a view starting at element 2 (old torch pickled such views).
        var p = new PickleBuilder().StateDict(b => b
            .Entry("all", "FloatStorage", "1", 6, 0, [6], [1], legacy: true)
            .Entry("v", "FloatStorage", "1", 6, 1, [2], [1], legacy: true, view: ("2", 2, 4)));
        var path = WriteLegacy("pytorch_model.bin", p, [("1", F32(10, 11, 12, 13, 14, 15), 6)]);
        using var pt = new PyTorchCheckpoint(path);
        Assert.Equal([13f, 14], pt.ReadFloat32("v").Data);
        Assert.Equal([10f, 11, 12, 13, 14, 15], pt.ReadFloat32("all").Data);
    }

    [Fact]
    public void BigEndianLegacyFilesAreRefused()
    {
        var p = new PickleBuilder().StateDict(b => b.Entry("w", "FloatStorage", "1", 1, 0, [1], [1], legacy: true));
        var ex = Refuses(WriteLegacy("pytorch_model.bin", p, [("1", F32(1), 1)], littleEndian: false));
        Assert.Contains("big-endian", ex.Message);
    }

    /// <summary>Writes pickle opcodes by hand (protocol 2, the way torch.save does).</summary>
    sealed class PickleBuilder
    {
        readonly MemoryStream _ms = new();

        public byte[] ToArray() => _ms.ToArray();
        public PickleBuilder Op(int op) { _ms.WriteByte((byte)op); return this; }
        public PickleBuilder Raw(byte[] b) { _ms.Write(b); return this; }
        public PickleBuilder Proto(int v) => Op(0x80).Op(v);
        public PickleBuilder Global(string module, string name) => Op('c').Raw(Encoding.UTF8.GetBytes($"{module}\n{name}\n"));

        public PickleBuilder Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            var len = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(len, b.Length);
            return Op('X').Raw(len).Raw(b);
        }

        public PickleBuilder ShortStr(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            return Op(0x8c).Op(b.Length).Raw(b);
        }

        public PickleBuilder Int(long v)
        {
            if (v is >= 0 and < 256) return Op('K').Op((int)v);
            if (v is >= int.MinValue and <= int.MaxValue)
            {
                var b = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(b, (int)v);
                return Op('J').Raw(b);
            }
            var l = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(l, v);
            return Op(0x8a).Op(8).Raw(l); // LONG1
        }

        public PickleBuilder Ints(params long[] v)
        {
            Op('(');
            foreach (var x in v) Int(x);
            return Op('t');
        }

        /// <summary>The zip-format persistent id tuple ('storage', torch.X, key, 'cpu', numel).</summary>
        public PickleBuilder ZipPid(string storageType, string key, long numel) =>
            Op('(').Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Op('t');

        /// <summary>OrderedDict() REDUCE, MARK, (name, tensor)…, SETITEMS, STOP.</summary>
        public PickleBuilder StateDict(Action<PickleBuilder> entries)
        {
            Proto(2).Global("collections", "OrderedDict").Op(')').Op('R').Op('(');
            entries(this);
            return Op('u').Op('.');
        }

        /// <summary>name, _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).</summary>
        public PickleBuilder Entry(string name, string storageType, string key, long numel, long offset, long[] size, long[] stride,
            bool legacy = false, (string Key, long Offset, long Size)? view = null)
        {
            Str(name).Global("torch._utils", "_rebuild_tensor_v2").Op('(');
            if (legacy)
            {
                Op('(').Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel);
                if (view is { } v) Op('(').Str(v.Key).Int(v.Offset).Int(v.Size).Op('t');
                else Op('N');
                Op('t');
            }
            else ZipPid(storageType, key, numel);
            Op('Q').Int(offset).Ints(size).Ints(stride).Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R');
            return Op('t').Op('R');
        }
    }
}
