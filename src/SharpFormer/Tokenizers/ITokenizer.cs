namespace SharpFormer.Tokenizers;

/// <summary>How a pair (or a single text) is cut down to <c>max_length</c>, as HuggingFace's <c>truncation=</c>.</summary>
public enum TruncationStrategy
{
    /// <summary>Remove a token at a time from the longer of the two sequences (HF's "longest_first").</summary>
    LongestFirst,
    /// <summary>Cut only the first text (HF's "only_first").</summary>
    OnlyFirst,
    /// <summary>Cut only the pair (HF's "only_second").</summary>
    OnlySecond,
}

/// <summary>Which end of a sequence truncation removes tokens from (tokenizer_config.json <c>truncation_side</c>: "right" keeps the start, "left" the end).</summary>
public enum TruncationSide
{
    /// <summary>Cut the end, keep the start.</summary>
    Right,
    /// <summary>Cut the start, keep the end.</summary>
    Left,
}

/// <summary>Reading and applying <see cref="TruncationSide"/>.</summary>
public static class TruncationSides
{
    /// <summary>Parses tokenizer_config.json's <c>truncation_side</c> (absent: right, HF's default).</summary>
    public static TruncationSide Parse(string? value, string file) => value switch
    {
        null or "right" => TruncationSide.Right,
        "left" => TruncationSide.Left,
        _ => throw new SharpFormerException($"{file}: truncation_side must be \"right\" or \"left\", not \"{value}\""),
    };

    /// <summary>Where the <paramref name="kept"/> tokens of a sequence of <paramref name="length"/> start.</summary>
    public static int KeptStart(this TruncationSide side, int length, int kept) => side == TruncationSide.Left ? length - kept : 0;
}

/// <summary>
/// One encoded input, special tokens included. <see cref="Offsets"/> are [start, end) UTF-16 indices into the
/// original text (of the first text for token_type 0, of the pair for token_type 1); special tokens get (0, 0).
/// </summary>
public sealed record Encoding(int[] InputIds, int[] TokenTypeIds, int[] AttentionMask, string[] Tokens, (int Start, int End)[] Offsets)
{
    /// <summary>Number of tokens.</summary>
    public int Length => InputIds.Length;
}

/// <summary>A text ↔ id mapping loaded from a model folder.</summary>
public interface ITokenizer
{
    /// <summary>A short description, e.g. "BertTokenizer (WordPiece, 21128 tokens)".</summary>
    string Kind { get; }
    /// <summary>Number of tokens of the vocabulary.</summary>
    int VocabSize { get; }
    /// <summary>The longest input the tokenizer's model takes (<c>model_max_length</c>), or null when unbounded.</summary>
    int? ModelMaxLength { get; }

    /// <summary>Word pieces / BPE tokens of a text, without special tokens.</summary>
    IReadOnlyList<string> Tokenize(string text);

    /// <summary>Encodes a text (and optional pair) as the model takes it: special tokens, type ids, mask, offsets; truncated when maxLength is given.</summary>
    Encoding Encode(string text, string? pair = null, int? maxLength = null, TruncationStrategy truncation = TruncationStrategy.LongestFirst);

    /// <summary>The text of <paramref name="ids"/> (special tokens dropped when <paramref name="skipSpecialTokens"/>), as HF's <c>decode</c>.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);
    /// <summary>The id of a token, or null when it is not in the vocabulary.</summary>
    int? TokenToId(string token);
    /// <summary>The token of an id.</summary>
    string IdToToken(int id);

    /// <summary>The named special tokens (HF's <c>special_tokens_map</c>) and every special id.</summary>
    SpecialTokens SpecialTokens { get; }

    /// <summary>
    /// The ids a causal language model continues from, as <c>tok(text)</c> feeds <c>generate()</c>: byte-level BPE
    /// tokenizers add what their post-processor adds (GPT-2 and Qwen2 nothing, Llama 3 its BOS); WordPiece gives its
    /// pieces without [CLS]/[SEP] (what <c>uer/gpt2-chinese-*</c> models are fed when generating).
    /// </summary>
    int[] EncodeForCausalLm(string text);

    /// <summary>The text of generated ids, special tokens skipped.</summary>
    string DecodeForCausalLm(IEnumerable<int> ids);

    /// <summary>An incremental decoder for streaming generation that never emits half a character.</summary>
    ITokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = true);
}

/// <summary>Turns ids into text as they arrive: each call returns only text that is final.</summary>
public interface ITokenStreamDecoder
{
    /// <summary>Adds one id; returns the text that is now complete ("" when everything is held back).</summary>
    string Push(int id);
    /// <summary>Ends the stream: returns whatever was held back.</summary>
    string Flush();
}

/// <summary>
/// A tokenizer's special tokens: the named ones by HF attribute (<c>bos_token</c>, <c>eos_token</c>, <c>pad_token</c>,
/// <c>unk_token</c>, <c>sep_token</c>, <c>cls_token</c>, <c>mask_token</c>; unset ones absent), the additional ones, and
/// the ids of every special token (what <c>skip_special_tokens</c> drops).
/// </summary>
public sealed record SpecialTokens(IReadOnlyDictionary<string, string> Named, IReadOnlyList<string> Additional, IReadOnlySet<int> Ids)
{
    /// <summary>The BOS token's text, or null when the tokenizer has none.</summary>
    public string? Bos => Named.GetValueOrDefault("bos_token");
    /// <summary>The EOS token's text, or null.</summary>
    public string? Eos => Named.GetValueOrDefault("eos_token");
    /// <summary>The padding token's text, or null.</summary>
    public string? Pad => Named.GetValueOrDefault("pad_token");
    /// <summary>The unknown token's text, or null.</summary>
    public string? Unk => Named.GetValueOrDefault("unk_token");
}
