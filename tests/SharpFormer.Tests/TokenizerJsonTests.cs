using System.Globalization;
using System.Text.Json.Nodes;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>tokenizer.json components beyond Qwen2's file: refusals, TemplateProcessing, merge formats, Split behaviours, regex translation.</summary>
public class TokenizerJsonTests
{
    static readonly Lazy<JsonObject> Qwen2Json = new(() => JsonNode.Parse(File.ReadAllText(SharedPaths.Fixture("qwen2-tiny", "tokenizer.json")))!.AsObject());

    /// <summary>A folder with <paramref name="json"/> as tokenizer.json (and no tokenizer_config.json).</summary>
    static string Folder(JsonObject json)
    {
        var dir = Directory.CreateTempSubdirectory("sf-tokjson-").FullName;
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        return dir;
    }

    /// <summary>Qwen2's tokenizer.json with one component replaced.</summary>
    static JsonObject Qwen2With(string key, JsonNode? value)
    {
        var copy = Qwen2Json.Value.DeepClone().AsObject();
        copy[key] = value;
        return copy;
    }

    public static TheoryData<string, string, string> UnknownComponents() => new()
    {
        { "pre_tokenizer", """{"type": "Metaspace", "replacement": "▁"}""", "pre_tokenizer type 'Metaspace' is not supported" },
        { "normalizer", """{"type": "Precompiled", "precompiled_charsmap": ""}""", "normalizer type 'Precompiled' is not supported" },
        { "normalizer", """{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "NFKC"}]}""", "normalizer type 'NFKC' is not supported" },
        { "decoder", """{"type": "WordPiece", "prefix": "##"}""", "decoder type 'WordPiece' is not supported" },
        { "post_processor", """{"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]}""", "post_processor type 'BertProcessing' is not supported" },
        { "model", """{"type": "WordPiece", "vocab": {}}""", "model type 'WordPiece' is not supported" },
        { "pre_tokenizer", """{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways", "invert": false}""", "Split behavior 'Sideways' is not supported" },
        { "pre_tokenizer", """{"type": "Split", "pattern": {"Regex": "(?<=a"}, "behavior": "Isolated", "invert": false}""", "Split: regex (?<=a is not supported" },
        { "pre_tokenizer", """{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Isolated", "invert": false}""", "only byte-level BPE is supported" },
    };

    [Theory]
    [MemberData(nameof(UnknownComponents))]
    public void UnknownComponentIsAOneLineError(string key, string component, string message)
    {
        var dir = Folder(Qwen2With(key, JsonNode.Parse(component)));
        try
        {
            var e = Assert.Throws<SharpFormerException>(() => AutoTokenizer.FromFolder(dir));
            Assert.Contains("tokenizer.json: " + message, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ByteFallbackIsRefused()
    {
        var json = Qwen2With("model", null);
        var model = Qwen2Json.Value["model"]!.DeepClone().AsObject();
        model["byte_fallback"] = true;
        json["model"] = model;
        var dir = Folder(json);
        try { Assert.Contains("tokenizer.json: BPE byte_fallback is not supported", Assert.Throws<SharpFormerException>(() => AutoTokenizer.FromFolder(dir)).Message); }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// A Llama-3-shaped file on a tiny vocabulary: the 256 byte symbols, merges given as [a, b] pairs, a BOS added by
    /// TemplateProcessing, ignore_merges, ByteLevel with add_prefix_space and use_regex.
    /// </summary>
    static PipelineTokenizer Tiny(bool ignoreMerges)
    {
        var vocab = new JsonObject();
        foreach (var (token, id) in Qwen2Json.Value["model"]!["vocab"]!.AsObject())
            if (id!.GetValue<int>() < 256) vocab[token] = id.GetValue<int>();
        string[] extra = ["Ġh", "el", "Ġhel", "lo", "Ġhello", "Ġworld"];                // "Ġworld": no merges make it
        for (int i = 0; i < extra.Length; i++) vocab[extra[i]] = 256 + i;
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 300, ["content"] = "<|begin_of_text|>", ["special"] = true, ["normalized"] = false }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = JsonNode.Parse("""{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"""),
            ["post_processor"] = JsonNode.Parse("""
                {"type": "Sequence", "processors": [
                  {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
                  {"type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                   "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                            {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                   "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [300], "tokens": ["<|begin_of_text|>"]}}}]}
                """),
            ["decoder"] = JsonNode.Parse("""{"type": "Sequence", "decoders": [{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}]}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["byte_fallback"] = false, ["ignore_merges"] = ignoreMerges,
                ["vocab"] = vocab,
                ["merges"] = JsonNode.Parse("""[["Ġ", "h"], ["e", "l"], ["Ġh", "el"], ["l", "o"], ["Ġhel", "lo"]]"""),
            },
        };
        var dir = Folder(json);
        try { return Assert.IsType<PipelineTokenizer>(AutoTokenizer.FromFolder(dir)); }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TemplateProcessingAddsBosAndPrefixSpaceApplies()
    {
        var tok = Tiny(ignoreMerges: false);
        Assert.Equal(["Ġhello"], tok.Tokenize("hello"));                            // the prefix space, then the merges
        var enc = tok.Encode("hello", "hello");
        Assert.Equal([300, 260, 300, 260], enc.InputIds);
        Assert.Equal([0, 0, 1, 1], enc.TokenTypeIds);
        Assert.Equal([300, 260], tok.EncodeForCausalLm("hello"));
        Assert.Equal([260], tok.EncodeIds("hello", addSpecialTokens: false));
        Assert.Equal([300], tok.Encode("hello hello", maxLength: 1).InputIds);           // truncation keeps room for the BOS
        Assert.Equal(" hello", tok.Decode([300, 260], skipSpecialTokens: true));
        Assert.Equal("<|begin_of_text|> hello", tok.Decode([300, 260]));
        Assert.Equal([300, 260], tok.Tokenize("<|begin_of_text|>hello").Select(t => tok.TokenToId(t)!.Value));   // the added token, then " hello"
    }

    [Fact]
    public void IgnoreMergesTakesAWordInTheVocabularyWhole()
    {
        Assert.Equal(["Ġ", "w", "o", "r", "l", "d"], Tiny(ignoreMerges: false).Tokenize("world"));
        Assert.Equal(["Ġworld"], Tiny(ignoreMerges: true).Tokenize("world"));
    }

    [Theory]
    [InlineData("Removed", false, "a|b|c")]
    [InlineData("Isolated", false, "a|-|b|-|-|c")]
    [InlineData("MergedWithPrevious", false, "a-|b-|-|c")]
    [InlineData("MergedWithNext", false, "a|-b|-|-c")]
    [InlineData("Contiguous", false, "a|-|b|--|c")]
    [InlineData("Removed", true, "-|-|-")]
    public void SplitBehavioursMatchTokenizers(string behavior, bool invert, string expected)
    {
        // tokenizers' documented example shapes ("the-final--countdown").
        var pieces = new List<Piece> { new("a-b--c", 0, 6) };
        new SplitPreTokenizer(new CodePointRegex("-", "test"), Enum.Parse<SplitBehavior>(behavior), invert).Apply(pieces);
        Assert.Equal(expected, string.Join('|', pieces.Select(p => p.Text)));
        Assert.All(pieces, p => Assert.Equal(p.Text, "a-b--c"[p.Start..p.End]));
    }

    [Fact]
    public void CharactersOutsideTheBmpMatchAsTheirCategory()
    {
        var matches = new List<(int, int)>();
        new CodePointRegex(Qwen2Tokenizer.Pattern, "test").Matches("a𠀀b 𝟘1", matches);      // 𠀀 is Lo, 𝟘 (U+1D7D8) Nd
        Assert.Equal([(0, 4), (4, 5), (5, 7), (7, 8)], matches);
        foreach (UnicodeCategory c in Enum.GetValues<UnicodeCategory>())
        {
            if (c is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                  or UnicodeCategory.Control or UnicodeCategory.Surrogate) continue;      // none outside the BMP
            Assert.Equal(c, CharUnicodeInfo.GetUnicodeCategory(CodePointRegex.StandIn(c)));
        }
    }

    [Theory]
    [InlineData(@"\p{L}++|a?+", @"(?>\p{L}+)|(?>a?)")]
    [InlineData(@"[^\r\n]*+x{1,3}+", @"(?>[^\r\n]*)(?>x{1,3})")]
    [InlineData(@"(?:ab)++c+?", @"(?>(?:ab)+)c+?")]
    [InlineData(@"(?i:'s|'t)|\s+(?!\S)", @"(?i:'s|'t)|\s+(?!\S)")]
    public void PossessiveQuantifiersBecomeAtomicGroups(string pattern, string expected) =>
        Assert.Equal(expected, CodePointRegex.TranslatePossessive(pattern));
}

/// <summary>GPT-2 as a tokenizer.json (the layout of the Hub's gpt2 file, built here from vocab.json + merges.txt) against the slow GPT2Tokenizer's fixture.</summary>
public sealed class Gpt2TokenizerJsonTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sf-gpt2json-").FullName;
    readonly PipelineTokenizer _tok;

    public Gpt2TokenizerJsonTests()
    {
        var src = SharedPaths.Fixture("gpt2-tiny");
        var merges = File.ReadLines(Path.Combine(src, "merges.txt")).Where(l => l.Length > 0 && !l.StartsWith("#version")).Select(l => (JsonNode?)l).ToArray();
        var byteLevel = JsonNode.Parse("""{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}""")!;
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 50256, ["content"] = "<|endoftext|>", ["special"] = true, ["normalized"] = true }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = byteLevel.DeepClone(),
            ["post_processor"] = byteLevel.DeepClone(),
            ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "", ["fuse_unk"] = false,
                ["vocab"] = JsonNode.Parse(File.ReadAllText(Path.Combine(src, "vocab.json"))),
                ["merges"] = new JsonArray(merges),
            },
        };
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), json.ToJsonString());
        foreach (var f in new[] { "tokenizer_config.json", "special_tokens_map.json" }) File.Copy(Path.Combine(src, f), Path.Combine(_dir, f));
        _tok = Assert.IsType<PipelineTokenizer>(AutoTokenizer.FromFolder(_dir));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void EveryFixtureTextMatchesTheSlowTokenizer()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture("tokenizers", "gpt2_tokenizer.json")));
        int n = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var ids = c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.Equal(ids, _tok.EncodeIds(text));
            Assert.Equal(c.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()), _tok.Tokenize(text));
            Assert.Equal(c.GetProperty("decoded").GetString(), _tok.Decode(ids));
            Assert.Equal(c.GetProperty("decoded_no_cleanup").GetString(), _tok.Decode(ids, skipSpecialTokens: false, cleanUpTokenizationSpaces: false));
            n++;
        }
        Assert.Equal(61, n);
        Assert.Equal("<|endoftext|>", _tok.SpecialTokens.Eos);
    }
}
