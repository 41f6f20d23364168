using SharpFormer.Checkpoints;
using SharpFormer.Kernels;

namespace SharpFormer.Models;

/// <summary>
/// GPT-2 (Radford et al. 2019) as HuggingFace's <c>modeling_gpt2.py</c> (<c>GPT2LMHeadModel</c>): token + position
/// embeddings → pre-LN blocks (ln_1 → causal self-attention with Conv1D c_attn/c_proj → residual; ln_2 → MLP
/// c_fc → activation → c_proj → residual) → ln_f → tied lm_head. Parameter names are HuggingFace's verbatim.
/// </summary>
public sealed class Gpt2Model : DecoderModel<Gpt2Config>
{
    readonly WordEmbeddings _wte;
    readonly Tensor _wpe;

    /// <summary>Loads a model folder; <paramref name="weights"/>: how the dense layers hold their weights (default: trainable float32).</summary>
    public static Gpt2Model Load(string modelDir, int seed = 0, WeightOptions weights = default) =>
        LoadFolder(modelDir, "transformer.", "GPT-2", (config, checkpoint) => new Gpt2Model(config, checkpoint, seed, weights));

    /// <summary>The sizes of a GPT-2 config as every decoder states them.</summary>
    public static DecoderShape ShapeOf(Gpt2Config c) =>
        new("gpt2", c.VocabSize, c.NEmbd, c.NLayer, c.NHead, c.NHead, c.HeadDim, c.NPositions, [c.EosTokenId], c.BosTokenId);

    /// <summary>Builds the model from a checkpoint (missing tensors are an error) or, without one, freshly initialised.</summary>
    public Gpt2Model(Gpt2Config config, CheckpointReader? checkpoint, int seed = 0, WeightOptions weights = default)
        : base(config, ShapeOf(config), weights)
    {
        ConfigLimits.Check(config, checkpoint);   // before anything is allocated from the config's sizes
        var act = Activations.Parse(config.ActivationFunction);
        int e = config.NEmbd, v = config.VocabSize, inner = config.InnerDim, heads = config.NHead, d = config.HeadDim;
        float eps = config.LayerNormEpsilon;
        var p = new ParameterLoader(checkpoint, Parameters, config.InitializerRange, seed, weights);
        // lm_head is tied to wte (HuggingFace's tie_word_embeddings); an untied checkpoint's own lm_head.weight wins.
        bool tie = !config.Raw.TryGetPropertyValue("tie_word_embeddings", out var tn) || tn is null || tn.GetValue<bool>();
        bool tied = tie || checkpoint?.Contains("lm_head.weight") != true;
        _wte = p.WordEmbeddings("transformer.wte.weight", v, e, tied);
        _wpe = p.Weight("transformer.wpe.weight", config.NPositions, e);
        var blocks = new DecoderBlock[config.NLayer];
        for (int i = 0; i < blocks.Length; i++)
        {
            var pre = $"transformer.h.{i}.";
            float scale = (config.ScaleAttnWeights ? 1f / MathF.Sqrt(d) : 1f) / (config.ScaleAttnByInverseLayerIdx ? i + 1 : 1);
            blocks[i] = new DecoderBlock(
                LayerNormLayer.Load(p, pre + "ln_1", e, eps),
                new CausalSelfAttention(Conv1D.Load(p, pre + "attn.c_attn", e, 3 * e), Conv1D.Load(p, pre + "attn.c_proj", e, e), heads, heads, d, scale, rope: null),
                LayerNormLayer.Load(p, pre + "ln_2", e, eps),
                new GeluMlp(Conv1D.Load(p, pre + "mlp.c_fc", e, inner), act, Conv1D.Load(p, pre + "mlp.c_proj", inner, e)));
        }
        Blocks = blocks;
        FinalNorm = LayerNormLayer.Load(p, "transformer.ln_f", e, eps);
        if (checkpoint is not null && p.Initialised.Count > 0)
            throw new SharpFormerException($"{checkpoint.FileName}: tensor '{p.Initialised[0]}' is missing");
        LmHead = tied ? _wte.Head(bias: null) : Linear.Load(p, "lm_head", e, v, bias: false);
        InitialisedParameters = p.Initialised;
    }

    private protected override void Embed(int id, int position, Span<float> row)
    {
        _wte.Lookup(id, row);
        System.Numerics.Tensors.TensorPrimitives.Add(row, _wpe.Span.Slice(position * row.Length, row.Length), row);
    }
}
