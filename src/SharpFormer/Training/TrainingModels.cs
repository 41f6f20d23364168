using SharpFormer.Checkpoints;
using SharpFormer.Models;

namespace SharpFormer.Training;

/// <summary>
/// Builds the model a training run starts from: a pretrained folder (its encoder, plus the task head — kept when
/// it fits the label set, freshly initialised like HuggingFace otherwise) or a new config.json (random init).
/// </summary>
public static class TrainingModels
{
    /// <summary>The BERT class name HuggingFace uses for a head combination (config.json "architectures").</summary>
    public static string BertArchitecture(BertHeads heads) =>
        heads.HasFlag(BertHeads.SequenceClassification) ? "BertForSequenceClassification"
        : heads.HasFlag(BertHeads.TokenClassification) ? "BertForTokenClassification"
        : heads.HasFlag(BertHeads.MaskedLM) && heads.HasFlag(BertHeads.NextSentence) ? "BertForPreTraining"
        : heads.HasFlag(BertHeads.MaskedLM) ? "BertForMaskedLM"
        : heads.HasFlag(BertHeads.NextSentence) ? "BertForNextSentencePrediction" : "BertModel";

    /// <summary>
    /// A BERT with exactly <paramref name="heads"/>, from <paramref name="modelDir"/> or a new <paramref name="configPath"/>.
    /// With <paramref name="labels"/> the config's id2label/label2id become that set; a checkpoint classifier of a
    /// different size is dropped (and re-initialised). <paramref name="reinitTopLayers"/> &gt; 0 re-initialises that many
    /// encoder layers at the top of a pretrained model (Zhang et al. 2021, "Revisiting few-sample BERT fine-tuning": the top
    /// layers are the most specific to the pre-training objective). <paramref name="initialised"/> lists what the checkpoint lacked.
    /// </summary>
    public static BertModel Bert(string? modelDir, string? configPath, BertHeads heads, IReadOnlyList<string>? labels, int seed,
                                 out IReadOnlyList<string> initialised, int reinitTopLayers = 0)
    {
        var config = LoadConfig(modelDir, configPath) as BertConfig
            ?? throw new SharpFormerException($"{modelDir ?? configPath}: not a BERT model (model_type is not \"bert\")");
        if (heads.HasFlag(BertHeads.SequenceClassification) || heads.HasFlag(BertHeads.NextSentence)) heads |= BertHeads.Pooler;
        config = config with { Architectures = [BertArchitecture(heads)] };
        if (labels is not null) config = config with { Id2Label = labels.Select((l, i) => (l, i)).ToDictionary(p => p.i, p => p.l) };
        if (reinitTopLayers != 0)   // checked before the weights are read
        {
            if (modelDir is null) throw new SharpFormerException("--reinit-layers re-initialises layers of a pretrained --model; a --config model is all new already");
            if (reinitTopLayers < 0 || reinitTopLayers > config.NumHiddenLayers)
                throw new SharpFormerException($"--reinit-layers must be between 0 and the model's {config.NumHiddenLayers} layers, not {reinitTopLayers}");
        }
        BertModel model;
        if (modelDir is null) model = new BertModel(config, heads, null, seed);
        else
        {
            using var reader = Open(modelDir, "bert.", name =>
                name.StartsWith("classifier.", StringComparison.Ordinal) && labels is not null ? (shape => shape.Length > 0 && shape[0] == labels.Count) : null);
            model = new BertModel(config, heads, reader, seed);
        }
        initialised = model.InitialisedParameters;
        if (reinitTopLayers != 0) ReinitialiseTopLayers(model, reinitTopLayers, seed);
        return model;
    }

    /// <summary>Overwrites the top <paramref name="n"/> encoder layers with a fresh initialisation (the same one a new model gets).</summary>
    static void ReinitialiseTopLayers(BertModel model, int n, int seed)
    {
        int layers = model.Config.NumHiddenLayers;
        var fresh = new BertModel(model.Config, model.Heads, null, seed);
        var prefixes = Enumerable.Range(layers - n, n).Select(i => $"bert.encoder.layer.{i}.").ToArray();
        foreach (var (name, t) in fresh.Parameters.All)
            if (prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))) t.Data.CopyTo(model.Parameters[name].Data, 0);
        model.WeightsChanged();
    }

    /// <summary>A GPT-2 LM from <paramref name="modelDir"/> or a new <paramref name="configPath"/> (random init).</summary>
    public static Gpt2Model Gpt2(string? modelDir, string? configPath, int seed)
    {
        var config = LoadConfig(modelDir, configPath) as Gpt2Config
            ?? throw new SharpFormerException($"{modelDir ?? configPath}: not a GPT-2 model (model_type is not \"gpt2\")");
        config = config with { Architectures = ["GPT2LMHeadModel"] };
        if (modelDir is null) return new Gpt2Model(config, null, seed);
        using var reader = Open(modelDir, "transformer.", _ => null);
        return new Gpt2Model(config, reader, seed);
    }

    /// <summary>The config of <paramref name="modelDir"/> or the new <paramref name="configPath"/> (exactly one of them).</summary>
    public static ModelConfig LoadConfig(string? modelDir, string? configPath)
    {
        if ((modelDir is null) == (configPath is null)) throw new SharpFormerException("give either --model DIR (fine-tune) or --config NEW.json (train from scratch), not both");
        if (modelDir is not null) return ModelConfig.Load(modelDir);
        return ModelConfig.LoadFile(configPath!);
    }

    /// <summary>Opens a folder's weights; <paramref name="keep"/> may return a shape test per name (false = hide the tensor).</summary>
    static CheckpointReader Open(string dir, string prefix, Func<string, Func<int[], bool>?> keep) =>
        new(new Filtered(CheckpointReader.OpenWeights(dir), keep), prefix);

    /// <summary>A tensor source that hides tensors whose shape does not suit the new model (e.g. a classifier for other labels).</summary>
    sealed class Filtered(ITensorSource inner, Func<string, Func<int[], bool>?> keep) : ITensorSource
    {
        bool Visible(string n)
        {
            if (!inner.Contains(n)) return false;
            var test = keep(n);
            return test is null || test(inner.ShapeOf(n));
        }
        public string Describe => inner.Describe;
        public IEnumerable<string> Names => inner.Names.Where(Visible);
        public bool Contains(string name) => Visible(name);
        public int[] ShapeOf(string name) => inner.ShapeOf(name);
        public Tensor ReadFloat32(string name) => inner.ReadFloat32(name);
        public void Dispose() => inner.Dispose();
    }
}
