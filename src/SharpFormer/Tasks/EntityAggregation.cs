namespace SharpFormer.Tasks;

/// <summary>HuggingFace's token-classification <c>aggregation_strategy</c>.</summary>
public enum AggregationStrategy
{
    /// <summary>One entity per token (label = arg-max, score = its probability).</summary>
    None,
    /// <summary>Per-token labels, then adjacent tokens of the same type grouped (B- starts a new group, I- continues one).</summary>
    Simple,
    /// <summary>Words (a token and its "##" continuations) take the label of their first token, then grouped as Simple.</summary>
    First,
    /// <summary>Words take the arg-max of their tokens' averaged probabilities, then grouped.</summary>
    Average,
    /// <summary>Words take the label of their most confident token, then grouped.</summary>
    Max,
}

/// <summary>
/// One token's prediction, input to <see cref="EntityAggregator"/>: <see cref="Index"/> is its position in the encoded
/// input ([CLS] = 0), <see cref="Start"/>/<see cref="End"/> its [start, end) UTF-16 span in the original text (−1 when
/// unknown), <see cref="Scores"/> the probability of every label, <see cref="IsSubword"/> whether it continues the
/// previous token's word (a "##" piece), <see cref="Decoded"/> the label a sequence decoder chose (<see cref="TagDecoding.Bio"/>;
/// null = the most probable label).
/// </summary>
public sealed record TokenPrediction(int Index, string Token, int Start, int End, float[] Scores, bool IsSubword, int? Decoded = null);

/// <summary>
/// An entity. For <see cref="AggregationStrategy.None"/> it is one token: <see cref="Label"/> is the full tag
/// (HuggingFace's <c>entity</c>, e.g. "B-PER"), <see cref="Index"/> and <see cref="Token"/> are set. Otherwise it is a
/// group: <see cref="Label"/> is the type without the B-/I- prefix (HuggingFace's <c>entity_group</c>).
/// <see cref="Word"/> is always <c>text[Start..End]</c>, sliced from the original string (never re-joined from tokens).
/// </summary>
public sealed record Entity(string Label, float Score, string Word, int Start, int End, int? Index = null, string? Token = null)
{
    /// <summary>True for a group of tokens (aggregation other than None).</summary>
    public bool IsGroup => Index is null;
}

/// <summary>
/// The post-processing of HuggingFace's <c>TokenClassificationPipeline</c> (transformers 4.40): <c>aggregate</c>,
/// <c>aggregate_words</c>, <c>group_entities</c> and the final filter of ignored labels ("O"). Tags are read as
/// HuggingFace's <c>get_tag</c> does: "B-X" begins X, "I-X" continues X, anything else ("X", "O") is treated as a
/// continuation of type "X" — so BIO and IOB1 (I- without B-, B- only between adjacent same-type entities) both work:
/// a group continues while the type stays the same and the tag is not B-.
/// </summary>
public static class EntityAggregator
{
    /// <summary>The labels dropped by default: "O".</summary>
    public static IReadOnlyList<string> DefaultIgnoreLabels { get; } = ["O"];

    /// <summary>The entities of one text from its token predictions, as HuggingFace's pipeline groups them.</summary>
    /// <param name="text">The original text (words are sliced from it); null → words are tokens joined as HuggingFace's convert_tokens_to_string.</param>
    /// <param name="tokens">The predictions of every token, special tokens excluded.</param>
    /// <param name="id2label">The model's labels by id.</param>
    /// <param name="strategy">How tokens are grouped into entities (HuggingFace's <c>aggregation_strategy</c>).</param>
    /// <param name="ignoreLabels">Labels dropped from the result (default: <see cref="DefaultIgnoreLabels"/>).</param>
    public static List<Entity> Aggregate(string? text, IReadOnlyList<TokenPrediction> tokens, IReadOnlyDictionary<int, string> id2label,
        AggregationStrategy strategy, IReadOnlyCollection<string>? ignoreLabels = null)
    {
        ignoreLabels ??= DefaultIgnoreLabels;
        List<Piece> entities = strategy is AggregationStrategy.None or AggregationStrategy.Simple
            ? tokens.Select(t =>
            {
                int best = t.Decoded ?? ArgMax(t.Scores);
                return new Piece(Label(id2label, best), t.Scores[best], t.Start, t.End, [t.Token], t.Index);
            }).ToList()
            : AggregateWords(tokens, id2label, strategy);

        var result = new List<Entity>();
        if (strategy == AggregationStrategy.None)
        {
            foreach (var e in entities)
                if (!ignoreLabels.Contains(e.Label))
                    result.Add(new Entity(e.Label, e.Score, WordOf(text, e), e.Start, e.End, e.Index, e.Tokens[0]));
            return result;
        }
        foreach (var g in GroupEntities(entities))
            if (!ignoreLabels.Contains(g.Label))
                result.Add(new Entity(g.Label, g.Score, WordOf(text, g), g.Start, g.End));
        return result;
    }

    /// <summary>An entity before its word is sliced: label, score, span, the tokens it covers, the token index (None/Simple).</summary>
    sealed record Piece(string Label, float Score, int Start, int End, List<string> Tokens, int? Index);

    static string Label(IReadOnlyDictionary<int, string> id2label, int id) => id2label.TryGetValue(id, out var l) ? l : $"LABEL_{id}";

    static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;   // first maximum, as numpy
        return best;
    }

    static List<Piece> AggregateWords(IReadOnlyList<TokenPrediction> tokens, IReadOnlyDictionary<int, string> id2label, AggregationStrategy strategy)
    {
        var words = new List<Piece>();
        var group = new List<TokenPrediction>();
        foreach (var t in tokens)
        {
            if (group.Count > 0 && !t.IsSubword)
            {
                words.Add(AggregateWord(group, id2label, strategy));
                group.Clear();
            }
            group.Add(t);
        }
        if (group.Count > 0) words.Add(AggregateWord(group, id2label, strategy));
        return words;
    }

    static Piece AggregateWord(List<TokenPrediction> group, IReadOnlyDictionary<int, string> id2label, AggregationStrategy strategy)
    {
        int label; float score;
        switch (strategy)
        {
            case AggregationStrategy.First:
                label = ArgMax(group[0].Scores); score = group[0].Scores[label];
                break;
            case AggregationStrategy.Max:
            {
                // max(entities, key=scores.max()): the first token with the highest top score.
                var best = group[0];
                foreach (var t in group) if (t.Scores.Max() > best.Scores.Max()) best = t;
                label = ArgMax(best.Scores); score = best.Scores[label];
                break;
            }
            case AggregationStrategy.Average:
            {
                int n = group[0].Scores.Length;
                var avg = new float[n];
                for (int k = 0; k < n; k++)
                {
                    double s = 0; int c = 0;
                    foreach (var t in group) if (!float.IsNaN(t.Scores[k])) { s += t.Scores[k]; c++; }   // nanmean
                    avg[k] = c == 0 ? float.NaN : (float)(s / c);
                }
                label = ArgMax(avg); score = avg[label];
                break;
            }
            default: throw new ArgumentException("None and Simple do not aggregate words", nameof(strategy));
        }
        return new Piece(Label(id2label, label), score, group[0].Start, group[^1].End, group.Select(t => t.Token).ToList(), null);
    }

    /// <summary>HuggingFace's get_tag: ("B", X) for "B-X", ("I", X) for "I-X", ("I", label) otherwise.</summary>
    public static (string Bi, string Tag) GetTag(string label) =>
        label.StartsWith("B-", StringComparison.Ordinal) ? ("B", label[2..])
        : label.StartsWith("I-", StringComparison.Ordinal) ? ("I", label[2..])
        : ("I", label);

    static List<Piece> GroupEntities(List<Piece> entities)
    {
        var groups = new List<Piece>();
        var current = new List<Piece>();
        foreach (var e in entities)
        {
            if (current.Count == 0) { current.Add(e); continue; }
            var (bi, tag) = GetTag(e.Label);
            var (_, lastTag) = GetTag(current[^1].Label);
            if (tag == lastTag && bi != "B") current.Add(e);
            else
            {
                groups.Add(GroupSubEntities(current));
                current = [e];
            }
        }
        if (current.Count > 0) groups.Add(GroupSubEntities(current));
        return groups;
    }

    static Piece GroupSubEntities(List<Piece> members)
    {
        // entities[0]["entity"].split("-", 1)[-1]
        var first = members[0].Label;
        int dash = first.IndexOf('-');
        string type = dash >= 0 ? first[(dash + 1)..] : first;
        var valid = members.Where(m => !float.IsNaN(m.Score)).ToList();
        float score = valid.Count == 0 ? float.NaN : (float)valid.Average(m => (double)m.Score);
        return new Piece(type, score, members[0].Start, members[^1].End, members.SelectMany(m => m.Tokens).ToList(), null);
    }

    static string WordOf(string? text, Piece p) =>
        text is not null && p.Start >= 0 && p.End >= p.Start && p.End <= text.Length
            ? text[p.Start..p.End]
            : Tokenizers.BertTokenizer.ConvertTokensToString(p.Tokens);
}
