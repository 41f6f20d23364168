using System.Text.Json;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>GPT-2 byte-level BPE against HuggingFace's slow GPT2Tokenizer on the 61 fixture texts.</summary>
public class Gpt2TokenizerTests
{
    static readonly Lazy<Gpt2Tokenizer> Tok = new(() => Gpt2Tokenizer.FromFolder(Path.Combine(SharedPaths.Fixtures, "gpt2-tiny")));
    static readonly Lazy<JsonElement[]> Fixture = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedPaths.Fixtures, "tokenizers", "gpt2_tokenizer.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(e => e.Clone()).ToArray();
    });

    public static TheoryData<string> CaseIds()
    {
        var data = new TheoryData<string>();
        foreach (var c in Fixture.Value) data.Add(c.GetProperty("id").GetString()!);
        return data;
    }

    static JsonElement Case(string id) => Fixture.Value.Single(c => c.GetProperty("id").GetString() == id);

    [Fact]
    public void FixtureHas61Cases() => Assert.Equal(61, Fixture.Value.Length);

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void MatchesHuggingFace(string id)
    {
        var c = Case(id);
        var text = c.GetProperty("text").GetString()!;
        var ids = c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var tokens = c.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()!).ToArray();
        var tok = Tok.Value;

        Assert.Equal(tokens, tok.Tokenize(text));
        var enc = tok.Encode(text);
        Assert.Equal(ids, enc.InputIds);
        Assert.Equal(tokens, enc.Tokens);
        Assert.All(enc.TokenTypeIds, t => Assert.Equal(0, t));
        Assert.All(enc.AttentionMask, m => Assert.Equal(1, m));
        Assert.Equal(c.GetProperty("decoded").GetString(), tok.Decode(ids));
        Assert.Equal(c.GetProperty("decoded_no_cleanup").GetString(), tok.Decode(ids, skipSpecialTokens: false, cleanUpTokenizationSpaces: false));

        // Offsets: starts in order, inside the text, the last one ends at the text's end
        // (a token holding part of a character maps to the whole character, so neighbours may share one).
        int prevStart = 0;
        foreach (var (s, e) in enc.Offsets)
        {
            Assert.InRange(s, prevStart, text.Length);
            Assert.InRange(e, s, text.Length);
            prevStart = s;
        }
        if (ids.Length > 0) Assert.Equal(text.Length, enc.Offsets[^1].End);

        // Streaming: the chunks concatenate to the byte-exact decode, and never contain U+FFFD unless the text does.
        var stream = tok.CreateStreamDecoder(skipSpecialTokens: false);
        var sb = new System.Text.StringBuilder();
        foreach (var i in ids)
        {
            var chunk = stream.Push(i);
            if (!text.Contains('\uFFFD')) Assert.DoesNotContain('\uFFFD', chunk);
            sb.Append(chunk);
        }
        sb.Append(stream.Flush());
        Assert.Equal(text, sb.ToString());
    }

    [Fact]
    public void StreamHoldsBackPartialChineseCharacter()
    {
        var tok = Tok.Value;
        // 人 = E4 BA BA is a single token; 工 = E5 B7 A5 is split as [E5 B7][A5].
        var ids = tok.EncodeIds("人工");
        Assert.Equal(new[] { 21689, 32432, 98 }, ids);
        var d = tok.CreateStreamDecoder();
        Assert.Equal("人", d.Push(ids[0]));
        Assert.Equal("", d.Push(ids[1]));
        Assert.Equal("工", d.Push(ids[2]));
        Assert.Equal("", d.Flush());
        // Decoding the partial tokens alone gives U+FFFD like errors="replace".
        Assert.Equal("\uFFFD", tok.Decode([32432], skipSpecialTokens: false, cleanUpTokenizationSpaces: false));
    }

    /// <summary>An id past the 50,257 tokens (a padded embedding's row) decodes to nothing, as HF's fast tokenizer decodes it.</summary>
    [Fact]
    public void An_id_past_the_vocabulary_decodes_to_nothing()
    {
        var tok = Tok.Value;
        int[] ids = [.. tok.EncodeIds("人工"), 50257, 60000];
        Assert.Equal("人工", tok.Decode(ids));
        var d = tok.CreateStreamDecoder();
        Assert.Equal("人工", string.Concat(ids.Select(d.Push)) + d.Flush());
    }

    [Fact]
    public void ChineseCasesStreamWithoutReplacementCharacters()
    {
        var tok = Tok.Value;
        foreach (var c in Fixture.Value.Where(c => c.GetProperty("id").GetString()!.StartsWith("zh_") || c.GetProperty("id").GetString()!.StartsWith("cjk_")))
        {
            var d = tok.CreateStreamDecoder();
            var all = string.Concat(c.GetProperty("ids").EnumerateArray().Select(x => d.Push(x.GetInt32()))) + d.Flush();
            Assert.DoesNotContain('\uFFFD', all);
            Assert.Equal(c.GetProperty("text").GetString(), all);
        }
    }

    [Fact]
    public void SkipSpecialTokensAndTruncation()
    {
        var tok = Tok.Value;
        var ids = tok.EncodeIds("Hello<|endoftext|>World");
        Assert.Equal(new[] { 15496, 50256, 10603 }, ids);
        Assert.Equal("HelloWorld", tok.Decode(ids, skipSpecialTokens: true));
        Assert.Equal(new[] { 15496, 50256 }, tok.Encode("Hello<|endoftext|>World", maxLength: 2).InputIds);
        Assert.Null(tok.ModelMaxLength);             // 1e30 in tokenizer_config.json means "no limit"
        Assert.Equal(50257, tok.VocabSize);
        Assert.Equal(50256, tok.EosTokenId);
        var pair = tok.Encode("Hello", "World");
        Assert.Equal(new[] { 0, 1 }, pair.TokenTypeIds);
        Assert.Equal((0, 5), pair.Offsets[1]);
    }

    [Fact]
    public void LeftTruncationSideFromTheConfigKeepsTheEnd()
    {
        var dir = Directory.CreateTempSubdirectory("sf-gpt2-").FullName;
        try
        {
            var src = Path.Combine(SharedPaths.Fixtures, "gpt2-tiny");
            foreach (var f in new[] { "vocab.json", "merges.txt" }) File.Copy(Path.Combine(src, f), Path.Combine(dir, f));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{ "truncation_side": "left", "eos_token": "<|endoftext|>" }""");
            var tok = Gpt2Tokenizer.FromFolder(dir);
            Assert.Equal(TruncationSide.Left, tok.TruncationSide);
            Assert.Equal(new[] { 50256, 10603 }, tok.Encode("Hello<|endoftext|>World", maxLength: 2).InputIds);
            var pair = tok.Encode("Hello World", "World", maxLength: 2);       // longest_first: one token from each, from the start
            Assert.Equal(new[] { 2159, 10603 }, pair.InputIds);
            Assert.Equal(new[] { 0, 1 }, pair.TokenTypeIds);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void AutoTokenizerPicksFromTheFolder()
    {
        Assert.IsType<Gpt2Tokenizer>(AutoTokenizer.FromFolder(Path.Combine(SharedPaths.Fixtures, "gpt2-tiny")));
        Assert.IsType<BertTokenizer>(AutoTokenizer.FromFolder(Path.Combine(SharedPaths.Fixtures, "bert-tiny")));
        var dir = Directory.CreateTempSubdirectory("sf-auto-").FullName;
        try
        {
            // A GPT-2 model folder whose tokenizer_config names BertTokenizer (uer/gpt2-chinese-*) gets the BERT tokenizer.
            File.Copy(Path.Combine(SharedPaths.Fixtures, "bert-tiny", "vocab.txt"), Path.Combine(dir, "vocab.txt"));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"tokenizer_class\": \"BertTokenizer\", \"do_lower_case\": true}");
            var t = AutoTokenizer.FromFolder(dir);
            Assert.IsType<BertTokenizer>(t);
            var ids = t.EncodeForCausalLm("今天");
            Assert.Equal(2, ids.Length);                 // no [CLS]/[SEP]
            Assert.Throws<SharpFormerException>(() => AutoTokenizer.FromFolder(Path.Combine(dir, "missing")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
