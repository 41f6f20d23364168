using SharpFormer.Tokenizers;

namespace SharpFormer.Models;

/// <summary>A model folder summarised for people: what <c>sharpformer info</c> prints.</summary>
public static class ModelInfo
{
    public static Dictionary<string, object> Describe(string modelDir)
    {
        var config = ModelConfig.Load(modelDir);
        var info = new Dictionary<string, object>();
        switch (config)
        {
            case BertConfig c:
                var bert = BertModel.Load(modelDir);
                info["model_type"] = "bert (encoder-only, bidirectional attention)";
                info["architecture"] = config.Architecture == "" ? "BertModel" : config.Architecture;
                info["layers"] = c.NumHiddenLayers;
                info["heads"] = c.NumAttentionHeads;
                info["hidden_size"] = c.HiddenSize;
                info["intermediate_size"] = c.IntermediateSize;
                info["max_positions"] = c.MaxPositionEmbeddings;
                info["vocab_size"] = c.VocabSize;
                info["parameters"] = bert.Parameters.ElementCount;
                info["heads_present"] = bert.Heads.ToString();
                if (bert.InitialisedParameters.Count > 0) info["untrained"] = string.Join(", ", bert.InitialisedParameters);
                break;
            case Gpt2Config c:
                var gpt2 = Gpt2Model.Load(modelDir);
                info["model_type"] = "gpt2 (decoder-only, causal attention)";
                info["architecture"] = config.Architecture == "" ? "GPT2LMHeadModel" : config.Architecture;
                info["layers"] = c.NLayer;
                info["heads"] = c.NHead;
                info["hidden_size"] = c.NEmbd;
                info["intermediate_size"] = c.InnerDim;
                info["max_positions"] = c.NPositions;
                info["vocab_size"] = c.VocabSize;
                info["parameters"] = gpt2.Parameters.ElementCount;
                info["activation"] = c.ActivationFunction;
                if (gpt2.InitialisedParameters.Count > 0) info["untrained"] = string.Join(", ", gpt2.InitialisedParameters);
                break;
        }
        if (config.Id2Label.Count > 0 && config.Raw["id2label"] is not null)
            info["labels"] = string.Join(", ", config.Id2Label.OrderBy(p => p.Key).Select(p => p.Value));
        info["tokenizer"] = AutoTokenizer.FromFolder(modelDir).Kind;
        return info;
    }
}
