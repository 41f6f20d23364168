using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpFormer.Tokenizers;

/// <summary>
/// Reads HuggingFace <c>tokenizers</c>' <c>tokenizer.json</c> (the "fast" tokenizer file of Qwen2, Llama 3, GPT-2 …)
/// into a <see cref="PipelineTokenizer"/>. Supported: normalizers NFC/NFD (not NFKC/NFKD: no compatibility tables), Lowercase, Strip, StripAccents,
/// Replace, Prepend, Sequence; pre-tokenizers Split (String or Regex pattern, every behaviour, invert), ByteLevel,
/// Digits, Sequence; the BPE model (merges as "a b" strings or [a, b] pairs, ignore_merges); added tokens with their
/// flags; post-processors TemplateProcessing, ByteLevel, Sequence; decoders ByteLevel, Sequence. Anything else is
/// a one-line error naming the component — never a silent fallback.
/// </summary>
public static class TokenizerJson
{
    /// <summary>Loads <c>dir/tokenizer.json</c> with the folder's tokenizer_config.json / special_tokens_map.json.</summary>
    public static PipelineTokenizer FromFolder(string dir) => Load(dir, TokenizerDefaults.Generic, null);

    internal static PipelineTokenizer Load(string dir, TokenizerDefaults defaults, string? className)
    {
        string path = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(path)) throw new SharpFormerException($"{dir}: no tokenizer.json");
        var config = TokenizerConfig.Read(dir);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(Utf8Text.ReadAllBytes(path)); }
        catch (JsonException e) { throw new SharpFormerException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new SharpFormerException($"{path}: not a JSON object");
            var reader = new Reader(path);
            var parts = reader.Parts(root);
            string kind = $"{className ?? config.String("tokenizer_class") ?? "PreTrainedTokenizerFast"} (byte-level BPE, tokenizer.json)";
            return new PipelineTokenizer(kind, parts, config, defaults);
        }
    }

    sealed class Reader(string path)
    {
        SharpFormerException Error(string message) => new($"{path}: {message}");

        static JsonElement? Get(JsonElement o, string name) =>
            o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        bool Bool(JsonElement o, string name, bool dflt) => Get(o, name) is { } v
            ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Error($"\"{name}\" must be true or false")
            : dflt;

        string Str(JsonElement o, string name, string what) => Get(o, name) is { ValueKind: JsonValueKind.String } v
            ? v.GetString()! : throw Error($"{what} has no string \"{name}\"");

        string TypeOf(JsonElement o, string what) => o.ValueKind == JsonValueKind.Object && Get(o, "type") is { ValueKind: JsonValueKind.String } t
            ? t.GetString()! : throw Error($"{what} has no \"type\"");

        IEnumerable<JsonElement> Array(JsonElement o, string name, string what) => Get(o, name) is { ValueKind: JsonValueKind.Array } a
            ? a.EnumerateArray() : throw Error($"{what} has no \"{name}\" list");

        public PipelineParts Parts(JsonElement root)
        {
            var normalizer = Get(root, "normalizer") is { } n ? Normalizer(n) : null;
            var (preTokenizer, byteLevel) = Get(root, "pre_tokenizer") is { } p ? PreTokenizer(p) : (null, false);
            if (!byteLevel) throw Error("only byte-level BPE is supported: the pre_tokenizer has no ByteLevel step");
            if (!(Get(root, "decoder") is { } d && Decoder(d)))
                throw Error("only byte-level BPE is supported: the decoder is not ByteLevel");
            var template = Get(root, "post_processor") is { } pp ? PostProcessor(pp) : null;
            var added = Get(root, "added_tokens") is { ValueKind: JsonValueKind.Array } at
                ? at.EnumerateArray().Select(t => AddedToken.FromJson(System.Text.Json.Nodes.JsonNode.Parse(t.GetRawText())!.AsObject(),
                    Get(t, "id") is { ValueKind: JsonValueKind.Number } id ? id.GetInt32() : throw Error("an added token has no id"),
                    Str(t, "content", "an added token"))).ToArray()
                : [];
            var model = Get(root, "model") is { } m ? Model(m) : throw Error("no \"model\"");
            return new PipelineParts(normalizer, preTokenizer!, model, added, template, SecondTypeId: 0);
        }

        Func<string, string> Normalizer(JsonElement n)
        {
            string type = TypeOf(n, "normalizer");
            switch (type)
            {
                case "NFC": return Normalizers.Nfc;
                case "NFD": return Normalizers.Nfd;
                case "Lowercase": return s => s.ToLowerInvariant();
                case "StripAccents":
                    return s => string.Concat(s.EnumerateRunes().Where(r => !PyUnicode14.IsNonSpacingMark(r.Value)));
                case "Strip":
                    bool left = Bool(n, "strip_left", true), right = Bool(n, "strip_right", true);
                    return s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s;
                case "Prepend":
                    string prefix = Str(n, "prepend", "the Prepend normalizer");
                    return s => s.Length == 0 ? s : prefix + s;
                case "Replace":
                    var regex = Pattern(n, "the Replace normalizer");
                    string content = Str(n, "content", "the Replace normalizer");
                    return s => regex.Replace(s, content.Replace("$", "$$"));
                case "Sequence":
                    var steps = Array(n, "normalizers", "the Sequence normalizer").Select(Normalizer).ToArray();
                    return s => steps.Aggregate(s, (acc, f) => f(acc));
                default:
                    throw Error($"normalizer type '{type}' is not supported");
            }
        }

        Regex Pattern(JsonElement o, string what)
        {
            var p = Get(o, "pattern") ?? throw Error($"{what} has no \"pattern\"");
            try
            {
                if (Get(p, "String") is { ValueKind: JsonValueKind.String } s) return new Regex(Regex.Escape(s.GetString()!), RegexOptions.CultureInvariant);
                if (Get(p, "Regex") is { ValueKind: JsonValueKind.String } r) return new Regex(CodePointRegex.TranslatePossessive(r.GetString()!), RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e) { throw Error($"{what}: pattern not supported ({e.Message.Split('\n')[0]})"); }
            throw Error($"{what}: pattern must be {{\"String\": …}} or {{\"Regex\": …}}");
        }

        CodePointRegex SplitPattern(JsonElement o)
        {
            var p = Get(o, "pattern") ?? throw Error("the Split pre_tokenizer has no \"pattern\"");
            if (Get(p, "String") is { ValueKind: JsonValueKind.String } s) return new CodePointRegex(Regex.Escape(s.GetString()!), $"{path}: Split");
            if (Get(p, "Regex") is { ValueKind: JsonValueKind.String } r) return new CodePointRegex(r.GetString()!, $"{path}: Split");
            throw Error("the Split pre_tokenizer's pattern must be {\"String\": …} or {\"Regex\": …}");
        }

        /// <summary>A pre-tokenizer and whether it ends with ByteLevel (which must come last).</summary>
        (PreTokenizer Step, bool ByteLevel) PreTokenizer(JsonElement p)
        {
            string type = TypeOf(p, "pre_tokenizer");
            switch (type)
            {
                case "Split":
                    var behavior = Str(p, "behavior", "the Split pre_tokenizer") switch
                    {
                        "Removed" => SplitBehavior.Removed,
                        "Isolated" => SplitBehavior.Isolated,
                        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
                        "MergedWithNext" => SplitBehavior.MergedWithNext,
                        "Contiguous" => SplitBehavior.Contiguous,
                        var b => throw Error($"Split behavior '{b}' is not supported"),
                    };
                    return (new SplitPreTokenizer(SplitPattern(p), behavior, Bool(p, "invert", false)), false);
                case "Digits":
                    return (new SplitPreTokenizer(new CodePointRegex(@"\p{N}", "Digits"),
                        Bool(p, "individual_digits", false) ? SplitBehavior.Isolated : SplitBehavior.Contiguous, false), false);
                case "ByteLevel":
                    return (new ByteLevelPreTokenizer(Bool(p, "add_prefix_space", true), Bool(p, "use_regex", true)), true);
                case "Sequence":
                    var steps = Array(p, "pretokenizers", "the Sequence pre_tokenizer").Select(PreTokenizer).ToArray();
                    for (int i = 0; i + 1 < steps.Length; i++)
                        if (steps[i].ByteLevel) throw Error("a pre_tokenizer after ByteLevel is not supported");
                    return (new SequencePreTokenizer(steps.Select(s => s.Step).ToArray()), steps.Length > 0 && steps[^1].ByteLevel);
                default:
                    throw Error($"pre_tokenizer type '{type}' is not supported");
            }
        }

        /// <summary>True when the decoder is ByteLevel (alone or in a Sequence); anything else is refused.</summary>
        bool Decoder(JsonElement d)
        {
            string type = TypeOf(d, "decoder");
            return type switch
            {
                "ByteLevel" => true,
                "Sequence" => Array(d, "decoders", "the Sequence decoder").Select(Decoder).ToArray() is var all && all.Length > 0 && all.All(x => x),
                _ => throw Error($"decoder type '{type}' is not supported"),
            };
        }

        /// <summary>The template of TemplateProcessing (ByteLevel adds nothing; a Sequence may hold one template).</summary>
        TemplateProcessor? PostProcessor(JsonElement p)
        {
            string type = TypeOf(p, "post_processor");
            switch (type)
            {
                case "ByteLevel": return null;
                case "Sequence":
                    var templates = Array(p, "processors", "the Sequence post_processor").Select(PostProcessor).OfType<TemplateProcessor>().ToArray();
                    return templates.Length switch
                    {
                        0 => null,
                        1 => templates[0],
                        _ => throw Error("a post_processor Sequence with several TemplateProcessing steps is not supported"),
                    };
                case "TemplateProcessing":
                    var specials = new Dictionary<string, (int[], string[])>(StringComparer.Ordinal);
                    if (Get(p, "special_tokens") is { ValueKind: JsonValueKind.Object } st)
                        foreach (var e in st.EnumerateObject())
                            specials[e.Name] = (Array(e.Value, "ids", $"special token {e.Name}").Select(i => i.GetInt32()).ToArray(),
                                                Array(e.Value, "tokens", $"special token {e.Name}").Select(i => i.GetString()!).ToArray());
                    TemplateItem Item(JsonElement i)
                    {
                        if (Get(i, "SpecialToken") is { } s)
                        {
                            string id = Str(s, "id", "a template item");
                            if (!specials.ContainsKey(id)) throw Error($"TemplateProcessing uses special token '{id}' that special_tokens does not define");
                            return new TemplateItem(id, false, Get(s, "type_id")?.GetInt32() ?? 0);
                        }
                        if (Get(i, "Sequence") is { } q)
                            return new TemplateItem(null, Str(q, "id", "a template item") == "B", Get(q, "type_id")?.GetInt32() ?? 0);
                        throw Error("a TemplateProcessing item must be SpecialToken or Sequence");
                    }
                    return new TemplateProcessor(Array(p, "single", "TemplateProcessing").Select(Item).ToArray(),
                                                 Array(p, "pair", "TemplateProcessing").Select(Item).ToArray(), specials);
                default:
                    throw Error($"post_processor type '{type}' is not supported");
            }
        }

        BpeModel Model(JsonElement m)
        {
            string type = TypeOf(m, "model");
            if (type != "BPE") throw Error($"model type '{type}' is not supported");
            if (Bool(m, "byte_fallback", false)) throw Error("BPE byte_fallback is not supported");
            if (Get(m, "dropout") is { ValueKind: JsonValueKind.Number } dr && dr.GetDouble() != 0) throw Error("BPE dropout is not supported");
            foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
                if (Get(m, affix) is { ValueKind: JsonValueKind.String } a && a.GetString()!.Length > 0) throw Error($"BPE {affix} is not supported");
            if (Get(m, "unk_token") is { ValueKind: JsonValueKind.String }) throw Error("BPE unk_token is not supported (a byte-level vocabulary needs none)");
            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            if (Get(m, "vocab") is not { ValueKind: JsonValueKind.Object } v) throw Error("the BPE model has no \"vocab\" object");
            foreach (var e in v.EnumerateObject())
                vocab[e.Name] = e.Value.TryGetInt32(out int id) ? id : throw Error($"the id of \"{e.Name}\" is not an integer");
            var merges = new List<(string, string)>();
            int rank = 0;
            foreach (var e in Array(m, "merges", "the BPE model"))
            {
                if (e.ValueKind == JsonValueKind.String)
                {
                    var pair = e.GetString()!.Split(' ');
                    merges.Add(pair.Length == 2 ? (pair[0], pair[1]) : throw Error($"merge {rank} \"{e.GetString()}\" is not two tokens separated by a space"));
                }
                else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2 && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String)
                    merges.Add((e[0].GetString()!, e[1].GetString()!));
                else throw Error($"merge {rank} is neither \"a b\" nor [\"a\", \"b\"]");
                rank++;
            }
            return new BpeModel(vocab, merges, Bool(m, "ignore_merges", false), path);
        }
    }
}
