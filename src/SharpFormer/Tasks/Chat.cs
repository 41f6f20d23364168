using SharpFormer.Models;
using SharpFormer.Templates;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tasks;

/// <summary>One assistant reply: the prompt the model saw (rendered by the chat template), its ids, and what was generated.</summary>
/// <param name="Prompt">The rendered conversation, generation prompt included.</param>
/// <param name="PromptIds">The prompt's ids (the template's text encoded without added special tokens).</param>
/// <param name="NewIds">The generated ids, the closing EOS included when the model ended its turn.</param>
/// <param name="Text">The reply's text, special tokens skipped.</param>
/// <param name="StoppedOnEos">True when the model ended its turn (an EOS such as &lt;|im_end|&gt;), false when a length limit stopped it.</param>
public sealed record ChatReply(string Prompt, int[] PromptIds, int[] NewIds, string Text, bool StoppedOnEos);

/// <summary>
/// A chat model at work: a conversation in, the assistant's reply out (whole or streamed). The conversation is rendered
/// with the model's chat template and <c>add_generation_prompt=True</c>, as transformers' <c>apply_chat_template</c>
/// then <c>generate()</c>; generation stops on the model's EOS ids (generation_config.json's list, e.g. Qwen2's
/// &lt;|im_end|&gt; and &lt;|endoftext|&gt;).
/// </summary>
public sealed class ChatModel(ICausalLM model, ITokenizer tokenizer, ChatTemplate template)
{
    /// <summary>The language model.</summary>
    public ICausalLM Model { get; } = model;
    /// <summary>Its tokenizer.</summary>
    public ITokenizer Tokenizer { get; } = tokenizer;
    /// <summary>Its chat template.</summary>
    public ChatTemplate Template { get; } = template;

    /// <summary>A model folder's model, tokenizer and chat template.</summary>
    public static ChatModel Load(string modelDir, WeightOptions weights)
    {
        var tokenizer = AutoTokenizer.FromFolder(modelDir);
        var template = ChatTemplate.FromFolder(modelDir, tokenizer);   // before the weights: a folder without a template fails fast
        return new ChatModel(AutoModel.LoadCausalLM(modelDir, weights), tokenizer, template);
    }

    /// <summary>The conversation rendered by the chat template with the generation prompt, and its ids.</summary>
    public (string Prompt, int[] Ids) Prompt(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count == 0) throw new SharpFormerException("the conversation is empty");
        var prompt = Template.Render(messages, addGenerationPrompt: true);
        return (prompt, Template.Encode(prompt));
    }

    /// <summary>The assistant's reply to <paramref name="messages"/>; <paramref name="onText"/> receives it as it is generated.</summary>
    public ChatReply Reply(IReadOnlyList<ChatMessage> messages, GenerationOptions options, Action<string>? onText = null, CancellationToken cancellationToken = default)
    {
        var (prompt, ids) = Prompt(messages);
        var result = Generation.Generate(Model, Tokenizer, ids, options, onText, cancellationToken);
        var seq = result.Sequences[0];
        return new ChatReply(prompt, ids, seq.NewIds, seq.Text ?? "", seq.StoppedOnEos);
    }

    /// <summary>
    /// The assistant's reply as a stream (generation runs on a decode loop thread; cancelling stops it at the next step):
    /// text pieces, cut before the first of <paramref name="stop"/>, and a last update with the finish reason and token counts.
    /// </summary>
    public IAsyncEnumerable<GenerationUpdate> ReplyStreamAsync(IReadOnlyList<ChatMessage> messages, GenerationOptions options,
                                                               IReadOnlyList<string>? stop = null, CancellationToken cancellationToken = default) =>
        GenerationStream.StreamAsync(Model, Tokenizer, Prompt(messages).Ids, options, stop, cancellationToken: cancellationToken);
}

/// <summary>A multi-turn conversation with a <see cref="ChatModel"/>: the history, an optional system prompt, reset.</summary>
public sealed class ChatSession(ChatModel model, GenerationOptions options)
{
    readonly List<ChatMessage> _turns = new();

    /// <summary>The system prompt sent first, or null (then the template's default, if it has one).</summary>
    public string? SystemPrompt { get; set; }
    /// <summary>The sampling and length options of every reply.</summary>
    public GenerationOptions Options { get; set; } = options;

    /// <summary>The conversation as the template receives it: the system prompt, then the turns so far.</summary>
    public IReadOnlyList<ChatMessage> Messages =>
        SystemPrompt is null ? _turns.ToArray() : [new ChatMessage("system", SystemPrompt), .. _turns];

    /// <summary>Forgets the turns (the system prompt stays).</summary>
    public void Reset() => _turns.Clear();

    /// <summary>Sends a user message and returns the reply, streaming it to <paramref name="onText"/>; both join the history only if the reply completes.</summary>
    public ChatReply Send(string userMessage, Action<string>? onText = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        var messages = Messages.Append(new ChatMessage("user", userMessage)).ToList();
        var reply = model.Reply(messages, Options, onText, cancellationToken);
        _turns.Add(new ChatMessage("user", userMessage));
        _turns.Add(new ChatMessage("assistant", reply.Text));
        return reply;
    }
}
