namespace SharpFormer.AttentionViews;

/// <summary>
/// What one head does on average over the query rows: the share of its attention that goes to the sink tokens
/// ([CLS]/[SEP] for BERT, the first token for GPT-2), to the token itself, to the previous token, and how spread
/// out each row is (entropy in bits; a row spread evenly over n keys has log2 n bits).
/// </summary>
public sealed record HeadStatistics(
    int Layer, int Head,
    double SinkShare, double SelfShare, double PreviousShare,
    double MeanEntropyBits, double[] RowEntropyBits, double[] MaxEntropyBits)
{
    /// <summary>A one-word reading of the head's strongest habit.</summary>
    public string Pattern
    {
        get
        {
            double meanMax = MaxEntropyBits.Average();
            if (SinkShare >= 0.5) return "sink";
            if (PreviousShare >= 0.5) return "previous-token";
            if (SelfShare >= 0.5) return "self";
            if (meanMax > 0 && MeanEntropyBits >= 0.85 * meanMax) return "broad";
            return "mixed";
        }
    }

    /// <summary>The statistics of one head of one layer.</summary>
    public static HeadStatistics Of(AttentionMap map, int layer, int head)
    {
        int t = map.Length;
        double sink = 0, self = 0, prev = 0;
        var entropy = new double[t];
        var maxEntropy = new double[t];
        var sinks = new HashSet<int>(map.SinkPositions);
        for (int q = 0; q < t; q++)
        {
            var row = map.Row(layer, head, q);
            foreach (var s in sinks) sink += row[s];
            self += row[q];
            if (q > 0) prev += row[q - 1];
            double h = 0;
            for (int k = 0; k < t; k++)
                if (row[k] > 0) h -= row[k] * Math.Log2(row[k]);
            entropy[q] = h;
            maxEntropy[q] = Math.Log2(map.IsCausal ? q + 1 : t);
        }
        return new HeadStatistics(layer, head, sink / t, self / t, t > 1 ? prev / (t - 1) : 0,
            entropy.Average(), entropy, maxEntropy);
    }

    /// <summary>The statistics of every head of one layer, in head order.</summary>
    public static IReadOnlyList<HeadStatistics> OfLayer(AttentionMap map, int layer) =>
        Enumerable.Range(0, map.Heads).Select(h => Of(map, layer, h)).ToList();
}
