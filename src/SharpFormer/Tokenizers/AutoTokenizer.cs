using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpFormer.Tokenizers;

/// <summary>
/// Picks a model folder's tokenizer from the folder itself (tokenizer_config.json's <c>tokenizer_class</c>, else the
/// vocabulary files present), never from the architecture alone: GPT-2 checkpoints such as <c>uer/gpt2-chinese-*</c>
/// ship a BERT WordPiece vocabulary.
/// </summary>
public static class AutoTokenizer
{
    public static ITokenizer FromFolder(string dir)
    {
        if (!Directory.Exists(dir)) throw new SharpFormerException($"{dir}: model folder not found");
        string? cls = null;
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            try { cls = (JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject)?["tokenizer_class"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null; }
            catch (JsonException e) { throw new SharpFormerException($"{configPath}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        }
        switch (cls)
        {
            case "BertTokenizer" or "BertTokenizerFast":
                return BertTokenizer.FromFolder(dir);
            case "GPT2Tokenizer" or "GPT2TokenizerFast":
                return Gpt2Tokenizer.FromFolder(dir);
            case null:
                break;
            default:
                // An unknown class name: fall back to the files, but only if they are unambiguous.
                break;
        }
        bool hasVocabTxt = File.Exists(Path.Combine(dir, "vocab.txt"));
        bool hasBpe = File.Exists(Path.Combine(dir, "vocab.json")) && File.Exists(Path.Combine(dir, "merges.txt"));
        if (hasVocabTxt && !hasBpe) return BertTokenizer.FromFolder(dir);
        if (hasBpe && !hasVocabTxt) return Gpt2Tokenizer.FromFolder(dir);
        if (hasBpe && hasVocabTxt)
            throw new SharpFormerException($"{dir}: both vocab.txt and vocab.json + merges.txt are present and tokenizer_config.json does not name the tokenizer_class");
        throw new SharpFormerException(cls is null
            ? $"{dir}: no tokenizer files (expected vocab.txt for BERT or vocab.json + merges.txt for GPT-2)"
            : $"{dir}: tokenizer_class \"{cls}\" is not supported (known: BertTokenizer, GPT2Tokenizer) and no vocabulary files were found");
    }
}
