using System.Runtime.CompilerServices;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tasks;

/// <summary>Why generation ended, and the token counts (OpenAI's <c>usage</c>).</summary>
/// <param name="Reason">"stop" (EOS or a stop string) or "length" (the token limit or the context).</param>
/// <param name="PromptTokens">Tokens of the prompt.</param>
/// <param name="CompletionTokens">Tokens generated (the closing EOS and any stop string's tokens included).</param>
public sealed record GenerationFinish(string Reason, int PromptTokens, int CompletionTokens);

/// <summary>A piece of streamed output: text, and on the last piece the finish.</summary>
/// <param name="Text">New text ("" on the last piece when nothing is left, or when a token's text is held back).</param>
/// <param name="Finish">Set on the last piece only.</param>
/// <param name="Token">The token that produced this piece, with its probabilities (only when a stream asks for alternatives).</param>
public sealed record GenerationUpdate(string Text, GenerationFinish? Finish = null, TokenStep? Token = null);

/// <summary>
/// Streaming generation: the one loop behind the chat model's streamed replies, the OpenAI routes, <c>IChatClient</c>
/// and the playground. Tokens come from a <see cref="DecodeScheduler"/> (a server's, shared by concurrent generations,
/// or one of a single slot for this generation); on top of them text is released as it becomes final (whole
/// characters only, stop strings matched across tokens and trimmed, held-back text flushed at the end), and the last
/// update carries the finish.
/// </summary>
public static class GenerationStream
{
    /// <summary>
    /// Generates from <paramref name="promptIds"/> and streams the new text. Cancelling stops generation at the next
    /// step; so does a consumer that stops reading early, and a stop string (then the finish reason is "stop").
    /// </summary>
    /// <param name="model">The language model.</param>
    /// <param name="tokenizer">Its tokenizer (special tokens are skipped in the text).</param>
    /// <param name="promptIds">The prompt's ids (e.g. a chat template's).</param>
    /// <param name="options">Sampling and length settings.</param>
    /// <param name="stop">Stop strings: the output ends just before the first one (an empty one is an error).</param>
    /// <param name="scheduler">The scheduler of <paramref name="model"/> to join (null: a one-slot scheduler for this generation).</param>
    /// <param name="alternatives">Above 0: one update per token carrying its <see cref="TokenStep"/> with this many most likely tokens.</param>
    /// <param name="cancellationToken">Stops the generation.</param>
    public static async IAsyncEnumerable<GenerationUpdate> StreamAsync(ICausalLM model, ITokenizer tokenizer, int[] promptIds, GenerationOptions options,
        IReadOnlyList<string>? stop = null, DecodeScheduler? scheduler = null, int alternatives = 0,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (promptIds.Length == 0) throw new SharpFormerException("the prompt is empty");
        var matcher = new StopMatcher(stop);
        var decoder = tokenizer.CreateStreamDecoder();
        using var own = scheduler is null ? new DecodeScheduler(model, 1, SoloCapacity(model, promptIds.Length, options)) : null;
        // Cancelled by the caller, by a stop string, or when the consumer stops reading: the sequence leaves at the next step.
        using var stopped = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tokens = (scheduler ?? own!).GenerateAsync(promptIds, options, stopped.Token, alternatives).GetAsyncEnumerator(CancellationToken.None);
        int count = 0;
        string? reason = null;
        try
        {
            while (reason is null && await tokens.MoveNextAsync().ConfigureAwait(false))
            {
                var t = tokens.Current;
                count++;
                var text = matcher.Push(decoder.Push(t.Id));
                if (matcher.Stopped) reason = "stop";
                else reason = t.FinishReason;
                if (t.Step is { } step) yield return new GenerationUpdate(text, Token: step);
                else if (text.Length > 0) yield return new GenerationUpdate(text);
            }
            reason ??= "length";   // the stream ended without a finish: the scheduler ran out of room
            var rest = matcher.Push(decoder.Flush()) + matcher.Flush();
            if (rest.Length > 0) yield return new GenerationUpdate(rest);
            yield return new GenerationUpdate("", new GenerationFinish(reason, promptIds.Length, count));
        }
        finally
        {
            stopped.Cancel();   // a stop string, or a consumer that stopped early: free the slot
            await tokens.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Positions a one-slot scheduler needs for a prompt and the options' length limits (the model's context at most).</summary>
    static int SoloCapacity(ICausalLM model, int promptLength, GenerationOptions o)
    {
        long total = o.MaxNewTokens is int n ? (long)promptLength + n : Math.Max(o.MaxLength ?? GenerationOptions.DefaultMaxLength, promptLength + 1);
        return (int)Math.Clamp(total, 1, model.Shape.ContextLength);
    }
}
