using System.Runtime.CompilerServices;
using System.Threading.Channels;
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
/// Streaming generation: the one loop behind the chat model's streamed replies, the OpenAI routes and
/// <c>IChatClient</c>. Text is released as it becomes final (whole characters only, stop strings matched across
/// tokens and trimmed, held-back text flushed at the end); the last update carries the finish.
/// </summary>
public static class GenerationStream
{
    /// <summary>
    /// Generates from <paramref name="promptIds"/> on a worker thread and streams the new text. Cancelling stops
    /// generation at the next step; so does a consumer that stops reading early, and a stop string (then the finish
    /// reason is "stop").
    /// </summary>
    /// <param name="model">The language model.</param>
    /// <param name="tokenizer">Its tokenizer (special tokens are skipped in the text).</param>
    /// <param name="promptIds">The prompt's ids (e.g. a chat template's).</param>
    /// <param name="options">Sampling and length settings.</param>
    /// <param name="stop">Stop strings: the output ends just before the first one (an empty one is an error).</param>
    /// <param name="run">Runs the generation work (default <see cref="Task.Run(Action, CancellationToken)"/>); a server passes its scheduler here.</param>
    /// <param name="alternatives">Above 0: one update per token carrying its <see cref="TokenStep"/> with this many most likely tokens.</param>
    /// <param name="cancellationToken">Stops the generation.</param>
    public static async IAsyncEnumerable<GenerationUpdate> StreamAsync(ICausalLM model, ITokenizer tokenizer, int[] promptIds, GenerationOptions options,
        IReadOnlyList<string>? stop = null, Func<Action, CancellationToken, Task>? run = null, int alternatives = 0,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (promptIds.Length == 0) throw new SharpFormerException("the prompt is empty");
        var matcher = new StopMatcher(stop);
        var channel = Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stopped = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        void Work()
        {
            try
            {
                var decoder = tokenizer.CreateStreamDecoder();
                int count = 0;
                bool eos = false;
                void Emit(string text) { if (text.Length > 0) channel.Writer.TryWrite(new GenerationUpdate(text)); }
                void Token(int id, TokenStep? step)
                {
                    count++;
                    var text = matcher.Push(decoder.Push(id));
                    if (step is null) Emit(text);
                    else channel.Writer.TryWrite(new GenerationUpdate(text, Token: step));
                    if (matcher.Stopped) stopped.Cancel();   // generation ends before the next step
                }
                try
                {
                    var result = alternatives > 0
                        ? Generation.Generate(model, [promptIds], options, alternatives, s => Token(s.Chosen.Id, s), stopped.Token)
                        : Generation.Generate(model, [promptIds], options, (_, id) => Token(id, null), stopped.Token);
                    eos = result.Sequences[0].StoppedOnEos;
                }
                catch (OperationCanceledException) when (matcher.Stopped && !cancellationToken.IsCancellationRequested) { }
                Emit(matcher.Push(decoder.Flush()));
                Emit(matcher.Flush());
                channel.Writer.TryWrite(new GenerationUpdate("", new GenerationFinish(eos || matcher.Stopped ? "stop" : "length", promptIds.Length, count)));
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
                if (e is OperationCanceledException) throw;   // so the runner sees a cancelled generation as cancelled
            }
        }
        var work = run is null ? Task.Run(Work, CancellationToken.None) : run(Work, stopped.Token);
        // A runner that fails before the work starts (cancelled while waiting, refused) must still end the stream.
        _ = work.ContinueWith(t => channel.Writer.TryComplete(t.Exception?.GetBaseException() ?? (t.IsCanceled ? new OperationCanceledException() : null)),
                              CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            await foreach (var update in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false)) yield return update;
        }
        finally
        {
            stopped.Cancel();   // a consumer that stops reading early ends generation too
            try { await work.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
    }
}
