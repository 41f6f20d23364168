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
/// Opt-in wall time per kernel of one <see cref="KernelContext"/> (in the spirit of llm.c / Llm.cs per-kernel timing):
/// chosen when the context is created (<c>new KernelContext(profile: true)</c>); off, a kernel pays one bool test per call.
/// Work in another context never touches these totals. Calls on several threads of one context add up safely.
/// </summary>
public sealed class KernelProfile
{
    readonly long[] _ticks = new long[Enum.GetValues<ProfiledKernel>().Length];
    readonly long[] _calls = new long[Enum.GetValues<ProfiledKernel>().Length];

    internal KernelProfile(bool enabled) => Enabled = enabled;

    /// <summary>Whether this context's kernels time themselves.</summary>
    public bool Enabled { get; }

    /// <summary>Starts timing one call; dispose the scope when the kernel returns.</summary>
    public Scope Time(ProfiledKernel kernel) => Enabled ? new Scope(this, kernel, Stopwatch.GetTimestamp()) : default;

    /// <summary>Clears every total.</summary>
    public void Reset()
    {
        for (int i = 0; i < _ticks.Length; i++) { Interlocked.Exchange(ref _ticks[i], 0); Interlocked.Exchange(ref _calls[i], 0); }
    }

    /// <summary>Total seconds and calls per kernel since the last <see cref="Reset"/>.</summary>
    public IReadOnlyList<(ProfiledKernel Kernel, double Seconds, long Calls)> Totals() =>
        Enum.GetValues<ProfiledKernel>().Select(k => (k, Interlocked.Read(ref _ticks[(int)k]) / (double)Stopwatch.Frequency, Interlocked.Read(ref _calls[(int)k]))).ToList();

    /// <summary>One timed kernel call; disposing it adds the elapsed time to the kernel's total.</summary>
    public readonly struct Scope : IDisposable
    {
        readonly KernelProfile? _profile;
        readonly ProfiledKernel _kernel;
        readonly long _start;

        internal Scope(KernelProfile profile, ProfiledKernel kernel, long start) => (_profile, _kernel, _start) = (profile, kernel, start);

        /// <summary>Stops timing and adds to the totals (nothing when profiling is off).</summary>
        public void Dispose()
        {
            if (_profile is null) return;
            Interlocked.Add(ref _profile._ticks[(int)_kernel], Stopwatch.GetTimestamp() - _start);
            Interlocked.Increment(ref _profile._calls[(int)_kernel]);
        }
    }
}
