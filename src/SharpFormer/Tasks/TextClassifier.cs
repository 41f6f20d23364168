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
public sealed record ClassificationResult(string Text, string Label, IReadOnlyList<LabelScore> Scores, IReadOnlyList<string> Labels, string Function, float[] Logits, bool Truncated);

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

    /// <summary>Classifies every text (batched, results in input order); <paramref name="progress"/> receives the number of texts done.</summary>
    public ClassificationResult[] Classify(IReadOnlyList<string> texts, bool truncate = false, IProgress<int>? progress = null)
    {
        var truncated = new bool[texts.Count];
        var encodings = texts.Select((t, i) =>
        {
            string what = texts.Count == 1 ? "the text" : $"text {i + 1}";
            EncoderSession.RequireText(t, what);
            if (!truncate) return Session.EncodeChecked(t, what: what);
            var full = Session.Tokenizer.Encode(t);
            if (full.Length <= Session.MaxLength) return full;
            truncated[i] = true;
            return Session.Tokenizer.Encode(t, null, Session.MaxLength);
        }).ToList();
        int n = Session.Config.NumLabels;
        return Session.RunBatched(encodings, (o, row, item) =>
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
            return new ClassificationResult(texts[item], LabelOf(best), ranked, multi, Function, logits, truncated[item]);
        }, progress);
    }

    string LabelOf(int id) => Id2Label.TryGetValue(id, out var l) ? l : $"LABEL_{id}";
}
