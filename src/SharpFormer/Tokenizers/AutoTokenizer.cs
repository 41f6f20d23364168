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
    /// <summary>The tokenizer of a model folder: WordPiece (vocab.txt) or byte-level BPE (vocab.json + merges.txt), chosen as the class remarks say; a folder without one is a one-line error.</summary>
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

    /// <summary>
    /// The ids a causal language model continues from: GPT-2's BPE ids as they are; for a WordPiece tokenizer the
    /// word pieces without [CLS]/[SEP] (what <c>uer/gpt2-chinese-*</c> models are fed when generating).
    /// </summary>
    public static int[] EncodeForCausalLm(ITokenizer tokenizer, string text)
    {
        if (tokenizer is Gpt2Tokenizer g) return g.EncodeIds(text);
        var pieces = tokenizer.Tokenize(text);
        var ids = new int[pieces.Count];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = tokenizer.TokenToId(pieces[i]) ?? throw new SharpFormerException($"token \"{pieces[i]}\" is not in the vocabulary");
        return ids;
    }

    /// <summary>
    /// Text of generated ids. WordPiece decoding puts a space between every token (HuggingFace's BertTokenizer does
    /// too, so uer/gpt2-chinese output reads "床 前 明 月"); a space touching a CJK character is such an artefact and is dropped.
    /// </summary>
    public static string DecodeForCausalLm(ITokenizer tokenizer, IEnumerable<int> ids)
    {
        var text = tokenizer.Decode(ids, skipSpecialTokens: true);
        if (tokenizer is Gpt2Tokenizer) return text;
        var sb = new System.Text.StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == ' ' && ((sb.Length > 0 && IsCjkBefore(sb)) || (i + 1 < text.Length && IsCjkAt(text, i + 1)))) continue;
            sb.Append(text[i]);
        }
        return sb.ToString();

        static bool IsCjkAt(string s, int i) => Rune.TryGetRuneAt(s, i, out var r) && PyUnicode14.IsChineseChar(r.Value);
        static bool IsCjkBefore(System.Text.StringBuilder sb)
        {
            int i = sb.Length - 1;
            if (char.IsLowSurrogate(sb[i]) && i > 0) i--;
            return IsCjkAt(sb.ToString(i, sb.Length - i), 0);
        }
    }
}
