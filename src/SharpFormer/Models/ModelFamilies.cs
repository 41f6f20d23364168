using System.Text.Json.Nodes;
using SharpFormer.AttentionViews;

namespace SharpFormer.Models;

/// <summary>What a family's models are for.</summary>
public enum ModelKind
{
    /// <summary>A bidirectional encoder (embeddings, fill-mask, classification, NER).</summary>
    Encoder,
    /// <summary>A decoder-only causal language model (generation, perplexity).</summary>
    CausalLM,
}

/// <summary>
/// One model family: its config.json <c>model_type</c>, how its config is read and how its weights are loaded. Every
/// command, task and view reaches models through <see cref="ModelFamilies"/>: a new family is a new model file plus
/// one entry in <see cref="ModelFamilies.All"/>.
/// </summary>
/// <param name="ModelType">config.json's <c>model_type</c>.</param>
/// <param name="Kind">Encoder or causal LM.</param>
/// <param name="ParseConfig">Reads config.json (the source names the file in errors).</param>
/// <param name="Describe">The folder described for <c>info</c> and <c>compare</c> (architecture, sizes, parameter split).</param>
/// <param name="LoadCausalLM">For causal LMs: loads a model folder with these weight options.</param>
public sealed record ModelFamily(
    string ModelType, ModelKind Kind, Func<JsonObject, string, ModelConfig> ParseConfig,
    Func<string, ModelConfig, ModelSummary.Context, ModelSummary> Describe,
    Func<string, WeightOptions, ICausalLM>? LoadCausalLM = null);

/// <summary>The registered model families.</summary>
public static class ModelFamilies
{
    /// <summary>Every family SharpFormer runs.</summary>
    public static IReadOnlyList<ModelFamily> All { get; } =
    [
        new("bert", ModelKind.Encoder, (o, _) => BertConfig.FromJson(o), ModelSummary.OfBert),
        new("gpt2", ModelKind.CausalLM, (o, _) => Gpt2Config.FromJson(o), ModelSummary.OfGpt2, (dir, w) => Gpt2Model.Load(dir, weights: w)),
        new("llama", ModelKind.CausalLM, LlamaConfig.FromJson, ModelSummary.OfLlama, (dir, w) => LlamaModel.Load(dir, weights: w)),
        new("qwen2", ModelKind.CausalLM, LlamaConfig.FromJson, ModelSummary.OfLlama, (dir, w) => LlamaModel.Load(dir, weights: w)),
        new("mistral", ModelKind.CausalLM, LlamaConfig.FromJson, ModelSummary.OfLlama, (dir, w) => LlamaModel.Load(dir, weights: w)),
    ];

    /// <summary>The model types, for messages.</summary>
    public static string Names => string.Join(", ", All.Select(f => $"\"{f.ModelType}\""));

    /// <summary>The family of a model_type, or null.</summary>
    public static ModelFamily? Find(string modelType) => All.FirstOrDefault(f => f.ModelType == modelType);

    /// <summary>The family of a model folder (from its config.json).</summary>
    public static ModelFamily Of(string modelDir)
    {
        var config = ModelConfig.Load(modelDir);
        return Find(config.ModelType)!;
    }
}

/// <summary>Loads a model folder by its config's family.</summary>
public static class AutoModel
{
    /// <summary>A causal LM of any registered decoder family; a one-line error for an encoder or unknown family.</summary>
    public static ICausalLM LoadCausalLM(string modelDir, WeightOptions weights = default)
    {
        var family = ModelFamilies.Of(modelDir);
        if (family.LoadCausalLM is null)
            throw new SharpFormerException($"{modelDir}: a \"{family.ModelType}\" model is not a causal language model (decoders: {string.Join(", ", ModelFamilies.All.Where(f => f.Kind == ModelKind.CausalLM).Select(f => f.ModelType))})");
        return family.LoadCausalLM(modelDir, weights);
    }
}
