namespace SharpFormer.Kernels;

/// <summary>How many threads the kernels may use (the CLI's <c>--threads</c>); defaults to every core.</summary>
public static class Threading
{
    static int _threads = Environment.ProcessorCount;

    /// <summary>The thread count (at least 1; setting less is a one-line error).</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = value >= 1 ? value : throw new SharpFormerException($"--threads must be at least 1 (got {value})");
    }

    /// <summary>Parallel options limited to <see cref="Threads"/>.</summary>
    public static ParallelOptions Options => new() { MaxDegreeOfParallelism = _threads };

    /// <summary>Runs body(i) for i in [0, count): in parallel only when the work is worth a thread hand-off.</summary>
    public static void For(int count, long flopsPerItem, Action<int> body)
    {
        if (_threads == 1 || count == 1 || flopsPerItem * count < 200_000)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, Options, body);
    }
}
