using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using SharpFormer.Extensions.AI;
using SharpFormer.Models;
using SharpFormer.Server;
using SharpFormer.Tasks;
using Msg = SharpFormer.Templates.ChatMessage;

namespace SharpFormer.Tests;

/// <summary>One Kestrel on a free loopback port serving qwen2-tiny (chat), bert-tiny (embeddings) and bert-tiny-seqcls (classifier).</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public SharpFormerServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new();
    public ServedModel Qwen => Server.Models["qwen2-tiny"];
    public ServedModel Bert => Server.Models["bert-tiny"];
    public ServedModel Classifier => Server.Models["bert-tiny-seqcls"];

    public async Task InitializeAsync()
    {
        var models = new[] { "qwen2-tiny", "bert-tiny", "bert-tiny-seqcls" }.Select(n => ServedModel.Load(SharedPaths.Fixture(n))).ToList();
        Server = new SharpFormerServer(models, new ServerOptions { Port = 0, MaxRequestBodySize = 64 * 1024, MaxClientBatchSize = 4 });
        await Server.StartAsync();
        Http.BaseAddress = new Uri(Server.Address);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// <c>sharpformer serve</c> end to end: a real Kestrel on loopback, the official OpenAI .NET client and a plain
/// HttpClient. Random-weight fixtures, greedy: every answer must equal the library's own output for the same request.
/// </summary>
public class ServeTests(ServerFixture fx) : IClassFixture<ServerFixture>
{
    static string Qwen => SharedPaths.Fixture("qwen2-tiny");
    static readonly Lazy<ChatModel> Chat = new(() => ChatModel.Load(Qwen, WeightOptions.Inference()));
    static ChatReply LibraryReply(IReadOnlyList<Msg> messages, int maxNew) =>
        Chat.Value.Reply(messages, GenerationOptions.FromModelFolder(Qwen) with { MaxNewTokens = maxNew });

    OpenAIClient OpenAi() => new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(fx.Server.Address + "/v1") });

    async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, string json)
    {
        using var response = await fx.Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    /// <summary>The <c>data:</c> payloads of a server-sent-events response, in order.</summary>
    async Task<List<string>> Events(string path, string json)
    {
        using var response = await fx.Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        return text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => Assert.IsType<string>(e.StartsWith("data: ") ? e[6..] : null)).ToList();
    }

    [Fact]
    public async Task OpenAI_client_chat_equals_the_library_reply_with_usage()
    {
        var expected = LibraryReply([new Msg("user", "你好")], 8);
        ChatCompletion c = await OpenAi().GetChatClient("qwen2-tiny").CompleteChatAsync([new UserChatMessage("你好")], new ChatCompletionOptions { MaxOutputTokenCount = 8 });
        Assert.Equal(expected.Text, c.Content[0].Text);
        Assert.Equal(expected.StoppedOnEos ? ChatFinishReason.Stop : ChatFinishReason.Length, c.FinishReason);
        Assert.Equal(expected.PromptIds.Length, c.Usage.InputTokenCount);
        Assert.Equal(expected.NewIds.Length, c.Usage.OutputTokenCount);
        Assert.Equal("qwen2-tiny", c.Model);
    }

    [Fact]
    public async Task OpenAI_client_streaming_chat_equals_the_library_reply()
    {
        List<Msg> conversation = [new("system", "Be brief."), new("user", "Hello, my dog is cute")];
        var expected = LibraryReply(conversation, 12);
        var text = new StringBuilder();
        var finishes = new List<ChatFinishReason>();
        int pieces = 0;
        await foreach (var u in OpenAi().GetChatClient("qwen2-tiny").CompleteChatStreamingAsync(
                           [new SystemChatMessage("Be brief."), new UserChatMessage("Hello, my dog is cute")], new ChatCompletionOptions { MaxOutputTokenCount = 12 }))
        {
            foreach (var part in u.ContentUpdate) { text.Append(part.Text); pieces++; }
            if (u.FinishReason is { } f) finishes.Add(f);
        }
        Assert.Equal(expected.Text, text.ToString());
        Assert.True(pieces > 1, $"the reply came in {pieces} piece(s), not streamed");
        Assert.Equal([expected.StoppedOnEos ? ChatFinishReason.Stop : ChatFinishReason.Length], finishes);
    }

    [Fact]
    public async Task OpenAI_client_embeddings_equal_the_library_vectors()
    {
        var embedder = SentenceEmbedder.Load(SharedPaths.Fixture("bert-tiny"));
        string[] texts = ["今天天气很好", "我喜欢读书"];
        var result = await OpenAi().GetEmbeddingClient("bert-tiny").GenerateEmbeddingsAsync(texts);   // sent as encoding_format=base64
        var expected = embedder.Embed(texts);
        Assert.Equal(2, result.Value.Count);
        for (int i = 0; i < 2; i++) Assert.Equal(expected[i], result.Value[i].ToFloats().ToArray());
    }

    [Fact]
    public async Task Embeddings_as_floats_and_usage()
    {
        var (status, body) = await Post("/v1/embeddings", """{"model":"bert-tiny","input":"今天天气很好"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var expected = SentenceEmbedder.Load(SharedPaths.Fixture("bert-tiny")).Embed("今天天气很好");
        Assert.Equal(expected, body.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()));
        Assert.Equal(8, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());   // [CLS] 6 characters [SEP]
    }

    [Fact]
    public async Task Streamed_chat_has_the_role_chunk_one_finish_usage_only_when_asked_and_done()
    {
        const string request = """{"model":"qwen2-tiny","messages":[{"role":"user","content":"你好"}],"max_tokens":5,"stream":true""";
        var plain = await Events("/v1/chat/completions", request + "}");
        var withUsage = await Events("/v1/chat/completions", request + ""","stream_options":{"include_usage":true}}""");
        foreach (var events in new[] { plain, withUsage })
        {
            Assert.Equal("[DONE]", events[^1]);
            var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
            Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
            Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
            Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
            var finishes = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
                .Select(c => c.GetProperty("choices")[0].GetProperty("finish_reason")).Where(f => f.ValueKind != JsonValueKind.Null).ToList();
            Assert.Single(finishes);
        }
        Assert.DoesNotContain(plain, e => e.Contains("\"usage\""));
        var usage = JsonDocument.Parse(withUsage[^2]).RootElement;
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        var expected = LibraryReply([new Msg("user", "你好")], 5);
        Assert.Equal(expected.PromptIds.Length, usage.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(expected.NewIds.Length, usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Completions_stop_at_a_stop_string_that_spans_tokens()
    {
        var model = fx.Qwen;
        var ids = model.Tokenizer.EncodeForCausalLm("Hello, my dog is cute");
        var full = Generation.Generate(model.LanguageModel!, [ids], GenerationOptions.FromModelFolder(Qwen) with { MaxNewTokens = 16 }).Sequences[0];
        var pieces = full.NewIds.Select(id => model.Tokenizer.DecodeForCausalLm([id])).ToList();
        // A stop string made of the end of the third token's text and the start of the fourth's.
        var prefix = string.Concat(pieces.Take(2));
        var stop = pieces[2][^1..] + pieces[3][..1];
        var before = (prefix + pieces[2])[..^1];
        Assert.DoesNotContain(stop, before);
        var json = JsonSerializer.Serialize(new { model = "qwen2-tiny", prompt = "Hello, my dog is cute", max_tokens = 16, stop = new[] { stop } });
        var (status, body) = await Post("/v1/completions", json);
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(before, choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(4, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task OpenAI_errors_have_the_error_object_and_status()
    {
        var (s1, b1) = await Post("/v1/chat/completions", """{"model":"nope","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(HttpStatusCode.NotFound, s1);
        Assert.Equal("model_not_found", b1.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", b1.GetProperty("error").GetProperty("type").GetString());
        var (s2, b2) = await Post("/v1/chat/completions", """{"model":"qwen2-tiny","messages":[{"role":"user","content":"hi"}],"n":2}""");
        Assert.Equal(HttpStatusCode.BadRequest, s2);
        Assert.Equal("n", b2.GetProperty("error").GetProperty("param").GetString());
        var (s3, b3) = await Post("/v1/embeddings", """{"model":"bert-tiny","input":""" + "\"x\"");
        Assert.Equal(HttpStatusCode.BadRequest, s3);
        Assert.Contains("not valid JSON", b3.GetProperty("error").GetProperty("message").GetString());
        var (s4, b4) = await Post("/v1/embeddings", """{"model":"qwen2-tiny","input":"hi"}""");
        Assert.Equal(HttpStatusCode.BadRequest, s4);
        Assert.Contains("not an embedding model", b4.GetProperty("error").GetProperty("message").GetString());
        var (s5, b5) = await Post("/v1/embeddings", """{"model":"bert-tiny","input":[[1,2,3]]}""");
        Assert.Equal(HttpStatusCode.BadRequest, s5);
        Assert.Contains("check_embedding_ctx_length", b5.GetProperty("error").GetProperty("message").GetString());
        var (s6, b6) = await Post("/v1/chat/completions", """{"model":"qwen2-tiny","messages":[{"role":"user","content":"hi"}],"temperature":7}""");
        Assert.Equal(HttpStatusCode.BadRequest, s6);
        Assert.Contains("temperature", b6.GetProperty("error").GetProperty("message").GetString());
        var (s7, b7) = await Post("/v1/embeddings", JsonSerializer.Serialize(new { model = "bert-tiny", input = new string('a', 70 * 1024) }));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, s7);
        Assert.Equal("invalid_request_error", b7.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Models_and_health()
    {
        var models = JsonDocument.Parse(await fx.Http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal(["qwen2-tiny", "bert-tiny", "bert-tiny-seqcls"], models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.All(models.GetProperty("data").EnumerateArray(), m => Assert.True(m.GetProperty("created").GetInt64() > 1_700_000_000));
        var listed = OpenAi().GetOpenAIModelClient().GetModels().Value.Select(m => m.Id);
        Assert.Contains("qwen2-tiny", listed);
        using var health = await fx.Http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Tei_embed_predict_tokenize_and_info_equal_the_library()
    {
        var (s1, embed) = await Post("/embed", """{"inputs":["今天天气很好"],"model":"bert-tiny"}""");
        Assert.Equal(HttpStatusCode.OK, s1);
        var vector = SentenceEmbedder.Load(SharedPaths.Fixture("bert-tiny")).Embed("今天天气很好");
        SentenceEmbedder.L2Normalize(vector);   // TEI normalises by default
        Assert.Equal(vector, embed[0].EnumerateArray().Select(x => x.GetSingle()));

        var classifier = TextClassifier.Load(SharedPaths.Fixture("bert-tiny-seqcls"));
        var (s2, single) = await Post("/predict", """{"inputs":"今天天气很好"}""");
        Assert.Equal(HttpStatusCode.OK, s2);
        var expected = classifier.Classify("今天天气很好");
        Assert.Equal(expected.Scores.Select(s => (s.Label, s.Score)), single.EnumerateArray().Select(p => (p.GetProperty("label").GetString()!, p.GetProperty("score").GetSingle())));
        var (_, pair) = await Post("/predict", """{"inputs":[["今天天气很好"],["今天","天气"]],"raw_scores":true}""");
        var pairExpected = classifier.Classify(["今天天气很好", "今天"], pairs: [null, "天气"])[1];   // the same batch (padding changes the last bits)
        Assert.Equal(pairExpected.Logits.Max(), pair[1][0].GetProperty("score").GetSingle());

        var (s3, tokens) = await Post("/tokenize", """{"inputs":"今天天气","model":"bert-tiny"}""");
        Assert.Equal(HttpStatusCode.OK, s3);
        var enc = fx.Bert.Tokenizer.Encode("今天天气");
        Assert.Equal(enc.InputIds, tokens[0].EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
        Assert.True(tokens[0][0].GetProperty("special").GetBoolean());
        Assert.Equal(1, tokens[0][2].GetProperty("start").GetInt32());

        var info = JsonDocument.Parse(await fx.Http.GetStringAsync("/info?model=bert-tiny-seqcls")).RootElement;
        Assert.Equal("bert-tiny-seqcls", info.GetProperty("model_id").GetString());
        Assert.Equal(2, info.GetProperty("model_type").GetProperty("classifier").GetProperty("id2label").EnumerateObject().Count());
    }

    [Fact]
    public async Task Tei_errors_are_error_and_error_type_with_its_statuses()
    {
        var (s1, b1) = await Post("/embed", """{"inputs":[]}""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, s1);
        Assert.Equal("validation", b1.GetProperty("error_type").GetString());
        var (s2, b2) = await Post("/embed", """{"inputs":["a","b","c","d","e"]}""");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, s2);
        Assert.Contains("limit is 4", b2.GetProperty("error").GetString());
        var (s3, b3) = await Post("/embed", JsonSerializer.Serialize(new { inputs = new string('a', 70 * 1024) }));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, s3);
        Assert.Contains("larger than the limit", b3.GetProperty("error").GetString());
        var (s4, b4) = await Post("/predict", """{"inputs":"hi","model":"bert-tiny"}""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, s4);
        Assert.Contains("sequence-classification", b4.GetProperty("error").GetString());
        var (s5, b5) = await Post("/embed", JsonSerializer.Serialize(new { inputs = new string('好', 100) }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, s5);
        Assert.Equal("validation", b5.GetProperty("error_type").GetString());
    }
}

/// <summary>A client that disconnects mid-stream: the server stops its generation at the next step and serves the next request.</summary>
public class ServeDisconnectTests
{
    [Fact]
    public async Task A_client_that_disconnects_mid_stream_stops_its_generation()
    {
        using var folder = new LongGeneratingQwen();
        using var model = ServedModel.Load(folder.Dir, "long");
        await using var server = new SharpFormerServer([model], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent("""{"model":"long","prompt":"Hello","max_tokens":4000,"stream":true}""", Encoding.UTF8, "application/json"),
        };
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: {", await reader.ReadLineAsync());
        }   // disposing the unfinished response closes the connection
        Assert.Equal(1, await LongGeneratingQwen.WaitForCancelledGeneration(model));
        using var next = await http.PostAsync("/v1/completions", new StringContent("""{"model":"long","prompt":"Hello","max_tokens":2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Contains("\"completion_tokens\":2", await next.Content.ReadAsStringAsync());
    }
}

/// <summary>Sampling parameters reach generate() as OpenAI defines them (no top-k), seeded: the same text as the library.</summary>
public class ServeSamplingTests
{
    [Fact]
    public async Task Temperature_top_p_and_seed_sample_as_the_library_does()
    {
        using var model = ServedModel.Load(SharedPaths.Fixture("qwen2-tiny"));
        var ids = model.Tokenizer.EncodeForCausalLm("Hello, my dog is cute");
        var options = GenerationOptions.FromModelFolder(SharedPaths.Fixture("qwen2-tiny")) with
        {
            MaxNewTokens = 12, DoSample = true, Temperature = 0.8f, TopP = 0.9f, TopK = 0, Seed = 42,
        };
        var expected = Generation.Generate(model.LanguageModel!, [ids], options).Sequences[0];
        var (text, finish) = await model.GenerateTextAsync(ids, new SamplingRequest(12, 0.8f, 0.9f, 42));
        Assert.Equal(model.Tokenizer.DecodeForCausalLm(expected.NewIds), text);
        Assert.Equal(expected.NewIds.Length, finish.CompletionTokens);
        var (other, _) = await model.GenerateTextAsync(ids, new SamplingRequest(12, 0.8f, 0.9f, 43));
        Assert.NotEqual(text, other);
    }
}

/// <summary><c>sharpformer serve</c> as a user runs it: one-line errors for bad options, and a server that answers and stops cleanly on SIGTERM.</summary>
public class ServeCliTests
{
    static string Fixture(string name) => SharedPaths.Fixture(name);

    [Fact]
    public void Bad_options_are_one_line_errors()
    {
        CliHarness.AssertOneLineError(CliHarness.Run("serve", "--model", Path.Combine(Path.GetTempPath(), "no-such-model")), "no-such-model");
        CliHarness.AssertOneLineError(CliHarness.Run("serve", "--model", Fixture("bert-tiny"), "--port", "70000"), "--port");
        CliHarness.AssertOneLineError(CliHarness.Run("serve", "--model", Fixture("bert-tiny"), "--model", Fixture("bert-tiny")), "two models are named 'bert-tiny'");
    }

    [Fact]
    public async Task Serves_until_SIGTERM_then_exits_0()
    {
        using var p = Process.Start(CliHarness.StartInfo("serve", "--model", Fixture("bert-tiny"), "--port", "0"))!;
        try
        {
            var line = await p.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.NotNull(line);
            var address = line[(line.IndexOf(" on http://", StringComparison.Ordinal) + 4)..].Split(' ')[0];
            using var http = new HttpClient { BaseAddress = new Uri(address) };
            // The port opens first and the models load in the background: /health turns 200 once they are in.
            for (int i = 0; i < 600 && (await http.GetAsync("/health")).StatusCode != HttpStatusCode.OK; i++) await Task.Delay(100);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
            Assert.Contains("\"id\":\"bert-tiny\"", await http.GetStringAsync("/v1/models"));
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
            Assert.True(p.WaitForExit(60_000), "the server did not stop on SIGTERM");
            Assert.Equal(0, p.ExitCode);
        }
        finally
        {
            if (!p.HasExited) p.Kill(true);
        }
    }
}
