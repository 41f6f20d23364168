using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tasks;

/// <summary>One window of the sliding-window evaluation: ids [Begin, End), the last TargetLength of them scored.</summary>
public sealed record PerplexityWindow(int Begin, int End, int TargetLength, int Predictions, double Loss);

/// <summary>exp(Loss); Loss = the unweighted mean of the windows' mean NLL (one window: the mean next-token NLL).</summary>
public sealed record PerplexityResult(double Perplexity, double Loss, int Tokens, int Windows)
{
    /// <summary>Each window's span and loss, in order.</summary>
    public IReadOnlyList<PerplexityWindow> WindowDetails { get; init; } = [];
}

/// <summary>
/// Perplexity of a causal LM, as HuggingFace's "Perplexity of fixed-length models" guide computes it: windows of
/// max_length (n_positions) tokens starting every <c>stride</c> tokens; each window scores only the tokens not scored
/// by the previous one (labels −100 elsewhere), its loss is the mean NLL of those; perplexity = exp(mean of window
/// losses). A text that fits the context is one window whose loss is <c>model(ids, labels=ids).loss</c>.
/// Never truncates: every token after the first is scored.
/// </summary>
public static class Perplexity
{
    /// <summary>Tokenizes <paramref name="text"/> with the model's tokenizer (as HuggingFace does for a causal LM) and computes its perplexity.</summary>
    public static PerplexityResult Compute(ICausalLM model, ITokenizer tokenizer, string text, int? stride = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) throw new SharpFormerException("the text is empty");
        return Compute(model, tokenizer.EncodeForCausalLm(text), stride);
    }

    /// <summary>The perplexity of <paramref name="ids"/> (at least two tokens) under <paramref name="model"/>.</summary>
    /// <param name="model">The GPT-2 that scores the text.</param>
    /// <param name="ids">The token ids of the text.</param>
    /// <param name="stride">Tokens between window starts, in [1, maxLength]; default maxLength / 2 (the guide's 512 of 1024).</param>
    /// <param name="maxLength">Window length; default (and at most) the model's n_positions.</param>
    public static PerplexityResult Compute(ICausalLM model, int[] ids, int? stride = null, int? maxLength = null)
    {
        int ctx = model.Shape.ContextLength;
        int max = maxLength ?? ctx;
        if (max < 2 || max > ctx) throw new SharpFormerException($"the window length must be in [2, n_positions = {ctx}] (got {max})");
        int s = stride ?? Math.Max(1, max / 2);
        if (s < 1 || s > max) throw new SharpFormerException($"--stride must be in [1, {max}] (the window length, n_positions) (got {s})");
        int n = ids.Length;
        if (n < 2) throw new SharpFormerException($"perplexity needs at least 2 tokens (the text has {n})");

        var windows = new List<PerplexityWindow>();
        int prevEnd = 0;
        for (int begin = 0; begin < n; begin += s)
        {
            int end = Math.Min(begin + max, n);
            int trg = end - prevEnd;
            int len = end - begin;
            // labels[:, :-trg] = -100, then the shift drops the first label: predictions for window positions max(1, len - trg) .. len-1.
            int firstTarget = Math.Max(1, len - trg);
            var nll = model.TokenNll(ids[begin..end], firstTarget);
            double mean = 0;
            foreach (var x in nll) mean += x;
            mean /= nll.Length;
            windows.Add(new PerplexityWindow(begin, end, trg, nll.Length, mean));
            prevEnd = end;
            if (end == n) break;
        }
        double loss = windows.Average(w => w.Loss);
        FiniteOutputs.Require(loss, "negative log-likelihood");
        return new PerplexityResult(Math.Exp(loss), loss, n, windows.Count) { WindowDetails = windows };
    }
}
