using SharpFormer.Extensions.AI;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tasks;

namespace SharpFormer.Tests;

/// <summary>
/// Kernel contexts own their threads, SIMD path, profile and scratch: two of them at once never share any of it.
/// Counters, not timings, show who ran in parallel.
/// </summary>
[Collection("Threading")]
public class KernelContextTests
{
    // 64 rows × 256 × 256: 8 Mflop, split over the panels (both threads of a 2-thread context), A packed into scratch.
    const int M = 64, K = 256, N = 256, Calls = 40;

    static readonly float[] X = KernelRef.Random(M * K, 1), W = KernelRef.Random(N * K, 2), B = KernelRef.Random(N, 3);

    /// <summary>y = X·Wᵀ + B in <paramref name="kernels"/>, packing included.</summary>
    static float[] Product(KernelContext kernels, WeightPrecision precision = WeightPrecision.Float32)
    {
        using var scope = kernels.Enter();
        var w = PackedWeight.FromOutIn(W, N, K, precision);
        var y = new float[M * N];
        Gemm.Linear(X, M, w, B, y);
        return y;
    }

    /// <summary>Runs the two bodies on two threads released together, and rethrows what either threw.</summary>
    static void Concurrently(Action a, Action b)
    {
        using var start = new Barrier(2);
        var errors = new Exception?[2];
        var threads = new[] { a, b }.Select((body, i) => new Thread(() =>
        {
            start.SignalAndWait();
            try { body(); } catch (Exception e) { errors[i] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        if (errors.Any(e => e is not null)) throw new AggregateException(errors.OfType<Exception>());
    }

    /// <summary>Calls GEMMs of one packed weight in <paramref name="kernels"/> and checks each result against <paramref name="expected"/>, bit for bit.</summary>
    static void Gemms(KernelContext kernels, float[] expected, int calls = Calls)
    {
        using var scope = kernels.Enter();
        var w = PackedWeight.FromOutIn(W, N, K);
        var y = new float[M * N];
        for (int i = 0; i < calls; i++)
        {
            Array.Clear(y);
            Gemm.Linear(X, M, w, B, y);
            Assert.Equal(expected, y);
        }
    }

    [Fact]
    public void Two_contexts_run_gemms_concurrently_each_on_all_its_threads()
    {
        using var single = new KernelContext(1);
        var expected = Product(single);
        // Against float64: the reference itself is right.
        for (int r = 0; r < M; r += 7)
            for (int c = 0; c < N; c += 5)
            {
                double s = B[c];
                for (int k = 0; k < K; k++) s += (double)X[r * K + k] * W[c * K + k];
                Assert.True(Math.Abs(expected[r * N + c] - s) <= 1e-4 * (1 + Math.Abs(s)), $"y[{r},{c}] = {expected[r * N + c]}, expected {s}");
            }
        Assert.Equal(0, single.ParallelRuns);

        using var a = new KernelContext(2);
        using var b = new KernelContext(2);
        Concurrently(() => Gemms(a, expected), () => Gemms(b, expected));
        // Every product ran on both threads of its own context: none found its pool busy because of the other context.
        Assert.Equal(Calls, a.ParallelRuns);
        Assert.Equal(Calls, b.ParallelRuns);
        Assert.Equal(0, a.BusyRuns);
        Assert.Equal(0, b.BusyRuns);
    }

    [Fact]
    public void Contexts_sharing_a_core_budget_split_it_and_give_every_core_back()
    {
        using var single = new KernelContext(1);
        var expected = Product(single);
        var cores = new CoreBudget(2);
        using var a = new KernelContext(2, cores: cores);
        using var b = new KernelContext(2, cores: cores);

        // Every core held elsewhere: a product runs on its caller alone, and says why.
        Assert.Equal(2, cores.Take(5));
        Gemms(a, expected, calls: 3);
        Assert.Equal(0, a.ParallelRuns);
        Assert.Equal(3, a.ThrottledRuns);
        cores.Give(2);
        Gemms(a, expected, calls: 3);
        Assert.Equal(3, a.ParallelRuns);
        Assert.Equal(2, cores.Free);

        // Both at once: however the two interleave, results stay exact, every product is counted once (parallel or
        // throttled), and no core is lost or created.
        long before = a.ParallelRuns + a.ThrottledRuns;
        Concurrently(() => Gemms(a, expected), () => Gemms(b, expected));
        Assert.Equal(2, cores.Free);
        Assert.Equal(2 * Calls, a.ParallelRuns + a.ThrottledRuns - before + b.ParallelRuns + b.ThrottledRuns);
        Assert.Throws<SharpFormerException>(() => new CoreBudget(0));
    }

    [Fact]
    public async Task A_served_model_loops_share_the_budget_they_are_given()
    {
        var cores = new CoreBudget(2);
        using var bert = ServedModel.Load(SharedPaths.Fixture("bert-tiny"), serving: new ServingOptions { Threads = 2, Cores = cores });
        Assert.Equal(3, (await bert.EmbedAsync(["你好", "今天天气很好", "我"])).Length);
        Assert.Same(cores, bert.Serving.Cores);
        Assert.Equal(2, cores.Free);   // nothing held once the batch is done
    }

    [Fact]
    public void The_simd_path_is_per_context()
    {
        using var narrow = new KernelContext(2, KernelIsa.Vector128);
        using var wide = new KernelContext(2);
        Assert.Equal(KernelIsa.Vector128, narrow.Isa);
        Assert.Equal(KernelContext.Default.Isa, wide.Isa);
        Assert.Equal(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? KernelIsa.Vector512
            : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? KernelIsa.Vector256 : KernelIsa.Vector128, KernelContext.Default.Isa);
        // One path's results, computed alone; then both at once must give exactly the same, each its own.
        float[] alone128 = Product(narrow), aloneWide = Product(wide);
        float[]? at128 = null, atWide = null;
        Concurrently(() => { for (int i = 0; i < 10; i++) at128 = Product(narrow); }, () => { for (int i = 0; i < 10; i++) atWide = Product(wide); });
        Assert.Equal(alone128, at128);
        Assert.Equal(aloneWide, atWide);
        // int8 follows its context's path too (scalar under Vector128) and the results agree with the widest path's.
        float[] int8Narrow = Product(narrow, WeightPrecision.Int8), int8Wide = Product(wide, WeightPrecision.Int8);
        for (int i = 0; i < int8Narrow.Length; i++) Assert.True(Math.Abs(int8Narrow[i] - int8Wide[i]) <= 1e-5f * (1 + Math.Abs(int8Wide[i])), $"int8 [{i}]: {int8Narrow[i]} vs {int8Wide[i]}");
        Assert.Equal(KernelContext.Default.Isa, KernelContext.Current.Isa);
    }

    [Fact]
    public void Profile_counters_belong_to_their_context()
    {
        using var a = new KernelContext(2, profile: true);
        using var b = new KernelContext(2, profile: true);
        var x = KernelRef.Random(32 * 768, 4);
        var g = KernelRef.Random(768, 5);
        var beta = KernelRef.Random(768, 6);
        var expected = Product(a);
        a.Profile.Reset();
        Concurrently(() => Gemms(a, expected, 5), () =>
        {
            using var scope = b.Enter();
            var y = new float[x.Length];
            for (int i = 0; i < 7; i++) LayerNorm.Forward(x, g, beta, 1e-12f, y);
        });
        long Calls(KernelContext c, ProfiledKernel k) => c.Profile.Totals().Single(t => t.Kernel == k).Calls;
        Assert.Equal(5, Calls(a, ProfiledKernel.Gemm));
        Assert.Equal(0, Calls(a, ProfiledKernel.LayerNorm));
        Assert.Equal(7, Calls(b, ProfiledKernel.LayerNorm));
        Assert.Equal(0, Calls(b, ProfiledKernel.Gemm));
        Assert.True(a.Profile.Totals().Single(t => t.Kernel == ProfiledKernel.Gemm).Seconds > 0);
        Assert.False(KernelContext.Default.Profile.Enabled);
        a.Profile.Reset();
        Assert.All(a.Profile.Totals(), t => Assert.Equal(0, t.Calls));
    }

    [Fact]
    public void Dispose_frees_the_scratch_and_ends_the_context()
    {
        var kernels = new KernelContext(2);
        Assert.Equal(0, kernels.ScratchBytes);
        Product(kernels);
        Product(kernels, WeightPrecision.Int8);
        using (kernels.Enter())
        {
            int tq = 16, heads = 4, d = 32, h = heads * d;
            var q = KernelRef.Random(tq * h, 7);
            var o = new float[tq * h];
            Attention.Forward(q, h, q, q, h, tq, tq, heads, d, 0.125f, causal: true, 0, default, o, h, default);
        }
        // The A panels (of both threads), the int8 activations and the attention tiles.
        Assert.True(kernels.ScratchBytes >= (long)256 * K * sizeof(float), $"scratch {kernels.ScratchBytes} bytes");
        Assert.True(kernels.ParallelRuns > 0);

        var w = PackedWeight.FromOutIn(W, N, K);
        var entered = kernels.Enter();
        kernels.Dispose();
        Assert.Equal(0, kernels.ScratchBytes);
        // Still entered but disposed: kernels refuse to run in it rather than touch freed memory.
        Assert.Throws<ObjectDisposedException>(() => KernelContext.Current);
        Assert.Throws<ObjectDisposedException>(() => Gemm.Linear(X, M, w, B, new float[M * N]));
        entered.Dispose();
        Assert.Same(KernelContext.Default, KernelContext.Current);
        Assert.Throws<ObjectDisposedException>(() => kernels.Enter());
        kernels.Dispose();   // twice is harmless
        Assert.Equal(0, kernels.ScratchBytes);
    }

    [Fact]
    public void Settings_are_checked_and_the_default_context_is_not_disposable()
    {
        var e = Assert.Throws<SharpFormerException>(() => new KernelContext(0));
        Assert.Contains("--threads must be at least 1", e.Message);
        Assert.Throws<InvalidOperationException>(() => KernelContext.Default.Dispose());
        Assert.Equal(Environment.ProcessorCount, KernelContext.Default.Threads);
        using var one = new KernelContext(1);
        Assert.Equal(1, one.Threads);
    }

    [Fact]
    public async Task The_entered_context_flows_across_awaits_and_into_a_batcher_loop()
    {
        using var kernels = new KernelContext(2);
        var expected = Product(kernels);
        long before = kernels.ParallelRuns;
        using (kernels.Enter())
        {
            await Task.Yield();
            Assert.Same(kernels, KernelContext.Current);
        }
        Assert.Same(KernelContext.Default, KernelContext.Current);

        // The batcher is made outside any context but told to run in this one.
        var w = PackedWeight.FromOutIn(W, N, K);
        KernelContext? seen = null;
        using (var batcher = new RequestBatcher<int, float[]>(items =>
               {
                   seen = KernelContext.Current;
                   var y = new float[M * N];
                   Gemm.Linear(X, M, w, B, y);
                   return items.Select(_ => y).ToList();
               }, _ => 1, maxBatchCost: 10, kernels: kernels))
        {
            var results = await batcher.SubmitAsync([1]);
            Assert.Equal(expected, results[0]);
        }
        Assert.Same(kernels, seen);
        Assert.Equal(before + 1, kernels.ParallelRuns);
    }

    [Fact]
    public async Task A_decode_scheduler_runs_its_passes_in_the_context_it_is_given()
    {
        var model = AutoModel.LoadCausalLM(SharedPaths.Fixture("gpt2-tiny"));
        using var loop = new KernelContext(2, profile: true);
        using var caller = new KernelContext(2, profile: true);
        using (caller.Enter())
        {
            using var scheduler = new DecodeScheduler(model, maxBatch: 2, maxContext: 32, kernels: loop);
            int n = 0;
            await foreach (var _ in scheduler.GenerateAsync([1, 2, 3], new GenerationOptions { MaxNewTokens = 4, DoSample = false, EosTokenIds = [] })) n++;
            Assert.Equal(4, n);
        }
        long Calls(KernelContext c, ProfiledKernel k) => c.Profile.Totals().Single(t => t.Kernel == k).Calls;
        // A prefill and three decode steps, each through every layer: all in the scheduler's context, none in the caller's.
        Assert.True(Calls(loop, ProfiledKernel.Gemm) >= 4 * model.Shape.Layers, $"{Calls(loop, ProfiledKernel.Gemm)} GEMMs");
        Assert.True(Calls(loop, ProfiledKernel.Attention) >= 4 * model.Shape.Layers);
        Assert.All(caller.Profile.Totals(), t => Assert.Equal(0, t.Calls));
    }

    [Fact]
    public void The_server_threads_setting_is_checked()
    {
        var e = Assert.Throws<SharpFormerException>(() => new ServingOptions { Threads = 0 }.Validate());
        Assert.Contains("--threads must be at least 1", e.Message);
        new ServingOptions { Threads = 1 }.Validate();
    }
}
