using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;
using SharpFormer.Models;

namespace SharpFormer.Tests;

/// <summary>Loading model folders: formats, dtypes, prefixes, and every way a folder can be broken.</summary>
public sealed class CheckpointTests : IDisposable
{
    readonly DirectoryInfo _tmp = Directory.CreateTempSubdirectory("sf-ckpt-");
    static string BertTiny => Path.Combine(SharedPaths.Fixtures, "bert-tiny");

    public void Dispose() => _tmp.Delete(recursive: true);

    /// <summary>A copy of bert-tiny's config and tokenizer, with weights written by the test.</summary>
    string Folder(string name, Action<string>? edit = null)
    {
        var dir = Path.Combine(_tmp.FullName, name);
        Directory.CreateDirectory(dir);
        foreach (var f in new[] { "config.json", "vocab.txt", "tokenizer_config.json" }) File.Copy(Path.Combine(BertTiny, f), Path.Combine(dir, f));
        edit?.Invoke(dir);
        return dir;
    }

    static SafeTensorsWriter CopyOf(Func<string, string?> rename, Func<string, Tensor, Tensor>? transform = null)
    {
        using var src = new SafeTensorsFile(Path.Combine(BertTiny, "model.safetensors"));
        var w = new SafeTensorsWriter();
        foreach (var name in src.Entries.Keys)
        {
            var newName = rename(name);
            if (newName is null) continue;
            var t = src.ReadFloat32(name);
            w.Add(newName, transform is null ? t : transform(name, t));
        }
        return w;
    }

    [Fact]
    public void WriterRoundTripsAndAlignsTensors()
    {
        var path = Path.Combine(_tmp.FullName, "rt.safetensors");
        new SafeTensorsWriter().Add("a", new Tensor([2, 3], [1, 2, 3, 4, 5, 6])).Add("ids", [3], [7L, 8L, 9L]).Save(path);
        using var f = new SafeTensorsFile(path);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, f.ReadFloat32("a").Data);
        Assert.Equal(new long[] { 7, 8, 9 }, f.ReadInt64("ids"));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.All(f.Entries.Values, e => Assert.Equal(0, e.Begin % e.DType.Size()));
        Assert.Empty(Directory.GetFiles(_tmp.FullName, "*.tmp"));
    }

    [Fact]
    public void HalfAndBFloat16WeightsAreWidenedOnLoad()
    {
        using var src = new SafeTensorsFile(Path.Combine(BertTiny, "model.safetensors"));
        var w = new SafeTensorsWriter();
        foreach (var name in src.Entries.Keys)
        {
            var t = src.ReadFloat32(name);
            var bytes = new byte[t.Length * 2];
            bool bf16 = name.Contains("encoder");
            for (int i = 0; i < t.Length; i++)
            {
                ushort bits = bf16 ? (ushort)(BitConverter.SingleToUInt32Bits(t.Data[i]) >> 16) : BitConverter.HalfToUInt16Bits((Half)t.Data[i]);
                BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), bits);
            }
            w.Add(name, bf16 ? DType.BF16 : DType.F16, t.Shape, bytes);
        }
        var dir = Folder("half", d => w.Save(Path.Combine(d, "model.safetensors")));
        var reference = BertModel.Load(BertTiny);
        var half = BertModel.Load(dir);
        foreach (var (name, t) in reference.Parameters.All)
        {
            var got = half.Parameters[name].Data;
            for (int i = 0; i < t.Length; i++)
            {
                float expected = name.Contains("encoder")
                    ? BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(t.Data[i]) & 0xFFFF0000u)
                    : (float)(Half)t.Data[i];
                Assert.Equal(expected, got[i]);
            }
        }
    }

    [Fact]
    public void BaseModelCheckpointWithoutPrefixAndOldLayerNormNamesLoads()
    {
        var w = CopyOf(n => !n.StartsWith("bert.") ? null
            : n[5..].Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta"));
        var dir = Folder("base", d =>
        {
            w.Save(Path.Combine(d, "model.safetensors"));
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(d, "config.json")))!;
            cfg["architectures"] = new JsonArray("BertModel");
            File.WriteAllText(Path.Combine(d, "config.json"), cfg.ToJsonString());
        });
        var reference = BertModel.Load(BertTiny);
        var bare = BertModel.Load(dir);
        Assert.Empty(bare.InitialisedParameters);
        var inputs = new BertInputs([[101, 791, 1921, 102]]);
        Assert.Equal(reference.Forward(inputs).PoolerOutput!.Data, bare.Forward(inputs).PoolerOutput!.Data);
    }

    [Fact]
    public void SymlinkedWeightsLoad()
    {
        // HuggingFace's hub cache: snapshots/<rev>/model.safetensors is a link into blobs/.
        var dir = Folder("linked", d => File.CreateSymbolicLink(Path.Combine(d, "model.safetensors"), Path.Combine(BertTiny, "model.safetensors")));
        var inputs = new BertInputs([[101, 791, 1921, 102]]);
        Assert.Equal(BertModel.Load(BertTiny).Forward(inputs).PredictionLogits!.Data, BertModel.Load(dir).Forward(inputs).PredictionLogits!.Data);
    }

    [Fact]
    public void ShardedSafetensorsLoad()
    {
        var dir = Folder("sharded", d =>
        {
            using var src = new SafeTensorsFile(Path.Combine(BertTiny, "model.safetensors"));
            var names = src.Entries.Keys.Order().ToList();
            var map = new JsonObject();
            for (int s = 0; s < 2; s++)
            {
                var w = new SafeTensorsWriter();
                var file = $"model-0000{s + 1}-of-00002.safetensors";
                foreach (var n in names.Where((_, i) => i % 2 == s)) { w.Add(n, src.ReadFloat32(n)); map[n] = file; }
                w.Save(Path.Combine(d, file));
            }
            File.WriteAllText(Path.Combine(d, "model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
        });
        var inputs = new BertInputs([[101, 791, 1921, 102]]);
        Assert.Equal(BertModel.Load(BertTiny).Forward(inputs).PredictionLogits!.Data, BertModel.Load(dir).Forward(inputs).PredictionLogits!.Data);
    }

    [Fact]
    public void TruncatedSafetensorsIsRefusedNamingTheTensor()
    {
        var dir = Folder("trunc", d =>
        {
            var bytes = File.ReadAllBytes(Path.Combine(BertTiny, "model.safetensors"));
            File.WriteAllBytes(Path.Combine(d, "model.safetensors"), bytes[..(bytes.Length / 2)]);
        });
        var e = Assert.Throws<SharpFormerException>(() => BertModel.Load(dir));
        Assert.Contains("truncated", e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 })]
    [InlineData(new byte[] { 200, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' })]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, (byte)'[', (byte)'x' })]
    public void CorruptSafetensorsHeaderIsRefused(byte[] content)
    {
        var dir = Folder("corrupt", d => File.WriteAllBytes(Path.Combine(d, "model.safetensors"), content));
        var e = Assert.Throws<SharpFormerException>(() => BertModel.Load(dir));
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void ShapeMismatchNamesTensorAndFile()
    {
        var w = CopyOf(n => n, (n, t) => n == "bert.encoder.layer.1.intermediate.dense.weight" ? new Tensor(60, 32) : t);
        var dir = Folder("shape", d => w.Save(Path.Combine(d, "model.safetensors")));
        var e = Assert.Throws<SharpFormerException>(() => BertModel.Load(dir));
        Assert.Contains("bert.encoder.layer.1.intermediate.dense.weight", e.Message);
        Assert.Contains("[60, 32]", e.Message);
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void MissingEncoderTensorIsAnError()
    {
        var w = CopyOf(n => n == "bert.encoder.layer.0.attention.self.key.bias" ? null : n);
        var dir = Folder("missing", d => w.Save(Path.Combine(d, "model.safetensors")));
        var e = Assert.Throws<SharpFormerException>(() => BertModel.Load(dir));
        Assert.Contains("bert.encoder.layer.0.attention.self.key.bias", e.Message);
    }

    [Fact]
    public void IntegerWeightsAreRefused()
    {
        var w = CopyOf(n => n == "bert.pooler.dense.bias" ? null : n).Add("bert.pooler.dense.bias", [32], new long[32]);
        var dir = Folder("dtype", d => w.Save(Path.Combine(d, "model.safetensors")));
        var e = Assert.Throws<SharpFormerException>(() => BertModel.Load(dir));
        Assert.Contains("bert.pooler.dense.bias", e.Message);
        Assert.Contains("I64", e.Message);
    }

    [Theory]
    [InlineData("{\"model_type\": \"t5\"}", "unknown model_type \"t5\"")]
    [InlineData("{\"hidden_size\": 32}", "no \"model_type\"")]
    [InlineData("{\"model_type\": \"bert\", \"architectures\": [\"BertForQuestionAnswering\"]}", "unknown BERT architecture")]
    [InlineData("{\"model_type\": \"bert\", \"hidden_size\": 30, \"num_attention_heads\": 4}", "not a multiple")]
    [InlineData("not json", "not valid JSON")]
    public void BadConfigsAreRefused(string json, string message)
    {
        var dir = Folder("cfg", d => { File.WriteAllText(Path.Combine(d, "config.json"), json); File.Copy(Path.Combine(BertTiny, "model.safetensors"), Path.Combine(d, "model.safetensors")); });
        var e = Assert.Throws<SharpFormerException>(() => BertModel.Load(dir));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void MissingFolderAndMissingWeightsAreRefused()
    {
        Assert.Contains("not found", Assert.Throws<SharpFormerException>(() => BertModel.Load(Path.Combine(_tmp.FullName, "nope"))).Message);
        var dir = Folder("noweights");
        Assert.Contains("no weights found", Assert.Throws<SharpFormerException>(() => BertModel.Load(dir)).Message);
    }

    [Fact]
    public void ConfigDefaultsFollowHuggingFace()
    {
        var c = (BertConfig)ModelConfig.Parse(new JsonObject { ["model_type"] = "bert" });
        Assert.Equal((30522, 768, 12, 12, 3072, 512, 2), (c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize, c.MaxPositionEmbeddings, c.TypeVocabSize));
        Assert.Equal(1e-12f, c.LayerNormEps);
        Assert.Equal(new[] { "LABEL_0", "LABEL_1" }, c.Id2Label.OrderBy(p => p.Key).Select(p => p.Value));
        var g = (Gpt2Config)ModelConfig.Parse(new JsonObject { ["model_type"] = "gpt2", ["n_embd"] = 64, ["n_head"] = 4 });
        Assert.Equal(256, g.InnerDim);
        Assert.Equal("gelu_new", g.ActivationFunction);
    }
}
