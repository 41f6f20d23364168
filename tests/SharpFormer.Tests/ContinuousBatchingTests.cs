using System.Text.Json;
using SharpFormer.Models;
using SharpFormer.Tasks;
using Xunit;

namespace SharpFormer.Tests;

/// <summary>
/// Continuous batching: the KV cache's slot-by-slot use (each sequence at its own length) and the decode scheduler
/// (requests joining and leaving a running batch) give what each prompt gives alone — HF's greedy ids exactly.
/// </summary>
public class ContinuousBatchingTests
{
    public static TheoryData<string> Models => new() { "gpt2-tiny", "qwen2-tiny", "llama-tiny" };

    static readonly Dictionary<string, Lazy<ICausalLM>> Loaded = new()
    {
        ["gpt2-tiny"] = new(() => AutoModel.LoadCausalLM(SharedPaths.Fixture("gpt2-tiny"))),
        ["qwen2-tiny"] = new(() => AutoModel.LoadCausalLM(SharedPaths.Fixture("qwen2-tiny"))),
        ["llama-tiny"] = new(() => AutoModel.LoadCausalLM(SharedPaths.Fixture("llama-tiny"))),
    };

    static int[] Ints(JsonElement a) => a.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    /// <summary>The fixture's greedy cases: prompt ids and HF's 12 new ids.</summary>
    static List<(int[] Prompt, int[] NewIds)> GreedyCases(string m)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture(m, "goldens.json")));
        var g = doc.RootElement.GetProperty("generation");
        if (g.TryGetProperty("cases", out var cases)) g = cases;   // the Llama-layout fixtures nest them
        return g.EnumerateObject().Where(c => c.Value.ValueKind == JsonValueKind.Object && c.Value.TryGetProperty("new_ids", out _))
            .Select(c => (Ints(c.Value.GetProperty("prompt_ids")), Ints(c.Value.GetProperty("new_ids")))).ToList();
    }

    static GenerationOptions Greedy(string m, int newTokens = 12) =>
        GenerationOptions.FromModelFolder(SharedPaths.Fixture(m)) with { MaxNewTokens = newTokens, DoSample = false };

    [Theory]
    [MemberData(nameof(Models))]
    public void Slots_at_different_lengths_give_each_sequence_its_own_logits(string m)
    {
        var model = Loaded[m].Value;
        int v = model.Shape.VocabSize;
        int[][] prompts = [[5, 17, 9, 33, 2, 41, 7], [12, 3], [8, 8, 21, 30]];
        // Reference: each sequence alone, prompt then two more tokens, uniform cache.
        int[][] extra = [[11, 4], [6, 19], [25, 1]];
        var expected = new float[prompts.Length][];
        for (int i = 0; i < prompts.Length; i++)
        {
            var full = prompts[i].Concat(extra[i]).ToArray();
            var logits = model.Forward([full]).Logits.Span;
            expected[i] = logits.Slice((full.Length - 1) * v, v).ToArray();
        }
        // Slots out of order (slot 2 holds sequence 0), the step run over two slots, then all three.
        var cache = model.CreateCache(4, capacity: 16);
        var row = new float[v];
        int[] slotOf = [2, 0, 3];
        for (int i = 0; i < prompts.Length; i++) model.PrefillSlot(slotOf[i], prompts[i], cache, row);
        Assert.Equal(prompts[0].Length, cache.SlotLength(2));
        var step = new float[3 * v];
        model.DecodeSlots([slotOf[1], slotOf[0]], [extra[1][0], extra[0][0]], cache, step.AsSpan(0, 2 * v));
        model.DecodeSlots([slotOf[2]], [extra[2][0]], cache, step.AsSpan(0, v));
        model.DecodeSlots(slotOf, [extra[0][1], extra[1][1], extra[2][1]], cache, step);
        for (int i = 0; i < prompts.Length; i++)
            TensorAssert.Close(expected[i], step.AsSpan(i * v, v).ToArray(), 1e-4f, $"{m} sequence {i}");
        Assert.Equal(prompts[1].Length + 2, cache.SlotLength(0));
        // The uniform API refuses a cache in slot use, and an empty slot cannot be decoded.
        Assert.Throws<SharpFormerException>(() => model.DecodeStep([1, 1, 1, 1], [0, 0, 0, 0], cache, new float[4 * v]));
        Assert.Throws<SharpFormerException>(() => model.DecodeSlots([1], [3], cache, row));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task Concurrent_requests_get_hf_greedy_ids(string m)
    {
        var model = Loaded[m].Value;
        var cases = GreedyCases(m);
        using var scheduler = new DecodeScheduler(model, maxBatch: 4, maxContext: 64);
        var runs = cases.Select(c => Collect(scheduler, c.Prompt, Greedy(m))).ToArray();
        var outputs = await Task.WhenAll(runs);
        for (int i = 0; i < cases.Count; i++)
        {
            var ids = outputs[i].Select(t => t.Id).ToArray();
            // HF's ids up to the first EOS (generate pads after it), each request ending with one finish reason.
            Assert.Equal(cases[i].NewIds.Take(ids.Length), ids);
            Assert.NotNull(outputs[i][^1].FinishReason);
            Assert.All(outputs[i].SkipLast(1), t => Assert.Null(t.FinishReason));
            if (outputs[i][^1].FinishReason == "length") Assert.Equal(12, ids.Length);
        }
        Assert.True(scheduler.Steps < outputs.Sum(o => o.Count), "the requests shared decode steps");
    }

    [Fact]
    public async Task A_request_joining_a_running_batch_and_one_leaving_it_change_nothing()
    {
        const string m = "qwen2-tiny";
        var model = Loaded[m].Value;
        var cases = GreedyCases(m);
        using var scheduler = new DecodeScheduler(model, maxBatch: 2, maxContext: 64);
        var first = scheduler.GenerateAsync(cases[0].Prompt, Greedy(m)).GetAsyncEnumerator();
        var firstIds = new List<int>();
        for (int k = 0; k < 4; k++) { Assert.True(await first.MoveNextAsync()); firstIds.Add(first.Current.Id); }
        // Joins while the first is mid-sequence; a third waits for a free slot (maxBatch 2), then runs.
        var second = Collect(scheduler, cases[1 % cases.Count].Prompt, Greedy(m, 5));
        var third = Collect(scheduler, cases[2 % cases.Count].Prompt, Greedy(m, 3));
        while (await first.MoveNextAsync()) firstIds.Add(first.Current.Id);
        Assert.Equal(cases[0].NewIds.Take(firstIds.Count), firstIds);
        Assert.Equal(cases[1 % cases.Count].NewIds.Take(5), (await second).Select(t => t.Id));
        Assert.Equal(cases[2 % cases.Count].NewIds.Take(3), (await third).Select(t => t.Id));
    }

    [Fact]
    public async Task A_cancelled_request_leaves_at_the_next_step_and_the_others_finish()
    {
        const string m = "gpt2-tiny";
        var model = Loaded[m].Value;
        var cases = GreedyCases(m);
        using var scheduler = new DecodeScheduler(model, maxBatch: 2);
        using var cts = new CancellationTokenSource();
        var long_ = GenerationOptions.FromModelFolder(SharedPaths.Fixture(m)) with { MaxNewTokens = 50, DoSample = false, EosTokenIds = [] };
        var cancelled = scheduler.GenerateAsync(cases[0].Prompt, long_, cts.Token).GetAsyncEnumerator();
        Assert.True(await cancelled.MoveNextAsync());
        var other = Collect(scheduler, cases[1 % cases.Count].Prompt, Greedy(m));
        cts.Cancel();
        int after = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { while (await cancelled.MoveNextAsync()) after++; });
        // However far the loop got before it saw the cancellation (a busy machine can delay the caller), nothing more is handed out.
        Assert.True(after == 0, $"the cancelled request went on for {after} tokens");
        var ids = (await other).Select(t => t.Id).ToArray();
        Assert.Equal(cases[1 % cases.Count].NewIds.Take(ids.Length), ids);
        // Its slot is free again: two more requests run side by side.
        var both = await Task.WhenAll(Collect(scheduler, cases[0].Prompt, Greedy(m, 2)), Collect(scheduler, cases[0].Prompt, Greedy(m, 2)));
        Assert.All(both, o => Assert.Equal(cases[0].NewIds.Take(2), o.Select(t => t.Id)));
    }

    [Fact]
    public async Task Seeded_sampling_matches_generate_and_bad_requests_are_refused()
    {
        const string m = "llama-tiny";
        var model = Loaded[m].Value;
        var prompt = GreedyCases(m)[0].Prompt;
        var sampling = GenerationOptions.FromModelFolder(SharedPaths.Fixture(m)) with
        { MaxNewTokens = 10, DoSample = true, Temperature = 0.8f, TopK = 20, TopP = 0.9f, Seed = 7, EosTokenIds = [] };
        var alone = Generation.Generate(model, [prompt], sampling).Sequences[0].NewIds;
        using var scheduler = new DecodeScheduler(model, maxBatch: 3, maxContext: 64);
        var runs = await Task.WhenAll(Collect(scheduler, prompt, sampling), Collect(scheduler, prompt, sampling with { Seed = 8 }));
        Assert.Equal(alone, runs[0].Select(t => t.Id));
        Assert.NotEqual(alone, runs[1].Select(t => t.Id));
        Assert.Equal("length", runs[0][^1].FinishReason);

        await Assert.ThrowsAsync<SharpFormerException>(() => Collect(scheduler, [], sampling));
        await Assert.ThrowsAsync<SharpFormerException>(() => Collect(scheduler, Enumerable.Repeat(1, 64).ToArray(), sampling));
        await Assert.ThrowsAsync<SharpFormerException>(() => Collect(scheduler, [model.Shape.VocabSize], sampling));
        await Assert.ThrowsAsync<SharpFormerException>(() => Collect(scheduler, prompt, sampling with { NumReturnSequences = 2 }));
    }

    static async Task<List<ScheduledToken>> Collect(DecodeScheduler s, int[] prompt, GenerationOptions o)
    {
        var list = new List<ScheduledToken>();
        await foreach (var t in s.GenerateAsync(prompt, o)) list.Add(t);
        return list;
    }
}
