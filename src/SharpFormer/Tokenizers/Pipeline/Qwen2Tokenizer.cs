using System.Text;
using System.Text.Json;

namespace SharpFormer.Tokenizers;

/// <summary>
/// Qwen2's slow tokenizer files as transformers 4.40's <c>Qwen2Tokenizer</c> reads them: <c>vocab.json</c> +
/// <c>merges.txt</c> (CRLF line ends stripped, as Python's universal newlines do), the whole input NFC-normalised
/// first, added tokens (tokenizer_config.json <c>added_tokens_decoder</c>, <c>added_tokens.json</c>) split out, the
/// rest cut with Qwen2's regex, byte-level mapped and BPE-merged. Nothing is added around the ids.
/// </summary>
public static class Qwen2Tokenizer
{
    /// <summary>Qwen2's pre-tokenization regex (<c>tokenization_qwen2.PRETOKENIZE_REGEX</c>).</summary>
    public const string Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Qwen2Tokenizer's defaults: unk, eos and pad "&lt;|endoftext|&gt;", no BOS, no clean-up.</summary>
    internal static readonly TokenizerDefaults Defaults = new(
        new Dictionary<string, string> { ["unk_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>", ["pad_token"] = "<|endoftext|>" }, false);

    /// <summary>Loads vocab.json + merges.txt (+ tokenizer_config.json, special_tokens_map.json, added_tokens.json).</summary>
    public static PipelineTokenizer FromFolder(string dir)
    {
        var vocabPath = Path.Combine(dir, "vocab.json");
        var mergesPath = Path.Combine(dir, "merges.txt");
        foreach (var p in new[] { vocabPath, mergesPath })
            if (!File.Exists(p)) throw new SharpFormerException($"{dir}: no {Path.GetFileName(p)} (a Qwen2 tokenizer needs vocab.json and merges.txt)");
        Dictionary<string, int> vocab;
        try { vocab = Gpt2Tokenizer.ReadVocab(vocabPath); }
        catch (JsonException e) { throw new SharpFormerException($"{vocabPath}: not a JSON object of token → id ({e.Message.Split('\n')[0]})"); }
        var config = TokenizerConfig.Read(dir);

        // The slow tokenizer normalises the whole text before looking for added tokens: matching them in the
        // normalised text (Normalized = true) is exactly that.
        var added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var t in config.AddedTokensDecoder()) added[t.Content] = t with { Normalized = true };
        if (TokenizerConfig.ReadJson(Path.Combine(dir, "added_tokens.json")) is { } extra)
            foreach (var (content, node) in extra)
                if (node is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<int>(out int id) && !added.ContainsKey(content))
                    added[content] = new AddedToken(id, content, Special: false, Normalized: true);

        var parts = new PipelineParts(
            Normalizers.Nfc,
            new SequencePreTokenizer([new SplitPreTokenizer(new CodePointRegex(Pattern, "Qwen2Tokenizer"), SplitBehavior.Isolated, false),
                                      new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: false)]),
            new BpeModel(vocab, ReadMerges(mergesPath), ignoreMerges: false, mergesPath),
            added.Values.ToArray(), Template: null, SecondTypeId: 1);
        return new PipelineTokenizer("Qwen2Tokenizer (byte-level BPE, vocab.json + merges.txt)", parts, config, Defaults);
    }

    /// <summary>merges.txt as Qwen2Tokenizer reads it: each line stripped, an optional "#version:" first line and empty lines skipped.</summary>
    static List<(string, string)> ReadMerges(string path)
    {
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (var raw in Utf8Text.ReadAllLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version:", StringComparison.Ordinal))) continue;
            var pair = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (pair.Length != 2) throw new SharpFormerException($"{path}: line {lineNo} is not two tokens separated by a space");
            merges.Add((pair[0], pair[1]));
        }
        return merges;
    }
}
