using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpFormer.Tokenizers;

/// <summary>
/// Picks a model folder's tokenizer from the folder itself (tokenizer_config.json's <c>tokenizer_class</c>, else the
/// vocabulary files present), never from the architecture alone: GPT-2 checkpoints such as <c>uer/gpt2-chinese-*</c>
/// ship a BERT WordPiece vocabulary. A folder with <c>tokenizer.json</c> is read from it (as transformers' fast
/// tokenizers are), except for WordPiece kinds, whose exact slow port is used.
/// </summary>
public static class AutoTokenizer
{
    /// <summary>A tokenizer kind: its class names, how to load its slow files, and the class defaults tokenizer.json is read with.</summary>
    sealed record Kind(string[] Classes, Func<string, ITokenizer> LoadSlow, TokenizerDefaults? FastDefaults);

    // One entry per kind. FastDefaults null: tokenizer.json is not used (its WordPiece model is not implemented).
    static readonly Kind[] Kinds =
    [
        new(["BertTokenizer", "BertTokenizerFast"], BertTokenizer.FromFolder, null),
        new(["GPT2Tokenizer", "GPT2TokenizerFast"], Gpt2Tokenizer.FromFolder,
            new TokenizerDefaults(new Dictionary<string, string> { ["bos_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>", ["unk_token"] = "<|endoftext|>" }, true)),
        new(["Qwen2Tokenizer", "Qwen2TokenizerFast"], Qwen2Tokenizer.FromFolder, Qwen2Tokenizer.Defaults),
    ];

    /// <summary>The tokenizer of a model folder (see the class summary for the choice).</summary>
    public static ITokenizer FromFolder(string dir)
    {
        if (!Directory.Exists(dir)) throw new SharpFormerException($"{dir}: model folder not found");
        string? cls = null;
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            try { cls = (JsonNode.Parse(Utf8Text.ReadAllText(configPath)) as JsonObject)?["tokenizer_class"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null; }
            catch (JsonException e) { throw new SharpFormerException($"{configPath}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        }
        var kind = Kinds.FirstOrDefault(k => k.Classes.Contains(cls));
        bool hasJson = File.Exists(Path.Combine(dir, "tokenizer.json"));
        if (kind is not null)
            return hasJson && kind.FastDefaults is { } defaults ? TokenizerJson.Load(dir, defaults, cls) : kind.LoadSlow(dir);
        // An unknown or absent class: tokenizer.json if there is one, else the vocabulary files, if they are unambiguous.
        if (hasJson) return TokenizerJson.Load(dir, TokenizerDefaults.Generic, cls);
        bool hasVocabTxt = File.Exists(Path.Combine(dir, "vocab.txt"));
        bool hasBpe = File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt"));
        if (hasVocabTxt && !hasBpe) return BertTokenizer.FromFolder(dir);
        if (hasBpe && !hasVocabTxt) return Gpt2Tokenizer.FromFolder(dir);
        if (hasBpe && hasVocabTxt)
            throw new SharpFormerException($"{dir}: both vocab.txt and vocab.json + merges.txt are present and tokenizer_config.json does not name the tokenizer_class");
        throw new SharpFormerException(cls is null
            ? $"{dir}: no tokenizer files (expected tokenizer.json, vocab.txt for BERT or vocab.json + merges.txt for byte-level BPE)"
            : $"{dir}: tokenizer_class \"{cls}\" is not supported (known: {string.Join(", ", Kinds.Select(k => k.Classes[0]))}) and no tokenizer files were found");
    }
}
