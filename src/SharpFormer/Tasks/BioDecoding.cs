namespace SharpFormer.Tasks;

/// <summary>How a token classifier's per-token probabilities become tags.</summary>
public enum TagDecoding
{
    /// <summary>Each token's most probable label on its own (HuggingFace's pipeline).</summary>
    Argmax,
    /// <summary>The most probable tag sequence that is valid BIO (Viterbi; see <see cref="BioDecoder"/>).</summary>
    Bio,
}

/// <summary>
/// Constrained decoding for BIO tags without a CRF: the sequence maximising Σ log p(tag) among those where every
/// "I-X" follows "B-X" or "I-X" (AllenNLP's <c>allowed_transitions</c> + <c>viterbi_decode</c>). Argmax tagging lets a
/// weak model emit "O I-X" or "B-X I-Y", which seqeval counts as extra, broken entities; this never does.
/// Labels that are neither B- nor I- ("O", plain types) may follow and precede anything.
/// </summary>
public static class BioDecoder
{
    /// <summary>The most probable label sequence that is valid BIO.</summary>
    /// <param name="probs">Per position, the probability of every label id (softmax output).</param>
    /// <param name="id2label">The model's labels by id.</param>
    /// <returns>The label id chosen at every position.</returns>
    public static int[] Decode(IReadOnlyList<float[]> probs, IReadOnlyDictionary<int, string> id2label)
    {
        int n = probs.Count;
        if (n == 0) return [];
        int labels = probs[0].Length;
        // Entity type each label continues (I-X → X) or begins (B-X → X); null for the others.
        var inside = new string?[labels];
        var begins = new string?[labels];
        for (int l = 0; l < labels; l++)
        {
            string name = id2label.TryGetValue(l, out var s) ? s : "";
            if (name.StartsWith("I-", StringComparison.Ordinal)) inside[l] = name[2..];
            else if (name.StartsWith("B-", StringComparison.Ordinal)) begins[l] = name[2..];
        }
        bool Allowed(int prev, int cur) => inside[cur] is not string type || inside[prev] == type || begins[prev] == type;

        var score = new double[n, labels];
        var back = new int[n, labels];
        for (int l = 0; l < labels; l++) score[0, l] = inside[l] is null ? LogP(probs[0][l]) : double.NegativeInfinity;
        for (int i = 1; i < n; i++)
            for (int l = 0; l < labels; l++)
            {
                double best = double.NegativeInfinity; int arg = 0;
                for (int p = 0; p < labels; p++)
                    if (Allowed(p, l) && score[i - 1, p] > best) { best = score[i - 1, p]; arg = p; }
                score[i, l] = best + LogP(probs[i][l]);
                back[i, l] = arg;
            }
        var tags = new int[n];
        for (int l = 1; l < labels; l++) if (score[n - 1, l] > score[n - 1, tags[n - 1]]) tags[n - 1] = l;
        for (int i = n - 1; i > 0; i--) tags[i - 1] = back[i, tags[i]];
        return tags;
    }

    // A probability of exactly 0 (underflow) must still rank below every positive one, not be forbidden.
    static double LogP(float p) => Math.Log(Math.Max(p, 1e-38f));
}
