using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace SharpFormer.Tokenizers;

/// <summary>
/// GPT-2's byte-level BPE (HuggingFace's slow <c>GPT2Tokenizer</c>): <c>vocab.json</c> + <c>merges.txt</c>, the GPT-2
/// pre-tokenization regex, added/special tokens from <c>tokenizer_config.json</c> kept whole. Encoding runs on
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>; decoding (bytes → UTF-8 with replacement, optional clean-up)
/// and offsets are our own so that they match HuggingFace exactly. No special tokens are added (GPT-2 adds none).
/// </summary>
public sealed partial class Gpt2Tokenizer : ITokenizer, IByteTokens
{
    /// <summary>The pre-tokenization pattern of GPT-2 (OpenAI's encoder.py).</summary>
    public const string Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    // Source-generated: RegexOptions.Compiled emitted IL at every start-up.
    [GeneratedRegex(Pattern)]
    private static partial Regex PretokenizeRegex();

    // vocab.json: {"token": id, ...}, read with the raw reader (the reflection serializer's set-up alone cost ~50 ms at start-up).
    internal static Dictionary<string, int> ReadVocab(string path)
    {
        var reader = new Utf8JsonReader(Utf8Text.ReadAllBytes(path), new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new JsonException("expected an object");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            string token = reader.GetString()!;
            if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out int id))
                throw new JsonException($"the id of \"{token}\" is not an integer");
            vocab[token] = id;
        }
        return vocab;
    }

    // merges.txt: an optional "#version" header, then one "left right" pair per line.
    static List<string> ReadMerges(string path) =>
        Utf8Text.ReadAllLines(path).Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal)).ToList();

    readonly Task<BpeTokenizer> _bpe;
    readonly string[] _idToToken;                       // index = id; null-free (missing ids are "")
    readonly Dictionary<string, int> _tokenToId;
    readonly Dictionary<string, int> _added;            // added tokens (kept whole), special or not
    readonly HashSet<int> _specialIds;
    readonly byte[]?[] _tokenBytes;                     // index = id: the bytes the token stands for, filled on first use

    /// <inheritdoc/>
    public string Kind => $"GPT2Tokenizer (byte-level BPE, {VocabSize} tokens)";
    /// <inheritdoc/>
    public int VocabSize { get; }
    /// <inheritdoc/>
    public int? ModelMaxLength { get; }
    /// <summary>HF <c>truncation_side</c> from tokenizer_config.json: which end truncation cuts.</summary>
    public TruncationSide TruncationSide { get; init; }
    /// <summary>HuggingFace's <c>clean_up_tokenization_spaces</c> from tokenizer_config.json (default true, as in 4.40).</summary>
    public bool CleanUpTokenizationSpaces { get; init; } = true;
    /// <summary>The end-of-text token's id, if the tokenizer has one.</summary>
    public int? EosTokenId { get; }
    /// <summary>The beginning-of-text token's id, if any.</summary>
    public int? BosTokenId { get; }
    /// <summary>The padding token's id, if any.</summary>
    public int? PadTokenId { get; }
    /// <summary>The unknown token's id, if any.</summary>
    public int? UnkTokenId { get; }
    /// <summary>The ids of every special token (skipped by decoding with skipSpecialTokens).</summary>
    public IReadOnlyCollection<int> SpecialTokenIds => _specialIds;
    /// <inheritdoc/>
    public SpecialTokens SpecialTokens { get; }

    Gpt2Tokenizer(Task<BpeTokenizer> bpe, Dictionary<string, int> vocab, Dictionary<string, int> added, HashSet<int> specialIds,
                  int? modelMaxLength, string? eos, string? bos, string? pad, string? unk, IReadOnlyList<string> additional)
    {
        _bpe = bpe;
        _tokenToId = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach (var (tok, id) in added) _tokenToId[tok] = id;
        _added = added;
        _specialIds = specialIds;
        int size = _tokenToId.Count == 0 ? 0 : _tokenToId.Values.Max() + 1;
        VocabSize = size;
        _idToToken = new string[size];
        Array.Fill(_idToToken, "");
        foreach (var (tok, id) in vocab) _idToToken[id] = tok;
        foreach (var (tok, id) in added) _idToToken[id] = tok;
        _tokenBytes = new byte[size][];
        ModelMaxLength = modelMaxLength;
        EosTokenId = eos is null ? null : TokenToId(eos);
        BosTokenId = bos is null ? null : TokenToId(bos);
        PadTokenId = pad is null ? null : TokenToId(pad);
        UnkTokenId = unk is null ? null : TokenToId(unk);
        var named = new Dictionary<string, string>();
        foreach (var (key, value) in new[] { ("bos_token", bos), ("eos_token", eos), ("unk_token", unk), ("pad_token", pad) })
            if (value is not null) named[key] = value;
        SpecialTokens = new SpecialTokens(named, additional, specialIds);
    }

    /// <summary>Loads vocab.json + merges.txt (+ tokenizer_config.json / special_tokens_map.json if present) from a folder.</summary>
    public static Gpt2Tokenizer FromFolder(string dir)
    {
        var vocabPath = Path.Combine(dir, "vocab.json");
        var mergesPath = Path.Combine(dir, "merges.txt");
        if (!File.Exists(vocabPath)) throw new SharpFormerException($"{dir}: no vocab.json (a GPT-2 tokenizer needs vocab.json and merges.txt)");
        if (!File.Exists(mergesPath)) throw new SharpFormerException($"{dir}: no merges.txt (a GPT-2 tokenizer needs vocab.json and merges.txt)");

        Dictionary<string, int> vocab;
        try { vocab = ReadVocab(vocabPath); }
        catch (JsonException e) { throw new SharpFormerException($"{vocabPath}: not a JSON object of token → id ({e.Message.Split('\n')[0]})"); }

        var config = TokenizerConfig.ReadJson(Path.Combine(dir, "tokenizer_config.json"));
        var map = TokenizerConfig.ReadJson(Path.Combine(dir, "special_tokens_map.json"));

        // Added tokens: tokenizer_config's added_tokens_decoder (id → content, special flag), added_tokens.json, and the named special tokens.
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        var specialIds = new HashSet<int>();
        if (config?["added_tokens_decoder"] is JsonObject dec)
            foreach (var (key, node) in dec)
            {
                if (node is not JsonObject o || o["content"] is not JsonValue cv || !int.TryParse(key, out int id)) continue;
                var content = cv.GetValue<string>();
                added[content] = id;
                if (o["special"] is JsonValue sv && sv.GetValueKind() == JsonValueKind.True) specialIds.Add(id);
            }
        var addedJson = TokenizerConfig.ReadJson(Path.Combine(dir, "added_tokens.json"));
        if (addedJson is not null)
            foreach (var (tok, node) in addedJson)
                if (node is JsonValue v && v.TryGetValue<int>(out int id)) added.TryAdd(tok, id);

        string? Named(string key) => TokenizerConfig.TokenName(config?[key]) ?? TokenizerConfig.TokenName(map?[key]);
        string? eos = Named("eos_token"), bos = Named("bos_token"), pad = Named("pad_token"), unk = Named("unk_token");
        // Without any tokenizer_config, GPT-2's defaults: <|endoftext|> is bos, eos and unk.
        if (config is null && map is null && vocab.ContainsKey("<|endoftext|>")) eos = bos = unk = "<|endoftext|>";
        foreach (var name in new[] { eos, bos, pad, unk })
        {
            if (name is null) continue;
            int? id = added.TryGetValue(name, out var a) ? a : vocab.TryGetValue(name, out var v) ? v : null;
            if (id is null) continue;
            added.TryAdd(name, id.Value);
            specialIds.Add(id.Value);
        }
        var additional = new List<string>();
        if (config?["additional_special_tokens"] is JsonArray extra)
            foreach (var n in extra)
                if (TokenizerConfig.TokenName(n) is string s && (added.TryGetValue(s, out var id) || vocab.TryGetValue(s, out id))) { added.TryAdd(s, id); specialIds.Add(id); additional.Add(s); }

        int? maxLen = null;
        if (config?["model_max_length"] is JsonValue ml && ml.GetValueKind() == JsonValueKind.Number)
        {
            double d = ml.GetValue<double>();
            if (d > 0 && d < 1e9) maxLen = (int)d;                // HF writes int(1e30) for "no limit"
        }
        bool cleanup = config?["clean_up_tokenization_spaces"] is JsonValue cu ? cu.GetValueKind() != JsonValueKind.False : true;
        if (config?["add_prefix_space"] is JsonValue aps && aps.GetValueKind() == JsonValueKind.True)
            throw new SharpFormerException($"{dir}: tokenizer_config.json sets add_prefix_space=true, which is not supported");

        // Building the merge table is most of a cold start: it runs in the background while the caller loads the model.
        var specials = added.Count > 0 ? added : null;
        var bpe = Task.Run(() =>
        {
            try
            {
                // The vocabulary parsed above is handed over rather than read a second time.
                return BpeTokenizer.Create(new BpeOptions(vocab)
                {
                    Merges = ReadMerges(mergesPath),
                    ByteLevel = true,
                    PreTokenizer = new RegexPreTokenizer(PretokenizeRegex(), specials),
                    SpecialTokens = specials,
                });
            }
            catch (Exception e) when (e is not SharpFormerException)
            {
                throw new SharpFormerException($"{dir}: cannot load the BPE vocabulary ({e.Message.Split('\n')[0]})");
            }
        });
        var side = TruncationSides.Parse(config?["truncation_side"] is JsonNode ts ? (ts.GetValueKind() == JsonValueKind.String ? ts.GetValue<string>() : ts.ToJsonString()) : null,
                                         Path.Combine(dir, "tokenizer_config.json"));
        return new Gpt2Tokenizer(bpe, vocab, added, specialIds, maxLen, eos, bos, pad, unk, additional) { CleanUpTokenizationSpaces = cleanup, TruncationSide = side };
    }

    /// <summary>The raw bytes of one id (the UTF-8 of the text it stands for, possibly part of a character). An id past the tokenizer's vocabulary stands for no bytes, as HF's fast tokenizers decode it: a model's embedding matrix is often padded beyond its tokenizer (Qwen2: 151,936 rows, 151,665 tokens), and a sampled padding row must not throw away a generation.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) =>
        id < 0 ? throw new SharpFormerException($"token id {id} is negative") : id < _tokenBytes.Length ? BytesOf(id) : default;

    // Computed on first use: converting all 50k tokens up front was a fifth of a cold start.
    byte[] BytesOf(int id) => _tokenBytes[id] ??= _added.ContainsKey(_idToToken[id]) && !ByteLevelAlphabet.IsByteLevel(_idToToken[id])
        ? System.Text.Encoding.UTF8.GetBytes(_idToToken[id])
        : ByteLevelAlphabet.ToBytes(_idToToken[id]);

    /// <summary>True for a special token's id.</summary>
    public bool IsSpecial(int id) => _specialIds.Contains(id);

    // ---- encoding ----

    /// <inheritdoc/>
    public IReadOnlyList<string> Tokenize(string text) => EncodeIds(text).Select(IdToToken).ToArray();

    /// <summary><c>tok.encode(text)</c>: the ids of the text, no special tokens added.</summary>
    public int[] EncodeIds(string text) =>
        text.Length == 0 ? [] : _bpe.GetAwaiter().GetResult().EncodeToIds(text, considerPreTokenization: true, considerNormalization: false).ToArray();

    /// <inheritdoc/>
    public Encoding Encode(string text, string? pair = null, int? maxLength = null, TruncationStrategy truncation = TruncationStrategy.LongestFirst)
    {
        ArgumentNullException.ThrowIfNull(text);
        var a = EncodeIds(text);
        var b = pair is null ? null : EncodeIds(pair);
        if (maxLength is int max)
        {
            if (max < 0) throw new SharpFormerException($"max_length must not be negative (got {max})");
            (a, b) = Truncate(a, b, max, truncation, TruncationSide);
        }
        int n = a.Length + (b?.Length ?? 0);
        var ids = new int[n];
        a.CopyTo(ids, 0);
        b?.CopyTo(ids, a.Length);
        var types = new int[n];
        for (int i = a.Length; i < n; i++) types[i] = 1;     // HF's default create_token_type_ids_from_sequences
        var mask = new int[n];
        Array.Fill(mask, 1);
        var offsets = new (int, int)[n];
        Offsets(text, a).CopyTo(offsets, 0);
        if (b is not null) Offsets(pair!, b).CopyTo(offsets, a.Length);
        return new Encoding(ids, types, mask, ids.Select(IdToToken).ToArray(), offsets);
    }

    internal static (int[] A, int[]? B) Truncate(int[] a, int[]? b, int max, TruncationStrategy strategy, TruncationSide side)
    {
        int[] Keep(int[] x, int n) => x.AsSpan(side.KeptStart(x.Length, n), n).ToArray();
        if (b is null) return (a.Length > max ? Keep(a, max) : a, null);
        int excess = a.Length + b.Length - max;
        if (excess <= 0) return (a, b);
        switch (strategy)
        {
            case TruncationStrategy.OnlyFirst:
                return a.Length > excess ? (Keep(a, a.Length - excess), b) : (a, b);     // HF: cannot truncate → leaves it (and logs)
            case TruncationStrategy.OnlySecond:
                return b.Length > excess ? (a, Keep(b, b.Length - excess)) : (a, b);
            default:
                int la = a.Length, lb = b.Length;
                for (int i = 0; i < excess; i++)
                    if (la > lb) la--; else lb--;
                return (Keep(a, la), Keep(b, lb));
        }
    }

    /// <summary>UTF-16 [start, end) of each token: tokens cover the text's UTF-8 bytes in order; a token that is part of a character maps to that whole character.</summary>
    (int, int)[] Offsets(string text, int[] ids)
    {
        var result = new (int, int)[ids.Length];
        if (ids.Length == 0) return result;
        // byte index → UTF-16 index of the character containing it
        var utf8 = System.Text.Encoding.UTF8.GetBytes(text);
        var byteToChar = new int[utf8.Length + 1];
        int bi = 0;
        for (int ci = 0; ci < text.Length;)
        {
            int len = char.IsSurrogatePair(text, ci) ? 2 : 1;
            int blen = System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(ci, len));
            for (int k = 0; k < blen; k++) byteToChar[bi + k] = ci;
            bi += blen; ci += len;
        }
        byteToChar[utf8.Length] = text.Length;
        long total = 0;
        foreach (var id in ids) total += BytesOf(id).Length;
        bool exact = bi == utf8.Length && total <= utf8.Length;
        int pos = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            int len = BytesOf(ids[i]).Length;
            if (!exact) { result[i] = (0, 0); continue; }
            int start = byteToChar[pos];
            int endByte = pos + len;
            int end = endByte >= utf8.Length ? text.Length : (len == 0 ? start : CharEnd(text, byteToChar[endByte - 1]));
            result[i] = (start, end);
            pos = endByte;
        }
        return result;

        static int CharEnd(string s, int ci) => ci + (char.IsSurrogatePair(s, ci) ? 2 : 1);
    }

    // ---- decoding ----

    /// <inheritdoc/>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <inheritdoc/>
    public string IdToToken(int id) =>
        (uint)id < (uint)_idToToken.Length ? _idToToken[id] : throw new SharpFormerException($"token id {id} is outside the vocabulary [0, {VocabSize})");

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => Decode(ids, skipSpecialTokens, CleanUpTokenizationSpaces);

    /// <summary>HF <c>tok.decode(ids, skip_special_tokens, clean_up_tokenization_spaces)</c>: bytes of the tokens, UTF-8 decoded with U+FFFD for broken sequences.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens, bool cleanUpTokenizationSpaces)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            bytes.AddRange(TokenBytes(id).ToArray());
        }
        var text = System.Text.Encoding.UTF8.GetString(bytes.ToArray());
        return cleanUpTokenizationSpaces ? CleanUp(text) : text;
    }

    /// <summary>HuggingFace's <c>clean_up_tokenization</c>, replacement for replacement in its order.</summary>
    public static string CleanUp(string s) => s
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    /// <summary>An incremental decoder for streaming generation: feed ids one at a time, get back only complete characters.</summary>
    public ITokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = true) => new ByteStreamDecoder(this, skipSpecialTokens);

    /// <inheritdoc/>
    public int[] EncodeForCausalLm(string text) => EncodeIds(text);

    /// <inheritdoc/>
    public string DecodeForCausalLm(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: true);
}
