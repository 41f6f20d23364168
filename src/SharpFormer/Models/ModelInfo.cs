using SharpFormer.Tokenizers;

namespace SharpFormer.Models;

/// <summary>A model folder summarised for people: what <c>sharpformer info</c> prints.</summary>
public static class ModelInfo
{
    sealed record Summary(string Family, string DefaultArchitecture, int Layers, int Heads, int Hidden, int Inner, int Positions,
                          int Vocab, ParameterSet Parameters, IReadOnlyList<string> Initialised, string ExtraKey, string ExtraValue);

    public static Dictionary<string, object> Describe(string modelDir)
    {
        var config = ModelConfig.Load(modelDir);
        Summary s = config switch
        {
            BertConfig c when BertModel.Load(modelDir) is var m => new("bert (encoder-only, bidirectional attention)", "BertModel",
                c.NumHiddenLayers, c.NumAttentionHeads, c.HiddenSize, c.IntermediateSize, c.MaxPositionEmbeddings, c.VocabSize,
                m.Parameters, m.InitialisedParameters, "heads_present", m.Heads.ToString()),
            Gpt2Config c when Gpt2Model.Load(modelDir) is var m => new("gpt2 (decoder-only, causal attention)", "GPT2LMHeadModel",
                c.NLayer, c.NHead, c.NEmbd, c.InnerDim, c.NPositions, c.VocabSize,
                m.Parameters, m.InitialisedParameters, "activation", c.ActivationFunction),
            _ => throw new SharpFormerException($"{modelDir}: unknown model_type \"{config.ModelType}\""),
        };
        var info = new Dictionary<string, object>
        {
            ["model_type"] = s.Family,
            ["architecture"] = config.Architecture == "" ? s.DefaultArchitecture : config.Architecture,
            ["layers"] = s.Layers,
            ["heads"] = s.Heads,
            ["hidden_size"] = s.Hidden,
            ["intermediate_size"] = s.Inner,
            ["max_positions"] = s.Positions,
            ["vocab_size"] = s.Vocab,
            ["parameters"] = s.Parameters.ElementCount,
            [s.ExtraKey] = s.ExtraValue,
        };
        if (s.Initialised.Count > 0) info["untrained"] = string.Join(", ", s.Initialised);
        if (config.Raw["id2label"] is not null)
            info["labels"] = string.Join(", ", config.Id2Label.OrderBy(p => p.Key).Select(p => p.Value));
        info["tokenizer"] = AutoTokenizer.FromFolder(modelDir).Kind;
        return info;
    }
}
