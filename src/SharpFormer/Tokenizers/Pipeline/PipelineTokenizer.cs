using System.Text;

namespace SharpFormer.Tokenizers;

/// <summary>One item of a TemplateProcessing template: a special token, or sequence A / B, with its type id.</summary>
internal sealed record TemplateItem(string? SpecialToken, bool IsSecond, int TypeId);

/// <summary>tokenizers' <c>TemplateProcessing</c>: what <c>add_special_tokens</c> puts around one text or a pair.</summary>
internal sealed record TemplateProcessor(IReadOnlyList<TemplateItem> Single, IReadOnlyList<TemplateItem> Pair,
                                         IReadOnlyDictionary<string, (int[] Ids, string[] Tokens)> SpecialTokens)
{
    /// <summary>How many ids the template adds (what truncation reserves).</summary>
    public int Added(bool pair) => (pair ? Pair : Single).Where(i => i.SpecialToken is not null).Sum(i => SpecialTokens[i.SpecialToken!].Ids.Length);
}

/// <summary>What a tokenizer class assumes when tokenizer_config.json does not say (transformers' <c>__init__</c> defaults).</summary>
/// <param name="NamedTokens">Named special tokens by HF attribute, e.g. Qwen2's <c>eos_token</c> "&lt;|endoftext|&gt;".</param>
/// <param name="CleanUpTokenizationSpaces">The class's <c>clean_up_tokenization_spaces</c> default.</param>
internal sealed record TokenizerDefaults(IReadOnlyDictionary<string, string> NamedTokens, bool CleanUpTokenizationSpaces)
{
    /// <summary>PreTrainedTokenizerFast's: no named tokens, clean-up on (transformers 4.40).</summary>
    public static readonly TokenizerDefaults Generic = new(new Dictionary<string, string>(), true);
}

/// <summary>The parts of a byte-level BPE tokenizer, as tokenizer.json describes them or as a slow tokenizer implies them.</summary>
/// <param name="Normalizer">Applied to the text between added tokens (null: none).</param>
/// <param name="PreTokenizer">Splits normalised text into words (byte-level mapping follows).</param>
/// <param name="Model">The BPE vocabulary and merges.</param>
/// <param name="Added">Tokens matched whole before pre-tokenization.</param>
/// <param name="Template">What add_special_tokens adds (null: nothing).</param>
/// <param name="SecondTypeId">The type id of a pair's second text when there is no template (slow tokenizers: 1, tokenizers: 0).</param>
internal sealed record PipelineParts(Func<string, string>? Normalizer, PreTokenizer PreTokenizer, BpeModel Model,
                                     IReadOnlyList<AddedToken> Added, TemplateProcessor? Template, int SecondTypeId);

/// <summary>
/// A byte-level BPE tokenizer assembled from parts: added tokens matched first (raw, then in the normalised text),
/// normaliser, pre-tokenizers, byte-level mapping, BPE, post-processing template; decoding maps tokens back to bytes
/// and decodes UTF-8 with U+FFFD for broken sequences (Python's <c>errors="replace"</c>). Built from
/// <c>tokenizer.json</c> (<see cref="TokenizerJson"/>) or from Qwen2's slow files (<see cref="Qwen2Tokenizer"/>).
/// Immutable after construction apart from thread-safe caches.
/// </summary>
public sealed class PipelineTokenizer : ITokenizer, IByteTokens
{
    readonly PipelineParts _parts;
    readonly AddedTokenMatcher _raw, _normalized;
    readonly string[] _idToToken;
    readonly Dictionary<string, int> _tokenToId;
    readonly Dictionary<int, AddedToken> _addedById;
    readonly HashSet<int> _specialIds;
    readonly byte[]?[] _tokenBytes;                             // index = id: filled on first use

    /// <inheritdoc/>
    public string Kind { get; }
    /// <summary>HF <c>len(tokenizer)</c>: the vocabulary with the added tokens.</summary>
    public int VocabSize => _idToToken.Length;
    /// <inheritdoc/>
    public int? ModelMaxLength { get; }
    /// <inheritdoc/>
    public SpecialTokens SpecialTokens { get; }
    /// <summary>HF <c>clean_up_tokenization_spaces</c> (applied by <see cref="Decode(IEnumerable{int}, bool)"/>).</summary>
    public bool CleanUpTokenizationSpaces { get; }
    /// <summary>HF <c>padding_side</c> is "left" (batches are padded before the text).</summary>
    public bool PadLeft { get; }
    /// <summary>HF <c>truncation_side</c>.</summary>
    public TruncationSide TruncationSide { get; }
    /// <summary>HF <c>split_special_tokens</c>: special-token text in the input is tokenized as ordinary text.</summary>
    public bool SplitSpecialTokens { get; private init; }

    internal PipelineTokenizer(string kind, PipelineParts parts, TokenizerConfig config, TokenizerDefaults defaults)
    {
        _parts = parts;
        Kind = kind;
        _raw = new AddedTokenMatcher(parts.Added.Where(t => !t.Normalized));
        _normalized = new AddedTokenMatcher(parts.Added.Where(t => t.Normalized));
        _tokenToId = new Dictionary<string, int>(parts.Model.Vocab, StringComparer.Ordinal);
        _addedById = new Dictionary<int, AddedToken>();
        foreach (var t in parts.Added) { _tokenToId[t.Content] = t.Id; _addedById[t.Id] = t; }
        int size = _tokenToId.Count == 0 ? 0 : _tokenToId.Values.Max() + 1;
        _idToToken = new string[size];
        Array.Fill(_idToToken, "");
        foreach (var (tok, id) in parts.Model.Vocab) _idToToken[id] = tok;
        foreach (var t in parts.Added) _idToToken[t.Id] = t.Content;
        _tokenBytes = new byte[size][];

        // Special: added tokens flagged so, and every named / additional special token the vocabulary has.
        _specialIds = parts.Added.Where(t => t.Special).Select(t => t.Id).ToHashSet();
        var namedTokens = new Dictionary<string, string>();
        foreach (var key in new[] { "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token" })
            if (config.Named(key, defaults.NamedTokens.GetValueOrDefault(key)) is string value) namedTokens[key] = value;
        var additional = config.AdditionalSpecialTokens;
        foreach (var t in namedTokens.Values.Concat(additional))
            if (TokenToId(t) is int id) _specialIds.Add(id);
        SpecialTokens = new SpecialTokens(namedTokens, additional, _specialIds);

        ModelMaxLength = config.ModelMaxLength;
        CleanUpTokenizationSpaces = config.Flag("clean_up_tokenization_spaces", defaults.CleanUpTokenizationSpaces);
        PadLeft = config.PadLeft;
        TruncationSide = config.TruncationSide;
        SplitSpecialTokens = config.Flag("split_special_tokens", false);
    }

    PipelineTokenizer(PipelineTokenizer other, bool splitSpecialTokens)
    {
        (_parts, _raw, _normalized, _idToToken, _tokenToId, _addedById, _specialIds, _tokenBytes) =
            (other._parts, other._raw, other._normalized, other._idToToken, other._tokenToId, other._addedById, other._specialIds, other._tokenBytes);
        (Kind, ModelMaxLength, SpecialTokens, CleanUpTokenizationSpaces, PadLeft, TruncationSide) =
            (other.Kind, other.ModelMaxLength, other.SpecialTokens, other.CleanUpTokenizationSpaces, other.PadLeft, other.TruncationSide);
        SplitSpecialTokens = splitSpecialTokens;
    }

    /// <summary>The same tokenizer with <c>split_special_tokens</c> set (shares every table).</summary>
    public PipelineTokenizer WithSplitSpecialTokens(bool split) => new(this, split);

    /// <summary>The id of a token of the vocabulary or an added token.</summary>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <inheritdoc/>
    public string IdToToken(int id) =>
        (uint)id < (uint)_idToToken.Length ? _idToToken[id] : throw new SharpFormerException($"token id {id} is outside the vocabulary [0, {VocabSize})");

    /// <summary>Whether the id is a special token (dropped by skip_special_tokens).</summary>
    public bool IsSpecial(int id) => _specialIds.Contains(id);

    // ---- encoding ----

    /// <summary>The tokens of a text (no special tokens added), as HF <c>tokenize</c>.</summary>
    public IReadOnlyList<string> Tokenize(string text) => EncodeCore(text).Select(t => _idToToken[t.Id]).ToArray();

    /// <summary>The ids of a text; <paramref name="addSpecialTokens"/> applies the post-processor (HF <c>encode</c>'s default is true).</summary>
    public int[] EncodeIds(string text, bool addSpecialTokens = true) =>
        addSpecialTokens ? Encode(text).InputIds : EncodeCore(text).Select(t => t.Id).ToArray();

    /// <inheritdoc/>
    public int[] EncodeForCausalLm(string text) => Encode(text).InputIds;

    /// <summary>Ids with [start, end) UTF-16 offsets into the text: exact where normalisation left a segment unchanged, else the segment's span.</summary>
    List<(int Id, int Start, int End)> EncodeCore(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new List<(int, int, int)>();
        var segments = new List<(int Start, int End, AddedToken? Token)>();
        var inner = new List<(int Start, int End, AddedToken? Token)>();
        var pieces = new List<Piece>();
        _raw.Split(text, SplitSpecialTokens, segments);
        foreach (var (s, e, token) in segments)
        {
            if (token is not null) { result.Add((token.Id, s, e)); continue; }
            string segment = text[s..e];
            string norm = _parts.Normalizer?.Invoke(segment) ?? segment;
            bool exact = string.Equals(norm, segment, StringComparison.Ordinal);
            _normalized.Split(norm, SplitSpecialTokens, inner);
            foreach (var (ns, ne, ntoken) in inner)
            {
                if (ntoken is not null) { result.Add(exact ? (ntoken.Id, s + ns, s + ne) : (ntoken.Id, s, e)); continue; }
                pieces.Clear();
                pieces.Add(new Piece(norm[ns..ne], ns, ne));
                _parts.PreTokenizer.Apply(pieces);
                foreach (var piece in pieces)
                {
                    var ids = _parts.Model.Encode(ByteLevelAlphabet.Encode(piece.Text));
                    if (exact && piece.Text.Length == piece.End - piece.Start) AddWithByteOffsets(result, ids, piece.Text, s + piece.Start);
                    else foreach (var id in ids) result.Add((id, exact ? s + piece.Start : s, exact ? s + piece.End : e));
                }
            }
        }
        return result;
    }

    /// <summary>Offsets of the BPE tokens of one piece from their byte lengths; a token inside a character spans that character.</summary>
    void AddWithByteOffsets(List<(int, int, int)> result, int[] ids, string piece, int origin)
    {
        int charIndex = 0, byteInChar = 0;
        foreach (var id in ids)
        {
            int start = charIndex, remaining = BytesOf(id).Length;
            while (remaining > 0 && charIndex < piece.Length)
            {
                int width = char.IsSurrogatePair(piece, charIndex) ? 2 : 1;
                int charBytes = System.Text.Encoding.UTF8.GetByteCount(piece.AsSpan(charIndex, width));
                int take = Math.Min(remaining, charBytes - byteInChar);
                remaining -= take;
                byteInChar += take;
                if (byteInChar == charBytes) { charIndex += width; byteInChar = 0; }
            }
            int end = byteInChar > 0 ? charIndex + (char.IsSurrogatePair(piece, charIndex) ? 2 : 1) : charIndex;
            result.Add((id, origin + start, origin + Math.Max(end, start)));
        }
    }

    /// <inheritdoc/>
    public Encoding Encode(string text, string? pair = null, int? maxLength = null, TruncationStrategy truncation = TruncationStrategy.LongestFirst)
    {
        var a = EncodeCore(text);
        var b = pair is null ? null : EncodeCore(pair);
        if (maxLength is int max)
        {
            if (max < 0) throw new SharpFormerException($"max_length must not be negative (got {max})");
            int budget = Math.Max(0, max - (_parts.Template?.Added(b is not null) ?? 0));
            var (ka, kb) = Gpt2Tokenizer.Truncate(Enumerable.Range(0, a.Count).ToArray(), b is null ? null : Enumerable.Range(0, b.Count).ToArray(), budget, truncation, TruncationSide);
            a = ka.Select(i => a[i]).ToList();
            b = kb?.Select(i => b![i]).ToList();
        }
        var ids = new List<int>();
        var types = new List<int>();
        var offsets = new List<(int, int)>();
        void AddSequence(List<(int Id, int Start, int End)> seq, int type)
        {
            foreach (var t in seq) { ids.Add(t.Id); types.Add(type); offsets.Add((t.Start, t.End)); }
        }
        if (_parts.Template is { } template)
        {
            foreach (var item in b is null ? template.Single : template.Pair)
            {
                if (item.SpecialToken is string name)
                    foreach (var id in template.SpecialTokens[name].Ids) { ids.Add(id); types.Add(item.TypeId); offsets.Add((0, 0)); }
                else AddSequence(item.IsSecond ? b! : a, item.TypeId);
            }
        }
        else
        {
            AddSequence(a, 0);
            if (b is not null) AddSequence(b, _parts.SecondTypeId);
        }
        var mask = new int[ids.Count];
        Array.Fill(mask, 1);
        return new Encoding(ids.ToArray(), types.ToArray(), mask, ids.Select(IdToToken).ToArray(), offsets.ToArray());
    }

    /// <summary>HF <c>tok(texts, padding=True)</c>: every text encoded, padded to the longest on <c>padding_side</c> with the pad token.</summary>
    public IReadOnlyList<Encoding> EncodeBatch(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var encodings = texts.Select(t => Encode(t)).ToArray();
        if (encodings.Length == 0) return encodings;
        int longest = encodings.Max(e => e.Length);
        if (encodings.All(e => e.Length == longest)) return encodings;
        int padId = SpecialTokens.Pad is string p && TokenToId(p) is int id
            ? id : throw new SharpFormerException("padding a batch needs a pad_token, and this tokenizer has none");
        for (int i = 0; i < encodings.Length; i++)
        {
            var e = encodings[i];
            int n = longest - e.Length;
            if (n == 0) continue;
            T[] Pad<T>(T[] x, T value) => PadLeft ? [.. Enumerable.Repeat(value, n), .. x] : [.. x, .. Enumerable.Repeat(value, n)];
            encodings[i] = new Encoding(Pad(e.InputIds, padId), Pad(e.TokenTypeIds, 0), Pad(e.AttentionMask, 0), Pad(e.Tokens, _idToToken[padId]), Pad(e.Offsets, (0, 0)));
        }
        return encodings;
    }

    // ---- decoding ----

    /// <summary>The bytes an id stands for: an added token's text, a vocabulary token's byte-level bytes; none for an id past the vocabulary (a model's padding row), as in <see cref="Gpt2Tokenizer.TokenBytes"/>.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) =>
        id < 0 ? throw new SharpFormerException($"token id {id} is negative") : id < _tokenBytes.Length ? BytesOf(id) : default;

    // Computed on first use (a racing second computation stores an equal array).
    byte[] BytesOf(int id) => _tokenBytes[id] ??= _addedById.ContainsKey(id)
        ? System.Text.Encoding.UTF8.GetBytes(_idToToken[id])
        : ByteLevelAlphabet.ToBytes(_idToToken[id]);

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => Decode(ids, skipSpecialTokens, CleanUpTokenizationSpaces);

    /// <summary>HF <c>decode</c>: bytes of the tokens, UTF-8 decoded with U+FFFD for broken sequences, optional clean-up.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens, bool cleanUpTokenizationSpaces)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            bytes.AddRange(TokenBytes(id));
        }
        var text = System.Text.Encoding.UTF8.GetString(bytes.ToArray());
        return cleanUpTokenizationSpaces ? Gpt2Tokenizer.CleanUp(text) : text;
    }

    /// <inheritdoc/>
    public string DecodeForCausalLm(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: true);

    /// <inheritdoc/>
    public ITokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = true) => new ByteStreamDecoder(this, skipSpecialTokens);
}
