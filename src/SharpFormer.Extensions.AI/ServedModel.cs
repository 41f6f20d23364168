using System.Runtime.CompilerServices;
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

/// <summary>How a served model shares itself between concurrent requests (<c>sharpformer serve</c>'s batching flags).</summary>
public sealed record ServingOptions
{
    /// <summary>Most cost of one encoder batch (a text costs its characters + 2, an upper bound of its tokens); a request costing more runs alone.</summary>
    public int MaxBatchTokens { get; init; } = 16384;
    /// <summary>How long the first request of an encoder batch waits for others (zero: take what is queued when the model is free).</summary>
    public TimeSpan BatchWait { get; init; } = TimeSpan.Zero;
    /// <summary>Generations decoded together (decode slots); more wait for a free slot.</summary>
    public int MaxConcurrentGenerations { get; init; } = 8;
    /// <summary>Positions (prompt + generated) each decode slot holds (null: the model's context, at most 4096).</summary>
    public int? MaxContext { get; init; }
    /// <summary>False: the serialised path (each encoder request alone, one generation at a time), for comparing with batching.</summary>
    public bool Batching { get; init; } = true;
    /// <summary>
    /// Kernel threads of each of a model's loops (<c>serve --threads</c>; null: every core). The decode loop, the embedding
    /// and classification batchers and the other tasks each run in a <see cref="KernelContext"/> of their own with this
    /// many threads, so one busy loop never leaves another single-threaded; loops busy at once split <see cref="Cores"/>.
    /// </summary>
    public int? Threads { get; init; }
    /// <summary>
    /// The cores this model's loops share with each other and with every model given the same budget (<c>serve</c> gives
    /// all its models one of <c>--threads</c> or every core). Null: the model's loops share a budget of <see cref="Threads"/> of their own.
    /// </summary>
    public CoreBudget? Cores { get; init; }

    /// <summary>Throws a one-line error for a setting out of range.</summary>
    public void Validate()
    {
        if (MaxBatchTokens < 1) throw new SharpFormerException($"--max-batch-tokens must be at least 1 (got {MaxBatchTokens})");
        if (BatchWait < TimeSpan.Zero) throw new SharpFormerException($"--batch-wait-ms must not be negative (got {BatchWait.TotalMilliseconds})");
        if (MaxConcurrentGenerations < 1) throw new SharpFormerException($"--max-concurrent-generations must be at least 1 (got {MaxConcurrentGenerations})");
        if (MaxContext is int c && c < 2) throw new SharpFormerException($"--max-context must be at least 2 (got {c})");
        if (Threads is int t && t < 1) throw new SharpFormerException($"--threads must be at least 1 (got {t})");
    }
}

/// <summary>
/// One model folder loaded once for serving, addressed by its folder name. An encoder is loaded once with every head its
/// checkpoint has, and each task it can serve (embeddings, classification, entities, fill-mask, next sentence) shares
/// that one model. Concurrent generations share decode steps (a <see cref="DecodeScheduler"/>), and concurrent
/// embedding and classification requests run in batches (a <see cref="RequestBatcher{TIn, TOut}"/> each); the other
/// tasks (<see cref="RunAsync{T}"/>) run one at a time per model. Each loop thread starts on first use.
/// </summary>
public sealed class ServedModel : IDisposable
{
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly Lazy<DecodeScheduler> _scheduler;
    readonly Lazy<RequestBatcher<string, float[]>> _embeddings;
    readonly Lazy<RequestBatcher<(string Text, string? Pair), ClassificationResult>> _classifications;
    // One kernel context per loop (decode, embeddings, classification, other tasks): each owns its threads and scratch.
    readonly KernelContext[] _kernels;
    long _cancelled;
    int _waiting;

    /// <summary>Generations stopped because their caller cancelled (e.g. an HTTP client that disconnected).</summary>
    public long GenerationsCancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Requests waiting for the model (a live queue depth): for its turn, an encoder batch or a decode slot.</summary>
    public int Waiting => Volatile.Read(ref _waiting)
        + (_scheduler.IsValueCreated ? _scheduler.Value.Waiting : 0)
        + (_embeddings.IsValueCreated ? _embeddings.Value.Waiting : 0)
        + (_classifications.IsValueCreated ? _classifications.Value.Waiting : 0);

    /// <summary>Raised on the batching loop after each encoder batch (embeddings or classification) with the requests and items it served.</summary>
    public event Action<int, int>? BatchCompleted;
    /// <summary>Raised on the decode loop after each decode step with the number of sequences it advanced.</summary>
    public event Action<int>? DecodeStepCompleted;

    ServedModel(string name, string dir, ServedModelKind kind, ITokenizer tokenizer, string modelType, WeightPrecision precision, ServingOptions serving)
    {
        Name = name; Directory = dir; Kind = kind; Tokenizer = tokenizer; ModelType = modelType; Precision = precision; Serving = serving;
        int cost = serving.Batching ? serving.MaxBatchTokens : 1;   // cost 1: every request alone
        var wait = serving.Batching ? serving.BatchWait : TimeSpan.Zero;
        var cores = serving.Cores ?? new CoreBudget(serving.Threads ?? Environment.ProcessorCount);
        _kernels = [.. Enumerable.Range(0, 4).Select(_ => new KernelContext(serving.Threads, cores: cores))];
        _scheduler = new(() => new DecodeScheduler(RequireLanguageModel(), serving.Batching ? serving.MaxConcurrentGenerations : 1, Context, _kernels[0])
            { StepCompleted = n => DecodeStepCompleted?.Invoke(n) });
        _embeddings = new(() => new RequestBatcher<string, float[]>(texts => RequireEmbedder().Embed(texts), t => t.Length + 2, cost, wait, _kernels[1])
            { BatchCompleted = (r, n) => BatchCompleted?.Invoke(r, n) });
        _classifications = new(() => new RequestBatcher<(string Text, string? Pair), ClassificationResult>(
            items => RequireClassifier().Classify(items.Select(i => i.Text).ToList(), pairs: items.Select(i => i.Pair).ToList()),
            i => i.Text.Length + (i.Pair?.Length ?? 0) + 3, cost, wait, _kernels[2]) { BatchCompleted = (r, n) => BatchCompleted?.Invoke(r, n) });
    }

    /// <summary>How this model shares itself between concurrent requests.</summary>
    public ServingOptions Serving { get; }
    /// <summary>Positions a generation may use (prompt + generated): the model's context, at most <see cref="ServingOptions.MaxContext"/> (default 4096).</summary>
    public int Context => Serving.MaxContext ?? Math.Min(RequireLanguageModel().Shape.ContextLength, 4096);
    /// <summary>The decode scheduler every generation of this model joins (decoders; started on first use).</summary>
    public DecodeScheduler Scheduler => _scheduler.Value;

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
    public static ServedModel Load(string dir, string? name = null, WeightPrecision precision = WeightPrecision.Float32, ServingOptions? serving = null)
    {
        serving ??= new ServingOptions();
        serving.Validate();
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
            if (serving.MaxContext > lm.Shape.ContextLength)
                throw new SharpFormerException($"--max-context {serving.MaxContext} is more than {name}'s context ({lm.Shape.ContextLength} positions)");
            return new ServedModel(name, full, ServedModelKind.Generator, tokenizer, ModelConfig.Load(full).ModelType, precision, serving)
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
        return new ServedModel(name, full, kind, session.Tokenizer, "bert", precision, serving)
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

    /// <summary>
    /// Runs <paramref name="work"/> on a worker thread once the model is free (requests to one model are serialised), in
    /// this model's kernel context for tasks.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try { await _gate.WaitAsync(cancellationToken).ConfigureAwait(false); }
        finally { Interlocked.Decrement(ref _waiting); }
        try
        {
            return await Task.Run(() =>
            {
                using var scope = _kernels[3].Enter();
                return work();
            }, cancellationToken).ConfigureAwait(false);
        }
        finally { _gate.Release(); }
    }

    /// <summary>Sentence embeddings of <paramref name="texts"/>, computed in a batch with other requests waiting for this model.</summary>
    public Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        RequireEmbedder();
        return _embeddings.Value.SubmitAsync(texts, cancellationToken);
    }

    /// <summary>Sequence classification of texts (or text pairs), computed in a batch with other requests waiting for this model.</summary>
    public Task<ClassificationResult[]> ClassifyAsync(IReadOnlyList<(string Text, string? Pair)> items, CancellationToken cancellationToken = default)
    {
        RequireClassifier();
        return _classifications.Value.SubmitAsync(items, cancellationToken);
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
        int context = Context, room = context - promptLength;
        if (room < 1) throw new SharpFormerException($"the prompt has {promptLength} tokens; the served context is {context} positions, which leaves no room to generate");
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
    /// matched across tokens and trimmed); the last update carries the finish reason and token counts. The generation
    /// joins the model's <see cref="Scheduler"/> (sharing decode steps with the others); cancelling removes it at the next step.
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
        bool finished = false;
        try
        {
            await foreach (var u in GenerationStream.StreamAsync(lm, Tokenizer, promptIds, options, request.Stop, Scheduler, alternatives, cancellationToken)
                               .ConfigureAwait(false))
            {
                finished |= u.Finish is not null;
                yield return u;
            }
        }
        finally
        {
            // Cancelled by its caller before the end (e.g. an HTTP client that went away, whether it was waiting for a token or writing one).
            if (!finished && cancellationToken.IsCancellationRequested) Interlocked.Increment(ref _cancelled);
        }
    }

    /// <summary>
    /// Sends one small request through each loop this model serves — a one-text embedding and classification (encoders),
    /// a two-token generation, i.e. a prefill and a decode step (decoders) — so that the first real requests do not pay
    /// for compiling those code paths and sizing the loops' scratch (text-embeddings-inference also warms its model up
    /// before it reports ready). <c>serve</c> calls it for each model before <c>/health</c> answers 200: on a full-size
    /// BERT the first request to a cold server took 169 ms, and 74 ms after the warm-up (later ones 50–90 ms).
    /// </summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken = default)
    {
        if (Embedder is not null) await EmbedAsync(["warm-up"], cancellationToken).ConfigureAwait(false);
        if (Classifier is not null) await ClassifyAsync([("warm-up", null)], cancellationToken).ConfigureAwait(false);
        if (LanguageModel is not null)
            await GenerateTextAsync(Tokenizer.EncodeForCausalLm("warm-up"), new SamplingRequest(MaxTokens: 2), cancellationToken).ConfigureAwait(false);
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
    public void Dispose()
    {
        if (_scheduler.IsValueCreated) _scheduler.Value.Dispose();
        if (_embeddings.IsValueCreated) _embeddings.Value.Dispose();
        if (_classifications.IsValueCreated) _classifications.Value.Dispose();
        // After the loops: their last kernels have returned.
        foreach (var k in _kernels) k.Dispose();
        _gate.Dispose();
    }
}
