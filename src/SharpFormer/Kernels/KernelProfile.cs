using System.Diagnostics;

namespace SharpFormer.Kernels;

/// <summary>The kernels <see cref="KernelProfile"/> times.</summary>
public enum ProfiledKernel
{
    /// <summary>Matrix products (<see cref="Kernels.Gemm"/>).</summary>
    Gemm,
    /// <summary>Fused attention (<see cref="Kernels.Attention"/>).</summary>
    Attention,
    /// <summary>Layer normalisation (<see cref="Kernels.LayerNorm"/>).</summary>
    LayerNorm,
    /// <summary>Activation functions (<see cref="Activations"/>).</summary>
    Activation,
}

/// <summary>
/// Opt-in wall time per kernel (in the spirit of llm.c / Llm.cs per-kernel timing): off by default, and then a kernel
/// pays one static bool test per call. Not thread-safe by design: enable it around single-caller runs (benchmarks).
/// </summary>
public static class KernelProfile
{
    static readonly long[] _ticks = new long[Enum.GetValues<ProfiledKernel>().Length];
    static readonly long[] _calls = new long[_ticks.Length];

    /// <summary>Whether kernels time themselves (off by default).</summary>
    public static bool Enabled { get; set; }

    /// <summary>Starts timing one call; dispose the scope when the kernel returns.</summary>
    public static Scope Time(ProfiledKernel kernel) => Enabled ? new Scope(kernel, Stopwatch.GetTimestamp()) : default;

    /// <summary>Clears every total.</summary>
    public static void Reset()
    {
        Array.Clear(_ticks);
        Array.Clear(_calls);
    }

    /// <summary>Total seconds and calls per kernel since the last <see cref="Reset"/>.</summary>
    public static IReadOnlyList<(ProfiledKernel Kernel, double Seconds, long Calls)> Totals() =>
        Enum.GetValues<ProfiledKernel>().Select(k => (k, _ticks[(int)k] / (double)Stopwatch.Frequency, _calls[(int)k])).ToList();

    /// <summary>One timed kernel call; disposing it adds the elapsed time to the kernel's total.</summary>
    public readonly struct Scope(ProfiledKernel kernel, long start) : IDisposable
    {
        /// <summary>Stops timing and adds to the totals (nothing when profiling was off at the start).</summary>
        public void Dispose()
        {
            if (start == 0) return;
            _ticks[(int)kernel] += Stopwatch.GetTimestamp() - start;
            _calls[(int)kernel]++;
        }
    }
}
