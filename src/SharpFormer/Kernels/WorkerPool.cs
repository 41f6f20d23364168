namespace SharpFormer.Kernels;

/// <summary>
/// A tiny persistent thread pool, one per <see cref="KernelContext"/>: no allocation per call (the work is a static
/// function pointer plus a pointer to a job struct on the caller's stack), and workers spin briefly before sleeping so
/// back-to-back kernel calls do not pay a futex wake-up each time. The calling thread takes part in the work.
/// One job at a time: a call that finds the pool busy (another thread of the same context, or a nested call) runs its
/// items inline, which is always correct. Two contexts never share a pool, so they never serialise each other.
/// </summary>
internal sealed unsafe class WorkerPool(KernelContext owner)
{
    sealed class Worker
    {
        public readonly SemaphoreSlim Wake = new(0, int.MaxValue);
        public Thread? Thread;
    }

    readonly object _gate = new();
    Worker[] _workers = [];
    delegate*<void*, int, void> _fn;
    void* _ctx;
    // Job state in one word, so that a claim is checked against the right job atomically:
    // bits 0–19 next item, 20–39 item count, 40–63 job generation.
    long _state;
    int _active;   // threads inside a claimed item (or checking for one)
    long _generation;
    Exception? _error;
    volatile bool _stopping;
    const int MaxItems = (1 << 20) - 1;

    /// <summary>Jobs that ran on more than one thread.</summary>
    internal long ParallelRuns;
    /// <summary>Jobs that asked for helpers but ran on the caller alone because the pool was busy.</summary>
    internal long BusyRuns;
    /// <summary>Jobs that asked for helpers but ran on the caller alone because the shared core budget had no core free.</summary>
    internal long ThrottledRuns;

    /// <summary>Runs fn(ctx, i) for i in [0, count) on up to <paramref name="threads"/> threads (caller included).</summary>
    /// <remarks>
    /// The caller claims items too and waits only for helpers that actually claimed one: a helper that is slow to be
    /// scheduled (a busy machine) never holds the caller up — the caller just does its share of the work as well.
    /// </remarks>
    public void Run(int count, int threads, delegate*<void*, int, void> fn, void* ctx)
    {
        if (count <= 0) return;
        bool wantsHelpers = threads > 1 && count > 1 && count <= MaxItems;
        if (!wantsHelpers || !Monitor.TryEnter(_gate))
        {
            if (wantsHelpers) Interlocked.Increment(ref BusyRuns);
            for (int i = 0; i < count; i++) fn(ctx, i);
            return;
        }
        // The cores this job may use, the caller's included: all it asks for, or what a shared budget has free.
        int cores = Math.Min(Math.Min(threads, count), 64);
        int taken = owner.Cores?.Take(cores) ?? cores;
        if (taken <= 1)
        {
            Monitor.Exit(_gate);
            owner.Cores?.Give(taken);
            Interlocked.Increment(ref ThrottledRuns);
            for (int i = 0; i < count; i++) fn(ctx, i);
            return;
        }
        try
        {
            ObjectDisposedException.ThrowIf(_stopping, owner);
            int helpers = taken - 1;
            EnsureWorkers(helpers);
            ParallelRuns++;   // only the gate's holder writes it
            _fn = fn; _ctx = ctx; _error = null;
            long gen = (++_generation) & 0xFFFFFF;
            Volatile.Write(ref _state, (gen << 40) | ((long)count << 20));
            for (int w = 0; w < helpers; w++) _workers[w].Wake.Release();
            Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref _active) != 0) spin.SpinOnce(sleep1Threshold: -1);
            if (_error is { } e) { _error = null; throw new AggregateException(e); }
        }
        finally
        {
            owner.Cores?.Give(taken);
            Monitor.Exit(_gate);
        }
    }

    void Work()
    {
        while (true)
        {
            Interlocked.Increment(ref _active);
            long c = Volatile.Read(ref _state);
            int idx = (int)(c & 0xFFFFF), count = (int)((c >> 20) & 0xFFFFF);
            if (idx >= count) { Interlocked.Decrement(ref _active); return; }
            // Read the job before claiming: a successful claim proves the job was still this one.
            var fn = _fn; var ctx = _ctx;
            if (Interlocked.CompareExchange(ref _state, c + 1, c) != c) { Interlocked.Decrement(ref _active); continue; }
            try { fn(ctx, idx); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            finally { Interlocked.Decrement(ref _active); }
        }
    }

    void EnsureWorkers(int n)
    {
        if (_workers.Length >= n) return;
        var ws = new Worker[n];
        Array.Copy(_workers, ws, _workers.Length);
        for (int i = _workers.Length; i < n; i++)
        {
            var w = ws[i] = new Worker();
            w.Thread = new Thread(() => Loop(w)) { IsBackground = true, Name = $"SharpFormer kernel worker {i + 1}" };
            w.Thread.Start();
        }
        _workers = ws;
    }

    void Loop(Worker w)
    {
        // A helper only ever runs its own context's jobs: kernels and scratch lookups on it see that context.
        using var scope = owner.Enter();
        while (!_stopping)
        {
            // Spin for the next job before blocking (≈ 3 ms on Zen 5, where a pause takes ~50 ns): kernels come in quick
            // succession during a forward pass, and waking a blocked thread costs tens of microseconds.
            bool got = false;
            for (int s = 0; s < 2000 && !got; s++)
            {
                got = w.Wake.Wait(0);
                if (!got) Thread.SpinWait(30);
            }
            if (!got) w.Wake.Wait();
            if (_stopping) break;
            Work();
        }
        owner.ReleaseScratchOfCurrentThread();
    }

    /// <summary>Ends the helper threads once the running job (if any) is done, and waits for them.</summary>
    public void Stop()
    {
        Worker[] ws;
        lock (_gate)
        {
            _stopping = true;
            ws = _workers;
        }
        foreach (var w in ws) w.Wake.Release();
        foreach (var w in ws) { w.Thread!.Join(); w.Wake.Dispose(); }
    }
}
