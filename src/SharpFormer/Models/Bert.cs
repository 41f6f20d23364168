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
                        Linear Intermediate, Linear Output, LayerNormLayer OutputLayerNorm);

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
        int b = inputs.Batch, t = inputs.Length, h = Config.HiddenSize, headCount = Config.NumAttentionHeads, d = Config.HeadDim;
        if (b == 0 || t == 0) throw new SharpFormerException("the input is empty: BERT needs at least one token");
        ValidateInputs(inputs);
        // Sequence i occupies rows [start[i], start[i] + length[i]) of the residual stream: padded, every row has t
        // positions and the attention mask biases padded keys away; unpadded, the rows are packed end to end.
        var (start, length) = unpadded && !outputHiddenStates && !outputAttentions ? PackedRows(inputs) : (null, null);
        bool packed = start is not null;
        start ??= [.. Enumerable.Range(0, b).Select(i => i * t)];
        length ??= [.. Enumerable.Repeat(t, b)];
        int rows = start[b - 1] + length[b - 1];
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

            // Embeddings: word + position + token type, then LayerNorm.
            for (int i = 0; i < b; i++)
                for (int j = 0; j < length[i]; j++)
                {
                    var row = x.Slice((start[i] + j) * h, h);
                    int pos = inputs.PositionIds?[i][j] ?? j;
                    int type = inputs.TokenTypeIds?[i][j] ?? 0;
                    _wordEmbeddings.Lookup(inputs.InputIds[i][j], row);
                    System.Numerics.Tensors.TensorPrimitives.Add(row, _positionEmbeddings.Span.Slice(pos * h, h), row);
                    System.Numerics.Tensors.TensorPrimitives.Add(row, _tokenTypeEmbeddings.Span.Slice(type * h, h), row);
                }
            _embeddingsLayerNorm.Forward(x, x);
            if (outputHiddenStates) outputs.HiddenStates.Add(new Tensor([b, t, h], x.ToArray()));

            // Additive key mask per sequence: 0 where attended, finfo.min where padded (packed rows have no padding).
            var keyBias = packed || inputs.AttentionMask is null ? null : new float[rows];
            if (keyBias is not null)
                for (int i = 0; i < b; i++)
                    for (int j = 0; j < t; j++)
                        keyBias[i * t + j] = inputs.AttentionMask![i][j] != 0 ? 0f : Attention.Masked;

            float scale = 1f / MathF.Sqrt(d);
            foreach (var layer in _layers)
            {
                // Self-attention (bidirectional: every token sees every unpadded token of its sequence).
                // q, k and v are read in place from the q | k | v rows (stride 3h).
                layer.QueryKeyValue.Forward(x, rows, qkv);
                var probs = outputAttentions ? new Tensor(b, headCount, t, t) : null;
                for (int i = 0; i < b; i++)
                {
                    int n = length[i];
                    var seq = qkv.Slice(start[i] * 3 * h, n * 3 * h);
                    Attention.Forward(seq, 3 * h, seq[h..], seq[(2 * h)..], 3 * h, n, n, headCount, d, scale,
                        causal: false, queryOffset: 0, keyBias is null ? default : keyBias.AsSpan(start[i], n), context.Slice(start[i] * h, n * h), h,
                        probs is null ? default : probs.Span.Slice(i * headCount * t * t, headCount * t * t));
                }
                if (probs is not null) outputs.Attentions.Add(probs);
                // attention.output: dense, residual, LayerNorm (post-LN).
                layer.AttentionOutput.Forward(context, rows, attnOut);
                layer.AttentionLayerNorm.AddAndForward(attnOut, x, attnOut);
                // Feed-forward: intermediate dense + activation, output dense, residual, LayerNorm.
                layer.Intermediate.Forward(attnOut, rows, inter, _act);
                layer.Output.Forward(inter, rows, x);
                layer.OutputLayerNorm.AddAndForward(x, attnOut, x);
                if (outputHiddenStates) outputs.HiddenStates.Add(new Tensor([b, t, h], x.ToArray()));
            }
            if (packed)
            {
                var padded = outputs.LastHiddenState.Span;
                for (int i = 0; i < b; i++)
                {
                    x.Slice(start[i] * h, length[i] * h).CopyTo(padded[(i * t * h)..]);
                    padded.Slice((i * t + length[i]) * h, (t - length[i]) * h).Clear();
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

    /// <summary>Where each row's real tokens go when packed end to end, or nulls when a mask is not right padding (1…1 0…0).</summary>
    static (int[]? Start, int[]? Length) PackedRows(BertInputs inputs)
    {
        if (inputs.AttentionMask is null) return (null, null);   // nothing to remove
        int b = inputs.Batch, at = 0;
        var start = new int[b];
        var length = new int[b];
        for (int i = 0; i < b; i++)
        {
            var m = inputs.AttentionMask[i];
            int n = 0;
            while (n < m.Length && m[n] != 0) n++;
            for (int j = n; j < m.Length; j++)
                if (m[j] != 0) return (null, null);
            if (n == 0) return (null, null);   // a row of padding only: the padded pass defines what it gives
            (start[i], length[i]) = (at, n);
            at += n;
        }
        return at == b * inputs.Length ? (null, null) : (start, length);   // no padding: nothing to remove
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
