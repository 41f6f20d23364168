using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpFormer.Extensions.AI;
using SharpFormer.Server;
using SharpFormer.Tasks;
using Xunit;

namespace SharpFormer.Tests;

/// <summary>
/// Concurrency in <c>serve</c> (a real Kestrel on loopback): concurrent streamed generations share decode steps and each
/// still equals its solo greedy output; concurrent /embed requests run in batches and each equals its solo embedding;
/// a client that disconnects frees its decode slot.
/// </summary>
public class ServeConcurrencyTests
{
    static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>A streamed completion's text (its <c>data:</c> chunks joined) and its completion token count.</summary>
    static async Task<(string Text, int Tokens)> StreamCompletion(HttpClient http, string model, string prompt, int maxTokens)
    {
        var body = JsonSerializer.Serialize(new { model, prompt, max_tokens = maxTokens, temperature = 0, stream = true, stream_options = new { include_usage = true } });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(body) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        int tokens = -1;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
            using var chunk = JsonDocument.Parse(line[6..]);
            foreach (var c in chunk.RootElement.GetProperty("choices").EnumerateArray()) text.Append(c.GetProperty("text").GetString());
            if (chunk.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                tokens = usage.GetProperty("completion_tokens").GetInt32();
        }
        Assert.True(tokens > 0, "the stream reported its usage");
        return (text.ToString(), tokens);
    }

    [Theory]
    [InlineData("gpt2-tiny")]
    [InlineData("qwen2-tiny")]
    public async Task Eight_concurrent_streamed_completions_share_decode_steps_and_each_equals_its_solo_greedy_output(string name)
    {
        using var model = ServedModel.Load(SharedPaths.Fixture(name));
        await using var server = new SharpFormerServer([model], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        string[] prompts = ["Hello, my dog", "The quick brown fox", "今天天气", "Once upon a time", "1 2 3 4", "你好，世界", "A B C", "cute"];
        const int max = 24;
        var runs = await Task.WhenAll(prompts.Select(p => StreamCompletion(http, name, p, max)));
        for (int i = 0; i < prompts.Length; i++)
        {
            var ids = model.Tokenizer.EncodeForCausalLm(prompts[i]);
            var solo = Generation.Generate(model.LanguageModel!, [ids], model.Options(new SamplingRequest(max, Temperature: 0), ids.Length)).Sequences[0];
            Assert.Equal(model.Tokenizer.DecodeForCausalLm(solo.NewIds), runs[i].Text);
            Assert.Equal(solo.NewIds.Length, runs[i].Tokens);
        }
        long total = runs.Sum(r => r.Tokens);
        Assert.Equal(total, model.Scheduler.Tokens);
        Assert.True(model.Scheduler.Steps < total, $"{model.Scheduler.Steps} decode steps for {total} tokens: the generations did not share steps");
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Matches($"sharpformer_decode_batch_size_count{{model=\"{name}\"}} [1-9]", metrics);
    }

    /// <summary>A histogram's observation count and the count of observations at most 1, from the Prometheus text.</summary>
    static (double Count, double AtMostOne) Histogram(string metrics, string metric, string model)
    {
        double Read(string pattern) => double.Parse(Regex.Match(metrics, pattern).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        return (Read($"{metric}_count{{model=\"{model}\"}} ([0-9.e+]+)"), Read($"{metric}_bucket{{model=\"{model}\",le=\"1\"}} ([0-9.e+]+)"));
    }

    [Fact]
    public async Task Warm_up_sends_one_request_through_each_loop_a_model_serves()
    {
        using var classifier = ServedModel.Load(SharedPaths.Fixture("bert-tiny-seqcls"));
        var batches = new List<int>();
        classifier.BatchCompleted += (requests, _) => { lock (batches) batches.Add(requests); };
        await classifier.WarmUpAsync();
        Assert.Equal([1, 1], batches);   // the embedding batcher, then the classification batcher

        using var generator = ServedModel.Load(SharedPaths.Fixture("gpt2-tiny"));
        int steps = 0;
        generator.DecodeStepCompleted += _ => Interlocked.Increment(ref steps);
        await generator.WarmUpAsync();
        Assert.Equal(2, generator.Scheduler.Tokens);   // the prefill's token and one decode step's
        Assert.True(steps >= 1, "no decode step ran");
    }

    [Fact]
    public async Task Sixteen_concurrent_embed_requests_run_in_batches_and_each_equals_its_solo_embedding()
    {
        // A batching wait makes the batch deterministic: the first request waits for the others that arrive meanwhile.
        using var model = ServedModel.Load(SharedPaths.Fixture("bert-tiny"), serving: new ServingOptions { BatchWait = TimeSpan.FromMilliseconds(500) });
        await using var server = new SharpFormerServer([model], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var texts = Enumerable.Range(0, 16).Select(i => i % 2 == 0 ? $"今天天气很好 {i}" : $"a somewhat longer sentence, number {i}, that pads the shorter ones").ToArray();
        var answers = await Task.WhenAll(texts.Select(async t =>
        {
            using var r = await http.PostAsync("/embed", Json(JsonSerializer.Serialize(new { inputs = t })));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            return doc.RootElement[0].EnumerateArray().Select(x => x.GetSingle()).ToArray();
        }));
        for (int i = 0; i < texts.Length; i++)
        {
            var solo = model.Embedder!.Embed(texts[i]);
            SentenceEmbedder.L2Normalize(solo);
            TensorAssert.Close(solo, answers[i], 1e-5f, texts[i]);
        }
        var (count, single) = Histogram(await http.GetStringAsync("/metrics"), "sharpformer_encoder_batch_requests", "bert-tiny");
        Assert.True(count < 16 && count > single, $"{count} batches for 16 requests, {single} of one request: none was batched");
    }

    [Fact]
    public async Task No_batching_serves_each_embed_request_alone()
    {
        using var model = ServedModel.Load(SharedPaths.Fixture("bert-tiny"), serving: new ServingOptions { Batching = false, BatchWait = TimeSpan.FromMilliseconds(500) });
        await using var server = new SharpFormerServer([model], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var statuses = await Task.WhenAll(Enumerable.Range(0, 6).Select(async i =>
        {
            using var r = await http.PostAsync("/embed", Json($$"""{"inputs":"文本 {{i}}"}"""));
            return r.StatusCode;
        }));
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        var (count, single) = Histogram(await http.GetStringAsync("/metrics"), "sharpformer_encoder_batch_requests", "bert-tiny");
        Assert.Equal(6, count);
        Assert.Equal(6, single);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_frees_its_decode_slot()
    {
        using var folder = new LongGeneratingQwen();
        // One decode slot: a later request can only run once the disconnected one has left it.
        using var model = ServedModel.Load(folder.Dir, "long", serving: new ServingOptions { MaxConcurrentGenerations = 1 });
        await using var server = new SharpFormerServer([model], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json("""{"model":"long","prompt":"Hello","max_tokens":4000,"stream":true}""") };
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: {", await reader.ReadLineAsync());
        }   // disposing the unfinished response closes the connection
        Assert.Equal(1, await LongGeneratingQwen.WaitForCancelledGeneration(model));
        using var next = await http.PostAsync("/v1/completions", Json("""{"model":"long","prompt":"Hello","max_tokens":2}"""));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Contains("\"completion_tokens\":2", await next.Content.ReadAsStringAsync());
        Assert.Equal(1, model.Scheduler.MaxBatch);
        Assert.True(model.Scheduler.Tokens < 4000, $"the disconnected generation ran on for {model.Scheduler.Tokens} tokens");
        Assert.Equal(0, model.Waiting);
    }
}
