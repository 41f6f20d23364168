using System.Text;
using System.Text.Json;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>
/// Qwen2's tokenizer against transformers 4.40.2's slow Qwen2Tokenizer (tokenizers/qwen2_tokenizer.json), from both
/// qwen2-tiny's tokenizer.json and the slow files (vocab.json + merges.txt with CRLF, as the real folder has them).
/// </summary>
public class Qwen2TokenizerTests
{
    /// <summary>"json": tokenizer.json through AutoTokenizer; "slow": vocab.json + merges.txt.</summary>
    static readonly Lazy<PipelineTokenizer> FromJson = new(() => Assert.IsType<PipelineTokenizer>(AutoTokenizer.FromFolder(SharedPaths.Fixture("qwen2-tiny"))));
    static readonly Lazy<PipelineTokenizer> FromSlow = new(() => Qwen2Tokenizer.FromFolder(SharedPaths.Fixture("qwen2-tiny")));
    static readonly Lazy<JsonElement> Fixture = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture("tokenizers", "qwen2_tokenizer.json")));
        return doc.RootElement.Clone();
    });

    static PipelineTokenizer Tok(string source) => source == "json" ? FromJson.Value : FromSlow.Value;

    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var source in new[] { "json", "slow" })
            foreach (var list in new[] { "cases", "extra_cases" })
                foreach (var c in Fixture.Value.GetProperty(list).EnumerateArray()) data.Add(source, list, c.GetProperty("id").GetString()!);
        return data;
    }

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    [Fact]
    public void FixtureHas61CasesAnd7Extra()
    {
        Assert.Equal(61, Fixture.Value.GetProperty("cases").GetArrayLength());
        Assert.Equal(7, Fixture.Value.GetProperty("extra_cases").GetArrayLength());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesHuggingFace(string source, string list, string id)
    {
        var c = Fixture.Value.GetProperty(list).EnumerateArray().Single(x => x.GetProperty("id").GetString() == id);
        var text = c.GetProperty("text").GetString()!;
        var ids = Ints(c.GetProperty("ids"));
        var tok = Tok(source);

        Assert.Equal(Strings(c.GetProperty("tokens")), tok.Tokenize(text));
        var enc = tok.Encode(text);
        Assert.Equal(ids, enc.InputIds);
        Assert.Equal(ids, tok.EncodeForCausalLm(text));
        Assert.Equal(c.GetProperty("decoded").GetString(), tok.Decode(ids));
        Assert.Equal(c.GetProperty("decoded_skip_special_tokens").GetString(), tok.Decode(ids, skipSpecialTokens: true));

        // Offsets of an NFC text: in order, inside the text, the last one at its end.
        if (c.GetProperty("text_is_nfc").GetBoolean() && ids.Length > 0)
        {
            int prevStart = 0;
            foreach (var (s, e) in enc.Offsets)
            {
                Assert.True(s >= prevStart && e >= s && e <= text.Length, $"offset ({s}, {e}) after {prevStart} in a text of {text.Length}");
                prevStart = s;
            }
            Assert.Equal(text.Length, enc.Offsets[^1].End);
        }

        if (c.TryGetProperty("ids_split_special_tokens", out var split))
        {
            var splitting = tok.WithSplitSpecialTokens(true);
            Assert.Equal(Ints(split), splitting.EncodeIds(text));
            Assert.Equal(Strings(c.GetProperty("tokens_split_special_tokens")), splitting.Tokenize(text));
        }

        // Streaming: the chunks concatenate to the decode, and hold no U+FFFD unless the decode has one.
        var stream = tok.CreateStreamDecoder(skipSpecialTokens: false);
        var sb = new StringBuilder();
        foreach (var i in ids)
        {
            var chunk = stream.Push(i);
            if (!tok.Decode(ids).Contains('\uFFFD')) Assert.DoesNotContain('\uFFFD', chunk);
            sb.Append(chunk);
        }
        sb.Append(stream.Flush());
        Assert.Equal(tok.Decode(ids), sb.ToString());
    }

    public static TheoryData<string, string> PrefixCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var source in new[] { "json", "slow" })
            foreach (var c in Fixture.Value.GetProperty("prefix_decodes").EnumerateArray()) data.Add(source, c.GetProperty("id").GetString()!);
        return data;
    }

    /// <summary>decode(ids[:k]) for every k and decode([id]) for every id: incomplete UTF-8 gives one U+FFFD per maximal invalid subpart.</summary>
    [Theory]
    [MemberData(nameof(PrefixCases))]
    public void PrefixDecodesMatch(string source, string id)
    {
        var c = Fixture.Value.GetProperty("prefix_decodes").EnumerateArray().Single(x => x.GetProperty("id").GetString() == id);
        var ids = Ints(c.GetProperty("ids"));
        var tok = Tok(source);
        Assert.Equal(Strings(c.GetProperty("tokens")), ids.Select(tok.IdToToken));
        var prefixes = Strings(c.GetProperty("decode_of_each_prefix"));
        var singles = Strings(c.GetProperty("decode_of_each_single_id"));
        for (int k = 1; k <= ids.Length; k++) Assert.Equal(prefixes[k - 1], tok.Decode(ids[..k]));
        for (int k = 0; k < ids.Length; k++) Assert.Equal(singles[k], tok.Decode([ids[k]]));

        // The streaming decoder emits, after each id, the longest prefix that can no longer change.
        var stream = tok.CreateStreamDecoder(skipSpecialTokens: false);
        var sb = new StringBuilder();
        for (int k = 0; k < ids.Length; k++)
        {
            sb.Append(stream.Push(ids[k]));
            Assert.StartsWith(sb.ToString(), prefixes[^1]);
            Assert.True(prefixes[k].StartsWith(sb.ToString(), StringComparison.Ordinal), $"after {k + 1} ids the stream has \"{sb}\", the decode is \"{prefixes[k]}\"");
        }
        sb.Append(stream.Flush());
        Assert.Equal(prefixes[^1], sb.ToString());
    }

    [Theory]
    [InlineData("json")]
    [InlineData("slow")]
    public void LeftPaddedBatchMatches(string source)
    {
        var b = Fixture.Value.GetProperty("batch");
        var batch = Tok(source).EncodeBatch(Strings(b.GetProperty("texts")));
        Assert.Equal(b.GetProperty("input_ids").EnumerateArray().Select(Ints), batch.Select(e => e.InputIds));
        Assert.Equal(b.GetProperty("attention_mask").EnumerateArray().Select(Ints), batch.Select(e => e.AttentionMask));
    }

    [Theory]
    [InlineData("json")]
    [InlineData("slow")]
    public void SpecialTokensAreQwen2s(string source)
    {
        var tok = Tok(source);
        Assert.Equal(151646, tok.VocabSize);
        Assert.Equal("<|im_end|>", tok.SpecialTokens.Eos);
        Assert.Equal("<|endoftext|>", tok.SpecialTokens.Pad);
        Assert.Null(tok.SpecialTokens.Bos);
        Assert.Null(tok.SpecialTokens.Unk);
        Assert.Equal(["<|im_start|>", "<|im_end|>"], tok.SpecialTokens.Additional);
        Assert.Equal([151643, 151644, 151645], tok.SpecialTokens.Ids.Order());
        Assert.True(tok.PadLeft);
        Assert.False(tok.CleanUpTokenizationSpaces);
        Assert.Equal(32768, tok.ModelMaxLength);
    }

    /// <summary>
    /// qwen2-tiny's embedding has 151,936 rows and its tokenizer 151,646 tokens: an id in between (a padding row a random
    /// model samples) decodes to nothing, as HF's fast tokenizer decodes it, in a whole decode and in a stream.
    /// </summary>
    [Theory]
    [InlineData("json")]
    [InlineData("slow")]
    public void An_id_past_the_vocabulary_decodes_to_nothing(string source)
    {
        var tok = Tok(source);
        int[] ids = [.. tok.EncodeIds("你好"), 151852, .. tok.EncodeIds("世界")];
        Assert.Equal("你好世界", tok.Decode(ids));
        var stream = tok.CreateStreamDecoder();
        Assert.Equal("你好世界", string.Concat(ids.Select(stream.Push)) + stream.Flush());
        Assert.Contains("negative", Assert.Throws<SharpFormerException>(() => tok.Decode([-1])).Message);
    }
}
