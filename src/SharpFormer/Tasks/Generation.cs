using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tasks;

/// <summary>
/// HuggingFace <c>GenerationConfig</c> fields that <see cref="Generation"/> honours, with HuggingFace's defaults
/// (note top_k = 50 applies whenever sampling, as in HF).
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>New tokens to generate at most; takes precedence over <see cref="MaxLength"/>.</summary>
    public int? MaxNewTokens { get; init; }
    /// <summary>Total length (prompt + new) at most; HF's default is 20 when neither limit is set.</summary>
    public int? MaxLength { get; init; }
    /// <summary>Generate at least this many new tokens (EOS is suppressed until then).</summary>
    public int MinNewTokens { get; init; }
    /// <summary>Total length (prompt + new) at least (EOS is suppressed until then).</summary>
    public int MinLength { get; init; }
    /// <summary>Sample from the distribution (true) or take the most probable token (greedy, false).</summary>
    public bool DoSample { get; init; }
    /// <summary>Sampling: divides the logits (below 1 sharper, above 1 flatter).</summary>
    public float Temperature { get; init; } = 1f;
    /// <summary>Sampling: keep only the K most probable tokens (0: all).</summary>
    public int TopK { get; init; } = 50;
    /// <summary>Sampling: keep the smallest set of tokens whose probability reaches P (1: all).</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Penalises tokens already in the sequence (CTRL's rule; 1: none).</summary>
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>Never repeat an n-gram of this size (0: no limit).</summary>
    public int NoRepeatNgramSize { get; init; }
    /// <summary>Sequences generated per prompt.</summary>
    public int NumReturnSequences { get; init; } = 1;
    /// <summary>Seeds the sampler (System.Random): the same seed gives the same output run to run. Null: a random seed.</summary>
    public int? Seed { get; init; }
    /// <summary>Stop tokens; null means the model config's eos_token_id.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }
    /// <summary>The id used for left padding and after a sequence finished; null means the first EOS id (as HF).</summary>
    public int? PadTokenId { get; init; }

    /// <summary>The total length HuggingFace generates when neither <see cref="MaxNewTokens"/> nor <see cref="MaxLength"/> is set.</summary>
    public const int DefaultMaxLength = 20;

    /// <summary>A model folder's <c>generation_config.json</c> (HF defaults for what it lacks; plain defaults if absent).</summary>
    public static GenerationOptions FromModelFolder(string modelDir)
    {
        var path = Path.Combine(modelDir, "generation_config.json");
        if (!File.Exists(path)) return new GenerationOptions();
        JsonObject o;
        try { o = JsonNode.Parse(Utf8Text.ReadAllText(path)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new SharpFormerException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        try
        {
            var d = new GenerationOptions();
            return d with
            {
                MaxNewTokens = IntOrNull(o, "max_new_tokens"),
                MaxLength = IntOrNull(o, "max_length"),
                MinNewTokens = IntOrNull(o, "min_new_tokens") ?? 0,
                MinLength = IntOrNull(o, "min_length") ?? 0,
                DoSample = o["do_sample"] is JsonValue ds && ds.GetValueKind() == JsonValueKind.True,
                Temperature = (float?)DoubleOrNull(o, "temperature") ?? d.Temperature,
                TopK = IntOrNull(o, "top_k") ?? d.TopK,
                TopP = (float?)DoubleOrNull(o, "top_p") ?? d.TopP,
                RepetitionPenalty = (float?)DoubleOrNull(o, "repetition_penalty") ?? d.RepetitionPenalty,
                NoRepeatNgramSize = IntOrNull(o, "no_repeat_ngram_size") ?? 0,
                NumReturnSequences = IntOrNull(o, "num_return_sequences") ?? 1,
                EosTokenIds = o["eos_token_id"] switch
                {
                    JsonArray a => a.Select(x => x!.GetValue<int>()).ToArray(),
                    JsonValue v => [v.GetValue<int>()],
                    _ => null,
                },
                PadTokenId = IntOrNull(o, "pad_token_id"),
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new SharpFormerException($"{path}: a field has the wrong type ({e.Message.Split('\n')[0]})");
        }

        static int? IntOrNull(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<int>() : null;
        static double? DoubleOrNull(JsonObject o, string k) => o[k] is JsonValue v ? v.GetValue<double>() : null;
    }

    /// <summary>Throws a one-line <see cref="SharpFormerException"/> for options HuggingFace would reject.</summary>
    public void Validate()
    {
        if (MaxNewTokens is int mnt && mnt < 1) throw new SharpFormerException($"max_new_tokens must be at least 1 (got {mnt})");
        if (MaxLength is int ml && ml < 1) throw new SharpFormerException($"max_length must be at least 1 (got {ml})");
        if (MinNewTokens < 0) throw new SharpFormerException($"min_new_tokens must not be negative (got {MinNewTokens})");
        if (MinLength < 0) throw new SharpFormerException($"min_length must not be negative (got {MinLength})");
        if (TopK < 0) throw new SharpFormerException($"top_k must be a non-negative integer (got {TopK}; 0 disables it)");
        if (!(TopP > 0f && TopP <= 1f)) throw new SharpFormerException($"top_p must be in (0, 1] (got {TopP})");
        if (DoSample && !(Temperature > 0f) ) throw new SharpFormerException($"temperature must be a strictly positive number when sampling (got {Temperature})");
        if (float.IsNaN(Temperature) || float.IsInfinity(Temperature)) throw new SharpFormerException($"temperature must be a finite number (got {Temperature})");
        if (!(RepetitionPenalty > 0f) || float.IsInfinity(RepetitionPenalty)) throw new SharpFormerException($"repetition_penalty must be a strictly positive number (got {RepetitionPenalty})");
        if (NoRepeatNgramSize < 0) throw new SharpFormerException($"no_repeat_ngram_size must not be negative (got {NoRepeatNgramSize}; 0 disables it)");
        if (NumReturnSequences < 1) throw new SharpFormerException($"num_return_sequences must be at least 1 (got {NumReturnSequences})");
        if (NumReturnSequences > 1 && !DoSample)
            throw new SharpFormerException($"greedy decoding cannot return {NumReturnSequences} different sequences (num_return_sequences > 1 needs sampling)");
    }
}

/// <summary>One generated continuation.</summary>
/// <param name="PromptIndex">Which prompt it continues.</param>
/// <param name="NewIds">The generated ids, EOS included when the sequence stopped on it (HF pads after that; we drop the padding).</param>
/// <param name="Text">The new ids decoded (special tokens skipped), when a tokenizer was given.</param>
/// <param name="StoppedOnEos">True when the sequence ended on an EOS id (not on a length limit).</param>
public sealed record GeneratedSequence(int PromptIndex, int[] NewIds, string? Text, bool StoppedOnEos);

/// <summary>The prompts as tokenized and what was generated (num_return_sequences rows per prompt, in prompt order).</summary>
public sealed record GenerationResult(IReadOnlyList<int[]> PromptIds, IReadOnlyList<GeneratedSequence> Sequences)
{
    /// <summary>True when generation stopped because the model's context (n_positions) was full, before max_new_tokens / max_length.</summary>
    public bool StoppedAtContextLimit { get; init; }
    /// <summary>True when max_length was not longer than the prompt (HF then warns and still generates one token).</summary>
    public bool MaxLengthNotAbovePrompt { get; init; }
}

/// <summary>A token's probability at one generation step.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Probability">Under the model: softmax of the logits after the processors (repetition penalty, n-gram ban, min length), before temperature / top-k / top-p.</param>
/// <param name="SampledProbability">In the distribution the token was drawn from: after temperature / top-k / top-p when sampling, the model's when greedy.</param>
public readonly record struct TokenProbability(int Id, float Probability, float SampledProbability);

/// <summary>A generated token with its probabilities and the step's most likely tokens under the model (it may be one of them).</summary>
/// <param name="Row">The sequence (prompt·N + k).</param>
/// <param name="Chosen">The generated token.</param>
/// <param name="Alternatives">The most likely tokens of the step under the model, most likely first.</param>
public sealed record TokenStep(int Row, TokenProbability Chosen, IReadOnlyList<TokenProbability> Alternatives);

/// <summary>
/// HuggingFace <c>generate()</c> for a causal language model (GPT-2, Llama, Qwen2, …): greedy search or multinomial sampling, one KV cache (prefill
/// once, then one position per step), logits processors in HF's order: repetition penalty → no-repeat n-gram →
/// min length / min new tokens → (sampling only) temperature → top-k → top-p.
/// </summary>
public static class Generation
{
    /// <summary>Generates from token-id prompts (batched: rows are left-padded, positions follow the attention mask).</summary>
    /// <param name="model">The GPT-2 to generate with.</param>
    /// <param name="prompts">Token ids of each prompt (not empty).</param>
    /// <param name="options">The generation settings (HuggingFace's names and defaults).</param>
    /// <param name="onToken">Called as (row, id) for every token a still-running row produces; row = prompt·N + k.</param>
    /// <param name="cancellationToken">Checked before every step: cancelling stops generation with an OperationCanceledException.</param>
    public static GenerationResult Generate(ICausalLM model, IReadOnlyList<int[]> prompts, GenerationOptions options, Action<int, int>? onToken = null,
                                            CancellationToken cancellationToken = default) =>
        Run(model, prompts, options, onToken, null, cancellationToken);

    /// <summary>
    /// Generates like <see cref="Generate(ICausalLM, IReadOnlyList{int[]}, GenerationOptions, Action{int, int}?, CancellationToken)"/>
    /// and reports every token with its probability and the step's <paramref name="alternatives"/> most likely tokens
    /// (a softmax over the vocabulary per step: for inspecting a generation, not for speed).
    /// </summary>
    public static GenerationResult Generate(ICausalLM model, IReadOnlyList<int[]> prompts, GenerationOptions options, int alternatives,
                                            Action<TokenStep> onStep, CancellationToken cancellationToken = default)
    {
        if (alternatives < 1) throw new SharpFormerException($"the number of alternatives must be at least 1 (got {alternatives})");
        ArgumentNullException.ThrowIfNull(onStep);
        return Run(model, prompts, options, null, null, cancellationToken, (alternatives, onStep));
    }

    /// <summary>
    /// Tokenizes the prompt with the model folder's tokenizer, generates, and streams text chunks as (row, chunk)
    /// — only whole characters: bytes of a character split across tokens are held back until it is complete.
    /// </summary>
    public static GenerationResult Generate(ICausalLM model, ITokenizer tokenizer, string prompt, GenerationOptions options, Action<int, string>? onText = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Length == 0) throw new SharpFormerException("the prompt is empty");
        var ids = tokenizer.EncodeForCausalLm(prompt);
        if (ids.Length == 0) throw new SharpFormerException("the prompt is empty after tokenization");
        return Run(model, [ids], options, null, (tokenizer, onText), default);
    }

    /// <summary>
    /// Generates from prompt ids already made (e.g. a chat template's) and streams the new text as it becomes final,
    /// special tokens skipped.
    /// </summary>
    public static GenerationResult Generate(ICausalLM model, ITokenizer tokenizer, int[] promptIds, GenerationOptions options,
                                            Action<string>? onText, CancellationToken cancellationToken = default)
    {
        if (promptIds.Length == 0) throw new SharpFormerException("the prompt is empty");
        return Run(model, [promptIds], options, null, (tokenizer, onText is null ? null : (_, chunk) => onText(chunk)), cancellationToken);
    }

    static GenerationResult Run(ICausalLM model, IReadOnlyList<int[]> prompts, GenerationOptions o, Action<int, int>? onToken,
                                (ITokenizer Tok, Action<int, string>? OnText)? text, CancellationToken cancellationToken,
                                (int Count, Action<TokenStep> OnStep)? steps = null)
    {
        o.Validate();
        var shape = model.Shape;
        int vocab = shape.VocabSize, ctx = shape.ContextLength;
        if (prompts.Count == 0) throw new SharpFormerException("no prompt given");
        foreach (var p in prompts)
        {
            if (p.Length == 0) throw new SharpFormerException("the prompt is empty");
            foreach (var id in p)
                if ((uint)id >= (uint)vocab) throw new SharpFormerException($"prompt token id {id} is outside the vocabulary [0, {vocab})");
        }
        var eos = (o.EosTokenIds ?? shape.EosTokenIds).Where(e => (uint)e < (uint)vocab).ToArray();
        int pad = o.PadTokenId is int pd && (uint)pd < (uint)vocab ? pd : eos.Length > 0 ? eos[0] : 0;

        // Expand (repeat_interleave) and left-pad.
        int n = o.NumReturnSequences, b = prompts.Count * n;
        int promptLen = prompts.Max(p => p.Length);
        if (promptLen >= ctx)
            throw new SharpFormerException($"the prompt has {promptLen} tokens; the model's context is {ctx} positions, which leaves no room to generate");
        int maxTotal = o.MaxNewTokens is int mnt ? promptLen + mnt : o.MaxLength ?? GenerationOptions.DefaultMaxLength;
        bool notAbove = maxTotal <= promptLen;
        if (notAbove) maxTotal = promptLen + 1;                  // HF warns and still generates one token
        bool contextLimited = maxTotal > ctx;
        maxTotal = Math.Min(maxTotal, ctx);

        var seqs = new int[b][];
        var mask = new int[b][];
        for (int r = 0; r < b; r++)
        {
            var p = prompts[r / n];
            seqs[r] = new int[maxTotal];
            mask[r] = new int[promptLen];
            int offset = promptLen - p.Length;
            seqs[r].AsSpan(0, offset).Fill(pad);
            p.CopyTo(seqs[r], offset);
            mask[r].AsSpan(offset).Fill(1);
        }
        var inputIds = seqs.Select(s => s[..promptLen]).ToArray();
        var positions = DecoderPositions.FromMask(mask);
        var nextPos = positions.Select(row => row[^1] + 1).ToArray();
        var cache = model.CreateCache(b, capacity: maxTotal);

        // Prefill: the whole prompt once; only the last position's logits are needed.
        cancellationToken.ThrowIfCancellationRequested();
        var first = model.Forward(inputIds, mask, positions, cache, allLogits: false, outputPresents: false);
        var scores = first.Logits.Data;                           // [B, V], reused for every step
        var finished = new bool[b];
        var stoppedOnEos = new bool[b];
        var newCounts = new int[b];
        var next = new int[b];
        var rng = o.Seed is int seed ? new Random(seed) : new Random();
        var work = new Scratch(vocab);
        var stepOf = new TokenStep?[b];
        var streams = text is { OnText: not null } ? Enumerable.Range(0, b).Select(_ => text.Value.Tok.CreateStreamDecoder()).ToArray() : null;

        int cur = promptLen;
        while (true)
        {
            for (int r = 0; r < b; r++)
            {
                var row = scores.AsSpan(r * vocab, vocab);
                var seq = seqs[r].AsSpan(0, cur);
                // HF processes finished rows too (and then overrides with pad); skipping them changes no output.
                if (finished[r]) { next[r] = pad; continue; }
                next[r] = ChooseNext(row, seq, newCounts[r], o, eos, rng, work, steps?.Count ?? 0, r, out stepOf[r]);
            }
            for (int r = 0; r < b; r++)
            {
                seqs[r][cur] = next[r];
                if (finished[r]) continue;
                newCounts[r]++;
                onToken?.Invoke(r, next[r]);
                if (stepOf[r] is { } step) steps!.Value.OnStep(step);
                if (streams is not null)
                {
                    var chunk = streams[r].Push(next[r]);
                    if (chunk.Length > 0) text!.Value.OnText!(r, chunk);
                }
                if (Array.IndexOf(eos, next[r]) >= 0) { finished[r] = true; stoppedOnEos[r] = true; }
            }
            cur++;
            if (cur >= maxTotal || Array.TrueForAll(finished, f => f)) break;
            for (int r = 0; r < b; r++) next[r] = seqs[r][cur - 1];
            cancellationToken.ThrowIfCancellationRequested();
            model.DecodeStep(next, nextPos, cache, scores);
            for (int r = 0; r < b; r++) nextPos[r]++;
        }
        if (streams is not null)
            for (int r = 0; r < b; r++)
            {
                var rest = streams[r].Flush();
                if (rest.Length > 0) text!.Value.OnText!(r, rest);
            }

        var result = new List<GeneratedSequence>(b);
        for (int r = 0; r < b; r++)
        {
            var newIds = seqs[r][promptLen..(promptLen + newCounts[r])];
            result.Add(new GeneratedSequence(r / n, newIds, text is null ? null : text.Value.Tok.DecodeForCausalLm(newIds), stoppedOnEos[r]));
        }
        bool allEos = Array.TrueForAll(stoppedOnEos, s => s);
        return new GenerationResult(prompts.Select(p => p.ToArray()).ToArray(), result)
        {
            StoppedAtContextLimit = contextLimited && !allEos && cur >= maxTotal,
            MaxLengthNotAbovePrompt = notAbove,
        };
    }

    /// <summary>
    /// The logits processors in HF's order on one row's next-token scores (changed in place), then the choice: greedy or
    /// one draw. <paramref name="seq"/> is the row so far (prompt, padding included, and what it generated).
    /// </summary>
    /// <remarks>
    /// With <paramref name="alternatives"/> above 0 it also reports the choice as a <see cref="TokenStep"/> of sequence
    /// <paramref name="rowIndex"/> (a softmax over the vocabulary: for inspecting a generation, not for speed).
    /// </remarks>
    internal static int ChooseNext(Span<float> row, ReadOnlySpan<int> seq, int newCount, GenerationOptions o, ReadOnlySpan<int> eos, Random rng, Scratch work,
                                   int alternatives, int rowIndex, out TokenStep? step)
    {
        ApplyProcessors(row, seq, newCount, o, eos, work);
        var modelP = alternatives > 0 ? EncoderSession.SoftmaxOf(row) : null;
        int next = Pick(row, o, rng, work);
        step = null;
        if (modelP is not null)
        {
            var sampledP = o.DoSample ? EncoderSession.SoftmaxOf(row) : modelP;
            TokenProbability At(int id) => new(id, modelP[id], sampledP[id]);
            step = new TokenStep(rowIndex, At(next), FillMaskPipeline.TopK(modelP, alternatives, null).Select(At).ToArray());
        }
        return next;
    }

    /// <summary>The logits processors (repetition penalty, no-repeat n-gram, min length) on one row, in place.</summary>
    static void ApplyProcessors(Span<float> row, ReadOnlySpan<int> seq, int newCount, GenerationOptions o, ReadOnlySpan<int> eos, Scratch work)
    {
        FiniteOutputs.Require(row, "next-token logits");   // before the processors, which set −inf on purpose
        if (o.RepetitionPenalty != 1f) RepetitionPenalty(row, seq, o.RepetitionPenalty, work);
        if (o.NoRepeatNgramSize > 0) BanRepeatedNgrams(row, seq, o.NoRepeatNgramSize);
        if (newCount < o.MinNewTokens || seq.Length < o.MinLength)
            foreach (var e in eos) row[e] = float.NegativeInfinity;
    }

    /// <summary>Greedy, or (sampling) temperature → top-k → top-p on the row in place, then one draw.</summary>
    static int Pick(Span<float> row, GenerationOptions o, Random rng, Scratch work)
    {
        if (!o.DoSample) return ArgMax(row);
        if (o.Temperature != 1f) TensorDivide(row, o.Temperature);
        if (o.TopK > 0) TopK(row, o.TopK, work);
        if (o.TopP < 1f) TopP(row, o.TopP, work);
        return Sample(row, rng);
    }

    /// <summary>Buffers sized to the vocabulary, allocated once per generate call.</summary>
    internal sealed class Scratch(int vocab)
    {
        public readonly bool[] Seen = new bool[vocab];
        public readonly float[] Values = new float[vocab];
        public readonly int[] Index = new int[vocab];
    }

    // ---- logits processors (HF's semantics) ----

    /// <summary>RepetitionPenaltyLogitsProcessor: every id in the sequence (prompt and padding included), once: s &lt; 0 ? s·p : s/p.</summary>
    internal static void RepetitionPenalty(Span<float> scores, ReadOnlySpan<int> seq, float penalty, Scratch? work = null)
    {
        var seen = work?.Seen ?? new bool[scores.Length];
        foreach (var id in seq)
        {
            if (seen[id]) continue;
            seen[id] = true;
            float s = scores[id];
            scores[id] = s < 0 ? s * penalty : s / penalty;
        }
        foreach (var id in seq) seen[id] = false;
    }

    /// <summary>NoRepeatNGramLogitsProcessor: bans every token that would complete an n-gram already in the sequence.</summary>
    internal static void BanRepeatedNgrams(Span<float> scores, ReadOnlySpan<int> seq, int n)
    {
        int cur = seq.Length;
        if (cur + 1 < n) return;
        var prefix = seq[(cur - n + 1)..];
        for (int i = 0; i + n <= cur; i++)
            if (seq.Slice(i, n - 1).SequenceEqual(prefix)) scores[seq[i + n - 1]] = float.NegativeInfinity;
    }

    static void TensorDivide(Span<float> x, float t)
    {
        for (int i = 0; i < x.Length; i++) x[i] /= t;
    }

    /// <summary>TopKLogitsWarper: keeps scores ≥ the k-th largest (ties kept), −inf elsewhere.</summary>
    internal static void TopK(Span<float> scores, int k, Scratch work)
    {
        k = Math.Min(Math.Max(k, 1), scores.Length);
        if (k == scores.Length) return;
        // The k-th largest via a min-heap of the k largest seen so far: O(V log k), no sort of the vocabulary.
        var heap = work.Values.AsSpan(0, k);
        for (int i = 0; i < k; i++) heap[i] = scores[i];
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(heap, i);
        for (int i = k; i < scores.Length; i++)
            if (scores[i] > heap[0]) { heap[0] = scores[i]; SiftDown(heap, 0); }
        float threshold = heap[0];
        for (int i = 0; i < scores.Length; i++) if (scores[i] < threshold) scores[i] = float.NegativeInfinity;

        static void SiftDown(Span<float> h, int i)
        {
            while (true)
            {
                int l = 2 * i + 1, r = l + 1, m = i;
                if (l < h.Length && h[l] < h[m]) m = l;
                if (r < h.Length && h[r] < h[m]) m = r;
                if (m == i) return;
                (h[i], h[m]) = (h[m], h[i]);
                i = m;
            }
        }
    }

    /// <summary>
    /// TopPLogitsWarper: sort ascending, cumulative softmax; remove tokens whose cumulative probability is ≤ 1 − top_p
    /// (the highest-scoring token is always kept).
    /// </summary>
    internal static void TopP(Span<float> scores, float topP, Scratch work)
    {
        // Tokens already at −inf (e.g. removed by top-k) have probability 0 and stay removed: sort only the others.
        int v = 0;
        for (int i = 0; i < scores.Length; i++)
            if (!float.IsNegativeInfinity(scores[i])) { work.Values[v] = scores[i]; work.Index[v++] = i; }
        if (v == 0) return;
        var vals = work.Values.AsSpan(0, v);
        var idx = work.Index.AsSpan(0, v);
        vals.Sort(idx);
        float max = vals[v - 1];
        double sum = 0;
        for (int i = 0; i < v; i++) sum += Math.Exp(vals[i] - max);
        double cum = 0, limit = 1.0 - topP;
        for (int i = 0; i < v - 1; i++)
        {
            cum += Math.Exp(vals[i] - max) / sum;
            if (cum <= limit) scores[idx[i]] = float.NegativeInfinity;
            else break;
        }
    }

    static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        float bv = row[0];
        for (int i = 1; i < row.Length; i++) if (row[i] > bv) { bv = row[i]; best = i; }   // first maximum, as torch.argmax
        return best;
    }

    /// <summary>softmax then one multinomial draw from our own seeded generator.</summary>
    static int Sample(ReadOnlySpan<float> row, Random rng)
    {
        float max = float.NegativeInfinity;
        foreach (var x in row) if (x > max) max = x;
        if (float.IsNegativeInfinity(max)) return ArgMax(row);
        double sum = 0;
        foreach (var x in row) sum += Math.Exp(x - max);
        double u = rng.NextDouble() * sum, acc = 0;
        int last = -1;
        for (int i = 0; i < row.Length; i++)
        {
            if (float.IsNegativeInfinity(row[i])) continue;
            double p = Math.Exp(row[i] - max);
            if (p == 0) continue;
            acc += p;
            last = i;
            if (u < acc) return i;
        }
        return last >= 0 ? last : ArgMax(row);
    }
}
