using System.Text;
using System.Text.Json;
using SharpFormer.Tokenizers;
using Encoding = SharpFormer.Tokenizers.Encoding;

namespace SharpFormer.Tests;

/// <summary>
/// BertTokenizer against tests/fixtures/tokenizers/bert_tokenizer.json (HuggingFace transformers 4.40.2, slow
/// BertTokenizer, vocab of bert-base-chinese, do_lower_case=True) plus behaviour on unseen text.
/// </summary>
public class BertTokenizerTests
{
    private static readonly Lazy<JsonDocument> FixtureDoc = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture("tokenizers", "bert_tokenizer.json"))));
    private static readonly Lazy<BertTokenizer> Tok = new(() => BertTokenizer.FromFolder(SharedPaths.Fixture("bert-tiny")));

    private static JsonElement Root => FixtureDoc.Value.RootElement;
    private static BertTokenizer Tokenizer => Tok.Value;

    private static JsonElement Case(string id) => Root.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);
    private static JsonElement Pair(string id) => Root.GetProperty("pairs").EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);

    public static TheoryData<string> CaseIds()
    {
        var data = new TheoryData<string>();
        foreach (var c in Root.GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("id").GetString()!);
        return data;
    }

    public static TheoryData<string> PairIds()
    {
        var data = new TheoryData<string>();
        foreach (var c in Root.GetProperty("pairs").EnumerateArray()) data.Add(c.GetProperty("id").GetString()!);
        return data;
    }

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    private static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    private static void AssertEncoding(JsonElement expected, Encoding actual)
    {
        Assert.Equal(Ints(expected.GetProperty("input_ids")), actual.InputIds);
        Assert.Equal(Ints(expected.GetProperty("token_type_ids")), actual.TokenTypeIds);
        Assert.Equal(Ints(expected.GetProperty("attention_mask")), actual.AttentionMask);
        if (expected.TryGetProperty("input_tokens", out var tokens)) Assert.Equal(Strings(tokens), actual.Tokens);
        Assert.Equal(actual.InputIds.Length, actual.Offsets.Length);
    }

    // ------------------------------------------------------------------ fixture: single texts

    [Fact]
    public void Fixture_has_all_cases()
    {
        Assert.Equal(61, Root.GetProperty("cases").GetArrayLength());
        Assert.Equal(5, Root.GetProperty("pairs").GetArrayLength());
        Assert.Equal("4.40.2", Root.GetProperty("versions").GetProperty("transformers").GetString());
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Tokenize_matches_fixture(string id)
    {
        var c = Case(id);
        Assert.Equal(Strings(c.GetProperty("tokens")), Tokenizer.Tokenize(c.GetProperty("text").GetString()!));
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Encode_matches_fixture(string id)
    {
        var c = Case(id);
        AssertEncoding(c, Tokenizer.Encode(c.GetProperty("text").GetString()!));
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Decode_matches_fixture(string id)
    {
        var c = Case(id);
        var ids = Ints(c.GetProperty("input_ids"));
        Assert.Equal(c.GetProperty("decoded").GetString(), Tokenizer.Decode(ids));
        Assert.Equal(c.GetProperty("decoded_skip_special_tokens").GetString(), Tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Truncation_matches_fixture(string id)
    {
        var c = Case(id);
        string text = c.GetProperty("text").GetString()!;
        AssertEncoding(c.GetProperty("truncated_max_length_16"), Tokenizer.Encode(text, maxLength: 16));
        if (c.TryGetProperty("truncated_max_length_512", out var t512))
            AssertEncoding(t512, Tokenizer.Encode(text, maxLength: 512));
    }

    [Fact]
    public void Long_text_is_longer_than_512_and_truncates_to_512()
    {
        var c = Case("long_text");
        string text = c.GetProperty("text").GetString()!;
        Assert.Equal(631, Tokenizer.Encode(text).Length);
        var e = Tokenizer.Encode(text, maxLength: 512);
        Assert.Equal(512, e.Length);
        Assert.Equal(Tokenizer.SepTokenId, e.InputIds[^1]);
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Offsets_slice_back_to_each_token(string id)
    {
        string text = Case(id).GetProperty("text").GetString()!;
        AssertOffsets(text, Tokenizer.Encode(text));
    }

    /// <summary>
    /// Every non-special token's offset slice of the original text, cleaned, lower-cased and accent-stripped, equals
    /// the token without "##" (or contains it when neighbouring pieces share an original character — Hangul jamo of
    /// one syllable); [UNK] spans a non-empty slice; specials added by the tokenizer are (0, 0); spans advance.
    /// </summary>
    private static void AssertOffsets(string text, Encoding e, int typeId = 0)
    {
        int lastStart = 0;
        for (int i = 0; i < e.Length; i++)
        {
            if (e.TokenTypeIds[i] != typeId) continue;
            var (start, end) = e.Offsets[i];
            string token = e.Tokens[i];
            bool special = Tokenizer.AllSpecialIds.Contains(e.InputIds[i]);
            if (special && start == 0 && end == 0) continue;
            Assert.InRange(start, 0, text.Length);
            Assert.InRange(end, start + 1, text.Length);
            Assert.True(start >= lastStart, $"token {i} '{token}' starts at {start} before the previous token ({lastStart})");
            lastStart = start;
            string slice = text[start..end];
            if (token == Tokenizer.UnkToken && !slice.Contains(token, StringComparison.Ordinal))
            {
                Assert.NotEqual("", NormalizeLikeBert(slice));
                continue;
            }
            if (special)
            {
                Assert.Equal(token, slice);
                continue;
            }
            string piece = token.StartsWith("##", StringComparison.Ordinal) ? token[2..] : token;
            string norm = NormalizeLikeBert(slice);
            bool sharesCharacter =
                (i > 0 && e.TokenTypeIds[i - 1] == typeId && Overlaps(e.Offsets[i - 1], e.Offsets[i])) ||
                (i + 1 < e.Length && e.TokenTypeIds[i + 1] == typeId && Overlaps(e.Offsets[i + 1], e.Offsets[i]));
            if (sharesCharacter) Assert.Contains(piece, norm, StringComparison.Ordinal);
            else Assert.Equal(piece, norm);
        }
    }

    private static bool Overlaps((int Start, int End) a, (int Start, int End) b) => a.Start < b.End && b.Start < a.End;

    /// <summary>Drops what BERT's clean-up drops, lower-cases and strips accents (Unicode 14, as the tokenizer).</summary>
    private static string NormalizeLikeBert(string slice)
    {
        var kept = BasicTokenizer.Decode(slice)
            .Where(c => c.Cp != 0 && c.Cp != 0xFFFD && !PyUnicode14.IsControl(c.Cp) && !PyUnicode14.IsPythonSpace(c.Cp)).ToList();
        var lowered = new List<TrackedChar>();
        foreach (var c in kept) PyUnicode14.AppendLower(c, lowered);
        var stripped = PyUnicode14.Nfd(PyUnicode14.Nfc(lowered)).Where(c => !PyUnicode14.IsNonSpacingMark(c.Cp)).ToList();
        return BasicTokenizer.ToText(stripped, new StringBuilder());
    }

    [Fact]
    public void Offsets_of_selected_fixture_texts()
    {
        var e = Tokenizer.Encode("Café naïve résumé");
        Assert.Equal(("[CLS]", (0, 0)), (e.Tokens[0], e.Offsets[0]));
        Assert.Equal(("cafe", (0, 4)), (e.Tokens[1], e.Offsets[1]));
        Assert.Equal(("na", (5, 7)), (e.Tokens[2], e.Offsets[2]));
        Assert.Equal(("##ive", (7, 10)), (e.Tokens[3], e.Offsets[3]));   // "ïve": the stripped ï maps to the whole ï
        Assert.Equal(("[SEP]", (0, 0)), (e.Tokens[^1], e.Offsets[^1]));

        string special = Case("special_bert").GetProperty("text").GetString()!;
        var s = Tokenizer.Encode(special);
        int mask = Array.IndexOf(s.Tokens, "[MASK]");
        Assert.Equal("[MASK]", special[s.Offsets[mask].Start..s.Offsets[mask].End]);

        string emoji = "👍🏽 thumbs up 👍";
        var m = Tokenizer.Encode(emoji);
        Assert.Equal((0, 4), m.Offsets[1]);                 // [UNK] for the emoji + skin tone (two surrogate pairs)
        Assert.Equal("👍", emoji[m.Offsets[^2].Start..m.Offsets[^2].End]);

        string zw = "a\u200bb\u200cc\u200dd\ufeffe\u00adf";
        var z = Tokenizer.Encode(zw);
        Assert.Equal(["[CLS]", "abc", "##de", "##f", "[SEP]"], z.Tokens);
        Assert.Equal([(0, 0), (0, 5), (6, 9), (10, 11), (0, 0)], z.Offsets);
    }

    // ------------------------------------------------------------------ fixture: pairs and batch

    [Theory]
    [MemberData(nameof(PairIds))]
    public void Pair_encode_matches_fixture(string id)
    {
        var p = Pair(id);
        string a = p.GetProperty("text").GetString()!, b = p.GetProperty("text_pair").GetString()!;
        var e = Tokenizer.Encode(a, b);
        AssertEncoding(p, e);
        AssertOffsets(a, e, typeId: 0);
        AssertOffsets(b, e, typeId: 1);
    }

    [Theory]
    [MemberData(nameof(PairIds))]
    public void Pair_truncation_longest_first_matches_fixture(string id)
    {
        var p = Pair(id);
        var e = Tokenizer.Encode(p.GetProperty("text").GetString()!, p.GetProperty("text_pair").GetString()!, 16, TruncationStrategy.LongestFirst);
        AssertEncoding(p.GetProperty("truncated_max_length_16_longest_first"), e);
    }

    [Theory]
    [MemberData(nameof(PairIds))]
    public void Pair_truncation_only_second_matches_fixture(string id)
    {
        var p = Pair(id);
        var e = Tokenizer.Encode(p.GetProperty("text").GetString()!, p.GetProperty("text_pair").GetString()!, 16, TruncationStrategy.OnlySecond);
        AssertEncoding(p.GetProperty("truncated_max_length_16_only_second"), e);
    }

    [Fact]
    public void Only_second_that_cannot_fit_returns_the_pair_untruncated()
    {
        var p = Pair("pair_long");
        string a = p.GetProperty("text").GetString()!, b = p.GetProperty("text_pair").GetString()!;
        var full = Tokenizer.Encode(a, b);
        var e = Tokenizer.Encode(a, b, 16, TruncationStrategy.OnlySecond);
        Assert.True(e.Length > 16);
        Assert.Equal(full.InputIds, e.InputIds);
    }

    [Fact]
    public void Batch_matches_fixture()
    {
        var batch = Root.GetProperty("batch");
        var texts = Strings(batch.GetProperty("texts"));
        var encodings = Tokenizer.EncodeBatch(texts, maxLength: 16, padToLongest: true);
        var ids = batch.GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray();
        var types = batch.GetProperty("token_type_ids").EnumerateArray().Select(Ints).ToArray();
        var masks = batch.GetProperty("attention_mask").EnumerateArray().Select(Ints).ToArray();
        Assert.Equal(texts.Length, encodings.Count);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(ids[i], encodings[i].InputIds);
            Assert.Equal(types[i], encodings[i].TokenTypeIds);
            Assert.Equal(masks[i], encodings[i].AttentionMask);
            for (int k = 0; k < encodings[i].Length; k++)
            {
                if (encodings[i].AttentionMask[k] != 0) continue;
                Assert.Equal("[PAD]", encodings[i].Tokens[k]);
                Assert.Equal((0, 0), encodings[i].Offsets[k]);
            }
        }
        var unpadded = Tokenizer.EncodeBatch(texts, maxLength: 16, padToLongest: false);
        Assert.Equal(10, unpadded[0].Length);
    }

    // ------------------------------------------------------------------ loading

    [Fact]
    public void FromFolder_reads_vocab_and_config()
    {
        var t = Tokenizer;
        Assert.Equal(21128, t.VocabSize);
        Assert.Equal("BertTokenizer (WordPiece, 21128 tokens)", t.Kind);
        Assert.Equal(512, t.ModelMaxLength);
        Assert.True(t.DoLowerCase);
        Assert.Equal((0, 100, 101, 102, 103), (t.PadTokenId, t.UnkTokenId, t.ClsTokenId, t.SepTokenId, t.MaskTokenId));
        // vocab.txt holds U+2028 tokens: lines are split on line ends only, not on Unicode line separators.
        Assert.Equal("\u2028", t.IdToToken(343));
        Assert.Equal("##\u2028", t.IdToToken(13502));
        Assert.Equal(343, t.TokenToId("\u2028"));
        Assert.Null(t.TokenToId("no-such-token"));
        Assert.Equal("[UNK]", t.IdToToken(999_999));
        Assert.Equal(["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"], t.AllSpecialTokens);
    }

    [Fact]
    public void FromFolder_reports_missing_files()
    {
        string dir = Directory.CreateTempSubdirectory("sf-bert-").FullName;
        try
        {
            var e = Assert.Throws<SharpFormerException>(() => BertTokenizer.FromFolder(dir));
            Assert.Contains("vocab.txt", e.Message);
            Assert.Throws<SharpFormerException>(() => BertTokenizer.FromFolder(Path.Combine(dir, "missing")));

            File.WriteAllText(Path.Combine(dir, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{ not json");
            var j = Assert.Throws<SharpFormerException>(() => BertTokenizer.FromFolder(dir));
            Assert.Contains("tokenizer_config.json", j.Message);
            Assert.DoesNotContain("\n", j.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void FromFolder_handles_crlf_vocab_token_objects_and_unbounded_length()
    {
        string dir = Directory.CreateTempSubdirectory("sf-bert-").FullName;
        try
        {
            // Python's readlines() (universal newlines) ends lines at \n, \r\n and \r, as HF's load_vocab reads them.
            File.WriteAllText(Path.Combine(dir, "vocab.txt"), "<pad>\r\n<unk>\r\n<s>\r</s>\n<mask>\nHello\nhello\n##x\n\u2028\n");
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """
                { "do_lower_case": false, "model_max_length": 1000000000000000019884624838656,
                  "unk_token": { "content": "<unk>", "__type": "AddedToken" }, "pad_token": "<pad>",
                  "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>", "never_split": ["Hello"] }
                """);
            var t = BertTokenizer.FromFolder(dir);
            Assert.Equal(9, t.VocabSize);
            Assert.Null(t.ModelMaxLength);
            Assert.False(t.DoLowerCase);
            Assert.Equal((0, 1, 2, 3, 4), (t.PadTokenId, t.UnkTokenId, t.ClsTokenId, t.SepTokenId, t.MaskTokenId));
            Assert.Equal(["Hello", "hello", "##x", "<unk>"], t.Tokenize("Hello hellox Héllo"));
            Assert.Equal(["<s>", "Hello", "</s>", "hello", "</s>"], t.Encode("Hello", "hello").Tokens);
            Assert.Equal("Hello hellox", t.Decode([2, 5, 6, 7, 3], skipSpecialTokens: true));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    // ------------------------------------------------------------------ truncation edge cases (HF 4.40 truncate_sequences)

    private static BertTokenizer Small() =>
        new(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f"]);

    [Fact]
    public void Truncation_edge_cases_follow_hf()
    {
        var t = Small();
        // Single text: longest_first / only_first cut the end.
        Assert.Equal(["[CLS]", "a", "b", "[SEP]"], t.Encode("a b c d", maxLength: 4).Tokens);
        Assert.Equal(["[CLS]", "a", "b", "[SEP]"], t.Encode("a b c d", maxLength: 4, truncation: TruncationStrategy.OnlyFirst).Tokens);
        // only_second on a single text does nothing.
        Assert.Equal(6, t.Encode("a b c d", maxLength: 4, truncation: TruncationStrategy.OnlySecond).Length);
        // Too short to remove enough (max_length below the special tokens): HF logs an error and leaves it untruncated.
        Assert.Equal(3, t.Encode("a", maxLength: 1).Length);
        // max_length=0 is falsy in HF: no truncation.
        Assert.Equal(6, t.Encode("a b c d", maxLength: 0).Length);
        // longest_first removes one token at a time from the longer, the pair on ties.
        Assert.Equal(["[CLS]", "a", "b", "[SEP]", "e", "[SEP]"], t.Encode("a b c", "e f", maxLength: 6).Tokens);
        Assert.Equal(["[CLS]", "a", "[SEP]", "e", "[SEP]"], t.Encode("a b", "e f", maxLength: 5).Tokens);
        // only_first on a pair; and when the first is too short, untruncated.
        Assert.Equal(["[CLS]", "a", "[SEP]", "e", "f", "[SEP]"], t.Encode("a b c", "e f", maxLength: 6, truncation: TruncationStrategy.OnlyFirst).Tokens);
        Assert.Equal(8, t.Encode("a b c", "e f", maxLength: 5, truncation: TruncationStrategy.OnlyFirst).Length);
        // only_second: cut the pair; exactly the pair's length to remove is "cannot fit" in HF (strict >).
        Assert.Equal(["[CLS]", "a", "b", "c", "[SEP]", "e", "[SEP]"], t.Encode("a b c", "e f", maxLength: 7, truncation: TruncationStrategy.OnlySecond).Tokens);
        Assert.Equal(8, t.Encode("a b c", "e f", maxLength: 6, truncation: TruncationStrategy.OnlySecond).Length);
        // An empty pair still adds its [SEP].
        Assert.Equal(["[CLS]", "a", "[SEP]", "[SEP]"], t.Encode("a", "").Tokens);
    }

    [Fact]
    public void Left_truncation_side_keeps_the_end_of_each_sequence()
    {
        var t = new BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f"],
                                  new BertTokenizerOptions { TruncationSide = TruncationSide.Left });
        Assert.Equal(["[CLS]", "c", "d", "[SEP]"], t.Encode("a b c d", maxLength: 4).Tokens);
        Assert.Equal((4, 5), t.Encode("a b c d", maxLength: 4).Offsets[1]);
        // The same counts as right-side longest_first (HF computes them before choosing the side), taken from the start.
        Assert.Equal(["[CLS]", "b", "c", "[SEP]", "f", "[SEP]"], t.Encode("a b c", "e f", maxLength: 6).Tokens);
        Assert.Equal(["[CLS]", "a", "b", "c", "[SEP]", "f", "[SEP]"], t.Encode("a b c", "e f", maxLength: 7, truncation: TruncationStrategy.OnlySecond).Tokens);
        Assert.Equal(6, t.Encode("a b c d").Length);
    }

    [Fact]
    public void FromFolder_reads_truncation_side_and_rejects_an_unknown_one()
    {
        string dir = Directory.CreateTempSubdirectory("sf-bert-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\n");
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{ "truncation_side": "left" }""");
            var t = BertTokenizer.FromFolder(dir);
            Assert.Equal(TruncationSide.Left, t.Options.TruncationSide);
            Assert.Equal(["[CLS]", "c", "[SEP]"], t.Encode("a b c", maxLength: 3).Tokens);
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{ "truncation_side": "middle" }""");
            var e = Assert.Throws<SharpFormerException>(() => BertTokenizer.FromFolder(dir));
            Assert.Contains("truncation_side", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Decode_cleans_up_like_hf()
    {
        var t = Tokenizer;
        var ids = t.Encode("He said , \" it 's ok . \" Do n't worry ! Really ? Yes .").InputIds;
        Assert.Equal("[CLS] he said, \" it's ok. \" don't worry! really? yes. [SEP]", t.Decode(ids));
        Assert.Equal("", t.Decode([]));
        Assert.Equal("", t.Decode([101, 102], skipSpecialTokens: true));
        Assert.Equal("", t.Decode([343]));                  // U+2028 alone: Python's str.strip() removes it
        Assert.Equal("[UNK]", t.Decode([123_456]));          // unknown ids decode as the unknown token
        Assert.Equal("unaffable", t.Decode(t.Encode("unaffable").InputIds, skipSpecialTokens: true));
    }

    // ------------------------------------------------------------------ unseen text (expected values follow HF's rules,
    // computed by transcribing transformers 4.40's Python code, Unicode 14.0)

    public static TheoryData<string, string, string[], int[]> UnseenTexts() => new()
    {
        { "greek_final_sigma", "Ελληνικά ΟΔΟΣ Σοφία", new[] { "ε", "##λ", "##λ", "##η", "##ν", "##ι", "##κ", "##α", "ο", "##δ", "##ο", "##σ", "σ", "##ο", "##φ", "##ι", "##α" }, new[] { 214, 13389, 13389, 13385, 13391, 13387, 13388, 13380, 222, 13383, 13392, 13396, 226, 13392, 13399, 13387, 13380 } },
        { "turkish_dotted_i", "İstanbul İİ", new[] { "is", "##tan", "##bu", "##l", "ii" }, new[] { 8310, 10105, 11381, 8178, 8491 } },
        { "emoji_flags_zwj", "\U0001F469\U0001F3FB\u200D\U0001F4BB coding \U0001F1E8\U0001F1F3\U0001F1FA\U0001F1F8 ok\U0001F44C", new[] { "[UNK]", "co", "##ding", "[UNK]", "[UNK]" }, new[] { 100, 8792, 9755, 100, 100 } },
        { "fullwidth_punct", "（测试）！？：；“引号”〈书〉《名》～＠＃", new[] { "（", "测", "试", "）", "！", "？", "：", "；", "[UNK]", "引", "号", "[UNK]", "〈", "书", "〉", "《", "名", "》", "～", "＠", "＃" }, new[] { 8020, 3844, 6407, 8021, 8013, 8043, 8038, 8039, 100, 2471, 1384, 100, 515, 741, 516, 517, 1399, 518, 8080, 8044, 8015 } },
        { "controls_and_separators", "a\u0001b\u0085c\u000Bd\u000Ce\u2028f\u2029g\u001Fh", new[] { "abc", "##de", "f", "g", "##h" }, new[] { 8425, 8510, 148, 149, 8199 } },
        { "combining_sequences", "e\u0301cole A\u030A Å Ω K\u0323\u0307 q\u0307\u0323", new[] { "eco", "##le", "a", "a", "ω", "k", "q" }, new[] { 12791, 8268, 143, 143, 232, 153, 159 } },
        { "cjk_compat_ideographs", "豈亂\U0002F800 豈", new[] { "豈", "亂", "丽", "豈" }, new[] { 6488, 748, 714, 6488 } },
        { "private_unassigned_surrogate", "a\uE000b \u0378c \uD800d \uDC00", new[] { "ab", "c", "d" }, new[] { 9386, 145, 146 } },
        { "after_unicode14", "x\U0001F6DCy \U00031350z 鿿 \U0002B739", new[] { "x", "##y", "z", "[UNK]" }, new[] { 166, 8179, 168, 100 } },
        { "hangul_jamo_nfc", "한국 한국", new[] { "ᄒ", "##ᅡ", "##ᆫ", "##ᄀ", "##ᅮ", "##ᆨ", "ᄒ", "##ᅡ", "##ᆫ", "##ᄀ", "##ᅮ", "##ᆨ" }, new[] { 303, 10928, 9877, 13454, 13479, 11953, 303, 10928, 9877, 13454, 13479, 11953 } },
        { "ligature_fractions", "Straße ﬁne café№5 ½ ²", new[] { "st", "##ra", "##ß", "##e", "[UNK]", "cafe", "##№", "##5", "[UNK]", "²" }, new[] { 8811, 8332, 13361, 8154, 100, 8377, 13518, 8157, 100, 182 } },
        { "thai_devanagari", "สว\u0E31สด\u0E35 नमस\u094Dत\u0947", new[] { "[UNK]", "[UNK]" }, new[] { 100, 100 } },
        { "zero_width_in_cjk", "中\u200B文\u0009字\u00A0符", new[] { "中", "文", "字", "符" }, new[] { 704, 3152, 2099, 5016 } },
        { "special_variants", "[cls] [Mask] x[SEP]y [SEP][SEP] [MASK]", new[] { "[", "cl", "##s", "]", "[", "ma", "##sk", "]", "x", "[SEP]", "y", "[SEP]", "[SEP]", "[MASK]" }, new[] { 138, 12847, 8118, 140, 138, 9622, 8998, 140, 166, 102, 167, 102, 102, 103 } },
        { "fullwidth_latin", "ＡＢＣ－１２３\u3000ｄｅｆ", new[] { "ａ", "##ｂ", "##ｃ", "－", "１２", "##３", "ｄ", "##ｅ", "##ｆ" }, new[] { 8051, 12641, 10675, 8025, 10351, 9089, 8054, 10726, 21095 } },
        { "mixed_scripts", "Tokyo東京Москва موسكو 2024年", new[] { "tokyo", "東", "京", "м", "##о", "##с", "##к", "##в", "##а", "[UNK]", "202", "##4", "年" }, new[] { 10357, 3346, 776, 244, 13413, 13416, 13409, 13403, 11318, 100, 9707, 8159, 2399 } },
        { "empty_after_clean", "\u0000\u200B\uFFFD\u0301", Array.Empty<string>(), Array.Empty<int>() },
    };

    [Theory]
    [MemberData(nameof(UnseenTexts))]
    public void Unseen_text_follows_hf_rules(string name, string text, string[] tokens, int[] ids)
    {
        Assert.NotNull(name);
        Assert.Equal(tokens, Tokenizer.Tokenize(text));
        var e = Tokenizer.Encode(text);
        Assert.Equal([101, .. ids, 102], e.InputIds);
        AssertOffsets(text, e);
        // Deterministic: a second run gives the same result.
        Assert.Equal(e.InputIds, Tokenizer.Encode(text).InputIds);
        Assert.Equal(e.Offsets, Tokenizer.Encode(text).Offsets);
    }

    [Fact]
    public void Very_long_words()
    {
        var t = Tokenizer;
        // 100 code points is the limit; 101 becomes [UNK] spanning the whole word.
        var hundred = t.Tokenize(new string('a', 100));
        Assert.Equal(["aaa", .. Enumerable.Repeat("##aa", 48), "##a"], hundred);
        var e = t.Encode(new string('a', 101) + " ok");
        Assert.Equal(["[CLS]", "[UNK]", "ok", "[SEP]"], e.Tokens);
        Assert.Equal((0, 101), e.Offsets[1]);
        // The limit counts code points, not UTF-16 units: 60 non-BMP letters (120 chars) are one word of 60.
        string math = string.Concat(Enumerable.Repeat("\U0001D400", 60));   // MATHEMATICAL BOLD CAPITAL A
        Assert.Equal(["[UNK]"], t.Tokenize(math));
        // CJK characters are words of their own, so a long run is never [UNK].
        Assert.Equal(150, t.Tokenize(new string('中', 150)).Count(x => x == "中"));
    }

    [Fact]
    public void Lone_surrogates_and_non_bmp_are_handled_by_code_point()
    {
        var t = Tokenizer;
        Assert.Equal(["[UNK]", "[UNK]"], t.Tokenize("\U00020000\U0002A6A5"));   // Ext B: two CJK words
        Assert.Equal(["ab"], t.Tokenize("a\uD800b"));                          // a lone surrogate (category Cs) is dropped
        Assert.Equal(["[UNK]"], t.Tokenize("\U00030EDD\U00030EDD"));            // Ext G is not in HF's CJK ranges: one word
    }

    [Fact]
    public void Custom_options_lowercase_off_and_strip_accents()
    {
        string[] vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Cafe", "Café", "cafe", "café", "!", "[foo]"];
        var keepCase = new BertTokenizer(vocab, new BertTokenizerOptions { DoLowerCase = false });
        Assert.Equal(["Café", "!"], keepCase.Tokenize("Café!"));
        var keepCaseStrip = new BertTokenizer(vocab, new BertTokenizerOptions { DoLowerCase = false, StripAccents = true });
        Assert.Equal(["Cafe", "!"], keepCaseStrip.Tokenize("Café!"));
        var lowerKeepAccents = new BertTokenizer(vocab, new BertTokenizerOptions { StripAccents = false });
        Assert.Equal(["café", "!"], lowerKeepAccents.Tokenize("CAFÉ!"));
        Assert.Equal(["café"], lowerKeepAccents.Tokenize("CAFE\u0301"));     // NFC composes the decomposed é
        var neverSplit = new BertTokenizer(vocab, new BertTokenizerOptions { NeverSplit = ["[foo]"] });
        Assert.Equal(["[foo]", "cafe"], neverSplit.Tokenize("[FOO] café"));
        var noChinese = new BertTokenizer(vocab, new BertTokenizerOptions { TokenizeChineseChars = false });
        Assert.Equal(["[UNK]"], noChinese.Tokenize("中文"));
    }
}
