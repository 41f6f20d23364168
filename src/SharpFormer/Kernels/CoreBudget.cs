namespace SharpFormer.Kernels;

/// <summary>
/// Cores that several <see cref="KernelContext"/>s share (a server's loops: decoding, embedding batches, classification
/// batches, other tasks, for every model). A kernel that would run on several threads first takes that many cores from
/// the budget (its caller's included) and returns them when it ends; what it cannot get, it does without — down to its
/// caller's thread alone. So contexts busy at the same time split the machine between them instead of each starting a
/// full set of threads on the same cores, and one alone still gets all of them. Taking never blocks.
/// </summary>
public sealed class CoreBudget
{
    int _free;

    /// <summary>A budget of <paramref name="cores"/> cores (at least 1).</summary>
    public CoreBudget(int cores)
    {
        if (cores < 1) throw new SharpFormerException($"a core budget needs at least one core (got {cores})");
        Cores = _free = cores;
    }

    /// <summary>The cores shared.</summary>
    public int Cores { get; }
    /// <summary>Cores no running kernel holds now.</summary>
    public int Free => Volatile.Read(ref _free);

    /// <summary>Takes up to <paramref name="wanted"/> free cores and returns how many it took (0 when none is free).</summary>
    internal int Take(int wanted)
    {
        while (true)
        {
            int free = Volatile.Read(ref _free), n = Math.Min(free, wanted);
            if (n <= 0) return 0;
            if (Interlocked.CompareExchange(ref _free, free - n, free) == free) return n;
        }
    }

    /// <summary>Returns cores taken by <see cref="Take"/>.</summary>
    internal void Give(int n) => Interlocked.Add(ref _free, n);
}
