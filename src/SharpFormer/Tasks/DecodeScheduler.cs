using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Tasks;

/// <summary>A generated token; <see cref="FinishReason"/> is set on a sequence's last one.</summary>
/// <param name="Id">The token id (an EOS id included when the sequence stopped on it).</param>
/// <param name="FinishReason">On the last token only: "stop" (an EOS id) or "length" (the token limit or the cache is full).</param>
/// <param name="Step">The token with its probabilities and the step's most likely tokens, when the request asked for alternatives.</param>
public readonly record struct ScheduledToken(int Id, string? FinishReason = null, TokenStep? Step = null);

/// <summary>
/// Continuous batching for one causal LM: concurrent generations share decode steps. A request joins the running batch
/// at the next step (its prompt is prefilled into a free slot of one KV cache); a finished or cancelled one leaves and
/// frees its slot at once. One loop thread owns the model and its cache, so the model is never run by two threads; the
/// callers only read their token streams. Each request samples with its own options and seed, with the same logits
/// processors as <see cref="Generation"/>, so greedy output equals generating that prompt alone.
/// </summary>
/// <remarks>A prompt's prefill runs between two decode steps of the others (it is not split into chunks).</remarks>
public sealed class DecodeScheduler : IDisposable
{
    readonly ICausalLM _model;
    readonly KvCache _cache;
    readonly float[] _logits;
    readonly Channel<Request> _queue = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true });
    readonly Request?[] _slots;
    readonly Generation.Scratch _work;
    readonly CancellationTokenSource _stop = new();
    readonly Thread _loop;
    readonly SemaphoreSlim _wake = new(0);
    int _waiting;
    long _steps, _tokens;

    /// <summary>Starts the loop for <paramref name="model"/> with room for <paramref name="maxBatch"/> sequences of up to
    /// <paramref name="maxContext"/> positions each (default: the model's context).</summary>
    /// <param name="model">The model the loop runs.</param>
    /// <param name="maxBatch">Sequences decoded together at most.</param>
    /// <param name="maxContext">Positions per sequence (null: the model's context).</param>
    /// <param name="kernels">
    /// The kernel context every prefill and decode step runs in: its threads are this scheduler's cores (the server gives
    /// each of its loops one of <c>serve --threads</c> threads, or every core). Not owned: dispose it after the scheduler. Null: the
    /// context current where the scheduler is made.
    /// </param>
    public DecodeScheduler(ICausalLM model, int maxBatch = 8, int? maxContext = null, KernelContext? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (maxBatch < 1) throw new SharpFormerException($"the batch must hold at least one sequence (got {maxBatch})");
        _model = model;
        _cache = model.CreateCache(maxBatch, maxContext);
        _logits = new float[(long)maxBatch * model.Shape.VocabSize];
        _slots = new Request?[maxBatch];
        _work = new Generation.Scratch(model.Shape.VocabSize);
        _loop = new Thread(Loop) { IsBackground = true, Name = "SharpFormer decode scheduler" };
        // The thread starts with this execution context, so the loop's kernels run in the given context.
        using (kernels?.Enter()) _loop.Start();
    }

    /// <summary>Sequences decoded together at most.</summary>
    public int MaxBatch => _slots.Length;
    /// <summary>Positions (prompt + generated) a sequence may have.</summary>
    public int Capacity => _cache.Capacity;
    /// <summary>Requests waiting for a free slot.</summary>
    public int Waiting => Volatile.Read(ref _waiting);
    /// <summary>Decode steps run so far (each advances every running sequence by one token).</summary>
    public long Steps => Interlocked.Read(ref _steps);
    /// <summary>Tokens generated so far, all requests together.</summary>
    public long Tokens => Interlocked.Read(ref _tokens);
    /// <summary>Called on the loop thread after each decode step with the number of sequences it advanced.</summary>
    public Action<int>? StepCompleted { get; set; }

    /// <summary>
    /// Generates a continuation of <paramref name="promptIds"/> (HuggingFace's options; one sequence) as a stream of
    /// tokens. Cancelling <paramref name="cancellationToken"/> removes the sequence at the next step and ends the stream
    /// with an <see cref="OperationCanceledException"/>. With <paramref name="alternatives"/> above 0 every token carries
    /// its <see cref="ScheduledToken.Step"/> with that many most likely tokens.
    /// </summary>
    public async IAsyncEnumerable<ScheduledToken> GenerateAsync(int[] promptIds, GenerationOptions options,
                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default, int alternatives = 0)
    {
        if (alternatives < 0) throw new SharpFormerException($"the number of alternatives must not be negative (got {alternatives})");
        var request = Admit(promptIds, options, alternatives);
        using var registration = cancellationToken.Register(() => { request.Cancelled = true; _wake.Release(); });
        Interlocked.Increment(ref _waiting);
        if (!_queue.Writer.TryWrite(request)) { Interlocked.Decrement(ref _waiting); throw new ObjectDisposedException(nameof(DecodeScheduler)); }
        _wake.Release();
        var reader = request.Output.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            while (reader.TryRead(out var token))
            {
                // Tokens the loop made before it saw the cancellation are not handed out once the caller has cancelled.
                cancellationToken.ThrowIfCancellationRequested();
                yield return token;
            }
        // The loop completes a cancelled request's stream with the cancellation; surface the caller's own token.
        cancellationToken.ThrowIfCancellationRequested();
    }

    Request Admit(int[] promptIds, GenerationOptions o, int alternatives)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentNullException.ThrowIfNull(o);
        o.Validate();
        if (o.NumReturnSequences != 1) throw new SharpFormerException($"one sequence per request (num_return_sequences {o.NumReturnSequences})");
        int vocab = _model.Shape.VocabSize;
        if (promptIds.Length == 0) throw new SharpFormerException("the prompt is empty");
        foreach (var id in promptIds)
            if ((uint)id >= (uint)vocab) throw new SharpFormerException($"prompt token id {id} is outside the vocabulary [0, {vocab})");
        if (promptIds.Length >= Capacity)
            throw new SharpFormerException($"the prompt has {promptIds.Length} tokens; the context is {Capacity} positions, which leaves no room to generate");
        int maxTotal = o.MaxNewTokens is int mnt ? promptIds.Length + mnt : o.MaxLength ?? GenerationOptions.DefaultMaxLength;
        maxTotal = Math.Clamp(maxTotal, promptIds.Length + 1, Capacity);   // HF still generates one token when max_length ≤ prompt
        var eos = (o.EosTokenIds ?? _model.Shape.EosTokenIds).Where(e => (uint)e < (uint)vocab).ToArray();
        return new Request(promptIds, o, eos, maxTotal, o.Seed is int seed ? new Random(seed) : new Random(), alternatives);
    }

    void Loop()
    {
        var running = new List<int>(_slots.Length);
        var ids = new int[_slots.Length];
        var slots = new int[_slots.Length];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                // Leave: cancelled sequences free their slots before anything else runs.
                for (int s = 0; s < _slots.Length; s++)
                    if (_slots[s] is { Cancelled: true } r) { r.Output.Writer.TryComplete(new OperationCanceledException()); _slots[s] = null; }
                // Join: prefill waiting prompts into free slots.
                int v = _model.Shape.VocabSize;
                for (int s = 0; s < _slots.Length; s++)
                {
                    if (_slots[s] is not null) continue;
                    if (!TryTakeWaiting(out var r)) break;
                    try { _model.PrefillSlot(s, r.Sequence.ToArray(), _cache, _logits.AsSpan(0, v)); }
                    catch (Exception e) { r.Output.Writer.TryComplete(e); continue; }
                    if (Emit(r, _logits.AsSpan(0, v))) _slots[s] = r;
                }
                running.Clear();
                for (int s = 0; s < _slots.Length; s++) if (_slots[s] is not null) running.Add(s);
                if (running.Count == 0) { _wake.Wait(_stop.Token); continue; }

                int n = running.Count;
                for (int i = 0; i < n; i++) { slots[i] = running[i]; ids[i] = _slots[running[i]]!.Sequence[^1]; }
                try { _model.DecodeSlots(slots.AsSpan(0, n), ids.AsSpan(0, n), _cache, _logits.AsSpan(0, n * v)); }
                catch (Exception e)
                {
                    foreach (var s in running) { _slots[s]!.Output.Writer.TryComplete(e); _slots[s] = null; }
                    continue;
                }
                Interlocked.Increment(ref _steps);
                StepCompleted?.Invoke(n);
                for (int i = 0; i < n; i++)
                {
                    var r = _slots[slots[i]]!;
                    if (!Emit(r, _logits.AsSpan(i * v, v))) _slots[slots[i]] = null;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        var disposed = new ObjectDisposedException(nameof(DecodeScheduler));
        foreach (var r in _slots) r?.Output.Writer.TryComplete(disposed);
        while (_queue.Reader.TryRead(out var w)) w.Output.Writer.TryComplete(disposed);
    }

    /// <summary>The next waiting request that was not cancelled while it waited.</summary>
    bool TryTakeWaiting(out Request request)
    {
        while (_queue.Reader.TryRead(out var r))
        {
            Interlocked.Decrement(ref _waiting);
            if (!r.Cancelled) { request = r; return true; }
            r.Output.Writer.TryComplete(new OperationCanceledException());
        }
        request = null!;
        return false;
    }

    /// <summary>
    /// Chooses the request's next token from its logits row (changed in place) and streams it; false when the sequence is
    /// done — finished, or failed (its stream then ends with the exception; the others go on).
    /// </summary>
    bool Emit(Request r, Span<float> row)
    {
        int next;
        TokenStep? step;
        try { next = Generation.ChooseNext(row, CollectionsMarshal.AsSpan(r.Sequence), r.NewTokens, r.Options, r.Eos, r.Rng, _work, r.Alternatives, 0, out step); }
        catch (Exception e) { r.Output.Writer.TryComplete(e); return false; }
        r.Sequence.Add(next);
        r.NewTokens++;
        Interlocked.Increment(ref _tokens);
        string? finish = Array.IndexOf(r.Eos, next) >= 0 ? "stop" : r.Sequence.Count >= r.MaxTotal ? "length" : null;
        r.Output.Writer.TryWrite(new ScheduledToken(next, finish, step));
        if (finish is null) return true;
        r.Output.Writer.TryComplete();
        return false;
    }

    /// <summary>Stops the loop; running and waiting requests end with an <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _queue.Writer.TryComplete();
        _stop.Cancel();
        _loop.Join();
        _stop.Dispose();
        _wake.Dispose();
    }

    sealed class Request(int[] prompt, GenerationOptions options, int[] eos, int maxTotal, Random rng, int alternatives)
    {
        public readonly int Alternatives = alternatives;
        public readonly List<int> Sequence = [.. prompt];
        public readonly GenerationOptions Options = options;
        public readonly int[] Eos = eos;
        public readonly int MaxTotal = maxTotal;
        public readonly Random Rng = rng;
        public readonly Channel<ScheduledToken> Output = Channel.CreateUnbounded<ScheduledToken>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        public int NewTokens;
        public volatile bool Cancelled;
    }
}
