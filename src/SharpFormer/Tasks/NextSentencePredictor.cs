using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Tasks;

/// <summary>NSP result: probability that B follows A (softmax of seq_relationship_logits, index 0 = "is next") and the raw logits.</summary>
public sealed record NextSentenceResult(string First, string Second, float IsNextProbability, float[] Logits)
{
    /// <summary>True when B is predicted to follow A (probability at least 0.5).</summary>
    public bool IsNext => IsNextProbability >= 0.5f;
}

/// <summary>
/// Next-sentence prediction with BERT's pre-training NSP head: <c>[CLS] A [SEP] B [SEP]</c> (token types 0 then 1) →
/// pooler → <c>cls.seq_relationship</c>. A pair longer than the model's maximum is an error (never truncated).
/// </summary>
public sealed class NextSentencePredictor
{
    /// <summary>The encoder and tokenizer.</summary>
    public EncoderSession Session { get; }

    /// <summary>A predictor over a session loaded with the next-sentence head (else a one-line error).</summary>
    public NextSentencePredictor(EncoderSession session)
    {
        if (!session.Model.Heads.HasFlag(BertHeads.NextSentence))
            throw new SharpFormerException("the model was loaded without the next-sentence head");
        Session = session;
    }

    /// <summary>Loads the model folder with its next-sentence head.</summary>
    public static NextSentencePredictor Load(string modelDir, int seed = 0, WeightPrecision precision = WeightPrecision.Float32) =>
        new(EncoderSession.Load(modelDir, BertHeads.NextSentence, seed, precision));

    /// <summary>The probability that <paramref name="second"/> follows <paramref name="first"/>.</summary>
    public NextSentenceResult Predict(string first, string second) => Predict([(first, second)])[0];

    /// <summary>Scores every pair (batched); a pair too long for the model is a one-line error naming it.</summary>
    public NextSentenceResult[] Predict(IReadOnlyList<(string First, string Second)> pairs, IProgress<int>? progress = null)
    {
        var encodings = pairs.Select((p, i) => Session.EncodeChecked(p.First, p.Second, pairs.Count == 1 ? "the sentence pair" : $"pair {i + 1}")).ToList();
        return Session.RunBatched(encodings, BertHeads.NextSentence, (o, row, item) =>
        {
            var logits = o.SeqRelationshipLogits!.Data.AsSpan(row * 2, 2).ToArray();
            return new NextSentenceResult(pairs[item].First, pairs[item].Second, EncoderSession.SoftmaxOf(logits)[0], logits);
        }, progress);
    }
}
