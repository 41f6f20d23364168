using SharpFormer.Tasks;
using Xunit;

namespace SharpFormer.Tests;

/// <summary>Dynamic batching of concurrent encoder requests: batched when the model is busy, each request its own results.</summary>
public class RequestBatcherTests
{
    /// <summary>A fake model whose first call blocks until released, so that later requests queue behind it.</summary>
    sealed class GatedModel
    {
        public readonly ManualResetEventSlim FirstCallStarted = new(), Release = new();
        public readonly List<int> BatchItemCounts = [];
        int _calls;

        public IReadOnlyList<string> Run(IReadOnlyList<string> items)
        {
            if (Interlocked.Increment(ref _calls) == 1) { FirstCallStarted.Set(); Release.Wait(TimeSpan.FromSeconds(30)); }
            lock (BatchItemCounts) BatchItemCounts.Add(items.Count);
            if (items.Contains("bad")) throw new SharpFormerException("bad input");
            return items.Select(s => s.ToUpperInvariant()).ToArray();
        }
    }

    static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 3000 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition(), "timed out");
    }

    [Fact]
    public async Task Requests_that_wait_while_the_model_is_busy_run_as_one_batch_and_get_their_own_results()
    {
        var model = new GatedModel();
        int batches = 0;
        using var batcher = new RequestBatcher<string, string>(model.Run, s => s.Length, maxBatchCost: 1000) { BatchCompleted = (r, _) => Interlocked.Add(ref batches, r) };
        var first = batcher.SubmitAsync(["a"]);
        Assert.True(model.FirstCallStarted.Wait(TimeSpan.FromSeconds(30)));
        var queued = Enumerable.Range(0, 10).Select(i => batcher.SubmitAsync([$"x{i}", $"y{i}"])).ToArray();
        await WaitUntil(() => batcher.Waiting == 10);
        model.Release.Set();
        Assert.Equal(["A"], await first);
        for (int i = 0; i < 10; i++) Assert.Equal([$"X{i}", $"Y{i}"], await queued[i]);
        Assert.Equal([1, 20], model.BatchItemCounts);
        Assert.Equal(11, batches);
    }

    [Fact]
    public async Task The_cost_limit_splits_batches_and_a_failing_request_fails_alone()
    {
        var model = new GatedModel();
        using var batcher = new RequestBatcher<string, string>(model.Run, s => s.Length, maxBatchCost: 6);
        var first = batcher.SubmitAsync(["go"]);
        Assert.True(model.FirstCallStarted.Wait(TimeSpan.FromSeconds(30)));
        var a = batcher.SubmitAsync(["aaa"]);
        var bad = batcher.SubmitAsync(["bad"]);
        var b = batcher.SubmitAsync(["bb", "b"]);
        var c = batcher.SubmitAsync(["cccc"]);
        await WaitUntil(() => batcher.Waiting == 4);
        model.Release.Set();
        await first;
        Assert.Equal(["AAA"], await a);
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => bad);
        Assert.Equal("bad input", e.Message);
        Assert.Equal(["BB", "B"], await b);
        Assert.Equal(["CCCC"], await c);
        // go | aaa+bad (cost 6) fails → aaa, bad alone | bb+b (3) then cccc would exceed 6 → alone.
        Assert.Equal([1, 2, 1, 1, 2, 1], model.BatchItemCounts);
    }

    [Fact]
    public async Task A_request_cancelled_while_waiting_never_runs()
    {
        var model = new GatedModel();
        using var batcher = new RequestBatcher<string, string>(model.Run, s => s.Length, maxBatchCost: 100);
        var first = batcher.SubmitAsync(["go"]);
        Assert.True(model.FirstCallStarted.Wait(TimeSpan.FromSeconds(30)));
        using var cts = new CancellationTokenSource();
        var cancelled = batcher.SubmitAsync(["never"], cts.Token);
        var kept = batcher.SubmitAsync(["kept"]);
        await WaitUntil(() => batcher.Waiting == 2);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        model.Release.Set();
        Assert.Equal(["KEPT"], await kept);
        await first;
        Assert.Equal([1, 1], model.BatchItemCounts);
    }

    [Fact]
    public async Task Batched_embeddings_equal_each_text_embedded_alone()
    {
        var embedder = SentenceEmbedder.Load(SharedPaths.Fixture("bert-tiny"), Pooling.Mean, normalize: true);
        string[] texts = ["hello world", "a much longer sentence that pads the others in its batch", "short", "the quick brown fox"];
        using var batcher = new RequestBatcher<string, float[]>(batch => embedder.Embed(batch), s => s.Length, maxBatchCost: 10_000, maxWait: TimeSpan.FromMilliseconds(200));
        var results = await Task.WhenAll(texts.Select(t => batcher.SubmitAsync([t])));
        for (int i = 0; i < texts.Length; i++)
            TensorAssert.Close(embedder.Embed(texts[i]), results[i][0], 1e-5f, texts[i]);
    }
}
