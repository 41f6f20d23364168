using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpFormer.Models;

/// <summary>
/// A HuggingFace <c>config.json</c>: the typed fields we use, with HuggingFace's defaults, and the raw JSON
/// kept so that a config we save again round-trips every field we do not model.
/// </summary>
public abstract record ModelConfig
{
    /// <summary><c>model_type</c>: "bert" or "gpt2".</summary>
    public required string ModelType { get; init; }
    /// <summary><c>architectures</c>, e.g. ["BertForSequenceClassification"].</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];
    /// <summary><c>id2label</c> (or LABEL_i names for <c>num_labels</c>, default 2).</summary>
    public IReadOnlyDictionary<int, string> Id2Label { get; init; } = new Dictionary<int, string>();
    /// <summary><c>problem_type</c>, e.g. "multi_label_classification", or null.</summary>
    public string? ProblemType { get; init; }
    /// <summary><c>initializer_range</c>: the standard deviation of initialised weights.</summary>
    public float InitializerRange { get; init; } = 0.02f;
    /// <summary>The whole config.json as read, for fields not modelled here.</summary>
    public JsonObject Raw { get; init; } = new();

    /// <summary>Number of labels of a classification head.</summary>
    public int NumLabels => Id2Label.Count;
    /// <summary>The first architecture, or "" when none is given.</summary>
    public string Architecture => Architectures.Count > 0 ? Architectures[0] : "";

    /// <summary>Reads <c>config.json</c> of the model folder <paramref name="modelDir"/>; a missing folder or file, invalid JSON or an unknown model type is a one-line error.</summary>
    public static ModelConfig Load(string modelDir)
    {
        var path = Path.Combine(modelDir, "config.json");
        if (!Directory.Exists(modelDir)) throw new SharpFormerException($"{modelDir}: model folder not found");
        if (!File.Exists(path)) throw new SharpFormerException($"{modelDir}: no config.json in the model folder");
        return LoadFile(path);
    }

    /// <summary>Reads a config.json file wherever it is (e.g. a new config to train from scratch).</summary>
    public static ModelConfig LoadFile(string path)
    {
        if (!File.Exists(path)) throw new SharpFormerException($"{path}: file not found");
        JsonObject raw;
        try { raw = JsonNode.Parse(Utf8Text.ReadAllText(path)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new SharpFormerException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        return Parse(raw, path);
    }

    /// <summary>The typed config of a parsed config.json (<paramref name="source"/> names it in errors).</summary>
    public static ModelConfig Parse(JsonObject raw, string source = "config.json")
    {
        var type = Str(raw, "model_type", source);
        try
        {
            if (type is null) throw new SharpFormerException($"{source}: no \"model_type\"; SharpFormer runs {ModelFamilies.Names} models");
            var family = ModelFamilies.Find(type)
                ?? throw new SharpFormerException($"{source}: unknown model_type \"{type}\"; SharpFormer runs {ModelFamilies.Names} models");
            return family.ParseConfig(raw, source);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or OverflowException)
        {
            throw new SharpFormerException($"{source}: a field has the wrong type ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>The string <paramref name="key"/>, or null when absent; another JSON type is a one-line error.</summary>
    protected static string? Str(JsonObject o, string key, string source = "config.json") =>
        o.TryGetPropertyValue(key, out var n) && n is not null
            ? (n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : throw new SharpFormerException($"{source}: \"{key}\" must be a string"))
            : null;

    /// <summary>The integer <paramref name="key"/>, or <paramref name="fallback"/> when absent.</summary>
    protected static int Int(JsonObject o, string key, int fallback) =>
        o.TryGetPropertyValue(key, out var n) && n is not null ? n.GetValue<int>() : fallback;

    /// <summary>The integer <paramref name="key"/>, or null when absent.</summary>
    protected static int? IntOrNull(JsonObject o, string key) =>
        o.TryGetPropertyValue(key, out var n) && n is not null ? n.GetValue<int>() : null;

    /// <summary>The number <paramref name="key"/>, or <paramref name="fallback"/> when absent.</summary>
    protected static float Float(JsonObject o, string key, float fallback) =>
        o.TryGetPropertyValue(key, out var n) && n is not null ? (float)n.GetValue<double>() : fallback;

    /// <summary>The boolean <paramref name="key"/>, or <paramref name="fallback"/> when absent.</summary>
    protected static bool Bool(JsonObject o, string key, bool fallback) =>
        o.TryGetPropertyValue(key, out var n) && n is not null ? n.GetValue<bool>() : fallback;

    /// <summary>The <c>architectures</c> list (empty when absent).</summary>
    protected static IReadOnlyList<string> Architectures_(JsonObject o) =>
        o["architectures"] is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToList() : [];

    /// <summary>HuggingFace: <c>id2label</c> if given, otherwise <c>num_labels</c> (default 2) names LABEL_0, LABEL_1, ...</summary>
    protected static IReadOnlyDictionary<int, string> Labels(JsonObject o)
    {
        if (o["id2label"] is JsonObject m && m.Count > 0)
            return m.ToDictionary(p => int.Parse(p.Key), p => p.Value!.GetValue<string>());
        int n = Int(o, "num_labels", 2);
        return Enumerable.Range(0, n).ToDictionary(i => i, i => $"LABEL_{i}");
    }

    /// <summary>The config as HuggingFace would save it: the raw fields with this record's values written over them.</summary>
    public abstract JsonObject ToJson();

    /// <summary>The sizes <see cref="ConfigLimits.Check"/> bounds before a model allocates anything from them.</summary>
    public abstract ConfigSizes Sizes();

    /// <summary>The fields every model type shares, written over a copy of <see cref="Raw"/>.</summary>
    protected JsonObject BaseJson()
    {
        var o = (JsonObject)Raw.DeepClone();
        o["model_type"] = ModelType;
        o["architectures"] = new JsonArray(Architectures.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray());
        o["id2label"] = new JsonObject(Id2Label.OrderBy(p => p.Key).Select(p => KeyValuePair.Create(p.Key.ToString(), (JsonNode?)JsonValue.Create(p.Value))));
        o["label2id"] = new JsonObject(Id2Label.OrderBy(p => p.Value, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Value, (JsonNode?)JsonValue.Create(p.Key))));
        if (ProblemType is not null) o["problem_type"] = ProblemType;
        o["initializer_range"] = InitializerRange;
        return o;
    }
}

/// <summary>A BERT <c>config.json</c> (HuggingFace's BertConfig fields and defaults).</summary>
public sealed record BertConfig : ModelConfig
{
    /// <summary><c>vocab_size</c>.</summary>
    public int VocabSize { get; init; } = 30522;
    /// <summary><c>hidden_size</c> (H).</summary>
    public int HiddenSize { get; init; } = 768;
    /// <summary><c>num_hidden_layers</c>.</summary>
    public int NumHiddenLayers { get; init; } = 12;
    /// <summary><c>num_attention_heads</c>.</summary>
    public int NumAttentionHeads { get; init; } = 12;
    /// <summary><c>intermediate_size</c>: the FFN's inner width.</summary>
    public int IntermediateSize { get; init; } = 3072;
    /// <summary><c>hidden_act</c>: the FFN activation (see <see cref="Kernels.Activations.Parse"/>).</summary>
    public string HiddenAct { get; init; } = "gelu";
    /// <summary><c>hidden_dropout_prob</c> (training only).</summary>
    public float HiddenDropoutProb { get; init; } = 0.1f;
    /// <summary><c>attention_probs_dropout_prob</c> (training only).</summary>
    public float AttentionProbsDropoutProb { get; init; } = 0.1f;
    /// <summary><c>classifier_dropout</c> (null: the hidden dropout).</summary>
    public float? ClassifierDropout { get; init; }
    /// <summary><c>max_position_embeddings</c>: the longest input.</summary>
    public int MaxPositionEmbeddings { get; init; } = 512;
    /// <summary><c>type_vocab_size</c>: number of token types (segments).</summary>
    public int TypeVocabSize { get; init; } = 2;
    /// <summary><c>layer_norm_eps</c>.</summary>
    public float LayerNormEps { get; init; } = 1e-12f;
    /// <summary><c>pad_token_id</c>.</summary>
    public int PadTokenId { get; init; }
    /// <summary><c>position_embedding_type</c>: only "absolute" is supported.</summary>
    public string PositionEmbeddingType { get; init; } = "absolute";

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Reads the BERT fields of a config.json (HuggingFace's defaults for missing ones) and checks them.</summary>
    public static BertConfig FromJson(JsonObject o)
    {
        var c = new BertConfig
        {
            ModelType = "bert",
            Raw = o,
            Architectures = Architectures_(o),
            Id2Label = Labels(o),
            ProblemType = Str(o, "problem_type"),
            InitializerRange = Float(o, "initializer_range", 0.02f),
            VocabSize = Int(o, "vocab_size", 30522),
            HiddenSize = Int(o, "hidden_size", 768),
            NumHiddenLayers = Int(o, "num_hidden_layers", 12),
            NumAttentionHeads = Int(o, "num_attention_heads", 12),
            IntermediateSize = Int(o, "intermediate_size", 3072),
            HiddenAct = Str(o, "hidden_act") ?? "gelu",
            HiddenDropoutProb = Float(o, "hidden_dropout_prob", 0.1f),
            AttentionProbsDropoutProb = Float(o, "attention_probs_dropout_prob", 0.1f),
            ClassifierDropout = o["classifier_dropout"] is null ? null : Float(o, "classifier_dropout", 0.1f),
            MaxPositionEmbeddings = Int(o, "max_position_embeddings", 512),
            TypeVocabSize = Int(o, "type_vocab_size", 2),
            LayerNormEps = Float(o, "layer_norm_eps", 1e-12f),
            PadTokenId = Int(o, "pad_token_id", 0),
            PositionEmbeddingType = Str(o, "position_embedding_type") ?? "absolute",
        };
        c.Validate();
        return c;
    }

    void Validate()
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || NumHiddenLayers <= 0 || NumAttentionHeads <= 0 || IntermediateSize <= 0 || MaxPositionEmbeddings <= 0 || TypeVocabSize <= 0)
            throw new SharpFormerException("config.json: sizes (vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, max_position_embeddings, type_vocab_size) must be positive");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new SharpFormerException($"config.json: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (PositionEmbeddingType != "absolute")
            throw new SharpFormerException($"config.json: position_embedding_type \"{PositionEmbeddingType}\" is not supported (only \"absolute\")");
        Kernels.Activations.Parse(HiddenAct);
    }

    /// <inheritdoc/>
    public override ConfigSizes Sizes() => new(
        [("num_hidden_layers", NumHiddenLayers, ConfigLimits.MaxLayers), ("num_attention_heads", NumAttentionHeads, ConfigLimits.MaxWidth), ("hidden_size", HiddenSize, ConfigLimits.MaxWidth),
         ("intermediate_size", IntermediateSize, ConfigLimits.MaxWidth), ("vocab_size", VocabSize, ConfigLimits.MaxEntries), ("max_position_embeddings", MaxPositionEmbeddings, ConfigLimits.MaxEntries),
         ("type_vocab_size", TypeVocabSize, ConfigLimits.MaxEntries), ("num_labels", NumLabels, ConfigLimits.MaxEntries)],
        [("vocab_size × hidden_size", VocabSize, HiddenSize), ("max_position_embeddings × hidden_size", MaxPositionEmbeddings, HiddenSize),
         ("intermediate_size × hidden_size", IntermediateSize, HiddenSize)],
        "num_hidden_layers", NumHiddenLayers, i => $"bert.encoder.layer.{i}.attention.output.dense.weight");

    /// <inheritdoc/>
    public override JsonObject ToJson()
    {
        var o = BaseJson();
        o["vocab_size"] = VocabSize; o["hidden_size"] = HiddenSize; o["num_hidden_layers"] = NumHiddenLayers;
        o["num_attention_heads"] = NumAttentionHeads; o["intermediate_size"] = IntermediateSize; o["hidden_act"] = HiddenAct;
        o["hidden_dropout_prob"] = HiddenDropoutProb; o["attention_probs_dropout_prob"] = AttentionProbsDropoutProb;
        o["classifier_dropout"] = ClassifierDropout; o["max_position_embeddings"] = MaxPositionEmbeddings;
        o["type_vocab_size"] = TypeVocabSize; o["layer_norm_eps"] = LayerNormEps; o["pad_token_id"] = PadTokenId;
        o["position_embedding_type"] = PositionEmbeddingType;
        return o;
    }
}

/// <summary>A GPT-2 <c>config.json</c> (HuggingFace's GPT2Config fields and defaults).</summary>
public sealed record Gpt2Config : ModelConfig
{
    /// <summary><c>vocab_size</c>.</summary>
    public int VocabSize { get; init; } = 50257;
    /// <summary><c>n_positions</c>: the context length.</summary>
    public int NPositions { get; init; } = 1024;
    /// <summary><c>n_embd</c>: the hidden width.</summary>
    public int NEmbd { get; init; } = 768;
    /// <summary><c>n_layer</c>.</summary>
    public int NLayer { get; init; } = 12;
    /// <summary><c>n_head</c>.</summary>
    public int NHead { get; init; } = 12;
    /// <summary><c>n_inner</c>: the MLP's inner width, or null for 4·n_embd.</summary>
    public int? NInner { get; init; }
    /// <summary><c>activation_function</c> (see <see cref="Kernels.Activations.Parse"/>).</summary>
    public string ActivationFunction { get; init; } = "gelu_new";
    /// <summary><c>resid_pdrop</c> (training only).</summary>
    public float ResidPdrop { get; init; } = 0.1f;
    /// <summary><c>embd_pdrop</c> (training only).</summary>
    public float EmbdPdrop { get; init; } = 0.1f;
    /// <summary><c>attn_pdrop</c> (training only).</summary>
    public float AttnPdrop { get; init; } = 0.1f;
    /// <summary><c>layer_norm_epsilon</c>.</summary>
    public float LayerNormEpsilon { get; init; } = 1e-5f;
    /// <summary><c>scale_attn_weights</c>: divide attention scores by √head_dim.</summary>
    public bool ScaleAttnWeights { get; init; } = true;
    /// <summary><c>scale_attn_by_inverse_layer_idx</c>: also divide by layer index + 1.</summary>
    public bool ScaleAttnByInverseLayerIdx { get; init; }
    /// <summary><c>reorder_and_upcast_attn</c> (numerically the same in float32).</summary>
    public bool ReorderAndUpcastAttn { get; init; }
    /// <summary><c>bos_token_id</c>.</summary>
    public int BosTokenId { get; init; } = 50256;
    /// <summary><c>eos_token_id</c>: generation stops at it.</summary>
    public int EosTokenId { get; init; } = 50256;

    /// <summary>Width of the MLP's inner layer.</summary>
    public int InnerDim => NInner ?? 4 * NEmbd;
    /// <summary>Width of one attention head.</summary>
    public int HeadDim => NEmbd / NHead;

    /// <summary>Reads the GPT-2 fields of a config.json (HuggingFace's defaults for missing ones) and checks them.</summary>
    public static Gpt2Config FromJson(JsonObject o)
    {
        var c = new Gpt2Config
        {
            ModelType = "gpt2",
            Raw = o,
            Architectures = Architectures_(o),
            Id2Label = Labels(o),
            ProblemType = Str(o, "problem_type"),
            InitializerRange = Float(o, "initializer_range", 0.02f),
            VocabSize = Int(o, "vocab_size", 50257),
            NPositions = Int(o, "n_positions", 1024),
            NEmbd = Int(o, "n_embd", 768),
            NLayer = Int(o, "n_layer", 12),
            NHead = Int(o, "n_head", 12),
            NInner = IntOrNull(o, "n_inner"),
            ActivationFunction = Str(o, "activation_function") ?? "gelu_new",
            ResidPdrop = Float(o, "resid_pdrop", 0.1f),
            EmbdPdrop = Float(o, "embd_pdrop", 0.1f),
            AttnPdrop = Float(o, "attn_pdrop", 0.1f),
            LayerNormEpsilon = Float(o, "layer_norm_epsilon", 1e-5f),
            ScaleAttnWeights = Bool(o, "scale_attn_weights", true),
            ScaleAttnByInverseLayerIdx = Bool(o, "scale_attn_by_inverse_layer_idx", false),
            ReorderAndUpcastAttn = Bool(o, "reorder_and_upcast_attn", false),
            BosTokenId = Int(o, "bos_token_id", 50256),
            EosTokenId = Int(o, "eos_token_id", 50256),
        };
        c.Validate();
        return c;
    }

    void Validate()
    {
        if (VocabSize <= 0 || NPositions <= 0 || NEmbd <= 0 || NLayer <= 0 || NHead <= 0 || InnerDim <= 0)
            throw new SharpFormerException("config.json: sizes (vocab_size, n_positions, n_embd, n_layer, n_head, n_inner) must be positive");
        if (NEmbd % NHead != 0)
            throw new SharpFormerException($"config.json: n_embd {NEmbd} is not a multiple of n_head {NHead}");
        Kernels.Activations.Parse(ActivationFunction);
    }

    /// <inheritdoc/>
    public override ConfigSizes Sizes() => new(
        [("n_layer", NLayer, ConfigLimits.MaxLayers), ("n_head", NHead, ConfigLimits.MaxWidth), ("n_embd", NEmbd, ConfigLimits.MaxWidth), ("n_inner", InnerDim, ConfigLimits.MaxWidth),
         ("vocab_size", VocabSize, ConfigLimits.MaxEntries), ("n_positions", NPositions, ConfigLimits.MaxEntries), ("num_labels", NumLabels, ConfigLimits.MaxEntries)],
        [("vocab_size × n_embd", VocabSize, NEmbd), ("n_positions × n_embd", NPositions, NEmbd), ("n_inner × n_embd", InnerDim, NEmbd)],
        "n_layer", NLayer, i => $"transformer.h.{i}.attn.c_proj.weight");

    /// <inheritdoc/>
    public override JsonObject ToJson()
    {
        var o = BaseJson();
        o["vocab_size"] = VocabSize; o["n_positions"] = NPositions; o["n_embd"] = NEmbd; o["n_layer"] = NLayer;
        o["n_head"] = NHead; o["n_inner"] = NInner; o["activation_function"] = ActivationFunction;
        o["resid_pdrop"] = ResidPdrop; o["embd_pdrop"] = EmbdPdrop; o["attn_pdrop"] = AttnPdrop;
        o["layer_norm_epsilon"] = LayerNormEpsilon; o["scale_attn_weights"] = ScaleAttnWeights;
        o["scale_attn_by_inverse_layer_idx"] = ScaleAttnByInverseLayerIdx; o["reorder_and_upcast_attn"] = ReorderAndUpcastAttn;
        o["bos_token_id"] = BosTokenId; o["eos_token_id"] = EosTokenId;
        return o;
    }
}
