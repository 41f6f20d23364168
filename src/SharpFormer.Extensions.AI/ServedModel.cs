using System.Text.Json.Nodes;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Templates;
using SharpFormer.Tokenizers;

namespace SharpFormer.Extensions.AI;

/// <summary>What a served model can do.</summary>
public enum ServedModelKind
{
    /// <summary>An encoder: sentence embeddings, and fill-mask / next-sentence prediction when its checkpoint has those heads.</summary>
    Embedding,
    /// <summary>An encoder with a sequence-classification head: classification, reranking (pair classifiers), embeddings of its encoder.</summary>
    Classifier,
    /// <summary>An encoder with a token-classification head: named entities (and embeddings of its encoder).</summary>
    TokenClassifier,
    /// <summary>A causal LM: completions, perplexity, and chat when the folder has a chat template.</summary>
    Generator,
}

/// <summary>Sampling and length settings of one request, in OpenAI's terms (null: the model's generation_config).</summary>
/// <param name="MaxTokens">Most new tokens (null: up to the end of the context).</param>
/// <param name="Temperature">0 = greedy; &gt; 0 = sampling at this temperature.</param>
/// <param name="TopP">Nucleus sampling mass (sampling).</param>
/// <param name="Seed">The sampler's seed.</param>
/// <param name="Stop">Stop strings (the output ends just before the first one).</param>
/// <param name="TopK">Top-k filtering when sampling (null or 0: none, as OpenAI samples); a k above 0 alone asks for sampling.</param>
public sealed record SamplingRequest(int? MaxTokens = null, float? Temperature = null, float? TopP = null, long? Seed = null, IReadOnlyList<string>? Stop = null,
                                     int? TopK = null);

/// <summary>
/// One model folder loaded once for serving, addressed by its folder name. An encoder is loaded once with every head its
/// checkpoint has, and each task it can serve (embeddings, classification, entities, fill-mask, next sentence) shares
/// that one model. Requests to one model run one at a time (the kernels are not yet safe to run concurrently on one
/// model); different models run in parallel.
/// </summary>
public sealed class ServedModel : IDisposable
{
    readonly SemaphoreSlim _gate = new(1, 1);
    long _cancelled;
    int _waiting;

    /// <summary>Generations stopped because their caller cancelled (e.g. an HTTP client that disconnected).</summary>
    public long GenerationsCancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Requests waiting for the model to be free (a live queue depth).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    ServedModel(string name, string dir, ServedModelKind kind, ITokenizer tokenizer, string modelType, WeightPrecision precision)
    {
        Name = name; Directory = dir; Kind = kind; Tokenizer = tokenizer; ModelType = modelType; Precision = precision;
    }

    /// <summary>The name requests use (the folder's name unless given).</summary>
    public string Name { get; }
    /// <summary>The model folder.</summary>
    public string Directory { get; }
    /// <summary>What it serves.</summary>
    public ServedModelKind Kind { get; }
    /// <summary>config.json's model_type ("bert", "gpt2", "qwen2", …).</summary>
    public string ModelType { get; }
    /// <summary>How the weights of the matrix products are held (the <c>--dtype</c> it was loaded with).</summary>
    public WeightPrecision Precision { get; }
    /// <summary>When it was loaded (OpenAI's <c>created</c>).</summary>
    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
    /// <summary>Its tokenizer.</summary>
    public ITokenizer Tokenizer { get; }
    /// <summary>The encoder and its tokenizer (encoders).</summary>
    public EncoderSession? Encoder { get; private init; }
    /// <summary>Sentence embeddings (encoders).</summary>
    public SentenceEmbedder? Embedder { get; private init; }
    /// <summary>The classifier (sequence-classification encoders).</summary>
    public TextClassifier? Classifier { get; private init; }
    /// <summary>The entity tagger (token-classification encoders).</summary>
    public TokenClassifier? Tagger { get; private init; }
    /// <summary>Fill-mask (encoders whose checkpoint has the masked-LM head).</summary>
    public FillMaskPipeline? FillMask { get; private init; }
    /// <summary>Next-sentence prediction (encoders whose checkpoint has the NSP head).</summary>
    public NextSentencePredictor? NextSentence { get; private init; }
    /// <summary>The language model (decoders).</summary>
    public ICausalLM? LanguageModel { get; private init; }
    /// <summary>The chat model: the language model with its chat template (decoders whose folder has one).</summary>
    public ChatModel? Chat { get; private init; }
    /// <summary>The chat template (decoders whose folder has one).</summary>
    public ChatTemplate? ChatTemplate => Chat?.Template;
    /// <summary>The folder's generation_config defaults (decoders).</summary>
    public GenerationOptions? GenerationDefaults { get; private init; }

    /// <summary>
    /// The index of the label that means "relevant" when this model scores (query, text) pairs for reranking: the only
    /// label of a one-label cross-encoder (sigmoid), or of a two-label pair classifier the label named "1" (LCQMC's
    /// "same meaning"); null when the model is not such a classifier.
    /// </summary>
    public int? RerankLabel => Classifier is not { } c ? null
        : c.Session.Config.NumLabels == 1 ? 0
        : c.Session.Config.NumLabels == 2 && c.Id2Label.TryGetValue(1, out var l) && l is "1" or "LABEL_1" ? 1 : null;

    /// <summary>Loads a model folder: an encoder (with the heads its checkpoint has) or any decoder family.</summary>
    public static ServedModel Load(string dir, string? name = null, WeightPrecision precision = WeightPrecision.Float32)
    {
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        if (!File.Exists(Path.Combine(full, "config.json"))) throw new SharpFormerException($"{dir}: not a model folder (no config.json)");
        name ??= Path.GetFileName(full);
        var family = ModelFamilies.Of(full);
        var weights = WeightOptions.Inference(precision);
        if (family.Kind == ModelKind.CausalLM)
        {
            var tokenizer = AutoTokenizer.FromFolder(full);
            bool hasTemplate = File.Exists(Path.Combine(full, "chat_template.jinja")) || TokenizerConfigHasTemplate(full);
            var template = hasTemplate ? ChatTemplate.FromFolder(full, tokenizer) : null;   // before the weights: a bad template fails fast
            var lm = AutoModel.LoadCausalLM(full, weights);
            return new ServedModel(name, full, ServedModelKind.Generator, tokenizer, ModelConfig.Load(full).ModelType, precision)
            {
                LanguageModel = lm,
                Chat = template is null ? null : new ChatModel(lm, tokenizer, template),
                GenerationDefaults = GenerationOptions.FromModelFolder(full),
            };
        }
        var st = SentenceTransformersConfig.Read(full);
        var bertDir = st?.TransformerDir ?? full;
        var session = new EncoderSession(BertModel.Load(bertDir, weights: weights), AutoTokenizer.FromFolder(bertDir), bertDir);
        var heads = session.Model.Heads;
        var kind = heads.HasFlag(BertHeads.SequenceClassification) ? ServedModelKind.Classifier
            : heads.HasFlag(BertHeads.TokenClassification) ? ServedModelKind.TokenClassifier : ServedModelKind.Embedding;
        return new ServedModel(name, full, kind, session.Tokenizer, "bert", precision)
        {
            Encoder = session,
            Embedder = new SentenceEmbedder(session, st?.Pooling ?? Pooling.Cls, st?.Normalize ?? false, st),
            Classifier = heads.HasFlag(BertHeads.SequenceClassification) ? new TextClassifier(session) : null,
            Tagger = heads.HasFlag(BertHeads.TokenClassification) ? new TokenClassifier(session) : null,
            FillMask = heads.HasFlag(BertHeads.MaskedLM) ? new FillMaskPipeline(session) : null,
            NextSentence = heads.HasFlag(BertHeads.NextSentence) ? new NextSentencePredictor(session) : null,
        };
    }

    static JsonObject? ReadJson(string path) =>
        File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject : null;

    static bool TokenizerConfigHasTemplate(string dir) =>
        ReadJson(Path.Combine(dir, "tokenizer_config.json"))?["chat_template"] is not null;

    /// <summary>Runs <paramref name="work"/> on a worker thread once the model is free (requests to one model are serialised).</summary>
    public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try { await _gate.WaitAsync(cancellationToken).ConfigureAwait(false); }
        finally { Interlocked.Decrement(ref _waiting); }
        try { return await Task.Run(work, cancellationToken).ConfigureAwait(false); }
        finally { _gate.Release(); }
    }

    /// <summary>What this model is, for errors: "a generator model".</summary>
    string Describe() => $"a {Kind.ToString().ToLowerInvariant()} model";

    /// <summary>The embedder, or a one-line error naming what this model is.</summary>
    public SentenceEmbedder RequireEmbedder() =>
        Embedder ?? throw new SharpFormerException($"model '{Name}' is {Describe()}, not an embedding model");

    /// <summary>The classifier, or a one-line error naming what this model is.</summary>
    public TextClassifier RequireClassifier() =>
        Classifier ?? throw new SharpFormerException($"model '{Name}' is {Describe()}, not a sequence classifier");

    /// <summary>The language model, or a one-line error naming what this model is.</summary>
    public ICausalLM RequireLanguageModel() =>
        LanguageModel ?? throw new SharpFormerException($"model '{Name}' is {Describe()}, not a text-generation model");

    /// <summary>The prompt ids of a conversation rendered by the model's chat template (with the generation prompt).</summary>
    public int[] ChatPrompt(IReadOnlyList<ChatMessage> messages)
    {
        RequireLanguageModel();
        var chat = Chat ?? throw new SharpFormerException($"model '{Name}' has no chat template; use completions");
        return chat.Prompt(messages).Ids;
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
        if (request.TopK is int k && k < 0) throw new SharpFormerException($"top_k must not be negative (got {k}; 0 disables it)");
        if (request.Temperature == 0) o = o with { DoSample = false };
        else if (request.Temperature is not null || request.TopP is not null || request.TopK is > 0)
            o = o with { DoSample = true, TopK = request.TopK ?? 0, Temperature = request.Temperature ?? 1f, TopP = request.TopP ?? 1f };
        if (request.Seed is long seed) o = o with { Seed = unchecked((int)seed) };
        return o;
    }

    /// <summary>
    /// Generates from prompt ids and streams the text as it becomes final (<see cref="GenerationStream"/>: stop strings
    /// matched across tokens and trimmed); the last update carries the finish reason and token counts. The work waits
    /// its turn for the model; cancelling stops generation at the next step and frees the model.
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

    IAsyncEnumerable<GenerationUpdate> Stream(int[] promptIds, SamplingRequest request, int alternatives, CancellationToken cancellationToken)
    {
        var lm = RequireLanguageModel();
        var options = Options(request, promptIds.Length);
        return GenerationStream.StreamAsync(lm, Tokenizer, promptIds, options, request.Stop, RunCounted, alternatives, cancellationToken);
    }

    /// <summary>Runs generation work in the model's turn, counting the generations their caller cancelled.</summary>
    async Task RunCounted(Action work, CancellationToken cancellationToken)
    {
        try { await RunAsync(() => { work(); return 0; }, cancellationToken).ConfigureAwait(false); }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Interlocked.Increment(ref _cancelled);
            throw;
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
