using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>
/// The config of the Llama-layout families (transformers 4.40 <c>LlamaConfig</c>, <c>Qwen2Config</c>,
/// <c>MistralConfig</c>): RMSNorm, rotary positions, grouped-query attention, gated SiLU MLP. They differ in defaults
/// and in the q/k/v biases (Qwen2 always has them; Llama when <c>attention_bias</c>; Mistral never).
/// </summary>
public sealed record LlamaConfig : ModelConfig
{
    /// <summary>Vocabulary size.</summary>
    public int VocabSize { get; init; }
    /// <summary>Width of the residual stream.</summary>
    public int HiddenSize { get; init; }
    /// <summary>Width of the gated MLP.</summary>
    public int IntermediateSize { get; init; }
    /// <summary>Decoder layers.</summary>
    public int NumHiddenLayers { get; init; }
    /// <summary>Query heads.</summary>
    public int NumAttentionHeads { get; init; }
    /// <summary>Key/value heads (grouped-query attention; = query heads for multi-head attention).</summary>
    public int NumKeyValueHeads { get; init; }
    /// <summary>The MLP's activation (silu).</summary>
    public string HiddenAct { get; init; } = "silu";
    /// <summary>Positions the model was trained for.</summary>
    public int MaxPositionEmbeddings { get; init; }
    /// <summary>RMSNorm's epsilon.</summary>
    public float RmsNormEps { get; init; } = 1e-6f;
    /// <summary>RoPE base θ.</summary>
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>RoPE scaling, or null.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Whether q_proj, k_proj and v_proj have biases.</summary>
    public bool QkvBias { get; init; }
    /// <summary>Whether o_proj has a bias (Llama's attention_bias).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Whether lm_head shares the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>The attention window (Mistral, Qwen2's eager mask), or null: it bounds the context SharpFormer allows.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>config.json's bos_token_id.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>config.json's eos_token_id (a number or a list).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Dimensions per head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;
    /// <summary>The most positions a sequence may have: max_position_embeddings, or the sliding window if smaller (beyond it HF's attention would differ).</summary>
    public int ContextLength => SlidingWindow is int w && w > 0 ? Math.Min(w, MaxPositionEmbeddings) : MaxPositionEmbeddings;

    /// <summary>Reads a llama / qwen2 / mistral config.json with that family's transformers 4.40 defaults.</summary>
    public static LlamaConfig FromJson(JsonObject o, string source = "config.json")
    {
        string type = Str(o, "model_type", source)!;
        bool qwen2 = type == "qwen2", mistral = type == "mistral";
        int heads = Int(o, "num_attention_heads", 32);
        var c = new LlamaConfig
        {
            ModelType = type,
            Raw = o,
            Architectures = Architectures_(o),
            Id2Label = Labels(o),
            InitializerRange = Float(o, "initializer_range", 0.02f),
            VocabSize = Int(o, "vocab_size", qwen2 ? 151936 : 32000),
            HiddenSize = Int(o, "hidden_size", 4096),
            IntermediateSize = Int(o, "intermediate_size", qwen2 ? 22016 : mistral ? 14336 : 11008),
            NumHiddenLayers = Int(o, "num_hidden_layers", 32),
            NumAttentionHeads = heads,
            NumKeyValueHeads = IntOrNull(o, "num_key_value_heads") ?? (mistral ? 8 : heads),
            HiddenAct = Str(o, "hidden_act", source) ?? "silu",
            MaxPositionEmbeddings = Int(o, "max_position_embeddings", qwen2 ? 32768 : mistral ? 4096 * 32 : 2048),
            RmsNormEps = Float(o, "rms_norm_eps", 1e-6f),
            RopeTheta = o["rope_theta"] is JsonValue th ? th.GetValue<double>() : 10000.0,
            RopeScaling = ParseRopeScaling(o["rope_scaling"], source),
            QkvBias = qwen2 || (!mistral && Bool(o, "attention_bias", false)),
            OutputBias = !qwen2 && !mistral && Bool(o, "attention_bias", false),
            TieWordEmbeddings = Bool(o, "tie_word_embeddings", false),
            SlidingWindow = qwen2 || mistral ? IntOrNull(o, "sliding_window") : null,
            BosTokenId = IntOrNull(o, "bos_token_id"),
            EosTokenIds = o["eos_token_id"] switch
            {
                JsonArray a => a.Select(x => x!.GetValue<int>()).ToArray(),
                JsonValue v => [v.GetValue<int>()],
                _ => [],
            },
        };
        c.Validate(source);
        return c;
    }

    static RopeScaling? ParseRopeScaling(JsonNode? node, string source)
    {
        if (node is null) return null;
        if (node is not JsonObject s) throw new SharpFormerException($"{source}: rope_scaling must be an object {{\"type\", \"factor\"}} or null");
        var type = s["type"] is JsonValue t && t.GetValueKind() == JsonValueKind.String ? t.GetValue<string>()
            : s["rope_type"] is JsonValue rt && rt.GetValueKind() == JsonValueKind.String ? rt.GetValue<string>() : null;
        var kind = type switch
        {
            "linear" => RopeScalingType.Linear,
            "dynamic" => RopeScalingType.Dynamic,
            null => throw new SharpFormerException($"{source}: rope_scaling has no \"type\""),
            _ => throw new SharpFormerException($"{source}: rope_scaling type \"{type}\" is not supported (transformers 4.40 knows \"linear\" and \"dynamic\")"),
        };
        if (s["factor"] is not JsonValue f || f.GetValueKind() != JsonValueKind.Number || !(f.GetValue<double>() > 1.0))
            throw new SharpFormerException($"{source}: rope_scaling factor must be a number greater than 1");
        return new RopeScaling(kind, (float)f.GetValue<double>());
    }

    void Validate(string source)
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || IntermediateSize <= 0 || NumHiddenLayers <= 0 || NumAttentionHeads <= 0 || NumKeyValueHeads <= 0 || MaxPositionEmbeddings <= 0)
            throw new SharpFormerException($"{source}: sizes (vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, max_position_embeddings) must be positive");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new SharpFormerException($"{source}: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new SharpFormerException($"{source}: num_attention_heads {NumAttentionHeads} is not a multiple of num_key_value_heads {NumKeyValueHeads}");
        if (HeadDim % 2 != 0) throw new SharpFormerException($"{source}: the head dimension {HeadDim} must be even for rotary embeddings");
        if (!(RopeTheta > 0) || double.IsInfinity(RopeTheta)) throw new SharpFormerException($"{source}: rope_theta must be a positive number");
        if (!(RmsNormEps >= 0)) throw new SharpFormerException($"{source}: rms_norm_eps must not be negative");
        Activations.Parse(HiddenAct);
    }

    /// <inheritdoc/>
    public override JsonObject ToJson() => BaseJson();

    /// <inheritdoc/>
    public override ConfigSizes Sizes() => new(
        [("num_hidden_layers", NumHiddenLayers, ConfigLimits.MaxLayers), ("num_attention_heads", NumAttentionHeads, ConfigLimits.MaxWidth),
         ("hidden_size", HiddenSize, ConfigLimits.MaxWidth), ("intermediate_size", IntermediateSize, ConfigLimits.MaxWidth),
         ("vocab_size", VocabSize, ConfigLimits.MaxEntries), ("max_position_embeddings", MaxPositionEmbeddings, ConfigLimits.MaxEntries)],
        [("vocab_size × hidden_size", VocabSize, HiddenSize), ("2·intermediate_size × hidden_size", 2 * IntermediateSize, HiddenSize)],
        "num_hidden_layers", NumHiddenLayers, i => $"model.layers.{i}.self_attn.o_proj.weight");
}

/// <summary>
/// The Llama layout — <c>LlamaForCausalLM</c>, <c>Qwen2ForCausalLM</c>, <c>MistralForCausalLM</c> (transformers 4.40):
/// embed_tokens → blocks (input_layernorm → grouped-query self-attention with RoPE → residual; post_attention_layernorm
/// → down_proj(silu(gate_proj(h)) · up_proj(h)) → residual) → norm → lm_head (tied or not). Parameter names are
/// HuggingFace's verbatim.
/// </summary>
public sealed class LlamaModel : DecoderModel<LlamaConfig>
{
    readonly WordEmbeddings _embed;

    /// <summary>Loads a model folder; <paramref name="weights"/>: how the dense layers hold their weights (default: trainable float32).</summary>
    public static LlamaModel Load(string modelDir, int seed = 0, WeightOptions weights = default) =>
        LoadFolder(modelDir, "model.", "Llama-layout (llama, qwen2, mistral)", (config, checkpoint) => new LlamaModel(config, checkpoint, seed, weights));

    /// <summary>The sizes of a Llama-layout config as every decoder states them.</summary>
    public static DecoderShape ShapeOf(LlamaConfig c) =>
        new(c.ModelType, c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.ContextLength, c.EosTokenIds, c.BosTokenId);

    /// <summary>Builds the model from a checkpoint (missing tensors are an error) or, without one, freshly initialised.</summary>
    public LlamaModel(LlamaConfig config, CheckpointReader? checkpoint, int seed = 0, WeightOptions weights = default)
        : base(config, ShapeOf(config), weights)
    {
        ConfigLimits.Check(config, checkpoint);   // before anything is allocated from the config's sizes
        var act = Activations.Parse(config.HiddenAct);
        int e = config.HiddenSize, v = config.VocabSize, inner = config.IntermediateSize;
        int heads = config.NumAttentionHeads, kvHeads = config.NumKeyValueHeads, d = config.HeadDim;
        float eps = config.RmsNormEps, scale = 1f / MathF.Sqrt(d);
        var p = new ParameterLoader(checkpoint, Parameters, config.InitializerRange, seed, weights);
        // An untied checkpoint's own lm_head.weight wins, as in HuggingFace.
        bool tied = config.TieWordEmbeddings && checkpoint?.Contains("lm_head.weight") != true;
        _embed = p.WordEmbeddings("model.embed_tokens.weight", v, e, tied);
        Rope = new RotaryEmbedding(d, config.RopeTheta, config.RopeScaling, config.MaxPositionEmbeddings);
        var blocks = new DecoderBlock[config.NumHiddenLayers];
        for (int i = 0; i < blocks.Length; i++)
        {
            var pre = $"model.layers.{i}.";
            var qkv = StackedLinear.Load(p, [pre + "self_attn.q_proj", pre + "self_attn.k_proj", pre + "self_attn.v_proj"], e,
                                         [heads * d, kvHeads * d, kvHeads * d], config.QkvBias);
            var o = Linear.Load(p, pre + "self_attn.o_proj", heads * d, e, config.OutputBias);
            blocks[i] = new DecoderBlock(
                RmsNormLayer.Load(p, pre + "input_layernorm", e, eps),
                new CausalSelfAttention(qkv, o, heads, kvHeads, d, scale, Rope),
                RmsNormLayer.Load(p, pre + "post_attention_layernorm", e, eps),
                new GatedMlp(StackedLinear.Load(p, [pre + "mlp.gate_proj", pre + "mlp.up_proj"], e, [inner, inner], bias: false), act,
                             Linear.Load(p, pre + "mlp.down_proj", inner, e, bias: false)));
        }
        Blocks = blocks;
        FinalNorm = RmsNormLayer.Load(p, "model.norm", e, eps);
        LmHead = tied ? _embed.Head(bias: null) : Linear.Load(p, "lm_head", e, v, bias: false);
        if (checkpoint is not null && p.Initialised.Count > 0)
            throw new SharpFormerException($"{checkpoint.FileName}: tensor '{p.Initialised[0]}' is missing");
        InitialisedParameters = p.Initialised;
    }

    private protected override void Embed(int id, int position, Span<float> row) => _embed.Lookup(id, row);
}
