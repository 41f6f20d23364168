using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpFormer.Tokenizers;

/// <summary>
/// A model folder's <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c> as transformers'
/// <c>from_pretrained</c> reads them: named special tokens (a string or an <c>AddedToken</c> object; the config wins
/// over the map), added tokens by id, and the settings every tokenizer kind shares.
/// </summary>
internal sealed class TokenizerConfig
{
    /// <summary>The parsed tokenizer_config.json, or null when the folder has none.</summary>
    public JsonObject? Config { get; }
    /// <summary>The parsed special_tokens_map.json, or null.</summary>
    public JsonObject? Map { get; }
    /// <summary>The path of tokenizer_config.json, for messages.</summary>
    public string ConfigPath { get; }

    TokenizerConfig(string dir)
    {
        ConfigPath = Path.Combine(dir, "tokenizer_config.json");
        Config = ReadJson(ConfigPath);
        Map = ReadJson(Path.Combine(dir, "special_tokens_map.json"));
    }

    public static TokenizerConfig Read(string dir) => new(dir);

    /// <summary>Reads a JSON object file; null when it does not exist; a one-line error when it is not JSON.</summary>
    public static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(Utf8Text.ReadAllText(path)) as JsonObject; }
        catch (JsonException e) { throw new SharpFormerException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
    }

    /// <summary>A token given as a string or as an AddedToken object (<c>{"content": …}</c>); null otherwise.</summary>
    public static string? TokenName(JsonNode? n) => n switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o when o["content"] is JsonValue c => c.GetValue<string>(),
        _ => null,
    };

    /// <summary>
    /// A named special token (<c>eos_token</c> …): the config's value, else the map's; a key present with null means
    /// "none"; an absent key gives <paramref name="absent"/> (the tokenizer class's default).
    /// </summary>
    public string? Named(string key, string? absent = null)
    {
        if (Config is not null && Config.ContainsKey(key)) return TokenName(Config[key]);
        if (Map is not null && Map.ContainsKey(key)) return TokenName(Map[key]);
        return absent;
    }

    /// <summary>additional_special_tokens of the config (else the map), as strings.</summary>
    public IReadOnlyList<string> AdditionalSpecialTokens =>
        ((Config?["additional_special_tokens"] ?? Map?["additional_special_tokens"]) as JsonArray)?.Select(TokenName).OfType<string>().ToArray() ?? [];

    /// <summary>added_tokens_decoder: id → (content, special, lstrip, rstrip, single_word, normalized).</summary>
    public IEnumerable<AddedToken> AddedTokensDecoder()
    {
        if (Config?["added_tokens_decoder"] is not JsonObject dec) yield break;
        foreach (var (key, node) in dec)
        {
            if (!int.TryParse(key, out int id) || node is not JsonObject o || TokenName(o) is not string content)
                throw new SharpFormerException($"{ConfigPath}: added_tokens_decoder entry \"{key}\" must map an integer id to an object with \"content\"");
            yield return AddedToken.FromJson(o, id, content);
        }
    }

    /// <summary><c>model_max_length</c>, or null for none (HF writes int(1e30) for "no limit").</summary>
    public int? ModelMaxLength =>
        Config?["model_max_length"] is JsonValue ml && ml.GetValueKind() == JsonValueKind.Number && ml.GetValue<double>() is var d && d > 0 && d < 1e9 ? (int)d : null;

    /// <summary>A boolean setting; <paramref name="absent"/> when missing or null.</summary>
    public bool Flag(string key, bool absent) => Config?[key] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : absent;

    /// <summary>A string setting, or null.</summary>
    public string? String(string key) => Config?[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>truncation_side (right by default).</summary>
    public TruncationSide TruncationSide => TruncationSides.Parse(
        Config?["truncation_side"] is JsonNode ts ? (ts.GetValueKind() == JsonValueKind.String ? ts.GetValue<string>() : ts.ToJsonString()) : null, ConfigPath);

    /// <summary>padding_side: true when "left" (right by default).</summary>
    public bool PadLeft => String("padding_side") switch
    {
        null or "right" => false,
        "left" => true,
        var s => throw new SharpFormerException($"{ConfigPath}: padding_side must be \"right\" or \"left\", not \"{s}\""),
    };
}

/// <summary>A token matched whole before pre-tokenization (HF <c>AddedToken</c>).</summary>
/// <param name="Id">Its id.</param>
/// <param name="Content">Its text.</param>
/// <param name="Special">Skipped by <c>skip_special_tokens</c>.</param>
/// <param name="SingleWord">Only matched when not inside a word.</param>
/// <param name="LStrip">Takes the whitespace on its left.</param>
/// <param name="RStrip">Takes the whitespace on its right.</param>
/// <param name="Normalized">Matched in the normalised text (true) or the raw text (false).</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord = false, bool LStrip = false, bool RStrip = false, bool Normalized = false)
{
    internal static AddedToken FromJson(JsonObject o, int id, string content)
    {
        bool Flag(string name, bool dflt) => o[name] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : dflt;
        bool special = Flag("special", false);
        return new AddedToken(id, content, special, Flag("single_word", false), Flag("lstrip", false), Flag("rstrip", false), Flag("normalized", !special));
    }
}
