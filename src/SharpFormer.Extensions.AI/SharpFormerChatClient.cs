using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using MEAI = Microsoft.Extensions.AI;

namespace SharpFormer.Extensions.AI;

/// <summary>
/// <see cref="IChatClient"/> over a served chat model: the conversation rendered by the model's chat template,
/// generation stopped on its EOS ids, stop sequences matched across tokens. Options that mean the same thing are
/// mapped (MaxOutputTokens, Temperature, TopP, TopK, Seed, StopSequences, Instructions as a leading system message,
/// ModelId when it names this model); any other option that is set, and any message content that is not text, is
/// refused with a <see cref="NotSupportedException"/> naming it, never ignored. The caller's options are never
/// modified. The last streamed update carries the finish reason and usage.
/// </summary>
public sealed class SharpFormerChatClient(ServedModel model) : IChatClient
{
    /// <summary>The model behind this client.</summary>
    public ServedModel Model { get; } = model;

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<MEAI.ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<MEAI.ChatMessage> messages, ChatOptions? options = null,
                                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        RefuseUnsupported(options);
        var conversation = new List<SharpFormer.Templates.ChatMessage>();
        if (options?.Instructions is { Length: > 0 } instructions) conversation.Add(new("system", instructions));
        foreach (var m in messages)
        {
            if (m.Contents.FirstOrDefault(c => c is not TextContent) is { } other)
                throw new NotSupportedException($"SharpFormerChatClient takes text messages only; a {m.Role.Value} message holds {other.GetType().Name}");
            conversation.Add(new SharpFormer.Templates.ChatMessage(m.Role.Value, m.Text));
        }
        var ids = Model.ChatPrompt(conversation);
        var request = new SamplingRequest(options?.MaxOutputTokens, options?.Temperature, options?.TopP, options?.Seed, options?.StopSequences?.ToArray(), options?.TopK);
        string responseId = $"chatcmpl-{Guid.NewGuid():N}", messageId = $"msg-{Guid.NewGuid():N}";
        await foreach (var u in Model.GenerateAsync(ids, request, cancellationToken).ConfigureAwait(false))
        {
            var update = new ChatResponseUpdate(ChatRole.Assistant, u.Text.Length > 0 ? [new TextContent(u.Text)] : [])
            {
                ResponseId = responseId, MessageId = messageId, ModelId = Model.Name,
            };
            if (u.Finish is { } f)
            {
                update.FinishReason = f.Reason == "stop" ? ChatFinishReason.Stop : ChatFinishReason.Length;
                update.Contents.Add(new UsageContent(new UsageDetails
                {
                    InputTokenCount = f.PromptTokens, OutputTokenCount = f.CompletionTokens, TotalTokenCount = f.PromptTokens + f.CompletionTokens,
                }));
            }
            yield return update;
        }
    }

    /// <summary>Throws a <see cref="NotSupportedException"/> naming the first option that is set and that this client cannot honour.</summary>
    void RefuseUnsupported(ChatOptions? o)
    {
        if (o is null) return;
        string? refused =
            o.ModelId is { } id && id != Model.Name ? $"ModelId '{id}' (this client serves '{Model.Name}')"
            : o.FrequencyPenalty is { } f && f != 0 ? nameof(ChatOptions.FrequencyPenalty)
            : o.PresencePenalty is { } p && p != 0 ? nameof(ChatOptions.PresencePenalty)
            : o.Tools is { Count: > 0 } ? nameof(ChatOptions.Tools)
            : o.ToolMode is { } mode && mode is not NoneChatToolMode ? nameof(ChatOptions.ToolMode)
            : o.AllowMultipleToolCalls == true ? nameof(ChatOptions.AllowMultipleToolCalls)
            : o.ResponseFormat is { } format && format is not ChatResponseFormatText ? nameof(ChatOptions.ResponseFormat)
            : o.ConversationId is not null ? nameof(ChatOptions.ConversationId)
            : o.AllowBackgroundResponses == true ? nameof(ChatOptions.AllowBackgroundResponses)
            : o.ContinuationToken is not null ? nameof(ChatOptions.ContinuationToken)
            : o.Reasoning is not null ? nameof(ChatOptions.Reasoning)
            : o.RawRepresentationFactory is not null ? nameof(ChatOptions.RawRepresentationFactory)
            : o.AdditionalProperties is { Count: > 0 } extra ? $"AdditionalProperties ({string.Join(", ", extra.Keys)})"
            : null;
        if (refused is not null) throw new NotSupportedException($"SharpFormerChatClient cannot honour ChatOptions.{refused}");
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("sharpformer", null, Model.Name)
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType.IsInstanceOfType(Model) ? Model : null;

    /// <summary>Nothing to release: the model belongs to whoever loaded it.</summary>
    public void Dispose() { }
}

/// <summary>
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over a served encoder: the model's pooling and normalisation
/// (its sentence-transformers configuration when it has one), texts never truncated.
/// </summary>
public sealed class SharpFormerEmbeddingGenerator(ServedModel model) : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>The model behind this generator.</summary>
    public ServedModel Model { get; } = model;

    /// <inheritdoc/>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
                                                                          CancellationToken cancellationToken = default)
    {
        var embedder = Model.RequireEmbedder();
        var texts = values.ToList();
        if (options?.Dimensions is int d && d != embedder.Dimension)
            throw new SharpFormerException($"model '{Model.Name}' makes {embedder.Dimension}-dimensional vectors, not {d}");
        var vectors = await Model.EmbedAsync(texts, cancellationToken).ConfigureAwait(false);
        var created = DateTimeOffset.UtcNow;
        int tokens = texts.Sum(t => embedder.Session.Tokenizer.Encode(t).Length);
        return new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = Model.Name, CreatedAt = created }))
        {
            Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
        };
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(EmbeddingGeneratorMetadata) ? new EmbeddingGeneratorMetadata("sharpformer", null, Model.Name, Model.RequireEmbedder().Dimension)
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType.IsInstanceOfType(Model) ? Model : null;

    /// <summary>Nothing to release: the model belongs to whoever loaded it.</summary>
    public void Dispose() { }
}
