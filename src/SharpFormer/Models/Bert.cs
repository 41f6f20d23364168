using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>A rectangular batch of encoder inputs [B, T]; every row padded to the same length.</summary>
public sealed record BertInputs(int[][] InputIds, int[][]? TokenTypeIds = null, int[][]? AttentionMask = null, int[][]? PositionIds = null)
{
    /// <summary>Number of rows (B).</summary>
    public int Batch => InputIds.Length;
    /// <summary>Tokens per row (T).</summary>
    public int Length => InputIds.Length == 0 ? 0 : InputIds[0].Length;

    /// <summary>The batch of a tokenizer's encodings (ids, token types and attention masks; already padded to one length).</summary>
    public static BertInputs FromEncodings(IReadOnlyList<Tokenizers.Encoding> encodings) => new(
        encodings.Select(e => e.InputIds).ToArray(),
        encodings.Select(e => e.TokenTypeIds).ToArray(),
        encodings.Select(e => e.AttentionMask).ToArray());
}

/// <summary>What a BERT forward pass produced; tensors keep the batch dimension first, like HuggingFace.</summary>
public sealed class BertOutputs
{
    /// <summary>The last encoder layer's output, [B, T, H].</summary>
    public required Tensor LastHiddenState { get; init; }
    /// <summary>When requested: the embeddings, then each layer's output, each [B, T, H].</summary>
    public List<Tensor> HiddenStates { get; } = new();
    /// <summary>When requested: per layer the attention probabilities, [B, heads, T, T].</summary>
    public List<Tensor> Attentions { get; } = new();
    /// <summary>The pooler's output (tanh of a dense layer on [CLS]), [B, H], when the model has a pooler.</summary>
    public Tensor? PoolerOutput { get; set; }
    /// <summary>Masked-LM logits over the vocabulary, [B, T, V].</summary>
    public Tensor? PredictionLogits { get; set; }
    /// <summary>Next-sentence logits, [B, 2] (index 0: B follows A).</summary>
    public Tensor? SeqRelationshipLogits { get; set; }
    /// <summary>Classifier logits: [B, labels] (sequence) or [B, T, labels] (token classification).</summary>
    public Tensor? Logits { get; set; }
}

/// <summary>Which heads a BERT model carries on top of the encoder.</summary>
[Flags]
public enum BertHeads
{
    /// <summary>The bare encoder.</summary>
    None = 0,
    /// <summary>The pooler (dense + tanh on [CLS]).</summary>
    Pooler = 1,
    /// <summary>The masked-LM head (<c>cls.predictions</c>).</summary>
    MaskedLM = 2,
    /// <summary>The next-sentence head (<c>cls.seq_relationship</c>).</summary>
    NextSentence = 4,
    /// <summary>A sequence classifier on the pooled output.</summary>
    SequenceClassification = 8,
    /// <summary>A token classifier on every hidden state.</summary>
    TokenClassification = 16,
}

/// <summary>
/// BERT (Devlin et al. 2018) as HuggingFace's <c>modeling_bert.py</c>: embeddings → post-LN encoder layers
/// with bidirectional attention → pooler and task heads. Parameter names are HuggingFace's verbatim.
/// </summary>
public sealed class BertModel
{
    /// <summary>The model's configuration.</summary>
    public BertConfig Config { get; }
    /// <summary>The heads the model carries.</summary>
    public BertHeads Heads { get; }
    /// <summary>Every parameter as float32, except matrices held only packed (<see cref="WeightOptions.InferenceOnly"/>).</summary>
    public ParameterSet Parameters { get; } = new();
    /// <summary>How the dense layers hold their weights.</summary>
    public WeightOptions Weights { get; }
    /// <summary>Heads (or other parameters) the checkpoint lacked and that were randomly initialised.</summary>
    public IReadOnlyList<string> InitialisedParameters { get; }

    // Embeddings
    readonly WordEmbeddings _wordEmbeddings;
    readonly Tensor _positionEmbeddings, _tokenTypeEmbeddings;
    readonly LayerNormLayer _embeddingsLayerNorm;
    readonly Layer[] _layers;
    // Heads
    readonly Linear? _pooler;
    readonly Linear? _mlmTransform;
    readonly LayerNormLayer? _mlmLayerNorm;
    readonly Linear? _mlmDecoder;
    readonly Linear? _nsp;
    readonly Linear? _classifier;
    readonly Activation _act;

    /// <param name="QueryKeyValue">attention.self's query, key and value as one GEMM: each output row is q | k | v.</param>
    /// <param name="AttentionOutput">attention.output.dense.</param>
    /// <param name="AttentionLayerNorm">attention.output.LayerNorm (after the residual add).</param>
    /// <param name="Intermediate">intermediate.dense (the FFN's first layer; the activation follows).</param>
    /// <param name="Output">output.dense (the FFN's second layer).</param>
    /// <param name="OutputLayerNorm">output.LayerNorm (after the residual add).</param>
    sealed record Layer(StackedLinear QueryKeyValue, Linear AttentionOutput, LayerNormLayer AttentionLayerNorm,
                        Linear Intermediate, Linear Output, LayerNormLayer OutputLayerNorm)
    {
        /// <summary>
        /// attention (BertSelfAttention, then BertSelfOutput): y = LayerNorm(x + dense(self-attention of each sequence)),
        /// bidirectional — every token sees every unpadded token of its sequence. q, k and v are read in place from the
        /// q | k | v rows (stride 3h). <paramref name="probs"/>: empty, or [B, heads, T, T] to receive the attention.
        /// </summary>
        public void Attention(ReadOnlySpan<float> x, Sequences seqs, Span<float> qkv, Span<float> context, Span<float> y, Span<float> probs)
        {
            int h = seqs.Heads * seqs.HeadDim, t = seqs.PaddedLength, perSequence = seqs.Heads * t * t;
            QueryKeyValue.Forward(x, seqs.Rows, qkv);
            for (int i = 0; i < seqs.Start.Length; i++)
            {
                int n = seqs.Length[i];
                var seq = qkv.Slice(seqs.Start[i] * 3 * h, n * 3 * h);
                Kernels.Attention.Forward(seq, 3 * h, seq[h..], seq[(2 * h)..], 3 * h, n, n, seqs.Heads, seqs.HeadDim, seqs.Scale,
                    causal: false, queryOffset: 0, seqs.KeyBias is null ? default : seqs.KeyBias.AsSpan(seqs.Start[i], n),
                    context.Slice(seqs.Start[i] * h, n * h), h, probs.IsEmpty ? default : probs.Slice(i * perSequence, perSequence));
            }
            AttentionOutput.Forward(context, seqs.Rows, y);
            AttentionLayerNorm.AddAndForward(y, x, y);
        }

        /// <summary>The feed-forward part (BertIntermediate, then BertOutput): x = LayerNorm(y + dense(act(dense(y)))).</summary>
        public void FeedForward(ReadOnlySpan<float> y, int rows, Span<float> inter, Span<float> x, Activation act)
        {
            Intermediate.Forward(y, rows, inter, act);
            Output.Forward(inter, rows, x);
            OutputLayerNorm.AddAndForward(x, y, x);
        }
    }

    /// <summary>Where the sequences of a batch sit in the residual stream, and what their attention needs.</summary>
    /// <param name="Start">Sequence i occupies rows [Start[i], Start[i] + Length[i]).</param>
    /// <param name="Length">Rows of each sequence.</param>
    /// <param name="PaddedLength">T, the batch's padded length (the layout of attention probabilities).</param>
    /// <param name="KeyBias">Null, or per row 0 / <see cref="Kernels.Attention.Masked"/> from the attention mask.</param>
    /// <param name="Heads">Attention heads.</param>
    /// <param name="HeadDim">Width of one head.</param>
    /// <param name="Scale">1/√HeadDim.</param>
    sealed record Sequences(int[] Start, int[] Length, int PaddedLength, float[]? KeyBias, int Heads, int HeadDim, float Scale)
    {
        /// <summary>Rows of the residual stream.</summary>
        public int Rows => Start[^1] + Length[^1];
    }

    /// <summary>The heads HuggingFace's class of that name has.</summary>
    public static BertHeads HeadsOf(string architecture) => architecture switch
    {
        "BertModel" or "" => BertHeads.Pooler,
        "BertForPreTraining" => BertHeads.Pooler | BertHeads.MaskedLM | BertHeads.NextSentence,
        "BertForMaskedLM" or "BertLMHeadModel" => BertHeads.MaskedLM,
        "BertForNextSentencePrediction" => BertHeads.Pooler | BertHeads.NextSentence,
        "BertForSequenceClassification" => BertHeads.Pooler | BertHeads.SequenceClassification,
        "BertForTokenClassification" => BertHeads.TokenClassification,
        _ => throw new SharpFormerException($"config.json: unknown BERT architecture \"{architecture}\" (known: BertModel, BertForPreTraining, BertForMaskedLM, BertForNextSentencePrediction, BertForSequenceClassification, BertForTokenClassification)"),
    };

    /// <summary>
    /// Loads a model folder. Heads the architecture has are loaded; <paramref name="extraHeads"/> asks for more (initialised
    /// with a warning if absent). <paramref name="weights"/>: how the dense layers hold their weights (default: trainable float32).
    /// </summary>
    public static BertModel Load(string modelDir, BertHeads extraHeads = BertHeads.None, int seed = 0, WeightOptions weights = default)
    {
        var config = ModelConfig.Load(modelDir) as BertConfig
            ?? throw new SharpFormerException($"{modelDir}: not a BERT model (config.json model_type is not \"bert\")");
        using var ckpt = CheckpointReader.Open(modelDir, "bert.");
        var heads = HeadsOf(config.Architecture) | extraHeads;
        // Heads present in the checkpoint come along even when the architecture does not name them.
        if (ckpt.Contains("cls.predictions.bias")) heads |= BertHeads.MaskedLM;
        if (ckpt.Contains("cls.seq_relationship.weight")) heads |= BertHeads.NextSentence | BertHeads.Pooler;
        if (ckpt.Contains("bert.pooler.dense.weight") && !heads.HasFlag(BertHeads.TokenClassification)) heads |= BertHeads.Pooler;
        return new BertModel(config, heads, ckpt, seed, weights);
    }

    /// <summary>
    /// A model with <paramref name="heads"/>, its weights read from <paramref name="checkpoint"/>; parameters it lacks (or all,
    /// without a checkpoint) are initialised from <paramref name="seed"/> as HuggingFace does (listed in <see cref="InitialisedParameters"/>).
    /// </summary>
    public BertModel(BertConfig config, BertHeads heads, CheckpointReader? checkpoint, int seed = 0, WeightOptions weights = default)
    {
        if (heads.HasFlag(BertHeads.SequenceClassification) && heads.HasFlag(BertHeads.TokenClassification))
            throw new SharpFormerException("a BERT model has either a sequence or a token classifier, not both");
        if (heads.HasFlag(BertHeads.SequenceClassification) || heads.HasFlag(BertHeads.NextSentence)) heads |= BertHeads.Pooler;
        ConfigLimits.Check(config, checkpoint);   // before anything is allocated from the config's sizes
        Config = config;
        Heads = heads;
        Weights = weights;
        _act = Activations.Parse(config.HiddenAct);
        int h = config.HiddenSize, v = config.VocabSize;
        var p = new ParameterLoader(checkpoint, Parameters, config.InitializerRange, seed, weights);

        // The MLM decoder is tied to the word embeddings (HuggingFace's tie_word_embeddings); its bias is cls.predictions.bias.
        _wordEmbeddings = p.WordEmbeddings("bert.embeddings.word_embeddings.weight", v, h, tied: heads.HasFlag(BertHeads.MaskedLM));
        _positionEmbeddings = p.Weight("bert.embeddings.position_embeddings.weight", config.MaxPositionEmbeddings, h);
        _tokenTypeEmbeddings = p.Weight("bert.embeddings.token_type_embeddings.weight", config.TypeVocabSize, h);
        _embeddingsLayerNorm = LayerNormLayer.Load(p, "bert.embeddings.LayerNorm", h, config.LayerNormEps);
        _layers = new Layer[config.NumHiddenLayers];
        for (int i = 0; i < _layers.Length; i++)
        {
            var pre = $"bert.encoder.layer.{i}.";
            _layers[i] = new Layer(
                StackedLinear.Load(p, [pre + "attention.self.query", pre + "attention.self.key", pre + "attention.self.value"], h, h),
                Linear.Load(p, pre + "attention.output.dense", h, h),
                LayerNormLayer.Load(p, pre + "attention.output.LayerNorm", h, config.LayerNormEps),
                Linear.Load(p, pre + "intermediate.dense", h, config.IntermediateSize),
                Linear.Load(p, pre + "output.dense", config.IntermediateSize, h),
                LayerNormLayer.Load(p, pre + "output.LayerNorm", h, config.LayerNormEps));
        }
        if (checkpoint is not null && p.Initialised.Count > 0)
            throw new SharpFormerException($"{checkpoint.FileName}: encoder tensor '{p.Initialised[0]}' is missing");

        if (heads.HasFlag(BertHeads.Pooler)) _pooler = Linear.Load(p, "bert.pooler.dense", h, h);
        if (heads.HasFlag(BertHeads.MaskedLM))
        {
            _mlmTransform = Linear.Load(p, "cls.predictions.transform.dense", h, h);
            _mlmLayerNorm = LayerNormLayer.Load(p, "cls.predictions.transform.LayerNorm", h, config.LayerNormEps);
            _mlmDecoder = _wordEmbeddings.Head(p.Bias("cls.predictions.bias", v));
        }
        if (heads.HasFlag(BertHeads.NextSentence)) _nsp = Linear.Load(p, "cls.seq_relationship", h, 2);
        if (heads.HasFlag(BertHeads.SequenceClassification) || heads.HasFlag(BertHeads.TokenClassification))
        {
            if (config.NumLabels < 1) throw new SharpFormerException("config.json: a classifier needs at least one label (id2label or num_labels)");
            _classifier = Linear.Load(p, "classifier", h, config.NumLabels);
        }
        InitialisedParameters = p.Initialised;
    }

    /// <summary>Width of the hidden states (H).</summary>
    public int HiddenSize => Config.HiddenSize;

    /// <summary>Call after changing parameter values in place (training), so packed kernel copies are rebuilt.</summary>
    public void WeightsChanged()
    {
        foreach (var l in _layers)
        {
            l.QueryKeyValue.WeightsChanged();
            foreach (var linear in new[] { l.AttentionOutput, l.Intermediate, l.Output }) linear.WeightsChanged();
        }
        foreach (var head in new[] { _pooler, _mlmTransform, _mlmDecoder, _nsp, _classifier }) head?.WeightsChanged();
    }

    /// <summary>Runs the encoder and the model's heads.</summary>
    /// <param name="inputs">The batch.</param>
    /// <param name="outputHiddenStates">Also return the embeddings and every layer's output.</param>
    /// <param name="outputAttentions">Also return every layer's attention probabilities.</param>
    /// <param name="heads">
    /// The heads to run (null: every head the model has). A caller that needs only the hidden states (embeddings) passes
    /// <see cref="BertHeads.None"/> and does not pay for the masked-LM head of a pre-training checkpoint, which costs about
    /// a fifth of BERT-base's encoder. The pooler runs whenever a head on it runs.
    /// </param>
    /// <param name="unpadded">
    /// Run a right-padded batch without its padding (TEI's padding-free batching): every layer sees only the real tokens of
    /// each row, so a batch of mixed lengths costs what its tokens cost. The real positions' outputs are those of the
    /// padded pass (up to float rounding); padding positions of <see cref="BertOutputs.LastHiddenState"/> and the
    /// token-level head outputs are zero-input rows instead of HuggingFace's values there. Ignored when hidden states or
    /// attentions are asked for, or when an attention mask is not of the form 1…1 0…0.
    /// </param>
    public BertOutputs Forward(BertInputs inputs, bool outputHiddenStates = false, bool outputAttentions = false, BertHeads? heads = null,
                               bool unpadded = false)
    {
        int b = inputs.Batch, t = inputs.Length, h = Config.HiddenSize, headCount = Config.NumAttentionHeads;
        if (b == 0 || t == 0) throw new SharpFormerException("the input is empty: BERT needs at least one token");
        ValidateInputs(inputs);
        var seqs = Layout(inputs, unpadded && !outputHiddenStates && !outputAttentions);
        bool packed = seqs.KeyBias is null && seqs.Rows < b * t;
        int rows = seqs.Rows;
        // The residual stream x becomes the last hidden state. Every buffer here is written in full before it is read.
        // The working buffers come from the shared array pool: a batch of a few hundred tokens would otherwise put four
        // or five large-object-heap arrays per call on the garbage collector (tail latency in a serving process).
        var outputs = new BertOutputs { LastHiddenState = Tensor.Uninitialized(b, t, h) };
        var pool = System.Buffers.ArrayPool<float>.Shared;
        float[]? packedRows = packed ? pool.Rent(rows * h) : null;
        float[] qkvBuffer = pool.Rent(rows * 3 * h), contextBuffer = pool.Rent(rows * h), attnOutBuffer = pool.Rent(rows * h),
                interBuffer = pool.Rent(rows * Config.IntermediateSize);
        try
        {
            var x = packed ? packedRows.AsSpan(0, rows * h) : outputs.LastHiddenState.Span;
            var qkv = qkvBuffer.AsSpan(0, rows * 3 * h);
            var context = contextBuffer.AsSpan(0, rows * h);
            var attnOut = attnOutBuffer.AsSpan(0, rows * h);
            var inter = interBuffer.AsSpan(0, rows * Config.IntermediateSize);

            Embeddings(inputs, seqs, x);
            if (outputHiddenStates) outputs.HiddenStates.Add(new Tensor([b, t, h], x.ToArray()));
            foreach (var layer in _layers)
            {
                var probs = outputAttentions ? new Tensor(b, headCount, t, t) : null;
                layer.Attention(x, seqs, qkv, context, attnOut, probs is null ? default : probs.Span);
                layer.FeedForward(attnOut, rows, inter, x, _act);
                if (probs is not null) outputs.Attentions.Add(probs);
                if (outputHiddenStates) outputs.HiddenStates.Add(new Tensor([b, t, h], x.ToArray()));
            }
            if (packed)
            {
                var padded = outputs.LastHiddenState.Span;
                for (int i = 0; i < b; i++)
                {
                    x.Slice(seqs.Start[i] * h, seqs.Length[i] * h).CopyTo(padded[(i * t * h)..]);
                    padded.Slice((i * t + seqs.Length[i]) * h, (t - seqs.Length[i]) * h).Clear();
                }
            }
        }
        finally
        {
            if (packedRows is not null) pool.Return(packedRows);
            foreach (var buffer in (float[][])[qkvBuffer, contextBuffer, attnOutBuffer, interBuffer]) pool.Return(buffer);
        }
        RunHeads(outputs, b, t, heads ?? Heads);
        return outputs;
    }

    /// <summary>
    /// Where each input row goes in the residual stream: with <paramref name="unpadded"/> and right padding (masks of the
    /// form 1…1 0…0, none all padding), only its real tokens, packed end to end; otherwise all T positions, the padded
    /// ones biased away from every query by the attention mask.
    /// </summary>
    Sequences Layout(BertInputs inputs, bool unpadded)
    {
        int b = inputs.Batch, t = inputs.Length;
        var length = Enumerable.Repeat(t, b).ToArray();
        if (unpadded && inputs.AttentionMask is not null)
            for (int i = 0; i < b && length is not null; i++)
            {
                var m = inputs.AttentionMask[i];
                int n = 0;
                while (n < m.Length && m[n] != 0) n++;
                if (n == 0 || m.AsSpan(n).ContainsAnyExcept(0)) length = null;   // not right padding: the padded pass defines it
                else length[i] = n;
            }
        Sequences Of(int[] start, int[] length, float[]? keyBias) =>
            new(start, length, t, keyBias, Config.NumAttentionHeads, Config.HeadDim, 1f / MathF.Sqrt(Config.HeadDim));
        if (length is not null && length.Sum() < b * t)
        {
            var start = new int[b];
            for (int i = 1; i < b; i++) start[i] = start[i - 1] + length[i - 1];
            return Of(start, length, null);
        }
        // Additive key mask: 0 where attended, finfo.min where padded.
        float[]? keyBias = null;
        if (inputs.AttentionMask is not null)
        {
            keyBias = new float[b * t];
            for (int i = 0; i < b; i++)
                for (int j = 0; j < t; j++)
                    keyBias[i * t + j] = inputs.AttentionMask[i][j] != 0 ? 0f : Attention.Masked;
        }
        return Of([.. Enumerable.Range(0, b).Select(i => i * t)], Enumerable.Repeat(t, b).ToArray(), keyBias);
    }

    /// <summary>BertEmbeddings: word + position + token type of each sequence's positions, then LayerNorm, into x.</summary>
    void Embeddings(BertInputs inputs, Sequences seqs, Span<float> x)
    {
        int h = Config.HiddenSize;
        for (int i = 0; i < inputs.Batch; i++)
            for (int j = 0; j < seqs.Length[i]; j++)
            {
                var row = x.Slice((seqs.Start[i] + j) * h, h);
                int pos = inputs.PositionIds?[i][j] ?? j;
                int type = inputs.TokenTypeIds?[i][j] ?? 0;
                _wordEmbeddings.Lookup(inputs.InputIds[i][j], row);
                System.Numerics.Tensors.TensorPrimitives.Add(row, _positionEmbeddings.Span.Slice(pos * h, h), row);
                System.Numerics.Tensors.TensorPrimitives.Add(row, _tokenTypeEmbeddings.Span.Slice(type * h, h), row);
            }
        _embeddingsLayerNorm.Forward(x, x);
    }

    void ValidateInputs(BertInputs inputs)
    {
        int t = inputs.Length;
        if (t > Config.MaxPositionEmbeddings && inputs.PositionIds is null)
            throw new SharpFormerException($"the input has {t} tokens, more than the model's max_position_embeddings ({Config.MaxPositionEmbeddings})");
        for (int i = 0; i < inputs.Batch; i++)
        {
            Check(inputs.InputIds[i], Config.VocabSize, "input_ids", i);
            if (inputs.TokenTypeIds is not null) Check(inputs.TokenTypeIds[i], Config.TypeVocabSize, "token_type_ids", i);
            if (inputs.PositionIds is not null) Check(inputs.PositionIds[i], Config.MaxPositionEmbeddings, "position_ids", i);
            if (inputs.AttentionMask is not null && inputs.AttentionMask[i].Length != t)
                throw new SharpFormerException($"attention_mask row {i} has {inputs.AttentionMask[i].Length} entries, input_ids has {t}");
        }

        void Check(int[] ids, int limit, string what, int row)
        {
            if (ids.Length != t) throw new SharpFormerException($"{what} row {row} has {ids.Length} entries, expected {t} (rows must be padded to one length)");
            foreach (var id in ids)
                if ((uint)id >= (uint)limit) throw new SharpFormerException($"{what} row {row} contains {id}, outside [0, {limit})");
        }
    }

    void RunHeads(BertOutputs o, int b, int t, BertHeads run)
    {
        int h = Config.HiddenSize, rows = b * t;
        var seq = o.LastHiddenState.Data;
        run &= Heads;
        if (_pooler is not null && (run & (BertHeads.Pooler | BertHeads.NextSentence | BertHeads.SequenceClassification)) != 0)
        {
            // tanh(dense(hidden state of [CLS])).
            var cls = new float[b * h];
            for (int i = 0; i < b; i++) seq.AsSpan(i * t * h, h).CopyTo(cls.AsSpan(i * h));
            var pooled = new Tensor(b, h);
            _pooler.Forward(cls, b, pooled.Span);
            Activations.Apply(Activation.Tanh, pooled.Span);
            o.PoolerOutput = pooled;
            if (run.HasFlag(BertHeads.NextSentence)) { o.SeqRelationshipLogits = new Tensor(b, 2); _nsp!.Forward(pooled.Data, b, o.SeqRelationshipLogits.Span); }
            if (run.HasFlag(BertHeads.SequenceClassification))
            {
                o.Logits = new Tensor(b, Config.NumLabels);
                _classifier!.Forward(pooled.Data, b, o.Logits.Span);
            }
        }
        if (run.HasFlag(BertHeads.MaskedLM))
        {
            var transformed = new float[rows * h];
            _mlmTransform!.Forward(seq, rows, transformed, _act);
            _mlmLayerNorm!.Forward(transformed, transformed);
            o.PredictionLogits = Tensor.Uninitialized(b, t, Config.VocabSize);
            _mlmDecoder!.Forward(transformed, rows, o.PredictionLogits.Span);
        }
        if (run.HasFlag(BertHeads.TokenClassification))
        {
            o.Logits = new Tensor(b, t, Config.NumLabels);
            _classifier!.Forward(seq, rows, o.Logits.Span);
        }
    }
}
