using System.Text;
using System.Text.Json;

namespace SharpFormer.Tokenizers;

/// <summary>A token added on top of the WordPiece vocabulary (tokenizer_config.json <c>added_tokens_decoder</c>), as HF's <c>AddedToken</c>.</summary>
/// <param name="Id">The token's id.</param>
/// <param name="Content">The token's text.</param>
/// <param name="Special">A special token (HF's <c>AddedToken.special</c>): never lower-cased or split.</param>
/// <param name="LStrip">Eat the whitespace on the token's left.</param>
/// <param name="RStrip">Eat the whitespace on the token's right.</param>
/// <param name="Normalized">For a non-special token: whether lower-casing applies to it (a normalised token is matched as written).</param>
public sealed record BertAddedToken(int Id, string Content, bool Special = true, bool LStrip = false, bool RStrip = false, bool Normalized = false);

/// <summary>Options of <see cref="BertTokenizer"/>; the defaults are HuggingFace's <c>BertTokenizer</c> defaults.</summary>
public sealed record BertTokenizerOptions
{
    /// <summary>Lower-case the text (and strip accents, see <see cref="StripAccents"/>).</summary>
    public bool DoLowerCase { get; init; } = true;
    /// <summary>Run the basic tokenizer (whitespace and punctuation splitting) before WordPiece.</summary>
    public bool DoBasicTokenize { get; init; } = true;
    /// <summary>Put spaces around CJK characters, so each is a word of its own.</summary>
    public bool TokenizeChineseChars { get; init; } = true;
    /// <summary>null: strip accents exactly when lower-casing (original BERT); true / false: always / never.</summary>
    public bool? StripAccents { get; init; }
    /// <summary>Words the basic tokenizer keeps whole and WordPiece does not split (config <c>never_split</c>).</summary>
    public IReadOnlyList<string>? NeverSplit { get; init; }
    /// <summary>
    /// </summary>
    /// <c>model_max_length</c>, or null when unbounded.
    public int? ModelMaxLength { get; init; }
    /// <summary>HF <c>truncation_side</c>: which end truncation cuts (the pair's sequences are each cut at that end).</summary>
    public TruncationSide TruncationSide { get; init; }
    /// <summary>The unknown token.</summary>
    public string UnkToken { get; init; } = "[UNK]";
    /// <summary>The separator token.</summary>
    public string SepToken { get; init; } = "[SEP]";
    /// <summary>The padding token.</summary>
    public string PadToken { get; init; } = "[PAD]";
    /// <summary>The classification token that starts every input.</summary>
    public string ClsToken { get; init; } = "[CLS]";
    /// <summary>The mask token.</summary>
    public string MaskToken { get; init; } = "[MASK]";
    /// <summary>
    /// </summary>
    /// <c>additional_special_tokens</c>.
    public IReadOnlyList<string>? AdditionalSpecialTokens { get; init; }
    /// <summary>Tokens with fixed ids on top of the vocabulary (tokenizer_config.json <c>added_tokens_decoder</c>).</summary>
    public IReadOnlyList<BertAddedToken>? AddedTokens { get; init; }
    /// <summary>Decode clean-up of " ." " ," " n't" … (HF <c>clean_up_tokenization_spaces</c>, true in transformers 4.40).</summary>
    public bool CleanUpTokenizationSpaces { get; init; } = true;
    /// <summary>Longer words become the unknown token (HF's <c>max_input_chars_per_word</c>).</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;
}

/// <summary>
/// A faithful port of HuggingFace transformers 4.40.2's slow (pure Python) <c>BertTokenizer</c>: the added/special
/// token handling of <c>PreTrainedTokenizer.tokenize</c> (special tokens written in the text are kept whole, the rest is
/// lower-cased one character at a time), <see cref="BasicTokenizer"/>, <see cref="WordPieceTokenizer"/>, HF's
/// truncation strategies, and <c>decode</c> with <c>clean_up_tokenization_spaces</c>. Character data is Unicode 14.0
/// (Python 3.11's), independent of the .NET runtime.
/// </summary>
/// <remarks>
/// Offsets (HF's slow tokenizer has none) are [start, end) UTF-16 indices into the text each token came from:
/// every code point carries the span of the original character(s) it came from through every step — lower-casing
/// (U+0130 → "i\u0307" gives both the span of U+0130), NFC (a composite gets the union of its parts) and NFD (each
/// part gets the whole original character, so "é" → "e" maps to the whole "é", and Hangul jamo to the whole
/// syllable) — and a word piece spans the union of its code points' spans. Dropped characters (controls, zero-width
/// format characters) inside a word therefore lie inside the span of the piece around them. An unknown word
/// ([UNK]) spans the whole word; a special token written in the text spans where it was written; the added
/// [CLS]/[SEP] and padding get (0, 0).
/// </remarks>
public sealed class BertTokenizer : ITokenizer
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<int, string> _idsToTokens;
    private readonly Dictionary<string, BertAddedToken> _addedEncoder;
    private readonly Dictionary<int, BertAddedToken> _addedDecoder;
    private readonly BasicTokenizer? _basic;
    private readonly WordPieceTokenizer _wordPiece;
    private readonly string[] _allSpecialTokens;
    private readonly HashSet<string> _allSpecialTokensSet;
    private readonly HashSet<int> _allSpecialIds;
    private readonly HashSet<string> _legacyAddedTokens;
    // Tokens the lower-casing regex leaves alone, in alternation order, as code points.
    private readonly int[][] _lowerProtected;
    // Tokens the added-tokens trie splits out, longest first, as code points.
    private readonly (int[] Cps, BertAddedToken Token)[] _trieTokens;

    /// <summary>The options the tokenizer was built with.</summary>
    public BertTokenizerOptions Options { get; }
    /// <inheritdoc/>
    public string Kind => $"BertTokenizer (WordPiece, {VocabSize} tokens)";
    /// <summary>HF <c>vocab_size</c>: distinct tokens of vocab.txt (added tokens not counted).</summary>
    public int VocabSize => _vocab.Count;
    /// <inheritdoc/>
    public int? ModelMaxLength => Options.ModelMaxLength;
    /// <summary>HF's <c>do_lower_case</c> property (false when the basic tokenizer is off).</summary>
    public bool DoLowerCase => _basic?.DoLowerCase ?? false;

    /// <summary>The unknown token.</summary>
    public string UnkToken => Options.UnkToken;
    /// <summary>The separator token.</summary>
    public string SepToken => Options.SepToken;
    /// <summary>The padding token.</summary>
    public string PadToken => Options.PadToken;
    /// <summary>The classification token.</summary>
    public string ClsToken => Options.ClsToken;
    /// <summary>The mask token.</summary>
    public string MaskToken => Options.MaskToken;
    /// <summary>The unknown token's id.</summary>
    public int UnkTokenId => ConvertTokenToId(Options.UnkToken);
    /// <summary>The separator token's id.</summary>
    public int SepTokenId => ConvertTokenToId(Options.SepToken);
    /// <summary>The padding token's id.</summary>
    public int PadTokenId => ConvertTokenToId(Options.PadToken);
    /// <summary>The classification token's id.</summary>
    public int ClsTokenId => ConvertTokenToId(Options.ClsToken);
    /// <summary>The mask token's id.</summary>
    public int MaskTokenId => ConvertTokenToId(Options.MaskToken);
    /// <summary>HF <c>all_special_tokens</c> (unk, sep, pad, cls, mask, additional), without duplicates.</summary>
    public IReadOnlyList<string> AllSpecialTokens => _allSpecialTokens;
    /// <summary>The ids of <see cref="AllSpecialTokens"/>.</summary>
    public IReadOnlySet<int> AllSpecialIds => _allSpecialIds;
    /// <summary>unk/sep/pad/cls/mask and the additional special tokens (HF <c>special_tokens_map</c>).</summary>
    public SpecialTokens SpecialTokens => new(
        new Dictionary<string, string>
        {
            ["unk_token"] = UnkToken, ["sep_token"] = SepToken, ["pad_token"] = PadToken, ["cls_token"] = ClsToken, ["mask_token"] = MaskToken,
        },
        Options.AdditionalSpecialTokens ?? [], _allSpecialIds);

    /// <summary>Builds a tokenizer from the lines of vocab.txt (line index = id; a repeated token keeps its last id, as HF).</summary>
    public BertTokenizer(IReadOnlyList<string> vocab, BertTokenizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        Options = options ?? new BertTokenizerOptions();
        if (Options.MaxInputCharsPerWord < 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxInputCharsPerWord must be >= 0");

        _vocab = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        for (int i = 0; i < vocab.Count; i++) _vocab[vocab[i] ?? throw new ArgumentException($"vocab entry {i} is null", nameof(vocab))] = i;
        _idsToTokens = new Dictionary<int, string>(_vocab.Count);
        foreach (var (token, id) in _vocab) _idsToTokens[id] = token;

        // all_special_tokens: unk, sep, pad, cls, mask, additional — deduplicated, in that order.
        var specials = new List<string>();
        foreach (var t in new[] { Options.UnkToken, Options.SepToken, Options.PadToken, Options.ClsToken, Options.MaskToken }
                     .Concat(Options.AdditionalSpecialTokens ?? []))
        {
            if (string.IsNullOrEmpty(t)) throw new ArgumentException("special tokens must be non-empty strings", nameof(options));
            if (!specials.Contains(t)) specials.Add(t);
        }
        _allSpecialTokens = specials.ToArray();
        _allSpecialTokensSet = new HashSet<string>(specials, StringComparer.Ordinal);

        // Added tokens: the config's added_tokens_decoder, then every special token not yet added (its vocab id,
        // or a new id after the vocabulary when it has none), as PreTrainedTokenizer.__init__ does.
        _addedEncoder = new Dictionary<string, BertAddedToken>(StringComparer.Ordinal);
        _addedDecoder = new Dictionary<int, BertAddedToken>();
        foreach (var added in Options.AddedTokens ?? [])
        {
            if (string.IsNullOrEmpty(added.Content)) continue;
            var a = _allSpecialTokensSet.Contains(added.Content) && !added.Special ? added with { Special = true } : added;
            _addedEncoder[a.Content] = a;
            _addedDecoder[a.Id] = a;
        }
        int nextId = Math.Max(vocab.Count, _addedDecoder.Count == 0 ? 0 : _addedDecoder.Keys.Max() + 1);
        foreach (var t in specials)
        {
            if (_addedEncoder.ContainsKey(t)) continue;
            var a = new BertAddedToken(_vocab.TryGetValue(t, out int id) ? id : nextId++, t);
            _addedEncoder[t] = a;
            _addedDecoder[a.Id] = a;
        }

        _allSpecialIds = new HashSet<int>(specials.Select(ConvertTokenToId));
        _legacyAddedTokens = new HashSet<string>(_addedEncoder.Keys.Where(k => !_allSpecialTokensSet.Contains(k)), StringComparer.Ordinal);
        _lowerProtected = specials.Concat(_addedEncoder.Values.Where(a => !a.Special && a.Normalized).Select(a => a.Content))
            .Select(ToCodePoints).ToArray();
        _trieTokens = _addedEncoder.Values.Select(a => (ToCodePoints(a.Content), a))
            .OrderByDescending(t => t.Item1.Length).ToArray();

        if (Options.DoBasicTokenize)
            _basic = new BasicTokenizer(Options.DoLowerCase, Options.NeverSplit, Options.TokenizeChineseChars, Options.StripAccents);
        _wordPiece = new WordPieceTokenizer(_vocab, Options.UnkToken, Options.MaxInputCharsPerWord);
    }

    /// <summary>Loads vocab.txt plus the optional tokenizer_config.json and special_tokens_map.json of a model folder.</summary>
    public static BertTokenizer FromFolder(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new SharpFormerException($"model folder not found: {modelDir}");
        string vocabPath = Path.Combine(modelDir, "vocab.txt");
        if (!File.Exists(vocabPath)) throw new SharpFormerException($"vocab.txt not found in {modelDir} (a BERT tokenizer needs its WordPiece vocabulary)");
        var vocab = ReadVocabFile(vocabPath);

        var options = new BertTokenizerOptions();
        string configPath = Path.Combine(modelDir, "tokenizer_config.json");
        if (File.Exists(configPath)) options = ApplyConfig(options, configPath, isSpecialTokensMap: false);
        string mapPath = Path.Combine(modelDir, "special_tokens_map.json");
        if (File.Exists(mapPath)) options = ApplyConfig(options, mapPath, isSpecialTokensMap: true);
        try
        {
            return new BertTokenizer(vocab, options);
        }
        catch (ArgumentException e)
        {
            throw new SharpFormerException($"invalid tokenizer settings in {modelDir}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads vocab.txt as HF's <c>load_vocab</c>: UTF-8 (a BOM stays part of the first token), lines as Python's
    /// <c>readlines()</c> in universal-newline mode (\n, \r\n and a lone \r end a line; U+2028/U+0085 do not), and
    /// the line end removed. One token per line; the line index is the id.
    /// </summary>
    public static List<string> ReadVocabFile(string path)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(File.ReadAllBytes(path));
        }
        catch (DecoderFallbackException e)
        {
            throw new SharpFormerException($"{path} is not valid UTF-8: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new SharpFormerException($"cannot read {path}: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new SharpFormerException($"cannot read {path}: {e.Message}", e);
        }

        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c != '\n' && c != '\r') continue;
            lines.Add(text[start..i]);
            if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < text.Length) lines.Add(text[start..]);
        if (lines.Count == 0) throw new SharpFormerException($"{path} is empty (no WordPiece tokens)");
        return lines;
    }

    private static BertTokenizerOptions ApplyConfig(BertTokenizerOptions o, string path, bool isSpecialTokensMap)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(Utf8Text.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new SharpFormerException($"{path} is not valid JSON: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new SharpFormerException($"cannot read {path}: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new SharpFormerException($"{path} must hold a JSON object");

            string? Token(string name)
            {
                if (!root.TryGetProperty(name, out var v)) return null;
                return v.ValueKind switch
                {
                    JsonValueKind.String => v.GetString(),
                    JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
                    JsonValueKind.Null => null,
                    _ => throw new SharpFormerException($"{path}: \"{name}\" must be a string or an object with \"content\""),
                };
            }
            bool? Bool(string name)
            {
                if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                return v.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new SharpFormerException($"{path}: \"{name}\" must be true, false or null"),
                };
            }
            List<string>? StringList(string name)
            {
                if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                if (v.ValueKind != JsonValueKind.Array) throw new SharpFormerException($"{path}: \"{name}\" must be a list");
                var list = new List<string>();
                foreach (var e in v.EnumerateArray())
                {
                    if (e.ValueKind == JsonValueKind.String) list.Add(e.GetString()!);
                    else if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) list.Add(c.GetString()!);
                    else throw new SharpFormerException($"{path}: \"{name}\" must hold strings");
                }
                return list;
            }

            o = o with
            {
                UnkToken = Token("unk_token") ?? o.UnkToken,
                SepToken = Token("sep_token") ?? o.SepToken,
                PadToken = Token("pad_token") ?? o.PadToken,
                ClsToken = Token("cls_token") ?? o.ClsToken,
                MaskToken = Token("mask_token") ?? o.MaskToken,
                AdditionalSpecialTokens = StringList("additional_special_tokens") ?? o.AdditionalSpecialTokens,
            };
            if (isSpecialTokensMap) return o;

            o = o with
            {
                DoLowerCase = Bool("do_lower_case") ?? o.DoLowerCase,
                DoBasicTokenize = Bool("do_basic_tokenize") ?? o.DoBasicTokenize,
                TokenizeChineseChars = Bool("tokenize_chinese_chars") ?? o.TokenizeChineseChars,
                StripAccents = root.TryGetProperty("strip_accents", out _) ? Bool("strip_accents") : o.StripAccents,
                NeverSplit = StringList("never_split") ?? o.NeverSplit,
                CleanUpTokenizationSpaces = Bool("clean_up_tokenization_spaces") ?? o.CleanUpTokenizationSpaces,
                TruncationSide = root.TryGetProperty("truncation_side", out var ts) ? TruncationSides.Parse(ts.ValueKind == JsonValueKind.String ? ts.GetString() : ts.ToString(), path) : o.TruncationSide,
            };
            if (root.TryGetProperty("model_max_length", out var mml) && mml.ValueKind == JsonValueKind.Number)
            {
                // HF writes VERY_LARGE_INTEGER (1e30) for "no limit".
                double d = mml.GetDouble();
                o = o with { ModelMaxLength = d >= 1 && d <= int.MaxValue ? (int)d : null };
            }
            if (root.TryGetProperty("added_tokens_decoder", out var atd) && atd.ValueKind == JsonValueKind.Object)
            {
                var added = new List<BertAddedToken>();
                foreach (var p in atd.EnumerateObject())
                {
                    if (!int.TryParse(p.Name, out int id) || p.Value.ValueKind != JsonValueKind.Object ||
                        !p.Value.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                        throw new SharpFormerException($"{path}: added_tokens_decoder entry \"{p.Name}\" must map an integer id to an object with \"content\"");
                    bool Flag(string name, bool dflt) =>
                        p.Value.TryGetProperty(name, out var f) && f.ValueKind is JsonValueKind.True or JsonValueKind.False ? f.GetBoolean() : dflt;
                    bool special = Flag("special", false);
                    added.Add(new BertAddedToken(id, content.GetString()!, special, Flag("lstrip", false), Flag("rstrip", false), Flag("normalized", !special)));
                }
                o = o with { AddedTokens = added };
            }
            return o;
        }
    }

    // ------------------------------------------------------------------ tokenize

    /// <inheritdoc/>
    public IReadOnlyList<string> Tokenize(string text) => TokenizeToPieces(text).Select(p => p.Token).ToList();

    /// <summary><see cref="Tokenize"/> with every token's [start, end) UTF-16 span in <paramref name="text"/> (see the class remarks).</summary>
    public IReadOnlyList<(string Token, int Start, int End)> TokenizeWithOffsets(string text) =>
        TokenizeToPieces(text).Select(p => (p.Token, p.Start, p.End)).ToList();

    internal List<WordPiece> TokenizeToPieces(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = BasicTokenizer.Decode(text);

        // PreTrainedTokenizer.tokenize: re.sub(r"(special|...)|(.+?)", keep special / lower one character) when do_lower_case.
        if (DoLowerCase)
        {
            var lowered = new List<TrackedChar>(chars.Count + 4);
            for (int i = 0; i < chars.Count;)
            {
                int matched = 0;
                foreach (var tok in _lowerProtected)
                {
                    if (MatchesAt(chars, i, tok)) { matched = tok.Length; break; }
                }
                if (matched > 0)
                {
                    for (int k = 0; k < matched; k++) lowered.Add(chars[i + k]);
                    i += matched;
                }
                else
                {
                    PyUnicode14.AppendLower(chars[i], lowered);
                    i++;
                }
            }
            chars = lowered;
        }

        // tokens_trie.split: leftmost, longest added token.
        var segments = new List<(List<TrackedChar> Chars, BertAddedToken? Added)>();
        int segStart = 0;
        for (int i = 0; i < chars.Count;)
        {
            BertAddedToken? hit = null;
            int len = 0;
            foreach (var (cps, tok) in _trieTokens)
            {
                if (MatchesAt(chars, i, cps)) { hit = tok; len = cps.Length; break; }
            }
            if (hit is null) { i++; continue; }
            if (i > segStart) segments.Add((chars.GetRange(segStart, i - segStart), null));
            segments.Add((chars.GetRange(i, len), hit));
            i += len;
            segStart = i;
        }
        if (segStart < chars.Count) segments.Add((chars.GetRange(segStart, chars.Count - segStart), null));

        // lstrip / rstrip of added tokens eat the neighbouring whitespace (Python str.lstrip()/rstrip()).
        for (int i = 0; i < segments.Count; i++)
        {
            var added = segments[i].Added;
            if (added is null) continue;
            if (added.RStrip && i + 1 < segments.Count && segments[i + 1].Added is null)
            {
                var right = segments[i + 1].Chars;
                int k = 0;
                while (k < right.Count && PyUnicode14.IsPythonSpace(right[k].Cp)) k++;
                right.RemoveRange(0, k);
            }
            if (added.LStrip && i > 0 && segments[i - 1].Added is null)
            {
                var left = segments[i - 1].Chars;
                int k = left.Count;
                while (k > 0 && PyUnicode14.IsPythonSpace(left[k - 1].Cp)) k--;
                left.RemoveRange(k, left.Count - k);
            }
        }

        var output = new List<WordPiece>();
        foreach (var (segChars, added) in segments)
        {
            if (segChars.Count == 0) continue;
            if (added is not null)
            {
                output.Add(new WordPiece(added.Content, segChars.Min(c => c.Start), segChars.Max(c => c.End)));
                continue;
            }
            if (_basic is not null)
            {
                foreach (var word in _basic.Tokenize(segChars, _allSpecialTokensSet))
                {
                    if (_basic.NeverSplit.Contains(word.Text)) output.Add(new WordPiece(word.Text, word.Start, word.End));
                    else _wordPiece.Tokenize(word, output);
                }
            }
            else
            {
                var sb = new StringBuilder();
                foreach (var w in BasicTokenizer.SplitOnPythonSpace(segChars))
                    _wordPiece.Tokenize(new BasicToken(BasicTokenizer.ToText(w, sb), w.ToArray()), output);
            }
        }
        return output;
    }

    private static bool MatchesAt(List<TrackedChar> chars, int i, int[] cps)
    {
        if (cps.Length == 0 || i + cps.Length > chars.Count) return false;
        for (int k = 0; k < cps.Length; k++)
            if (chars[i + k].Cp != cps[k]) return false;
        return true;
    }

    private static int[] ToCodePoints(string s) => BasicTokenizer.Decode(s).Select(c => c.Cp).ToArray();

    // ------------------------------------------------------------------ ids

    /// <summary>HF <c>convert_tokens_to_ids</c> for one token: added tokens, then the vocabulary, else the unknown token's id.</summary>
    public int ConvertTokenToId(string token)
    {
        if (_addedEncoder.TryGetValue(token, out var a)) return a.Id;
        if (_vocab.TryGetValue(token, out int id)) return id;
        if (_addedEncoder.TryGetValue(Options.UnkToken, out var unk)) return unk.Id;
        return _vocab.TryGetValue(Options.UnkToken, out int u) ? u : throw new SharpFormerException($"the unknown token {Options.UnkToken} is not in the vocabulary");
    }

    /// <inheritdoc/>
    public int? TokenToId(string token)
    {
        if (_addedEncoder.TryGetValue(token, out var a)) return a.Id;
        return _vocab.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>HF <c>convert_ids_to_tokens</c> for one id: added tokens, then the vocabulary, else the unknown token.</summary>
    public string IdToToken(int id)
    {
        if (_addedDecoder.TryGetValue(id, out var a)) return a.Content;
        return _idsToTokens.TryGetValue(id, out var t) ? t : Options.UnkToken;
    }

    /// <summary>HF <c>convert_ids_to_tokens</c>; special tokens dropped when <paramref name="skipSpecialTokens"/>.</summary>
    public IReadOnlyList<string> ConvertIdsToTokens(IEnumerable<int> ids, bool skipSpecialTokens = false) =>
        ids.Where(id => !(skipSpecialTokens && _allSpecialIds.Contains(id))).Select(IdToToken).ToList();

    // ------------------------------------------------------------------ encode

    /// <inheritdoc/>
    public Encoding Encode(string text, string? pair = null, int? maxLength = null, TruncationStrategy truncation = TruncationStrategy.LongestFirst)
    {
        var a = TokenizeToPieces(text);
        var b = pair is null ? null : TokenizeToPieces(pair);
        int lenA = a.Count, lenB = b?.Count ?? 0;
        Truncate(ref lenA, ref lenB, b is not null, maxLength, truncation);
        int startA = Options.TruncationSide.KeptStart(a.Count, lenA), startB = Options.TruncationSide.KeptStart(b?.Count ?? 0, lenB);

        int total = lenA + 2 + (b is null ? 0 : lenB + 1);
        var ids = new int[total];
        var types = new int[total];
        var mask = new int[total];
        var tokens = new string[total];
        var offsets = new (int, int)[total];
        int n = 0;
        void Add(int id, int type, (int, int) span)
        {
            ids[n] = id;
            types[n] = type;
            mask[n] = 1;
            tokens[n] = IdToToken(id);
            offsets[n] = span;
            n++;
        }
        Add(ClsTokenId, 0, (0, 0));
        for (int i = startA; i < startA + lenA; i++) Add(ConvertTokenToId(a[i].Token), 0, (a[i].Start, a[i].End));
        Add(SepTokenId, 0, (0, 0));
        if (b is not null)
        {
            for (int i = startB; i < startB + lenB; i++) Add(ConvertTokenToId(b[i].Token), 1, (b[i].Start, b[i].End));
            Add(SepTokenId, 1, (0, 0));
        }
        return new Encoding(ids, types, mask, tokens, offsets);
    }

    /// <summary>
    /// HF 4.40 <c>truncate_sequences</c> (no stride; the side is applied by the caller) when <c>max_length</c> is truthy and the
    /// total with special tokens exceeds it. Where HF only logs an error (the first / second sequence is too short
    /// to lose enough tokens) the input stays untruncated, as in HF.
    /// </summary>
    private static void Truncate(ref int lenA, ref int lenB, bool hasPair, int? maxLength, TruncationStrategy strategy)
    {
        if (maxLength is not int max || max == 0) return;
        if (max < 0) throw new ArgumentOutOfRangeException(nameof(maxLength), "maxLength must be positive");
        int total = lenA + lenB + (hasPair ? 3 : 2);
        if (total <= max) return;
        int remove = total - max;
        if (strategy == TruncationStrategy.OnlyFirst || (strategy == TruncationStrategy.LongestFirst && !hasPair))
        {
            if (lenA > remove) lenA -= remove;
        }
        else if (strategy == TruncationStrategy.LongestFirst)
        {
            for (int i = 0; i < remove; i++)
            {
                if (lenA > lenB) lenA--;
                else if (lenB > 0) lenB--;
            }
        }
        else if (strategy == TruncationStrategy.OnlySecond && hasPair)
        {
            if (lenB > remove) lenB -= remove;
        }
    }

    /// <summary>
    /// Encodes every text (truncated to <paramref name="maxLength"/> like <c>truncation=True</c>) and, when
    /// <paramref name="padToLongest"/>, right-pads to the longest with the pad id, attention 0, type 0, offsets (0, 0)
    /// — HF's <c>tok(texts, padding=True, truncation=True, max_length=…)</c>.
    /// </summary>
    public IReadOnlyList<Encoding> EncodeBatch(IReadOnlyList<string> texts, int? maxLength = null, bool padToLongest = true)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var encodings = new Encoding[texts.Count];
        for (int i = 0; i < texts.Count; i++) encodings[i] = Encode(texts[i], null, maxLength);
        if (!padToLongest || encodings.Length == 0) return encodings;
        int longest = encodings.Max(e => e.Length);
        int padId = PadTokenId;
        string padToken = IdToToken(padId);
        for (int i = 0; i < encodings.Length; i++)
        {
            var e = encodings[i];
            int pad = longest - e.Length;
            if (pad == 0) continue;
            encodings[i] = new Encoding(
                [.. e.InputIds, .. Enumerable.Repeat(padId, pad)],
                [.. e.TokenTypeIds, .. Enumerable.Repeat(0, pad)],
                [.. e.AttentionMask, .. Enumerable.Repeat(0, pad)],
                [.. e.Tokens, .. Enumerable.Repeat(padToken, pad)],
                [.. e.Offsets, .. Enumerable.Repeat((0, 0), pad)]);
        }
        return encodings;
    }

    // ------------------------------------------------------------------ decode

    /// <summary>
    /// HF 4.40 <c>decode</c>: ids → tokens (special ids dropped when <paramref name="skipSpecialTokens"/>), joined with
    /// spaces with " ##" removed and Python-stripped, then (by default) <c>clean_up_tokenization</c>.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var subTexts = new List<string>();
        var current = new List<string>();
        foreach (int id in ids)
        {
            if (skipSpecialTokens && _allSpecialIds.Contains(id)) continue;
            string token = IdToToken(id);
            if (_legacyAddedTokens.Contains(token))
            {
                if (current.Count > 0)
                {
                    string s = ConvertTokensToString(current);
                    if (s.Length > 0) subTexts.Add(s);
                    current.Clear();
                }
                subTexts.Add(token);
            }
            else
            {
                current.Add(token);
            }
        }
        if (current.Count > 0) subTexts.Add(ConvertTokensToString(current));
        string text = string.Join(" ", subTexts);
        return Options.CleanUpTokenizationSpaces ? CleanUpTokenization(text) : text;
    }

    /// <summary>The word pieces' ids without [CLS]/[SEP] (what <c>uer/gpt2-chinese-*</c> models are fed when generating).</summary>
    public int[] EncodeForCausalLm(string text) => TokenizeToPieces(text).Select(p => ConvertTokenToId(p.Token)).ToArray();

    /// <summary>
    /// Text of generated ids. WordPiece decoding puts a space between every token (HuggingFace's BertTokenizer does
    /// too, so uer/gpt2-chinese output reads "床 前 明 月"); a space touching a CJK character is such an artefact and is dropped.
    /// </summary>
    public string DecodeForCausalLm(IEnumerable<int> ids)
    {
        var text = Decode(ids, skipSpecialTokens: true);
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == ' ' && ((sb.Length > 0 && IsCjkBefore(sb)) || (i + 1 < text.Length && IsCjkAt(text, i + 1)))) continue;
            sb.Append(text[i]);
        }
        return sb.ToString();

        static bool IsCjkAt(string s, int i) => Rune.TryGetRuneAt(s, i, out var r) && PyUnicode14.IsChineseChar(r.Value);
        static bool IsCjkBefore(StringBuilder sb)
        {
            int i = sb.Length - 1;
            if (char.IsLowSurrogate(sb[i]) && i > 0) i--;
            return IsCjkAt(sb.ToString(i, sb.Length - i), 0);
        }
    }

    /// <summary>A streaming decoder that re-decodes and emits the growth (WordPiece tokens are whole characters).</summary>
    public ITokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = true) => new RedecodeStreamDecoder(this);

    /// <summary>HF <c>convert_tokens_to_string</c>: <c>" ".join(tokens).replace(" ##", "").strip()</c>.</summary>
    public static string ConvertTokensToString(IEnumerable<string> tokens) =>
        PythonStrip(string.Join(" ", tokens).Replace(" ##", "", StringComparison.Ordinal));

    /// <summary>HF <c>clean_up_tokenization</c>.</summary>
    public static string CleanUpTokenization(string text) => text
        .Replace(" .", ".", StringComparison.Ordinal)
        .Replace(" ?", "?", StringComparison.Ordinal)
        .Replace(" !", "!", StringComparison.Ordinal)
        .Replace(" ,", ",", StringComparison.Ordinal)
        .Replace(" ' ", "'", StringComparison.Ordinal)
        .Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal)
        .Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal)
        .Replace(" 're", "'re", StringComparison.Ordinal);

    private static string PythonStrip(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && PyUnicode14.IsPythonSpace(s[start])) start++;
        while (end > start && PyUnicode14.IsPythonSpace(s[end - 1])) end--;
        return start == 0 && end == s.Length ? s : s[start..end];
    }
}
