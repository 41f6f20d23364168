using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Models;

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

    public static void Save(string dir, BertModel model, string? tokenizerSourceDir = null) => Save(dir, model.Config, model.Parameters, tokenizerSourceDir);
    public static void Save(string dir, Gpt2Model model, string? tokenizerSourceDir = null) => Save(dir, model.Config, model.Parameters, tokenizerSourceDir);

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
