using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Tasks;

namespace SharpFormer.Training;

/// <summary>
/// Writes a trained model as a HuggingFace model folder: <c>config.json</c> (with id2label/label2id),
/// <c>model.safetensors</c> (HuggingFace parameter names, tied weights stored once — exactly what
/// <c>save_pretrained(safe_serialization=True)</c> keeps) and the tokenizer files copied from the source folder.
/// Both SharpFormer and transformers' <c>from_pretrained</c> load the result.
/// </summary>
public static class ModelSaver
{
    /// <summary>The tokenizer files HuggingFace's slow/fast tokenizers read.</summary>
    public static readonly string[] TokenizerFiles =
        ["vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"];

    /// <summary>Writes every parameter as float32 safetensors (atomically) to <paramref name="path"/>.</summary>
    public static void SaveWeights(string path, ParameterSet parameters)
    {
        var w = new SafeTensorsWriter();
        foreach (var (name, t) in parameters.All) w.Add(name, t);
        w.Save(path);
    }

    /// <summary>Saves config + weights (+ tokenizer files from <paramref name="tokenizerSourceDir"/> when given) into <paramref name="dir"/> (created).</summary>
    public static void Save(string dir, ModelConfig config, ParameterSet parameters, string? tokenizerSourceDir = null)
    {
        Directory.CreateDirectory(dir);
        var json = config.ToJson();
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
        SaveWeights(Path.Combine(dir, "model.safetensors"), parameters);
        if (tokenizerSourceDir is not null) CopyTokenizer(tokenizerSourceDir, dir);
    }

    /// <summary>Saves a BERT model folder (the model must hold every parameter as float32).</summary>
    public static void Save(string dir, BertModel model, string? tokenizerSourceDir = null)
    {
        model.Weights.RequireParameters("saving");
        Save(dir, model.Config, model.Parameters, tokenizerSourceDir);
    }

    /// <summary>
    /// Saves a sentence-embedding model: the BERT encoder folder (<see cref="Save(string, BertModel, string?)"/>) plus the
    /// sentence-transformers files that make <see cref="SentenceEmbedder.Load"/> (and sentence-transformers) pool and
    /// normalise as trained: <c>modules.json</c> (Transformer, Pooling, Normalize), <c>1_Pooling/config.json</c> with
    /// <paramref name="pooling"/>, and the (empty) <c>2_Normalize</c> folder sentence-transformers writes.
    /// </summary>
    public static void SaveSentenceEmbedder(string dir, BertModel model, Pooling pooling, string? tokenizerSourceDir = null)
    {
        Save(dir, model, tokenizerSourceDir);
        var opts = new JsonSerializerOptions { WriteIndented = true };
        var modules = new JsonArray(
            Module(0, "", "Transformer"), Module(1, "1_Pooling", "Pooling"), Module(2, "2_Normalize", "Normalize"));
        AtomicFile.WriteAllText(Path.Combine(dir, "modules.json"), modules.ToJsonString(opts) + "\n");
        Directory.CreateDirectory(Path.Combine(dir, "1_Pooling"));
        var cfg = new JsonObject
        {
            ["word_embedding_dimension"] = model.Config.HiddenSize,
            ["pooling_mode_cls_token"] = pooling == Pooling.Cls,
            ["pooling_mode_mean_tokens"] = pooling == Pooling.Mean,
            ["pooling_mode_max_tokens"] = pooling == Pooling.Max,
            ["pooling_mode_mean_sqrt_len_tokens"] = pooling == Pooling.MeanSqrtLen,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "1_Pooling", "config.json"), cfg.ToJsonString(opts) + "\n");
        Directory.CreateDirectory(Path.Combine(dir, "2_Normalize"));

        static JsonObject Module(int idx, string path, string type) =>
            new() { ["idx"] = idx, ["name"] = idx.ToString(), ["path"] = path, ["type"] = "sentence_transformers.models." + type };
    }

    /// <summary>Saves a GPT-2 model folder (the model must hold every parameter as float32).</summary>
    public static void Save(string dir, Gpt2Model model, string? tokenizerSourceDir = null)
    {
        model.Weights.RequireParameters("saving");
        Save(dir, model.Config, model.Parameters, tokenizerSourceDir);
    }

    /// <summary>Parses a <c>--dtype</c> value: f32, f16 or bf16.</summary>
    public static DType ParseStorageDType(string s) => s.ToLowerInvariant() switch
    {
        "f32" or "float32" => DType.F32,
        "f16" or "float16" or "fp16" => DType.F16,
        "bf16" or "bfloat16" => DType.BF16,
        _ => throw new SharpFormerException($"--dtype must be f32, f16 or bf16 (got \"{s}\")"),
    };

    /// <summary>
    /// Rewrites a float32 safetensors file with every floating tensor stored as <paramref name="dtype"/> (F16: IEEE half,
    /// round to nearest even; BF16: upper 16 bits, round to nearest even). Halves the size of a shipped model;
    /// SharpFormer and transformers load either. Training checkpoints stay float32 (exact resume).
    /// </summary>
    public static void ConvertWeights(string path, DType dtype)
    {
        if (dtype == DType.F32) return;
        if (dtype is not (DType.F16 or DType.BF16)) throw new ArgumentException($"unsupported storage dtype {dtype}");
        var w = new SafeTensorsWriter();
        using (var f = new SafeTensorsFile(path))
            foreach (var name in f.Names)
            {
                var t = f.ReadFloat32(name);
                var bytes = new byte[t.Length * 2];
                var dst = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (int i = 0; i < t.Length; i++) dst[i] = dtype == DType.F16 ? BitConverter.HalfToUInt16Bits((Half)t.Data[i]) : ToBf16(t.Data[i]);
                w.Add(name, dtype, t.Shape, bytes);
            }
        w.Save(path);
    }

    static ushort ToBf16(float v)
    {
        uint b = BitConverter.SingleToUInt32Bits(v);
        if (float.IsNaN(v)) return (ushort)((b >> 16) | 0x40);
        b += 0x7FFF + ((b >> 16) & 1);
        return (ushort)(b >> 16);
    }

    /// <summary>Copies the tokenizer files present in <paramref name="from"/> into <paramref name="to"/> (nothing when they are the same folder).</summary>
    public static void CopyTokenizer(string from, string to)
    {
        if (Path.GetFullPath(from) == Path.GetFullPath(to)) return;
        foreach (var f in TokenizerFiles)
        {
            var src = Path.Combine(from, f);
            if (File.Exists(src)) File.Copy(src, Path.Combine(to, f), overwrite: true);
        }
    }
}
