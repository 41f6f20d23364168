using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tasks;

/// <summary>NER output for one text: the entities, every token's prediction (before aggregation) and how many windows the text needed.</summary>
public sealed record NerResult(string Text, IReadOnlyList<Entity> Entities, IReadOnlyList<TokenPrediction> Tokens, int Windows);

/// <summary>
/// Token classification / NER (<c>BertForTokenClassification</c>) with the semantics of HuggingFace's
/// token-classification pipeline: softmax per token, special tokens skipped, then <see cref="EntityAggregator"/>
/// (strategies none / simple / first / average / max, label "O" ignored). Entity text and start/end come from the
/// tokenizer's character offsets into the original string. Words for first/average/max are a token plus its "##"
/// continuations (with bert-base-chinese every CJK character is its own word).
/// <para>
/// Long texts are never truncated: when a text has more tokens than fit (max length minus [CLS]/[SEP]), the token
/// sequence is cut into windows of that size overlapping by <c>stride</c> tokens (default a quarter of a window); each
/// token takes its probabilities from the window in which it lies farthest from an edge (most context on both sides),
/// and aggregation then runs once over the whole text, so an entity crossing a window boundary stays whole.
/// </para>
/// </summary>
public sealed class TokenClassifier
{
    /// <summary>The encoder and tokenizer.</summary>
    public EncoderSession Session { get; }
    /// <summary>The model's labels by id.</summary>
    public IReadOnlyDictionary<int, string> Id2Label => Session.Config.Id2Label;

    /// <summary>The entity types the model tags (its labels without the B-/I-/E-/S- prefixes and O), in label-id order.</summary>
    public IReadOnlyList<string> EntityTypes => Id2Label.OrderBy(p => p.Key).Select(p => p.Value)
        .Where(l => l != "O").Select(l => l.Length > 2 && l[1] == '-' && "BIES".Contains(l[0]) ? l[2..] : l).Distinct().ToList();

    /// <summary>A tagger over a session loaded with the token-classification head (else a one-line error).</summary>
    public TokenClassifier(EncoderSession session)
    {
        if (!session.Model.Heads.HasFlag(BertHeads.TokenClassification))
            throw new SharpFormerException("the model was loaded without a token-classification head");
        Session = session;
    }

    /// <summary>Loads a folder; a checkpoint without a classifier (a base model) gets one initialised from <paramref name="seed"/> — see <see cref="EncoderSession.HeadUntrained"/>.</summary>
    public static TokenClassifier Load(string modelDir, int seed = 0, WeightPrecision precision = WeightPrecision.Float32) =>
        new(EncoderSession.Load(modelDir, BertHeads.TokenClassification, seed, precision));

    /// <summary>The tokens and entities of one text (see the class remarks for long texts, <paramref name="stride"/> and decoding).</summary>
    public NerResult Predict(string text, AggregationStrategy aggregation = AggregationStrategy.Simple, int? stride = null,
        IReadOnlyCollection<string>? ignoreLabels = null, TagDecoding decoding = TagDecoding.Argmax) => Predict([text], aggregation, stride, ignoreLabels, decoding: decoding)[0];

    sealed record Window(int Text, int First, int Count);

    /// <summary>The tokens and entities of every text, in input order.</summary>
    public NerResult[] Predict(IReadOnlyList<string> texts, AggregationStrategy aggregation = AggregationStrategy.Simple, int? stride = null,
        IReadOnlyCollection<string>? ignoreLabels = null, IProgress<int>? progress = null, TagDecoding decoding = TagDecoding.Argmax)
    {
        if (decoding == TagDecoding.Bio && aggregation is not (AggregationStrategy.None or AggregationStrategy.Simple))
            throw new SharpFormerException($"BIO decoding tags tokens, so it needs the none or simple aggregation (got {aggregation.ToString().ToLowerInvariant()})");
        var full = new Encoding[texts.Count];
        var content = new int[texts.Count][];      // positions of real (non-special) tokens in full[i]
        var windows = new List<Window>();
        var windowEncodings = new List<Encoding>();
        for (int i = 0; i < texts.Count; i++)
        {
            string what = texts.Count == 1 ? "the text" : $"text {i + 1}";
            EncoderSession.RequireText(texts[i], what);
            var enc = full[i] = Session.Tokenizer.Encode(texts[i]);
            // Special tokens ([CLS], [SEP]) are the zero-width ones; every real token covers at least one character.
            content[i] = Enumerable.Range(0, enc.Length).Where(j => enc.Offsets[j].End > enc.Offsets[j].Start).ToArray();
            if (content[i].Length == 0) throw new SharpFormerException($"{what} has no tokens; this task needs text");
            int before = content[i][0], after = enc.Length - 1 - content[i][^1];
            int size = Session.MaxLength - before - after;
            if (size < 1) throw new SharpFormerException($"the model's maximum length {Session.MaxLength} leaves no room for text");
            int n = content[i].Length;
            if (n <= size)
            {
                windows.Add(new Window(i, 0, n));
                windowEncodings.Add(Slice(enc, before, after, content[i], 0, n));
                continue;
            }
            int overlap = stride ?? size / 4;
            if (overlap < 0 || overlap >= size)
                throw new SharpFormerException($"--stride must be between 0 and {size - 1} (the window holds {size} tokens); got {overlap}");
            for (int start = 0; ; start += size - overlap)
            {
                start = Math.Min(start, n - size);           // the last window ends at the text's end
                windows.Add(new Window(i, start, size));
                windowEncodings.Add(Slice(enc, before, after, content[i], start, size));
                if (start + size >= n) break;
            }
        }

        int labels = Session.Config.NumLabels;
        var windowScores = Session.RunBatched(windowEncodings, BertHeads.TokenClassification, (o, row, item) =>
        {
            int t = o.Logits!.Shape[1];
            var w = windows[item];
            int before = content[w.Text][0];
            var scores = new float[w.Count][];
            for (int k = 0; k < w.Count; k++)
                scores[k] = EncoderSession.SoftmaxOf(o.Logits.Data.AsSpan((row * t + before + k) * labels, labels));
            return scores;
        });

        var results = new NerResult[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            int n = content[i].Length;
            var best = new float[n][];
            var margin = new int[n];
            Array.Fill(margin, -1);
            int count = 0;
            for (int wi = 0; wi < windows.Count; wi++)
            {
                var w = windows[wi];
                if (w.Text != i) continue;
                count++;
                for (int k = 0; k < w.Count; k++)
                {
                    int global = w.First + k;
                    // Distance to the nearer window edge; an edge that is the text's own start/end does not count.
                    int left = w.First == 0 ? int.MaxValue : k, right = w.First + w.Count >= n ? int.MaxValue : w.Count - 1 - k;
                    int m = Math.Min(left, right);
                    if (m > margin[global]) { margin[global] = m; best[global] = windowScores[wi][k]; }
                }
            }
            var enc = full[i];
            var decoded = decoding == TagDecoding.Bio ? BioDecoder.Decode(best, Id2Label) : null;
            var preds = new TokenPrediction[n];
            for (int k = 0; k < n; k++)
            {
                int j = content[i][k];
                var token = enc.Tokens[j];
                preds[k] = new TokenPrediction(j, token, enc.Offsets[j].Start, enc.Offsets[j].End, best[k],
                    token.StartsWith("##", StringComparison.Ordinal) && token.Length > 2, decoded?[k]);
            }
            results[i] = new NerResult(texts[i], EntityAggregator.Aggregate(texts[i], preds, Id2Label, aggregation, ignoreLabels), preds, count);
            progress?.Report(i + 1);
        }
        return results;
    }

    /// <summary>The leading specials, content tokens [start, start+count), the trailing specials of a full encoding.</summary>
    static Encoding Slice(Encoding enc, int before, int after, int[] content, int start, int count)
    {
        var idx = Enumerable.Range(0, before)
            .Concat(content.Skip(start).Take(count))
            .Concat(Enumerable.Range(enc.Length - after, after)).ToArray();
        return new Encoding(idx.Select(j => enc.InputIds[j]).ToArray(), idx.Select(j => enc.TokenTypeIds[j]).ToArray(),
            idx.Select(j => enc.AttentionMask[j]).ToArray(), idx.Select(j => enc.Tokens[j]).ToArray(), idx.Select(j => enc.Offsets[j]).ToArray());
    }
}
