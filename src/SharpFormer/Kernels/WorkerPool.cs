namespace SharpFormer.Kernels;

/// <summary>
/// A tiny persistent thread pool for the kernels: no allocation per call (the work is a static function pointer
/// plus a pointer to a context struct on the caller's stack), and workers spin briefly before sleeping so
/// back-to-back kernel calls do not pay a futex wake-up each time. The calling thread takes part in the work.
/// One job at a time: a call that finds the pool busy (another thread's kernel, or a nested call) runs its
/// items inline, which is always correct.
/// </summary>
internal static unsafe class WorkerPool
{
    sealed class Worker
    {
        public readonly SemaphoreSlim Wake = new(0, int.MaxValue);
    }

    static readonly object Gate = new();
    static Worker[] _workers = [];
    static delegate*<void*, int, void> _fn;
    static void* _ctx;
    static int _count, _next, _pending;
    static Exception? _error;

    /// <summary>Runs fn(ctx, i) for i in [0, count) on up to <paramref name="threads"/> threads (caller included).</summary>
    public static void Run(int count, int threads, delegate*<void*, int, void> fn, void* ctx)
    {
        if (count <= 0) return;
        if (threads <= 1 || count == 1 || !Monitor.TryEnter(Gate))
        {
            for (int i = 0; i < count; i++) fn(ctx, i);
            return;
        }
        try
        {
            int helpers = Math.Min(Math.Min(threads, count) - 1, 63);
            EnsureWorkers(helpers);
            _fn = fn; _ctx = ctx; _count = count; _error = null;
            Volatile.Write(ref _next, 0);
            Volatile.Write(ref _pending, helpers);
            for (int w = 0; w < helpers; w++) _workers[w].Wake.Release();
            Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
            _fn = null; _ctx = null;
            if (_error is { } e) { _error = null; throw new AggregateException(e); }
        }
        finally { Monitor.Exit(Gate); }
    }

    static void Work()
    {
        var fn = _fn; var ctx = _ctx; int count = _count;
        int i;
        while ((i = Interlocked.Increment(ref _next) - 1) < count)
        {
            try { fn(ctx, i); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
        }
    }

    static void EnsureWorkers(int n)
    {
        if (_workers.Length >= n) return;
        var ws = new Worker[n];
        Array.Copy(_workers, ws, _workers.Length);
        for (int i = _workers.Length; i < n; i++)
        {
            var w = ws[i] = new Worker();
            new Thread(() => Loop(w)) { IsBackground = true, Name = $"SharpFormer kernel worker {i + 1}" }.Start();
        }
        _workers = ws;
    }

    static void Loop(Worker w)
    {
        while (true)
        {
            // Spin ~50–100 µs for the next job before blocking: kernels come in quick succession during a forward pass.
            bool got = false;
            for (int s = 0; s < 2000 && !got; s++)
            {
                got = w.Wake.Wait(0);
                if (!got) Thread.SpinWait(30);
            }
            if (!got) w.Wake.Wait();
            Work();
            Interlocked.Decrement(ref _pending);
        }
    }

    /// <summary>Threads worth using for a kernel of this many flops (a hand-off costs a few microseconds).</summary>
    public static int ThreadsFor(long flops, int items)
    {
        int t = Threading.Threads;
        if (flops < 300_000) return 1;
        return Math.Max(1, Math.Min(t, items));
    }
}
