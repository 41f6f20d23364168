namespace SharpFormer.Extensions.AI;

/// <summary>
/// Admission control for one model: at most <see cref="Capacity"/> requests are admitted at once (those running and
/// those waiting their turn); past that a request is refused at once instead of queueing without bound, so a server
/// can answer 429 while it still has the memory to. Admission is separate from execution
/// (<see cref="ServedModel.RunAsync{T}"/>): a scheduler that batches requests can own both. Thread-safe.
/// </summary>
public sealed class AdmissionQueue
{
    int _admitted;
    long _rejected;

    /// <summary>A queue that admits at most <paramref name="capacity"/> requests at once (at least 1).</summary>
    public AdmissionQueue(int capacity)
    {
        if (capacity < 1) throw new SharpFormerException($"the admission capacity must be at least 1 (got {capacity})");
        Capacity = capacity;
    }

    /// <summary>Most requests admitted at once.</summary>
    public int Capacity { get; }
    /// <summary>Requests admitted now (not yet finished).</summary>
    public int Admitted => Volatile.Read(ref _admitted);
    /// <summary>Requests refused because the queue was full, since the start.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Admits a request (dispose the lease when it has finished), or returns null when <see cref="Capacity"/> requests are already in.</summary>
    public IDisposable? TryAdmit()
    {
        while (true)
        {
            int n = Volatile.Read(ref _admitted);
            if (n >= Capacity)
            {
                Interlocked.Increment(ref _rejected);
                return null;
            }
            if (Interlocked.CompareExchange(ref _admitted, n + 1, n) == n) return new Lease(this);
        }
    }

    sealed class Lease(AdmissionQueue queue) : IDisposable
    {
        int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) Interlocked.Decrement(ref queue._admitted);
        }
    }
}
