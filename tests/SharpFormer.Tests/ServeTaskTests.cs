using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using SharpFormer.AttentionViews;
using SharpFormer.Extensions.AI;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Server;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;
using Encoding = System.Text.Encoding;

namespace SharpFormer.Tests;

/// <summary>A copy of bert-tiny-seqcls whose labels are "0"/"1" (an LCQMC-style pair classifier): what /rerank serves.</summary>
public sealed class PairClassifierFolder : IDisposable
{
    public string Dir { get; } = Path.Combine(Directory.CreateTempSubdirectory("sf-pairs-").FullName, "pairs-tiny");

    public PairClassifierFolder()
    {
        Directory.CreateDirectory(Dir);
        var source = SharedPaths.Fixture("bert-tiny-seqcls");
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(Dir, Path.GetFileName(f)));
        var path = Path.Combine(Dir, "config.json");
        var o = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        o["id2label"] = new JsonObject { ["0"] = "0", ["1"] = "1" };
        o["label2id"] = new JsonObject { ["0"] = 0, ["1"] = 1 };
        File.WriteAllText(path, o.ToJsonString());
    }

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(Dir)!, recursive: true);
}

/// <summary>One Kestrel serving bert-tiny (masked LM + NSP), bert-tiny-ner, a pair classifier and gpt2-tiny for the task routes.</summary>
public sealed class TaskServerFixture : IAsyncLifetime
{
    readonly PairClassifierFolder _pairs = new();
    public SharpFormerServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new();
    public string PairsDir => _pairs.Dir;

    public async Task InitializeAsync()
    {
        var dirs = new[] { SharedPaths.Fixture("bert-tiny"), SharedPaths.Fixture("bert-tiny-ner"), _pairs.Dir, SharedPaths.Fixture("gpt2-tiny") };
        Server = new SharpFormerServer(dirs.Select(d => ServedModel.Load(d)).ToList(), new ServerOptions { Port = 0, MaxClientBatchSize = 4 });
        await Server.StartAsync();
        Http.BaseAddress = new Uri(Server.Address);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        _pairs.Dispose();
    }
}

/// <summary>
/// The routes no peer serves, and TEI's /rerank, end to end over loopback: every answer equals what the library task
/// (the one the CLI runs) gives for the same input, in the JSON the CLI's --json prints; errors are TEI's shape.
/// </summary>
public class ServeTaskTests(TaskServerFixture fx) : IClassFixture<TaskServerFixture>
{
    async Task<(HttpStatusCode Status, JsonNode Body)> Post(string path, string json)
    {
        using var response = await fx.Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }

    static void AssertTeiError(HttpStatusCode expected, string mentions, (HttpStatusCode Status, JsonNode Body) answer)
    {
        Assert.Equal(expected, answer.Status);
        var message = answer.Body["error"]!.GetValue<string>();
        Assert.Contains(mentions, message);
        Assert.DoesNotContain('\n', message);
        Assert.NotNull(answer.Body["error_type"]);
    }

    [Fact]
    public async Task Rerank_sorts_texts_by_the_pair_classifiers_probability_of_label_1()
    {
        string query = "今天天气很好";
        string[] texts = ["我喜欢读书", "今天天气不错", "明天会下雨"];
        var classifier = TextClassifier.Load(fx.PairsDir);
        var expected = classifier.Classify([query, query, query], pairs: texts);   // the same batch the server runs
        var probability = expected.Select(r => r.Scores.Single(s => s.Label == "1").Score).ToArray();
        var order = Enumerable.Range(0, 3).OrderByDescending(i => probability[i]).ToArray();

        var (status, body) = await Post("/rerank", JsonSerializer.Serialize(new { query, texts, return_text = true }));
        Assert.Equal(HttpStatusCode.OK, status);
        var ranked = body.AsArray();
        Assert.Equal(order, ranked.Select(r => r!["index"]!.GetValue<int>()));
        Assert.Equal(order.Select(i => probability[i]), ranked.Select(r => r!["score"]!.GetValue<float>()));
        Assert.Equal(order.Select(i => texts[i]), ranked.Select(r => r!["text"]!.GetValue<string>()));

        var (_, raw) = await Post("/rerank", JsonSerializer.Serialize(new { query, texts, raw_scores = true }));
        Assert.Equal(order.Select(i => expected[i].Logits[1] - expected[i].Logits[0]), raw.AsArray().Select(r => r!["score"]!.GetValue<float>()));
        Assert.Null(raw[0]!["text"]);

        AssertTeiError(HttpStatusCode.UnprocessableEntity, "'texts' is empty", await Post("/rerank", """{"query":"a","texts":[]}"""));
        AssertTeiError(HttpStatusCode.RequestEntityTooLarge, "limit is 4", await Post("/rerank", """{"query":"a","texts":["1","2","3","4","5"]}"""));
        AssertTeiError(HttpStatusCode.FailedDependency, "not a reranker", await Post("/rerank", """{"query":"a","texts":["b"],"model":"bert-tiny"}"""));
        AssertTeiError(HttpStatusCode.UnprocessableEntity, "'query' is required", await Post("/rerank", """{"texts":["b"]}"""));
    }

    [Fact]
    public async Task Fill_mask_equals_the_library_pipeline()
    {
        var pipe = FillMaskPipeline.Load(SharedPaths.Fixture("bert-tiny"));
        var (status, body) = await Post("/fill-mask", """{"inputs":"今天[MASK]气很好","top_k":3}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(JsonNode.DeepEquals(TaskJson.FillMask(pipe.Predict("今天[MASK]气很好", 3)), body), body.ToJsonString());

        var (_, batch) = await Post("/fill-mask", """{"inputs":["[MASK][MASK]很好","今天[MASK]气"]}""");
        var expected = pipe.Predict(["[MASK][MASK]很好", "今天[MASK]气"], 5);
        Assert.Equal(2, batch.AsArray().Count);
        Assert.True(JsonNode.DeepEquals(TaskJson.FillMask(expected[0]), batch[0]));
        Assert.NotNull(batch[0]!["joint"]);   // two masks: joint fillings

        AssertTeiError(HttpStatusCode.UnprocessableEntity, "no mask token", await Post("/fill-mask", """{"inputs":"今天天气很好"}"""));
        AssertTeiError(HttpStatusCode.UnprocessableEntity, "not a masked-language model", await Post("/fill-mask", """{"inputs":"[MASK]","model":"gpt2-tiny"}"""));
    }

    [Fact]
    public async Task Nsp_equals_the_library_predictor()
    {
        var nsp = NextSentencePredictor.Load(SharedPaths.Fixture("bert-tiny"));
        var (status, body) = await Post("/nsp", """{"inputs":["今天天气很好","我们去公园吧"]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(JsonNode.DeepEquals(TaskJson.NextSentence(nsp.Predict("今天天气很好", "我们去公园吧")), body), body.ToJsonString());
        var (_, batch) = await Post("/nsp", """{"inputs":[["今天天气很好","我们去公园吧"],["我喜欢读书","书很好看"]]}""");
        var expected = nsp.Predict([("今天天气很好", "我们去公园吧"), ("我喜欢读书", "书很好看")]);
        Assert.True(JsonNode.DeepEquals(new JsonArray(expected.Select(r => (JsonNode)TaskJson.NextSentence(r)).ToArray()), batch));

        AssertTeiError(HttpStatusCode.UnprocessableEntity, "a pair [text, text_pair]", await Post("/nsp", """{"inputs":"只有一句"}"""));
        AssertTeiError(HttpStatusCode.UnprocessableEntity, "not a next-sentence model", await Post("/nsp", """{"inputs":["a","b"],"model":"bert-tiny-ner"}"""));
    }

    [Fact]
    public async Task Ner_equals_the_library_tagger_with_each_aggregation()
    {
        var tagger = TokenClassifier.Load(SharedPaths.Fixture("bert-tiny-ner"));
        const string text = "李华在北京大学读书，他来自上海。";
        foreach (var strategy in new[] { "simple", "none", "max" })
        {
            var (status, body) = await Post("/ner", JsonSerializer.Serialize(new { inputs = text, aggregation_strategy = strategy }));
            Assert.Equal(HttpStatusCode.OK, status);
            var expected = tagger.Predict(text, Enum.Parse<AggregationStrategy>(strategy, ignoreCase: true));
            Assert.True(JsonNode.DeepEquals(TaskJson.Ner(expected), body), body.ToJsonString());
        }
        AssertTeiError(HttpStatusCode.UnprocessableEntity, "'aggregation_strategy' must be", await Post("/ner", """{"inputs":"李华","aggregation_strategy":"1"}"""));
    }

    [Fact]
    public async Task Perplexity_equals_the_library_on_a_decoder()
    {
        const string text = "Hello, my dog is cute and it likes to play in the garden.";
        var dir = SharedPaths.Fixture("gpt2-tiny");
        var expected = Perplexity.Compute(AutoModel.LoadCausalLM(dir, WeightOptions.Inference()), AutoTokenizer.FromFolder(dir), text);
        var (status, body) = await Post("/perplexity", JsonSerializer.Serialize(new { inputs = text }));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(expected.Perplexity, body["perplexity"]!.GetValue<double>());
        Assert.Equal(expected.Tokens, body["tokens"]!.GetValue<int>());
        AssertTeiError(HttpStatusCode.UnprocessableEntity, "not a causal language model", await Post("/perplexity", """{"inputs":"hi","model":"bert-tiny"}"""));
    }

    [Fact]
    public async Task Attention_gives_labelled_matrices_or_the_html_viewer()
    {
        var map = AttentionMap.Compute(SharedPaths.Fixture("gpt2-tiny"), "Hello, my dog");
        var (status, body) = await Post("/attention", """{"inputs":"Hello, my dog","model":"gpt2-tiny","layer":1,"head":2}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(map.Labels, body["tokens"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal("causal", body["kind"]!.GetValue<string>());
        var m = Assert.Single(body["matrices"]!.AsArray())!;
        for (int q = 0; q < map.Length; q++)
            Assert.Equal(map.Row(1, 2, q).ToArray(), m["weights"]![q]!.AsArray().Select(x => x!.GetValue<float>()));

        var (_, encoder) = await Post("/attention", """{"inputs":"今天天气","model":"bert-tiny","layer":0}""");
        Assert.Equal(["[CLS]", "今", "天", "天", "气", "[SEP]"], encoder["tokens"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal(4, encoder["matrices"]!.AsArray().Count);   // every head of layer 0

        using var html = await fx.Http.PostAsync("/attention?format=html", new StringContent("""{"inputs":"今天天气","model":"bert-tiny","layer":1,"head":3}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, html.StatusCode);
        Assert.Equal("text/html", html.Content.Headers.ContentType?.MediaType);
        var page = await html.Content.ReadAsStringAsync();
        Assert.Equal(AttentionHtml.Build(AttentionMap.Compute(SharedPaths.Fixture("bert-tiny"), "今天天气"), 1, 3), page);

        AssertTeiError(HttpStatusCode.UnprocessableEntity, "'layer' 9 is out of range", await Post("/attention", """{"inputs":"你好","model":"bert-tiny","layer":9}"""));
        AssertTeiError(HttpStatusCode.UnprocessableEntity, "'head' needs 'layer'", await Post("/attention", """{"inputs":"你好","head":0}"""));
    }
}

/// <summary>Admission (429 with Retry-After), readiness (503 while loading), /metrics, /openapi.json and /info's dtype.</summary>
public class ServeRobustnessTests
{
    static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_full_queue_is_429_with_Retry_After_in_each_route_familys_error_shape()
    {
        using var bert = ServedModel.Load(SharedPaths.Fixture("bert-tiny"));
        await using var server = new SharpFormerServer([bert], new ServerOptions { Port = 0, MaxQueue = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var held = server.Queues["bert-tiny"].TryAdmit();   // the one request the model may hold
        Assert.NotNull(held);

        using (var tei = await http.PostAsync("/embed", Json("""{"inputs":"你好"}""")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, tei.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), tei.Headers.RetryAfter?.Delta);
            var body = JsonNode.Parse(await tei.Content.ReadAsStringAsync())!;
            Assert.Equal("overloaded", body["error_type"]!.GetValue<string>());
            Assert.Contains("overloaded", body["error"]!.GetValue<string>());
        }
        using (var openAi = await http.PostAsync("/v1/embeddings", Json("""{"model":"bert-tiny","input":"你好"}""")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, openAi.StatusCode);
            Assert.NotNull(openAi.Headers.RetryAfter);
            var error = JsonNode.Parse(await openAi.Content.ReadAsStringAsync())!["error"]!;
            Assert.Equal("rate_limit_exceeded", error["code"]!.GetValue<string>());
        }
        Assert.Equal(2, server.Queues["bert-tiny"].Rejected);
        held!.Dispose();
        using var ok = await http.PostAsync("/embed", Json("""{"inputs":"你好"}"""));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task A_running_generation_fills_a_queue_of_0_and_frees_it_when_its_client_leaves()
    {
        using var folder = new LongGeneratingQwen();
        using var model = ServedModel.Load(folder.Dir, "long");
        await using var server = new SharpFormerServer([model], new ServerOptions { Port = 0, MaxQueue = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json("""{"model":"long","prompt":"Hello","max_tokens":4000,"stream":true}""") };
        using (var stream = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: {", await reader.ReadLineAsync());
            using var refused = await http.PostAsync("/v1/completions", Json("""{"model":"long","prompt":"Hello","max_tokens":2}"""));
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }
        Assert.Equal(1, await LongGeneratingQwen.WaitForCancelledGeneration(model));
        for (int i = 0; i < 500 && server.Queues["long"].Admitted > 0; i++) await Task.Delay(20);
        using var next = await http.PostAsync("/v1/completions", Json("""{"model":"long","prompt":"Hello","max_tokens":2}"""));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Health_is_503_until_the_models_are_loaded_and_other_routes_say_so()
    {
        using var release = new ManualResetEventSlim();
        await using var server = new SharpFormerServer(() =>
        {
            release.Wait(TimeSpan.FromMinutes(1));
            return [ServedModel.Load(SharedPaths.Fixture("bert-tiny"))];
        }, new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        using (var health = await http.GetAsync("/health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Equal("loading", JsonNode.Parse(await health.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
        }
        using (var embed = await http.PostAsync("/embed", Json("""{"inputs":"你好"}""")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, embed.StatusCode);
            Assert.Equal("unhealthy", JsonNode.Parse(await embed.Content.ReadAsStringAsync())!["error_type"]!.GetValue<string>());
        }
        using (var models = await http.GetAsync("/v1/models"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, models.StatusCode);
            Assert.Contains("still loading", JsonNode.Parse(await models.Content.ReadAsStringAsync())!["error"]!["message"]!.GetValue<string>());
        }
        release.Set();
        await server.Ready.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
        Assert.Contains("\"id\":\"bert-tiny\"", await http.GetStringAsync("/v1/models"));
    }

    [Fact]
    public async Task Metrics_count_requests_batches_and_generated_tokens_in_prometheus_text()
    {
        using var bert = ServedModel.Load(SharedPaths.Fixture("bert-tiny"));
        using var qwen = ServedModel.Load(SharedPaths.Fixture("qwen2-tiny"));
        await using var server = new SharpFormerServer([bert, qwen], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        (await http.PostAsync("/embed", Json("""{"inputs":["你好","今天","天气"]}"""))).Dispose();
        (await http.PostAsync("/embed", Json("""{"inputs":[]}"""))).Dispose();
        using var completion = await http.PostAsync("/v1/completions", Json("""{"model":"qwen2-tiny","prompt":"Hello","max_tokens":5}"""));
        int generated = JsonNode.Parse(await completion.Content.ReadAsStringAsync())!["usage"]!["completion_tokens"]!.GetValue<int>();

        using var response = await http.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n');
        double Value(string series) => double.Parse(Assert.Single(lines, l => l.StartsWith(series + " ", StringComparison.Ordinal))[(series.Length + 1)..],
                                                    System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(1, Value("""sharpformer_requests_total{route="/embed",status="200"}"""));
        Assert.Equal(1, Value("""sharpformer_requests_total{route="/embed",status="422"}"""));
        Assert.Equal(1, Value("""sharpformer_requests_total{route="/v1/completions",status="200"}"""));
        Assert.Equal(3, Value("""sharpformer_batch_size_sum{model="bert-tiny",route="/embed"}"""));
        Assert.Equal(generated, Value("""sharpformer_generated_tokens_total{model="qwen2-tiny"}"""));
        Assert.Equal(1, Value("""sharpformer_generation_tokens_per_second_count{model="qwen2-tiny"}"""));
        Assert.Equal(2, Value("""sharpformer_request_duration_seconds_count{route="/embed"}"""));
        Assert.Equal(0, Value("""sharpformer_queue_depth{model="bert-tiny"}"""));
        Assert.Equal(0, Value("sharpformer_requests_in_flight"));
    }

    [Fact]
    public async Task OpenAPI_document_lists_every_route_and_info_reports_the_loaded_dtype()
    {
        using var bert = ServedModel.Load(SharedPaths.Fixture("bert-tiny"), precision: WeightPrecision.BFloat16);
        await using var server = new SharpFormerServer([bert], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var doc = JsonNode.Parse(await http.GetStringAsync("/openapi.json"))!;
        var paths = doc["paths"]!.AsObject().Select(p => p.Key).ToHashSet();
        string[] routes = ["/v1/models", "/v1/models/{id}", "/v1/embeddings", "/v1/completions", "/v1/chat/completions", "/embed", "/predict", "/rerank",
                           "/tokenize", "/info", "/fill-mask", "/nsp", "/ner", "/perplexity", "/attention", "/health", "/metrics"];
        Assert.Empty(routes.Except(paths));
        Assert.NotNull(doc["paths"]!["/rerank"]!["post"]!["requestBody"]);
        Assert.False(string.IsNullOrEmpty(doc["paths"]!["/rerank"]!["post"]!["summary"]?.GetValue<string>()));

        var info = JsonNode.Parse(await http.GetStringAsync("/info"))!;
        Assert.Equal("bfloat16", info["model_dtype"]!.GetValue<string>());
    }
}

/// <summary>IChatClient refuses the ChatOptions it cannot honour, naming them, and honours TopK.</summary>
public class ChatClientOptionTests
{
    static readonly Lazy<ServedModel> Qwen = new(() => ServedModel.Load(SharedPaths.Fixture("qwen2-tiny")));

    [Fact]
    public async Task Options_it_cannot_honour_are_refused_by_name()
    {
        IChatClient client = new SharpFormerChatClient(Qwen.Value);
        ChatMessage[] hi = [new(ChatRole.User, "你好")];
        var refused = new (ChatOptions Options, string Name)[]
        {
            (new ChatOptions { FrequencyPenalty = 0.5f }, "FrequencyPenalty"),
            (new ChatOptions { PresencePenalty = 0.5f }, "PresencePenalty"),
            (new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "one")] }, "Tools"),
            (new ChatOptions { ResponseFormat = ChatResponseFormat.Json }, "ResponseFormat"),
            (new ChatOptions { ModelId = "gpt-4o" }, "ModelId 'gpt-4o'"),
            (new ChatOptions { ConversationId = "c1" }, "ConversationId"),
            (new ChatOptions { AdditionalProperties = new() { ["min_p"] = 0.1 } }, "AdditionalProperties (min_p)"),
        };
        foreach (var (options, name) in refused)
        {
            var e = await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(hi, options));
            Assert.Contains(name, e.Message);
        }
        var image = new ChatMessage(ChatRole.User, [new DataContent(new byte[] { 1, 2 }, "image/png")]);
        Assert.Contains("DataContent", (await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync([image]))).Message);
    }

    [Fact]
    public async Task TopK_samples_as_the_library_does()
    {
        var model = Qwen.Value;
        var ids = model.ChatPrompt([new("user", "你好")]);
        var options = GenerationOptions.FromModelFolder(SharedPaths.Fixture("qwen2-tiny")) with { MaxNewTokens = 10, DoSample = true, TopK = 3, TopP = 1f, Temperature = 1f, Seed = 7 };
        var expected = Generation.Generate(model.LanguageModel!, [ids], options).Sequences[0];
        var response = await new SharpFormerChatClient(model).GetResponseAsync([new ChatMessage(ChatRole.User, "你好")],
            new ChatOptions { MaxOutputTokens = 10, TopK = 3, Seed = 7 });
        Assert.Equal(model.Tokenizer.DecodeForCausalLm(expected.NewIds), response.Text);
    }
}

/// <summary>SIGTERM drains a real <c>sharpformer serve</c>: the request in flight finishes, new ones get 503, the process exits 0.</summary>
public class ServeDrainTests
{
    /// <summary>A request body sent in two parts, the second only once <paramref name="gate"/> completes: the request stays in flight until then.</summary>
    sealed class GatedContent(string first, string rest, Task gate) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(first));
            await stream.FlushAsync();
            await gate;
            await stream.WriteAsync(Encoding.UTF8.GetBytes(rest));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;   // chunked: the server cannot know the body is unfinished
        }
    }

    [Fact]
    public async Task SIGTERM_lets_the_request_in_flight_finish_answers_new_ones_503_and_exits_0()
    {
        using var p = Process.Start(CliHarness.StartInfo("serve", "--model", SharedPaths.Fixture("bert-tiny"), "--port", "0"))!;
        try
        {
            var line = await p.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.NotNull(line);
            var address = line[(line.IndexOf(" on http://", StringComparison.Ordinal) + 4)..].Split(' ')[0];
            using var http = new HttpClient { BaseAddress = new Uri(address) };
            using var probe = new HttpClient { BaseAddress = new Uri(address) };
            for (int i = 0; i < 600 && (await probe.GetAsync("/health")).StatusCode != HttpStatusCode.OK; i++) await Task.Delay(100);

            var finishBody = new TaskCompletionSource();
            var inFlight = http.PostAsync("/v1/embeddings", new GatedContent("{\"model\":\"bert-tiny\",", "\"input\":\"今天天气很好\"}", finishBody.Task));
            async Task<string> Metrics() => await probe.GetStringAsync("/metrics");
            for (int i = 0; i < 600 && !(await Metrics()).Contains("\nsharpformer_requests_in_flight 1"); i++) await Task.Delay(50);
            Assert.Contains("\nsharpformer_requests_in_flight 1", await Metrics());

            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
            HttpStatusCode health = HttpStatusCode.OK;
            for (int i = 0; i < 600 && (health = (await probe.GetAsync("/health")).StatusCode) == HttpStatusCode.OK; i++) await Task.Delay(50);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health);
            using (var late = new HttpClient { BaseAddress = new Uri(address) })
            using (var refused = await late.PostAsync("/embed", new StringContent("""{"inputs":"你好"}""", Encoding.UTF8, "application/json")))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Contains("shutting down", await refused.Content.ReadAsStringAsync());
            }
            Assert.False(p.HasExited, "the server stopped before the request in flight finished");

            finishBody.SetResult();
            using var answer = await inFlight.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            var vector = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!["data"]![0]!["embedding"]!.AsArray();
            Assert.Equal(SentenceEmbedder.Load(SharedPaths.Fixture("bert-tiny")).Embed("今天天气很好"), vector.Select(x => x!.GetValue<float>()));
            Assert.True(p.WaitForExit(60_000), "the server did not stop after draining");
            Assert.Equal(0, p.ExitCode);
        }
        finally
        {
            if (!p.HasExited) p.Kill(true);
        }
    }
}
