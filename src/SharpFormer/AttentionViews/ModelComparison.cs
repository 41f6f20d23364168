using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.AttentionViews;

/// <summary>
/// Parameter counts by component. LayerNorm counts the body's normalisations (embeddings/encoder/decoder and
/// GPT-2's final ln_f); everything on top of the body (pooler, MLM/NSP heads including their own LayerNorm,
/// classifiers, an untied lm_head) is Heads. Tied weights (BERT's MLM decoder, GPT-2's lm_head) count once, as embeddings.
/// </summary>
public sealed record ParameterBreakdown(long Embeddings, long Attention, long FeedForward, long LayerNorm, long Heads, long Other)
{
    /// <summary>All parameters.</summary>
    public long Total => Embeddings + Attention + FeedForward + LayerNorm + Heads + Other;

    /// <summary>The component a parameter belongs to, from its HuggingFace name: "heads", "layernorm", "embeddings", "attention", "ffn" or "other".</summary>
    public static string Component(string name)
    {
        if (name.StartsWith("cls.", StringComparison.Ordinal) || name.StartsWith("bert.pooler.", StringComparison.Ordinal) ||
            name.StartsWith("classifier.", StringComparison.Ordinal) || name.StartsWith("lm_head.", StringComparison.Ordinal) ||
            name.StartsWith("score.", StringComparison.Ordinal) || name.StartsWith("qa_outputs.", StringComparison.Ordinal))
            return "heads";
        if (name.Contains("LayerNorm.", StringComparison.Ordinal) || name.Contains(".ln_", StringComparison.Ordinal) ||
            name.Contains("layernorm.", StringComparison.Ordinal) || name.StartsWith("model.norm.", StringComparison.Ordinal)) return "layernorm";
        if (name.Contains("embeddings.", StringComparison.Ordinal) || name.Contains(".wte.", StringComparison.Ordinal) || name.Contains(".wpe.", StringComparison.Ordinal) ||
            name.Contains("embed_tokens.", StringComparison.Ordinal))
            return "embeddings";
        if (name.Contains(".attention.", StringComparison.Ordinal) || name.Contains(".attn.", StringComparison.Ordinal) || name.Contains(".self_attn.", StringComparison.Ordinal)) return "attention";
        if (name.Contains(".intermediate.", StringComparison.Ordinal) || name.Contains(".output.dense.", StringComparison.Ordinal) || name.Contains(".mlp.", StringComparison.Ordinal))
            return "ffn";
        return "other";
    }

    /// <summary>A model's parameters summed by <see cref="Component"/>.</summary>
    public static ParameterBreakdown Of(ParameterSet parameters) => Of(parameters.All.Select(p => (p.Name, (long)p.Tensor.Length)));

    /// <summary>Sums parameter counts by <see cref="Component"/>.</summary>
    public static ParameterBreakdown Of(IEnumerable<(string Name, long Count)> parameters)
    {
        long e = 0, a = 0, f = 0, n = 0, h = 0, o = 0;
        foreach (var (name, count) in parameters)
            switch (Component(name))
            {
                case "embeddings": e += count; break;
                case "attention": a += count; break;
                case "ffn": f += count; break;
                case "layernorm": n += count; break;
                case "heads": h += count; break;
                default: o += count; break;
            }
        return new ParameterBreakdown(e, a, f, n, h, o);
    }
}

/// <summary>One model folder described for the comparison.</summary>
public sealed record ModelSummary(
    string Name, string ModelType, string Family, string Architecture, string AttentionType, string Normalisation,
    string Activation, int Layers, int Heads, int HeadDim, int HiddenSize, int FfnSize, int VocabSize, string Tokenizer,
    int ContextLength, string PositionEmbeddings, ParameterBreakdown Parameters, long TotalParameters,
    string TrainingObjective, string TypicalTasks)
{
    /// <summary>Parameters the checkpoint lacked and that were randomly initialised.</summary>
    public IReadOnlyList<string> Untrained { get; init; } = [];
    /// <summary>The heads on top of the body, e.g. "Pooler, MaskedLM, NextSentence" or "lm_head (tied to wte)".</summary>
    public string HeadsPresent { get; init; } = "";
    /// <summary>id2label in id order, when the config names labels.</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];
    /// <summary>Key/value heads (fewer than <see cref="Heads"/> with grouped-query attention).</summary>
    public int KvHeads { get; init; }
    /// <summary>The feed-forward block's form, e.g. "GELU MLP" or "gated SiLU MLP (gate · up → down)".</summary>
    public string Mlp { get; init; } = "";

    /// <summary>What every family's description starts from.</summary>
    /// <param name="Name">The folder's name.</param>
    /// <param name="Tokenizer">Its tokenizer's kind.</param>
    /// <param name="Labels">id2label in id order, when the config names labels.</param>
    public readonly record struct Context(string Name, string Tokenizer, IReadOnlyList<string> Labels);

    /// <summary>Reads the config, the tokenizer and the weights of a model folder (described by its family's <see cref="ModelFamily.Describe"/>).</summary>
    public static ModelSummary Load(string dir)
    {
        var config = ModelConfig.Load(dir);
        var context = new Context(AttentionMap.ModelNameOf(dir), AutoTokenizer.FromFolder(dir).Kind,
            config.Raw["id2label"] is null ? [] : config.Id2Label.OrderBy(p => p.Key).Select(p => p.Value).ToList());
        return ModelFamilies.Find(config.ModelType)!.Describe(dir, config, context);
    }

    /// <summary>A Bert model folder described (<see cref="ModelFamily.Describe"/>).</summary>
    internal static ModelSummary OfBert(string dir, ModelConfig config, Context context)
    {
        var c = (BertConfig)config;
        var (name, tokenizer, labels) = context;
        var model = BertModel.Load(dir);
        var arch = c.Architecture == "" ? "BertModel" : c.Architecture;
        return new ModelSummary(name, "bert", "BERT: encoder-only Transformer", arch,
            "bidirectional: every token attends to every token", "post-LN (LayerNorm after each residual add)",
            c.HiddenAct, c.NumHiddenLayers, c.NumAttentionHeads, c.HeadDim, c.HiddenSize, c.IntermediateSize, c.VocabSize,
            tokenizer, c.MaxPositionEmbeddings, $"learned absolute ({c.MaxPositionEmbeddings}) + token type ({c.TypeVocabSize})",
            ParameterBreakdown.Of(model.Parameters), model.Parameters.ElementCount, BertObjective(arch), BertTasks(arch, c))
            { Untrained = model.InitialisedParameters, Labels = labels, HeadsPresent = model.Heads.ToString(),
              KvHeads = c.NumAttentionHeads, Mlp = $"{c.HiddenAct} MLP (dense → act → dense)" };
    }

    /// <summary>A Gpt2 model folder described (<see cref="ModelFamily.Describe"/>).</summary>
    internal static ModelSummary OfGpt2(string dir, ModelConfig config, Context context)
    {
        var c = (Gpt2Config)config;
        var (name, tokenizer, labels) = context;
        var model = Gpt2Model.Load(dir);
        var arch = c.Architecture == "" ? "GPT2Model" : c.Architecture;
        return new ModelSummary(name, "gpt2", "GPT-2: decoder-only Transformer", arch,
            "causal: each token attends to itself and earlier tokens", "pre-LN (LayerNorm before each sub-layer, final ln_f)",
            c.ActivationFunction, c.NLayer, c.NHead, c.HeadDim, c.NEmbd, c.InnerDim, c.VocabSize,
            tokenizer, c.NPositions, $"learned absolute ({c.NPositions})",
            ParameterBreakdown.Of(model.Parameters), model.Parameters.ElementCount,
            "causal language modelling: predict the next token (cross-entropy on the input shifted by one)",
            "text generation and continuation, perplexity scoring, prompting / few-shot tasks")
            { Untrained = model.InitialisedParameters, Labels = labels, KvHeads = c.NHead, Mlp = $"{c.ActivationFunction} MLP (c_fc → act → c_proj)",
              HeadsPresent = model.Parameters.Contains("lm_head.weight") ? "lm_head" : "lm_head (tied to wte)" };
    }

    /// <summary>A Llama model folder described (<see cref="ModelFamily.Describe"/>).</summary>
    internal static ModelSummary OfLlama(string dir, ModelConfig config, Context context)
    {
        var c = (LlamaConfig)config;
        var (name, tokenizer, labels) = context;
        var model = LlamaModel.Load(dir);
        var arch = c.Architecture == "" ? "LlamaModel" : c.Architecture;
        string family = c.ModelType switch { "qwen2" => "Qwen2", "mistral" => "Mistral", _ => "Llama" };
        string attention = c.NumKeyValueHeads == c.NumAttentionHeads ? "causal, multi-head"
            : $"causal, grouped-query: {c.NumAttentionHeads / c.NumKeyValueHeads} query heads share each key/value head";
        string rope = $"rotary (RoPE, θ = {c.RopeTheta.ToString("G", CultureInfo.InvariantCulture)}" +
            (c.RopeScaling is { } rs ? $", {rs.Type.ToString().ToLowerInvariant()} scaling ×{rs.Factor.ToString(CultureInfo.InvariantCulture)}" : "") + ")";
        return new ModelSummary(name, c.ModelType, $"{family}: decoder-only Transformer", arch, attention,
            "pre-norm RMSNorm (before each sub-layer, final norm)",
            c.HiddenAct, c.NumHiddenLayers, c.NumAttentionHeads, c.HeadDim, c.HiddenSize, c.IntermediateSize, c.VocabSize,
            tokenizer, c.ContextLength, rope,
            ParameterBreakdown.Of(model.Parameters), model.Parameters.ElementCount,
            "causal language modelling: predict the next token (cross-entropy on the input shifted by one)",
            "chat and instruction following, text generation, perplexity scoring")
            { Untrained = model.InitialisedParameters, Labels = labels, KvHeads = c.NumKeyValueHeads,
              Mlp = $"gated {c.HiddenAct} MLP (down(act(gate) · up))" + (c.QkvBias ? "; q/k/v biases" : ""),
              HeadsPresent = model.Parameters.Contains("lm_head.weight") ? "lm_head" : "lm_head (tied to embed_tokens)" };
    }

    static string BertObjective(string arch) => arch switch
    {
        "BertForPreTraining" => "masked language modelling (MLM) + next-sentence prediction (NSP)",
        "BertForMaskedLM" or "BertLMHeadModel" => "masked language modelling (MLM)",
        "BertForNextSentencePrediction" => "next-sentence prediction (NSP)",
        "BertForSequenceClassification" => "fine-tuned: sequence classification (cross-entropy on labels), after MLM + NSP pre-training",
        "BertForTokenClassification" => "fine-tuned: token classification (cross-entropy per token), after MLM + NSP pre-training",
        _ => "masked language modelling (MLM) + next-sentence prediction (NSP) pre-training; encoder only",
    };

    static string BertTasks(string arch, BertConfig c) => arch switch
    {
        "BertForSequenceClassification" => $"text classification ({string.Join(", ", c.Id2Label.OrderBy(p => p.Key).Select(p => p.Value))})",
        "BertForTokenClassification" => $"named-entity recognition / tagging ({c.Id2Label.Count} labels)",
        _ => "text classification, named-entity recognition, extractive QA, sentence embeddings and similarity, fill-mask",
    };
}

/// <summary>Two or more model folders side by side: a terminal table, Markdown or JSON.</summary>
public sealed class ModelComparison
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    /// <summary>The compared models, in the order given.</summary>
    public IReadOnlyList<ModelSummary> Models { get; }

    /// <summary>Compares two or more models (fewer is a one-line error).</summary>
    public ModelComparison(IReadOnlyList<ModelSummary> models)
    {
        if (models.Count < 2) throw new SharpFormerException("compare needs at least two models (--model A --model B)");
        Models = models;
    }

    /// <summary>Loads the summary of every model folder in <paramref name="dirs"/> and compares them.</summary>
    public static ModelComparison Load(IEnumerable<string> dirs) => new(dirs.Select(ModelSummary.Load).ToList());

    static string N(long n) => n.ToString("N0", Inv);
    static string Share(long n, long total) => total == 0 ? "" : $" ({(double)n / total:P1})".Replace(" %", "%");

    /// <summary>The rows of the comparison: (field, one value per model).</summary>
    public IReadOnlyList<(string Field, string[] Values)> Rows()
    {
        (string, string[]) Row(string field, Func<ModelSummary, string> f) => (field, Models.Select(f).ToArray());
        return
        [
            Row("model", m => m.Name),
            Row("family", m => m.Family),
            Row("architecture", m => m.Architecture),
            Row("attention", m => m.AttentionType),
            Row("layers", m => m.Layers.ToString(Inv)),
            Row("attention heads", m => $"{m.Heads} (head dim {m.HeadDim})"),
            Row("key/value heads", m => m.KvHeads.ToString(Inv)),
            Row("hidden size", m => m.HiddenSize.ToString(Inv)),
            Row("FFN size", m => $"{m.FfnSize} ({m.Activation})"),
            Row("MLP", m => m.Mlp),
            Row("normalisation", m => m.Normalisation),
            Row("vocabulary", m => m.VocabSize.ToString("N0", Inv)),
            Row("tokenizer", m => m.Tokenizer),
            Row("context length", m => m.ContextLength.ToString(Inv)),
            Row("positions", m => m.PositionEmbeddings),
            Row("params: embeddings", m => N(m.Parameters.Embeddings) + Share(m.Parameters.Embeddings, m.TotalParameters)),
            Row("params: attention", m => N(m.Parameters.Attention) + Share(m.Parameters.Attention, m.TotalParameters)),
            Row("params: FFN", m => N(m.Parameters.FeedForward) + Share(m.Parameters.FeedForward, m.TotalParameters)),
            Row("params: norms", m => N(m.Parameters.LayerNorm) + Share(m.Parameters.LayerNorm, m.TotalParameters)),
            Row("params: heads", m => N(m.Parameters.Heads) + Share(m.Parameters.Heads, m.TotalParameters)),
            .. Models.Any(m => m.Parameters.Other > 0) ? [Row("params: other", m => N(m.Parameters.Other))] : Array.Empty<(string, string[])>(),
            Row("params: total", m => N(m.TotalParameters)),
            Row("training objective", m => m.TrainingObjective),
            Row("typical tasks", m => m.TypicalTasks),
        ];
    }

    /// <summary>An aligned plain-text table (East Asian wide characters count two columns).</summary>
    public string Table()
    {
        var rows = Rows();
        var widths = new int[Models.Count + 1];
        widths[0] = rows.Max(r => AttentionReport.DisplayWidth(r.Field));
        for (int i = 0; i < Models.Count; i++) widths[i + 1] = rows.Max(r => AttentionReport.DisplayWidth(r.Values[i]));
        var sb = new StringBuilder();
        string Line(string field, string[] values) =>
            AttentionReport.Pad(field, widths[0]) + " │ " + string.Join(" │ ", values.Select((v, i) => AttentionReport.Pad(v, widths[i + 1]))).TrimEnd();
        sb.AppendLine(Line(rows[0].Field, rows[0].Values));
        sb.AppendLine(string.Join("─┼─", widths.Select(w => new string('─', w))));
        foreach (var r in rows.Skip(1)) sb.AppendLine(Line(r.Field, r.Values));
        return sb.ToString();
    }

    /// <summary>The comparison as a Markdown table (one column per model).</summary>
    public string Markdown()
    {
        var rows = Rows();
        static string Cell(string s) => s.Replace("|", "\\|");
        var sb = new StringBuilder();
        sb.AppendLine("| " + string.Join(" | ", new[] { "" }.Concat(Models.Select(m => Cell(m.Name)))) + " |");
        sb.AppendLine("|" + string.Concat(Enumerable.Repeat(" --- |", Models.Count + 1)));
        foreach (var r in rows.Skip(1)) sb.AppendLine("| " + Cell(r.Field) + " | " + string.Join(" | ", r.Values.Select(Cell)) + " |");
        return sb.ToString();
    }

    /// <summary>The comparison as a JSON object: {"models": [...]} with sizes, tokenizer and parameters by component.</summary>
    public JsonObject ToJson() => new()
    {
        ["models"] = new JsonArray(Models.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Name, ["model_type"] = m.ModelType, ["family"] = m.Family, ["architecture"] = m.Architecture,
            ["attention"] = m.AttentionType, ["layers"] = m.Layers, ["heads"] = m.Heads, ["kv_heads"] = m.KvHeads, ["head_dim"] = m.HeadDim, ["mlp"] = m.Mlp,
            ["hidden_size"] = m.HiddenSize, ["ffn_size"] = m.FfnSize, ["activation"] = m.Activation, ["normalisation"] = m.Normalisation,
            ["vocab_size"] = m.VocabSize, ["tokenizer"] = m.Tokenizer, ["context_length"] = m.ContextLength, ["positions"] = m.PositionEmbeddings,
            ["parameters"] = new JsonObject
            {
                ["embeddings"] = m.Parameters.Embeddings, ["attention"] = m.Parameters.Attention, ["ffn"] = m.Parameters.FeedForward,
                ["layernorm"] = m.Parameters.LayerNorm, ["heads"] = m.Parameters.Heads, ["other"] = m.Parameters.Other, ["total"] = m.TotalParameters,
            },
            ["training_objective"] = m.TrainingObjective, ["typical_tasks"] = m.TypicalTasks,
        }).ToArray()),
    };

    /// <summary><see cref="ToJson"/> as text.</summary>
    public string Json(bool indented = true) => ToJson().ToJsonString(new JsonSerializerOptions
    {
        WriteIndented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
