using System.Threading.Channels;
using SharpFormer.Kernels;

namespace SharpFormer.Tasks;

/// <summary>
/// Dynamic batching of concurrent requests to one model (TEI's queue): a loop takes the requests waiting when the model
/// is free — up to <c>maxBatchCost</c> in all, waiting at most <c>maxWait</c> for more after the first — runs them as one
/// call (which length-sorts and pads the items itself), and hands each request its own results. A batch whose call
/// fails is retried request by request, so one bad input fails only its own request. One loop thread runs the model.
/// </summary>
/// <typeparam name="TIn">An item (e.g. a text).</typeparam>
/// <typeparam name="TOut">Its result (e.g. an embedding).</typeparam>
public sealed class RequestBatcher<TIn, TOut> : IDisposable
{
    readonly Func<IReadOnlyList<TIn>, IReadOnlyList<TOut>> _run;
    readonly Func<TIn, int> _cost;
    readonly int _maxBatchCost;
    readonly TimeSpan _maxWait;
    readonly Channel<Request> _queue = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true });
    readonly Thread _loop;
    int _waiting;

    /// <summary>Starts the loop.</summary>
    /// <param name="run">Runs the model on items (all requests of a batch, concatenated) and returns one result per item, in order.</param>
    /// <param name="cost">An item's cost (e.g. its tokens) for <paramref name="maxBatchCost"/>.</param>
    /// <param name="maxBatchCost">Most cost per batch (a request costing more runs alone).</param>
    /// <param name="maxWait">How long the first request of a batch waits for others (zero: take what is queued now).</param>
    /// <param name="kernels">
    /// The kernel context every batch runs in: its threads are this batcher's cores (the server gives each of its loops
    /// one of <c>serve --threads</c> threads, or every core). Not owned: dispose it after the batcher. Null: the context current where
    /// the batcher is made.
    /// </param>
    public RequestBatcher(Func<IReadOnlyList<TIn>, IReadOnlyList<TOut>> run, Func<TIn, int> cost, int maxBatchCost, TimeSpan maxWait = default,
                          KernelContext? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(cost);
        if (maxBatchCost < 1) throw new SharpFormerException($"the batch cost limit must be at least 1 (got {maxBatchCost})");
        if (maxWait < TimeSpan.Zero) throw new SharpFormerException($"the batching wait must not be negative (got {maxWait})");
        (_run, _cost, _maxBatchCost, _maxWait) = (run, cost, maxBatchCost, maxWait);
        _loop = new Thread(Loop) { IsBackground = true, Name = "SharpFormer request batcher" };
        // The thread starts with this execution context, so the loop's kernels run in the given context.
        using (kernels?.Enter()) _loop.Start();
    }

    /// <summary>Requests waiting for the model.</summary>
    public int Waiting => Volatile.Read(ref _waiting);
    /// <summary>Called on the loop thread after each model call with the number of requests and items it served.</summary>
    public Action<int, int>? BatchCompleted { get; set; }

    /// <summary>Results of <paramref name="items"/>, computed in a batch with whatever other requests are waiting.</summary>
    /// <remarks>Cancelling before the batch starts drops the request; once its batch runs, the results are discarded.</remarks>
    public Task<TOut[]> SubmitAsync(IReadOnlyList<TIn> items, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) return Task.FromResult(Array.Empty<TOut>());
        var r = new Request(items, items.Sum(_cost), cancellationToken);
        Interlocked.Increment(ref _waiting);
        if (!_queue.Writer.TryWrite(r)) { Interlocked.Decrement(ref _waiting); throw new ObjectDisposedException(nameof(RequestBatcher<TIn, TOut>)); }
        return cancellationToken.CanBeCanceled ? r.Done.Task.WaitAsync(cancellationToken) : r.Done.Task;
    }

    void Loop()
    {
        var reader = _queue.Reader;
        var batch = new List<Request>();
        Request? carried = null;
        while (true)
        {
            if (carried is null)
            {
                if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) break;
                if (!reader.TryRead(out carried)) continue;
                Interlocked.Decrement(ref _waiting);
            }
            batch.Clear();
            batch.Add(carried);
            int cost = carried.Cost;
            carried = null;
            var deadline = DateTime.UtcNow + _maxWait;
            while (cost < _maxBatchCost)
            {
                if (!reader.TryRead(out var next))
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) break;
                    using var timeout = new CancellationTokenSource(left);
                    try { if (!reader.WaitToReadAsync(timeout.Token).AsTask().GetAwaiter().GetResult()) break; }
                    catch (OperationCanceledException) { break; }
                    continue;
                }
                Interlocked.Decrement(ref _waiting);
                if (cost + next.Cost > _maxBatchCost) { carried = next; break; }   // the next batch starts with it
                batch.Add(next);
                cost += next.Cost;
            }
            batch.RemoveAll(r => r.Cancellation.IsCancellationRequested && r.Done.TrySetCanceled(r.Cancellation));
            if (batch.Count > 0) Serve(batch);
        }
        var disposed = new ObjectDisposedException(nameof(RequestBatcher<TIn, TOut>));
        if (carried is not null) carried.Done.TrySetException(disposed);
        while (reader.TryRead(out var w)) w.Done.TrySetException(disposed);
    }

    void Serve(List<Request> batch)
    {
        var items = batch.Count == 1 ? batch[0].Items : batch.SelectMany(r => r.Items).ToList();
        IReadOnlyList<TOut> results;
        try { results = _run(items); }
        catch (Exception) when (batch.Count > 1)
        {
            // Isolate the request that failed: each runs alone.
            foreach (var r in batch) Serve([r]);
            return;
        }
        catch (Exception e) { batch[0].Done.TrySetException(e); return; }
        BatchCompleted?.Invoke(batch.Count, items.Count);
        int at = 0;
        foreach (var r in batch)
        {
            var mine = new TOut[r.Items.Count];
            for (int i = 0; i < mine.Length; i++) mine[i] = results[at++];
            r.Done.TrySetResult(mine);
        }
    }

    /// <summary>Stops taking requests; those already queued are served, then the loop ends.</summary>
    public void Dispose()
    {
        if (_queue.Writer.TryComplete()) _loop.Join();
    }

    sealed class Request(IReadOnlyList<TIn> items, int cost, CancellationToken cancellation)
    {
        public readonly IReadOnlyList<TIn> Items = items;
        public readonly int Cost = cost;
        public readonly CancellationToken Cancellation = cancellation;
        public readonly TaskCompletionSource<TOut[]> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
