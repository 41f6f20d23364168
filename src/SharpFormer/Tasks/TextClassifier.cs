using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Tasks;

/// <summary>One label and its score (probability for softmax / sigmoid, the raw value for regression).</summary>
public sealed record LabelScore(string Label, float Score);

/// <summary>
/// A text's classification: <see cref="Label"/> is the arg-max (HuggingFace's prediction); <see cref="Scores"/> has every
/// label sorted by score, highest first (the text-classification pipeline with <c>top_k=None</c>); for multi-label
/// models <see cref="Labels"/> lists every label with sigmoid ≥ 0.5. <see cref="Truncated"/> says the text was cut
/// to the model's maximum because the caller asked for it.
/// </summary>
public sealed record ClassificationResult(string Text, string Label, IReadOnlyList<LabelScore> Scores, IReadOnlyList<string> Labels, string Function, float[] Logits, bool Truncated)
{
    /// <summary>The second text when the input was a pair, else null.</summary>
    public string? TextPair { get; init; }
}

/// <summary>
/// Sequence classification (<c>BertForSequenceClassification</c>: pooler → dropout → classifier). Scores follow the
/// HuggingFace pipeline's <c>function_to_apply</c> default: sigmoid when <c>problem_type</c> is
/// "multi_label_classification" or there is one label, softmax otherwise, none for "regression".
/// A text longer than the model's maximum is an error unless <c>truncate</c> is set (then it is cut and marked).
/// </summary>
public sealed class TextClassifier
{
    /// <summary>The encoder and tokenizer.</summary>
    public EncoderSession Session { get; }
    /// <summary>The model's labels by id.</summary>
    public IReadOnlyDictionary<int, string> Id2Label => Session.Config.Id2Label;
    /// <summary>"softmax", "sigmoid" or "none".</summary>
    public string Function { get; }

    /// <summary>A classifier over a session loaded with the sequence-classification head (else a one-line error).</summary>
    public TextClassifier(EncoderSession session)
    {
        if (!session.Model.Heads.HasFlag(BertHeads.SequenceClassification))
            throw new SharpFormerException("the model was loaded without a sequence-classification head");
        Session = session;
        var c = session.Config;
        Function = c.ProblemType == "multi_label_classification" || c.NumLabels == 1 ? "sigmoid"
            : c.ProblemType == "regression" ? "none" : "softmax";
    }

    /// <summary>Loads a folder; a checkpoint without a classifier (a base model) gets one initialised from <paramref name="seed"/> — see <see cref="EncoderSession.HeadUntrained"/>.</summary>
    public static TextClassifier Load(string modelDir, int seed = 0, WeightPrecision precision = WeightPrecision.Float32) =>
        new(EncoderSession.Load(modelDir, BertHeads.SequenceClassification, seed, precision));

    /// <summary>Classifies one text (an over-long text is an error unless <paramref name="truncate"/>).</summary>
    public ClassificationResult Classify(string text, bool truncate = false) => Classify([text], truncate)[0];

    /// <summary>
    /// Classifies texts, each alone or, where <paramref name="pairs"/> has a second text, as the pair
    /// <c>[CLS] text [SEP] pair [SEP]</c> (HuggingFace's pipeline on <c>{"text", "text_pair"}</c>); with
    /// <paramref name="truncate"/>, an over-long input is cut longest text first.
    /// </summary>
    public ClassificationResult[] Classify(IReadOnlyList<string> texts, bool truncate = false, IProgress<int>? progress = null, IReadOnlyList<string?>? pairs = null)
    {
        if (pairs is not null && pairs.Count != texts.Count) throw new ArgumentException($"{pairs.Count} pairs for {texts.Count} texts", nameof(pairs));
        var truncated = new bool[texts.Count];
        var encodings = texts.Select((t, i) =>
        {
            string what = texts.Count == 1 ? "the text" : $"text {i + 1}";
            var pair = pairs?[i];
            EncoderSession.RequireText(t, what);
            if (!truncate) return Session.EncodeChecked(t, pair, what);
            if (pair is not null) EncoderSession.RequireText(pair, $"the second text of {what}");
            var full = Session.Tokenizer.Encode(t, pair);
            if (full.Length <= Session.MaxLength) return full;
            truncated[i] = true;
            return Session.Tokenizer.Encode(t, pair, Session.MaxLength);
        }).ToList();
        int n = Session.Config.NumLabels;
        return Session.RunBatched(encodings, BertHeads.SequenceClassification, (o, row, item) =>
        {
            var logits = o.Logits!.Data.AsSpan(row * n, n).ToArray();
            var scores = Function switch
            {
                "softmax" => EncoderSession.SoftmaxOf(logits),
                "sigmoid" => logits.Select(x => 1f / (1f + MathF.Exp(-x))).ToArray(),
                _ => (float[])logits.Clone(),
            };
            var ranked = Enumerable.Range(0, n).OrderByDescending(k => scores[k]).ThenBy(k => k)
                .Select(k => new LabelScore(LabelOf(k), scores[k])).ToList();
            int best = Array.IndexOf(logits, logits.Max());
            var multi = Function == "sigmoid" ? Enumerable.Range(0, n).Where(k => scores[k] >= 0.5f).Select(LabelOf).ToList() : [LabelOf(best)];
            return new ClassificationResult(texts[item], LabelOf(best), ranked, multi, Function, logits, truncated[item]) { TextPair = pairs?[item] };
        }, progress);
    }

    string LabelOf(int id) => Id2Label.TryGetValue(id, out var l) ? l : $"LABEL_{id}";
}
