using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Templates;
using SharpFormer.Tokenizers;

namespace SharpFormer.Extensions.AI;

/// <summary>What a served model can do.</summary>
public enum ServedModelKind
{
    /// <summary>An encoder: sentence embeddings.</summary>
    Embedding,
    /// <summary>An encoder with a sequence-classification head: classification (and embeddings of its encoder).</summary>
    Classifier,
    /// <summary>A causal LM: completions, and chat when the folder has a chat template.</summary>
    Generator,
}

/// <summary>Sampling and length settings of one request, in OpenAI's terms (null: the model's generation_config).</summary>
/// <param name="MaxTokens">Most new tokens (null: up to the end of the context).</param>
/// <param name="Temperature">0 = greedy; &gt; 0 = sampling at this temperature.</param>
/// <param name="TopP">Nucleus sampling mass (sampling).</param>
/// <param name="Seed">The sampler's seed.</param>
/// <param name="Stop">Stop strings (the output ends just before the first one).</param>
/// <param name="TopK">When sampling, only the k most likely tokens (0 or null: no top-k; OpenAI has none).</param>
public sealed record SamplingRequest(int? MaxTokens = null, float? Temperature = null, float? TopP = null, long? Seed = null, IReadOnlyList<string>? Stop = null,
                                     int? TopK = null);

/// <summary>Why generation ended, and the token counts (OpenAI's <c>usage</c>).</summary>
/// <param name="Reason">"stop" (EOS or a stop string) or "length" (the token limit or the context).</param>
/// <param name="PromptTokens">Tokens of the prompt.</param>
/// <param name="CompletionTokens">Tokens generated (the closing EOS and any stop string's tokens included).</param>
public sealed record GenerationFinish(string Reason, int PromptTokens, int CompletionTokens);

/// <summary>A piece of streamed output: text, and on the last piece the finish.</summary>
/// <param name="Text">New text ("" on the last piece when nothing is left, or when a token's text is held back).</param>
/// <param name="Finish">Set on the last piece only.</param>
/// <param name="Token">The token that produced this piece, with its probabilities (only from <see cref="ServedModel.GenerateTokensAsync"/>).</param>
public sealed record GenerationUpdate(string Text, GenerationFinish? Finish = null, TokenStep? Token = null);

/// <summary>
/// One model folder loaded once for serving, addressed by its folder name. Requests to one model run one at a time (a
/// semaphore per model: the kernels are not yet safe to run concurrently on one model); different models run in parallel.
/// </summary>
public sealed class ServedModel : IDisposable
{
    readonly SemaphoreSlim _gate = new(1, 1);
    long _cancelled;

    /// <summary>Generations stopped because their caller cancelled (e.g. an HTTP client that disconnected).</summary>
    public long GenerationsCancelled => Interlocked.Read(ref _cancelled);

    ServedModel(string name, string dir, ServedModelKind kind, ITokenizer tokenizer)
    {
        Name = name; Directory = dir; Kind = kind; Tokenizer = tokenizer;
    }

    /// <summary>The name requests use (the folder's name unless given).</summary>
    public string Name { get; }
    /// <summary>The model folder.</summary>
    public string Directory { get; }
    /// <summary>What it serves.</summary>
    public ServedModelKind Kind { get; }
    /// <summary>When it was loaded (OpenAI's <c>created</c>).</summary>
    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
    /// <summary>Its tokenizer.</summary>
    public ITokenizer Tokenizer { get; }
    /// <summary>Sentence embeddings (encoders).</summary>
    public SentenceEmbedder? Embedder { get; private init; }
    /// <summary>The classifier (sequence-classification encoders).</summary>
    public TextClassifier? Classifier { get; private init; }
    /// <summary>The language model (decoders).</summary>
    public ICausalLM? LanguageModel { get; private init; }
    /// <summary>The chat template (decoders whose folder has one).</summary>
    public ChatTemplate? ChatTemplate { get; private init; }
    /// <summary>The folder's generation_config defaults (decoders).</summary>
    public GenerationOptions? GenerationDefaults { get; private init; }

    /// <summary>Loads a model folder: an encoder (a classifier when config.json's architectures say so) or any decoder family.</summary>
    public static ServedModel Load(string dir, string? name = null, WeightPrecision precision = WeightPrecision.Float32)
    {
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        if (!File.Exists(Path.Combine(full, "config.json"))) throw new SharpFormerException($"{dir}: not a model folder (no config.json)");
        name ??= Path.GetFileName(full);
        var family = ModelFamilies.Of(full);
        if (family.Kind == ModelKind.CausalLM)
        {
            var tokenizer = AutoTokenizer.FromFolder(full);
            bool hasTemplate = File.Exists(Path.Combine(full, "chat_template.jinja")) || TokenizerConfigHasTemplate(full);
            return new ServedModel(name, full, ServedModelKind.Generator, tokenizer)
            {
                ChatTemplate = hasTemplate ? ChatTemplate.FromFolder(full, tokenizer) : null,
                LanguageModel = AutoModel.LoadCausalLM(full, WeightOptions.Inference(precision)),
                GenerationDefaults = GenerationOptions.FromModelFolder(full),
            };
        }
        if (IsSequenceClassifier(full))
        {
            var classifier = TextClassifier.Load(full, precision: precision);
            return new ServedModel(name, full, ServedModelKind.Classifier, classifier.Session.Tokenizer)
            {
                Classifier = classifier, Embedder = new SentenceEmbedder(classifier.Session),
            };
        }
        var embedder = SentenceEmbedder.Load(full, precision: precision);
        return new ServedModel(name, full, ServedModelKind.Embedding, embedder.Session.Tokenizer) { Embedder = embedder };
    }

    static JsonObject? ReadJson(string path) =>
        File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject : null;

    static bool TokenizerConfigHasTemplate(string dir) =>
        ReadJson(Path.Combine(dir, "tokenizer_config.json"))?["chat_template"] is not null;

    static bool IsSequenceClassifier(string dir) =>
        ReadJson(Path.Combine(dir, "config.json"))?["architectures"] is JsonArray a
        && a.Any(x => x?.GetValue<string>().EndsWith("ForSequenceClassification", StringComparison.Ordinal) == true);

    /// <summary>Runs <paramref name="work"/> on a worker thread once the model is free (requests to one model are serialised).</summary>
    public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try { return await Task.Run(work, cancellationToken).ConfigureAwait(false); }
        finally { _gate.Release(); }
    }

    /// <summary>The embedder, or a one-line error naming what this model is.</summary>
    public SentenceEmbedder RequireEmbedder() =>
        Embedder ?? throw new SharpFormerException($"model '{Name}' is a {Kind.ToString().ToLowerInvariant()} model, not an embedding model");

    /// <summary>The classifier, or a one-line error naming what this model is.</summary>
    public TextClassifier RequireClassifier() =>
        Classifier ?? throw new SharpFormerException($"model '{Name}' is a {Kind.ToString().ToLowerInvariant()} model, not a sequence classifier");

    /// <summary>The language model, or a one-line error naming what this model is.</summary>
    public ICausalLM RequireLanguageModel() =>
        LanguageModel ?? throw new SharpFormerException($"model '{Name}' is a {Kind.ToString().ToLowerInvariant()} model, not a text-generation model");

    /// <summary>The prompt ids of a conversation rendered by the model's chat template (with the generation prompt).</summary>
    public int[] ChatPrompt(IReadOnlyList<ChatMessage> messages)
    {
        RequireLanguageModel();
        var template = ChatTemplate ?? throw new SharpFormerException($"model '{Name}' has no chat template; use completions");
        if (messages.Count == 0) throw new SharpFormerException("the conversation is empty");
        return template.Encode(template.Render(messages, addGenerationPrompt: true));
    }

    /// <summary>The generation options of a request for a prompt of <paramref name="promptLength"/> tokens.</summary>
    public GenerationOptions Options(SamplingRequest request, int promptLength)
    {
        var lm = RequireLanguageModel();
        var o = GenerationDefaults!;
        if (request.MaxTokens is int max && max < 1) throw new SharpFormerException($"max_tokens must be at least 1 (got {max})");
        int room = lm.Shape.ContextLength - promptLength;
        if (room < 1) throw new SharpFormerException($"the prompt has {promptLength} tokens; the model's context is {lm.Shape.ContextLength} positions, which leaves no room to generate");
        o = o with { MaxNewTokens = Math.Min(request.MaxTokens ?? room, room), MaxLength = null };
        // OpenAI's sampling has no top-k: a request that samples (temperature > 0 or top_p) samples from exactly the
        // distribution it describes; temperature 0 is greedy whatever top_p says.
        if (request.Temperature is float t && !(t >= 0 && t <= 2)) throw new SharpFormerException($"temperature must be between 0 and 2 (got {t})");
        if (request.TopP is float p && !(p > 0 && p <= 1)) throw new SharpFormerException($"top_p must be in (0, 1] (got {p})");
        if (request.Temperature == 0) o = o with { DoSample = false };
        else if (request.Temperature is not null || request.TopP is not null)
            o = o with { DoSample = true, TopK = 0, Temperature = request.Temperature ?? 1f, TopP = request.TopP ?? 1f };
        if (request.TopK is int k)
        {
            if (k < 0) throw new SharpFormerException($"top_k must not be negative (got {k}; 0 disables it)");
            if (o.DoSample) o = o with { TopK = k };
        }
        if (request.Seed is long seed) o = o with { Seed = unchecked((int)seed) };
        return o;
    }

    /// <summary>
    /// Generates from prompt ids and streams the text as it becomes final (stop strings matched across tokens and
    /// trimmed); the last update carries the finish reason and token counts. Cancelling stops generation at the next
    /// step and frees the model.
    /// </summary>
    public IAsyncEnumerable<GenerationUpdate> GenerateAsync(int[] promptIds, SamplingRequest request, CancellationToken cancellationToken = default) =>
        Stream(promptIds, request, 0, cancellationToken);

    /// <summary>
    /// Generates like <see cref="GenerateAsync"/> with one update per generated token, carrying the token, its
    /// probability and the step's <paramref name="alternatives"/> most likely tokens (its text may be "" while a
    /// character or a possible stop string is incomplete), then the finish.
    /// </summary>
    public IAsyncEnumerable<GenerationUpdate> GenerateTokensAsync(int[] promptIds, SamplingRequest request, int alternatives, CancellationToken cancellationToken = default)
    {
        if (alternatives < 1) throw new SharpFormerException($"the number of alternatives must be at least 1 (got {alternatives})");
        return Stream(promptIds, request, alternatives, cancellationToken);
    }

    async IAsyncEnumerable<GenerationUpdate> Stream(int[] promptIds, SamplingRequest request, int alternatives,
                                                    [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var lm = RequireLanguageModel();
        var options = Options(request, promptIds.Length);
        var matcher = new StopMatcher(request.Stop);
        var channel = Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stopped = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = RunAsync(() =>
        {
            try
            {
                var decoder = Tokenizer.CreateStreamDecoder();
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
                        ? Generation.Generate(lm, [promptIds], options, alternatives, s => Token(s.Chosen.Id, s), stopped.Token)
                        : Generation.Generate(lm, [promptIds], options, (_, id) => Token(id, null), stopped.Token);
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
                if (e is OperationCanceledException && cancellationToken.IsCancellationRequested) Interlocked.Increment(ref _cancelled);
                channel.Writer.Complete(e);
            }
            return 0;
        }, cancellationToken);
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

    /// <summary>Generates to the end and returns the whole text and the finish.</summary>
    public async Task<(string Text, GenerationFinish Finish)> GenerateTextAsync(int[] promptIds, SamplingRequest request, CancellationToken cancellationToken = default)
    {
        var text = new System.Text.StringBuilder();
        GenerationFinish? finish = null;
        await foreach (var u in GenerateAsync(promptIds, request, cancellationToken).ConfigureAwait(false))
        {
            text.Append(u.Text);
            finish = u.Finish ?? finish;
        }
        return (text.ToString(), finish!);
    }

    /// <inheritdoc/>
    public void Dispose() => _gate.Dispose();
}
