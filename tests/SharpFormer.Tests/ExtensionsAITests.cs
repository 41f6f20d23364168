using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using SharpFormer.Extensions.AI;
using SharpFormer.Models;
using SharpFormer.Tasks;
using Msg = SharpFormer.Templates.ChatMessage;

namespace SharpFormer.Tests;

/// <summary>
/// A copy of qwen2-tiny that generates for thousands of steps without stopping (context 4096, generation_config's
/// min_new_tokens 4000 suppresses EOS): long enough that a cancellation always arrives mid-generation.
/// </summary>
public sealed class LongGeneratingQwen : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("sf-long-qwen-").FullName;

    public LongGeneratingQwen()
    {
        var source = SharedPaths.Fixture("qwen2-tiny");
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(Dir, Path.GetFileName(f)));
        Edit("config.json", o => o["max_position_embeddings"] = 4096);
        Edit("generation_config.json", o => o["min_new_tokens"] = 4000);
    }

    void Edit(string file, Action<JsonObject> change)
    {
        var path = Path.Combine(Dir, file);
        var o = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        change(o);
        File.WriteAllText(path, o.ToJsonString());
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);

    /// <summary>Waits (bounded) until <paramref name="model"/> reports a cancelled generation.</summary>
    public static async Task<long> WaitForCancelledGeneration(ServedModel model)
    {
        for (int i = 0; i < 3000 && model.GenerationsCancelled == 0; i++) await Task.Delay(20);
        return model.GenerationsCancelled;
    }
}

/// <summary>Microsoft.Extensions.AI over served models: IChatClient and IEmbeddingGenerator give the library's own outputs.</summary>
public class ExtensionsAITests
{
    static string QwenDir => SharedPaths.Fixture("qwen2-tiny");
    static readonly Lazy<ServedModel> Qwen = new(() => ServedModel.Load(QwenDir));
    static readonly Lazy<ChatModel> Library = new(() => ChatModel.Load(QwenDir, WeightOptions.Inference()));
    static ChatReply LibraryReply(IReadOnlyList<Msg> messages, int maxNew) =>
        Library.Value.Reply(messages, GenerationOptions.FromModelFolder(QwenDir) with { MaxNewTokens = maxNew });

    [Fact]
    public async Task Chat_client_response_equals_the_library_reply_with_instructions_usage_and_finish()
    {
        IChatClient client = new SharpFormerChatClient(Qwen.Value);
        var options = new ChatOptions { MaxOutputTokens = 8, Instructions = "Be brief." };
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "你好")], options);
        var expected = LibraryReply([new("system", "Be brief."), new("user", "你好")], 8);
        Assert.Equal(expected.Text, response.Text);
        Assert.Equal(expected.PromptIds.Length, response.Usage!.InputTokenCount);
        Assert.Equal(expected.NewIds.Length, response.Usage.OutputTokenCount);
        Assert.Equal(expected.StoppedOnEos ? ChatFinishReason.Stop : ChatFinishReason.Length, response.FinishReason);
        Assert.Equal("qwen2-tiny", response.ModelId);
        Assert.Equal(8, options.MaxOutputTokens);
        Assert.Equal("Be brief.", options.Instructions);
    }

    [Fact]
    public async Task Chat_client_streams_pieces_with_stable_ids_and_a_final_usage_update()
    {
        IChatClient client = new SharpFormerChatClient(Qwen.Value);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Hello, my dog is cute")], new ChatOptions { MaxOutputTokens = 10 }))
            updates.Add(u);
        var expected = LibraryReply([new("user", "Hello, my dog is cute")], 10);
        Assert.Equal(expected.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.True(updates.Count > 2);
        Assert.Single(updates.Select(u => u.ResponseId).Distinct());
        Assert.Single(updates.Select(u => u.MessageId).Distinct());
        Assert.NotNull(updates[^1].FinishReason);
        var usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>());
        Assert.Equal(expected.NewIds.Length, usage.Details.OutputTokenCount);
        Assert.Same(usage, Assert.Single(updates[^1].Contents.OfType<UsageContent>()));
    }

    [Fact]
    public async Task Chat_client_stop_sequences_trim_the_reply()
    {
        var expected = LibraryReply([new("user", "你好")], 12);
        var stop = expected.Text.Substring(expected.Text.Length / 2, 2);
        var response = await new SharpFormerChatClient(Qwen.Value).GetResponseAsync([new ChatMessage(ChatRole.User, "你好")],
            new ChatOptions { MaxOutputTokens = 12, StopSequences = [stop] });
        Assert.Equal(expected.Text[..expected.Text.IndexOf(stop, StringComparison.Ordinal)], response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
    }

    [Fact]
    public async Task Cancelling_a_stream_stops_generation_and_frees_the_model()
    {
        using var folder = new LongGeneratingQwen();
        using var model = ServedModel.Load(folder.Dir, "long");
        using var cts = new CancellationTokenSource();
        int received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in new SharpFormerChatClient(model).GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "你好")], null, cts.Token))
                if (++received == 1) cts.Cancel();
        });
        Assert.Equal(1, await LongGeneratingQwen.WaitForCancelledGeneration(model));
        var next = await new SharpFormerChatClient(model).GetResponseAsync([new ChatMessage(ChatRole.User, "你好")], new ChatOptions { MaxOutputTokens = 2 });
        Assert.Equal(2, next.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Embedding_generator_equals_the_library_vectors()
    {
        using var model = ServedModel.Load(SharedPaths.Fixture("bert-tiny"));
        IEmbeddingGenerator<string, Embedding<float>> generator = new SharpFormerEmbeddingGenerator(model);
        string[] texts = ["今天天气很好", "我喜欢读书"];
        var embeddings = await generator.GenerateAsync(texts);
        var expected = SentenceEmbedder.Load(SharedPaths.Fixture("bert-tiny")).Embed(texts);
        Assert.Equal(expected[0], embeddings[0].Vector.ToArray());
        Assert.Equal(expected[1], embeddings[1].Vector.ToArray());
        Assert.Equal(8 + 7, embeddings.Usage!.InputTokenCount);
        Assert.Equal(expected[0].Length, generator.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);
        await Assert.ThrowsAsync<SharpFormerException>(() => new SharpFormerEmbeddingGenerator(Qwen.Value).GenerateAsync(texts));
    }

    [Fact]
    public void Stop_matcher_holds_back_possible_stops_and_trims_at_the_first()
    {
        var m = new StopMatcher(["lo!"]);
        Assert.Equal("He", m.Push("Hel"));        // "l" may start "lo!"
        Assert.Equal("l", m.Push("lo! more"));
        Assert.True(m.Stopped);
        Assert.Equal("", m.Push("anything"));
        Assert.Equal("", m.Flush());

        var held = new StopMatcher(["xyz"]);
        Assert.Equal("ab", held.Push("abx"));
        Assert.Equal("x", held.Flush());           // generation ended: what was held back is released
        Assert.False(held.Stopped);

        Assert.Equal("z", new StopMatcher(["c", "ab"]).Push("zabc"));
        Assert.Equal("text", new StopMatcher(null).Push("text"));
        Assert.Throws<SharpFormerException>(() => new StopMatcher([""]));
    }
}
