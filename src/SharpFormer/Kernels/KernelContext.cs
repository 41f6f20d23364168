using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SharpFormer.Kernels;

/// <summary>The SIMD width of the matrix-product micro-kernels.</summary>
public enum KernelIsa
{
    /// <summary>Portable Vector128 (4×8 float tiles; int8: scalar).</summary>
    Vector128,
    /// <summary>Vector256 (6×16 tiles; int8: AVX2).</summary>
    Vector256,
    /// <summary>Vector512 (8×32 tiles; int8: AVX-512BW).</summary>
    Vector512,
}

/// <summary>
/// What the kernels run with: a thread budget and the worker pool that spends it, the matrix-product SIMD path, the
/// profile counters, and the native scratch (packed GEMM operands, quantised int8 activations, attention tiles) of every
/// thread that ran kernels in it — all owned by the context and freed by <see cref="Dispose"/>. Nothing of this is
/// process-global: two contexts running at once on different threads never wait for each other's pool nor touch each
/// other's counters or scratch.
/// </summary>
/// <remarks>
/// Kernels run in the <see cref="Current"/> context: the one a caller <see cref="Enter"/>ed (it flows with the
/// execution context — across awaits, into tasks and threads started inside the scope), else <see cref="Default"/>.
/// The owner of a forward pass enters its context around the pass: the CLI's <c>--threads</c> makes the context each
/// command runs in; a <see cref="Tasks.DecodeScheduler"/> or <see cref="Tasks.RequestBatcher{TIn, TOut}"/> runs its loop
/// in the context it is given (the server gives each of its loops one with the thread budget of <c>serve --threads</c>).
/// One context may be used by several threads at once (they share its pool: whoever finds it busy runs its kernel on its
/// own thread); give concurrent passes a context each so that each gets its full budget.
/// </remarks>
public sealed unsafe class KernelContext : IDisposable
{
    static readonly AsyncLocal<KernelContext?> _current = new();
    // Before Default: static fields are initialised in order.
    static readonly KernelIsa BestIsa = Vector512.IsHardwareAccelerated ? KernelIsa.Vector512 : Vector256.IsHardwareAccelerated ? KernelIsa.Vector256 : KernelIsa.Vector128;

    /// <summary>
    /// The context of code that entered none: every core, the widest SIMD path, no profiling. It lives as long as the
    /// process (disposing it is an error); its settings cannot change — make a context for other ones.
    /// </summary>
    public static KernelContext Default { get; } = new(isDefault: true);

    /// <summary>The context kernels called here run in (the innermost <see cref="Enter"/>ed one, else <see cref="Default"/>).</summary>
    /// <exception cref="ObjectDisposedException">The entered context was disposed.</exception>
    public static KernelContext Current
    {
        get
        {
            var c = _current.Value ?? Default;
            ObjectDisposedException.ThrowIf(c._disposed, c);
            return c;
        }
    }

    readonly WorkerPool _pool;
    readonly bool _isDefault;
    // Scratch of each thread that ran kernels in this context (its helpers and the callers that entered it).
    readonly List<ThreadScratch> _scratch = [];
    long _scratchBytes;
    int _disposing;
    volatile bool _disposed;

    /// <summary>A context of <paramref name="threads"/> threads (null: every core).</summary>
    /// <param name="threads">Threads a kernel may use, the caller's included (the CLI's <c>--threads</c>); at least 1.</param>
    /// <param name="isa">The matrix products' SIMD path (null: the widest the processor has; wider than it has: the widest it has).</param>
    /// <param name="profile">Whether the kernels time themselves into <see cref="Profile"/>.</param>
    /// <param name="cores">
    /// A budget of cores shared with other contexts (null: none — this context's kernels start their threads whatever
    /// the others run). A parallel kernel here uses at most the cores it can take from it.
    /// </param>
    public KernelContext(int? threads = null, KernelIsa? isa = null, bool profile = false, CoreBudget? cores = null)
        : this(false, threads, isa, profile, cores) { }

    KernelContext(bool isDefault, int? threads = null, KernelIsa? isa = null, bool profile = false, CoreBudget? cores = null)
    {
        int t = threads ?? Environment.ProcessorCount;
        if (t < 1) throw new SharpFormerException($"--threads must be at least 1 (got {t})");
        Threads = t;
        Cores = cores;
        Isa = isa is { } i && i < BestIsa ? i : BestIsa;
        Profile = new KernelProfile(profile);
        _isDefault = isDefault;
        _pool = new WorkerPool(this);
    }

    /// <summary>Threads a kernel may use (the caller's included).</summary>
    public int Threads { get; }
    /// <summary>The matrix products' SIMD path.</summary>
    public KernelIsa Isa { get; }
    /// <summary>The cores this context shares with others, if any.</summary>
    public CoreBudget? Cores { get; }
    /// <summary><see cref="Isa"/> as the GEMM's level: 0 Vector128, 1 Vector256, 2 Vector512.</summary>
    internal int IsaLevel => (int)Isa;
    /// <summary>This context's per-kernel timings (empty unless it was created with profiling).</summary>
    public KernelProfile Profile { get; }
    /// <summary>Kernel calls that ran on more than one thread of this context's pool.</summary>
    public long ParallelRuns => Interlocked.Read(ref _pool.ParallelRuns);
    /// <summary>Kernel calls that wanted more threads but ran on their caller alone because this context's pool was busy with another caller.</summary>
    public long BusyRuns => Interlocked.Read(ref _pool.BusyRuns);
    /// <summary>Kernel calls that wanted more threads but ran on their caller alone because the shared <see cref="Cores"/> had none free.</summary>
    public long ThrottledRuns => Interlocked.Read(ref _pool.ThrottledRuns);
    /// <summary>Bytes of native scratch this context holds (0 once disposed).</summary>
    public long ScratchBytes => Interlocked.Read(ref _scratchBytes);

    /// <summary>Parallel options limited to <see cref="Threads"/> (load-time and training loops on the .NET thread pool).</summary>
    public ParallelOptions ParallelOptions => new() { MaxDegreeOfParallelism = Threads };

    /// <summary>Makes this the <see cref="Current"/> context until the returned scope is disposed (which restores the previous one).</summary>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public Scope Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var previous = _current.Value;
        _current.Value = this;
        return new Scope(previous);
    }

    /// <summary>An entered context; disposing it restores the context that was current before.</summary>
    public readonly struct Scope : IDisposable
    {
        readonly KernelContext? _previous;
        internal Scope(KernelContext? previous) => _previous = previous;
        /// <summary>Restores the previous context.</summary>
        public void Dispose() => _current.Value = _previous;
    }

    /// <summary>
    /// Runs body(i) for i in [0, count) on the .NET thread pool within <see cref="Threads"/>, in parallel only when the
    /// work is worth a hand-off: <paramref name="work"/> (all items' flops or bytes) at least <paramref name="minWork"/>.
    /// For load-time and training loops; inference kernels use this context's own worker pool.
    /// </summary>
    internal void For(int count, long work, Action<int> body, long minWork = 200_000)
    {
        if (Threads == 1 || count <= 1 || work < minWork)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, ParallelOptions, body);
    }

    /// <summary>Threads worth using for a kernel of this many flops split into <paramref name="items"/> (a hand-off costs a few microseconds).</summary>
    internal int ThreadsFor(long flops, int items) => flops < 300_000 ? 1 : Math.Max(1, Math.Min(Threads, items));

    /// <summary>Runs fn(job, i) for i in [0, count) on up to <paramref name="threads"/> threads of this context's pool.</summary>
    internal void Run(int count, int threads, delegate*<void*, int, void> fn, void* job) => _pool.Run(count, threads, fn, job);

    // ---------------------------------------------------------------- scratch
    /// <summary>What a scratch buffer holds (each thread has one of each).</summary>
    internal enum ScratchSlot { GemmA, Int8, Attention }

    sealed class ThreadScratch(KernelContext owner, Thread thread)
    {
        public readonly KernelContext Owner = owner;
        public readonly Thread Thread = thread;
        public readonly nint[] Buffers = new nint[3];
        public readonly long[] Bytes = new long[3];
    }

    // The calling thread's scratch in the context it used last: a context switch on a thread costs one locked lookup.
    [ThreadStatic] static ThreadScratch? t_scratch;

    /// <summary>
    /// The calling thread's buffer <paramref name="slot"/> in this context, at least <paramref name="bytes"/> long and
    /// 64-byte aligned; valid until this thread asks for the same slot again (or the context is disposed).
    /// </summary>
    internal void* Scratch(ScratchSlot slot, long bytes)
    {
        var s = t_scratch;
        if (s is null || s.Owner != this) s = t_scratch = ScratchOfThisThread();
        ObjectDisposedException.ThrowIf(_disposed, this);
        int i = (int)slot;
        if (s.Bytes[i] < bytes)
        {
            // Freed before the new one is taken: the old contents are never needed (each call fills what it reads).
            NativeMemory.AlignedFree((void*)s.Buffers[i]);
            Interlocked.Add(ref _scratchBytes, -s.Bytes[i]);
            s.Bytes[i] = 0;   // stays consistent if the allocation below throws
            s.Buffers[i] = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            s.Bytes[i] = bytes;
            Interlocked.Add(ref _scratchBytes, bytes);
        }
        return (void*)s.Buffers[i];
    }

    ThreadScratch ScratchOfThisThread()
    {
        var me = Thread.CurrentThread;
        lock (_scratch)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var s in _scratch)
                if (s.Thread == me) return s;
            // Threads that ended (e.g. a thread-pool thread retired) cannot use theirs again.
            foreach (var s in _scratch)
                if (!s.Thread.IsAlive) Free(s);
            _scratch.RemoveAll(s => !s.Thread.IsAlive);
            var added = new ThreadScratch(this, me);
            _scratch.Add(added);
            return added;
        }
    }

    /// <summary>Frees the calling thread's scratch in this context (a helper thread that ends).</summary>
    internal void ReleaseScratchOfCurrentThread()
    {
        var me = Thread.CurrentThread;
        lock (_scratch)
        {
            int i = _scratch.FindIndex(s => s.Thread == me);
            if (i < 0) return;
            Free(_scratch[i]);
            _scratch.RemoveAt(i);
        }
        if (t_scratch?.Owner == this) t_scratch = null;
    }

    void Free(ThreadScratch s)
    {
        for (int i = 0; i < s.Buffers.Length; i++)
        {
            NativeMemory.AlignedFree((void*)s.Buffers[i]);
            Interlocked.Add(ref _scratchBytes, -s.Bytes[i]);
            s.Buffers[i] = 0; s.Bytes[i] = 0;
        }
    }

    /// <summary>
    /// Ends the worker threads (after the kernel running on them, if any) and frees every thread's scratch. Call it when
    /// no kernel of this context runs any more; afterwards entering or running in the context throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">This is <see cref="Default"/>.</exception>
    public void Dispose()
    {
        if (_isDefault) throw new InvalidOperationException("the default kernel context lives as long as the process");
        if (Interlocked.Exchange(ref _disposing, 1) != 0) return;
        _pool.Stop();   // first: a kernel still running on the helpers keeps its scratch until it is done
        _disposed = true;
        lock (_scratch)
        {
            foreach (var s in _scratch) Free(s);
            _scratch.Clear();
        }
    }
}
