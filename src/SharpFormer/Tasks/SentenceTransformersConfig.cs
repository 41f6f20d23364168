using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpFormer.Tasks;

/// <summary>How token vectors become one sentence vector.</summary>
public enum Pooling
{
    /// <summary>The last hidden state of the first token ([CLS]).</summary>
    Cls,
    /// <summary>Average of the token vectors where attention_mask is 1 (padding ignored).</summary>
    Mean,
    /// <summary>Element-wise maximum over the token vectors where attention_mask is 1.</summary>
    Max,
    /// <summary>Sum of the unpadded token vectors divided by sqrt(their count) (sentence-transformers' mean_sqrt_len_tokens).</summary>
    MeanSqrtLen,
}

/// <summary>
/// What a folder in sentence-transformers layout says about embeddings: <c>modules.json</c> lists the modules
/// (Transformer, Pooling, Normalize); <c>1_Pooling/config.json</c> (or whatever path modules.json names) holds the
/// <c>pooling_mode_*</c> flags; a <c>sentence_transformers.models.Normalize</c> module (usually <c>2_Normalize</c>)
/// means L2-normalised outputs; <c>sentence_bert_config.json</c> may set <c>max_seq_length</c>.
/// </summary>
public sealed record SentenceTransformersConfig(Pooling Pooling, bool Normalize, string TransformerDir, int? MaxSeqLength)
{
    /// <summary>Modules after the encoder that SharpFormer does not run (e.g. Dense): the vectors then differ from sentence-transformers'.</summary>
    public IReadOnlyList<string> IgnoredModules { get; init; } = [];

    /// <summary>Parses the folder's sentence-transformers files, or returns null when it has no modules.json / 1_Pooling.</summary>
    public static SentenceTransformersConfig? Read(string dir)
    {
        var modulesPath = Path.Combine(dir, "modules.json");
        string transformerDir = dir;
        string? poolingDir = null;
        bool normalize = false;
        var ignored = new List<string>();
        if (File.Exists(modulesPath))
        {
            var modules = Parse(modulesPath) as JsonArray ?? throw new SharpFormerException($"{modulesPath}: expected a JSON array of modules");
            foreach (var m in modules)
            {
                if (m is not JsonObject o) throw new SharpFormerException($"{modulesPath}: every module must be an object");
                var type = o["type"]?.GetValueKind() == JsonValueKind.String ? o["type"]!.GetValue<string>() : "";
                var path = o["path"]?.GetValueKind() == JsonValueKind.String ? o["path"]!.GetValue<string>() : "";
                var full = path.Length == 0 ? dir : Path.Combine(dir, path);
                switch (type)
                {
                    case "sentence_transformers.models.Transformer":
                        if (path.Length > 0 && File.Exists(Path.Combine(full, "config.json"))) transformerDir = full;
                        break;
                    case "sentence_transformers.models.Pooling": poolingDir = full; break;
                    case "sentence_transformers.models.Normalize": normalize = true; break;
                    default: ignored.Add($"{type} ({path})"); break;
                }
            }
        }
        else if (Directory.Exists(Path.Combine(dir, "1_Pooling")))
        {
            poolingDir = Path.Combine(dir, "1_Pooling");
            normalize = Directory.Exists(Path.Combine(dir, "2_Normalize"));
        }
        else return null;

        var pooling = Pooling.Cls;
        if (poolingDir is not null && File.Exists(Path.Combine(poolingDir, "config.json")))
            pooling = ParsePooling(Path.Combine(poolingDir, "config.json"));
        int? maxSeq = null;
        foreach (var candidate in new[] { Path.Combine(dir, "sentence_bert_config.json"), Path.Combine(transformerDir, "sentence_bert_config.json") })
        {
            if (!File.Exists(candidate)) continue;
            if (Parse(candidate) is JsonObject sb && sb["max_seq_length"] is JsonValue v && v.TryGetValue<int>(out var n)) maxSeq = n;
            break;
        }
        return new SentenceTransformersConfig(pooling, normalize, transformerDir, maxSeq) { IgnoredModules = ignored };
    }

    static Pooling ParsePooling(string path)
    {
        var o = Parse(path) as JsonObject ?? throw new SharpFormerException($"{path}: expected a JSON object");
        bool Flag(string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
        // Newer sentence-transformers also write "pooling_mode": "mean" | "cls" | "max" | ...
        if (o["pooling_mode"] is JsonValue pm && pm.TryGetValue<string>(out var mode))
            return ParseName(mode) ?? throw new SharpFormerException($"{path}: pooling_mode \"{mode}\" is not supported (cls, mean, max, mean_sqrt_len_tokens)");
        var on = new List<Pooling>();
        if (Flag("pooling_mode_cls_token")) on.Add(Pooling.Cls);
        if (Flag("pooling_mode_mean_tokens")) on.Add(Pooling.Mean);
        if (Flag("pooling_mode_max_tokens")) on.Add(Pooling.Max);
        if (Flag("pooling_mode_mean_sqrt_len_tokens")) on.Add(Pooling.MeanSqrtLen);
        foreach (var unsupported in new[] { "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken" })
            if (Flag(unsupported)) throw new SharpFormerException($"{path}: {unsupported} is not supported (cls, mean, max, mean_sqrt_len_tokens)");
        if (on.Count > 1) throw new SharpFormerException($"{path}: several pooling modes are on (concatenated vectors); SharpFormer supports one");
        return on.Count == 1 ? on[0] : Pooling.Cls;
    }

    /// <summary>"cls", "mean", "max", "mean_sqrt_len" (also sentence-transformers' long names); null when unknown.</summary>
    public static Pooling? ParseName(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cls" or "cls_token" => Pooling.Cls,
        "mean" or "mean_tokens" or "avg" or "average" => Pooling.Mean,
        "max" or "max_tokens" => Pooling.Max,
        "mean_sqrt_len" or "mean_sqrt_len_tokens" => Pooling.MeanSqrtLen,
        _ => null,
    };

    static JsonNode? Parse(string path)
    {
        try { return JsonNode.Parse(Utf8Text.ReadAllText(path)); }
        catch (JsonException e) { throw new SharpFormerException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
    }
}
