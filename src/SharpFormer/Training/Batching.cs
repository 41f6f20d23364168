namespace SharpFormer.Training;

/// <summary>One encoded training example before padding (labels: per token, −100 = ignored; or one class).</summary>
public sealed record EncodedExample(int[] InputIds, int[] TokenTypeIds, int[]? TokenLabels = null, int Label = -100, int NextSentenceLabel = -100);

/// <summary>Padding, masking and batching helpers of the train commands.</summary>
public static class Batching
{
    /// <summary>Right-pads a group of examples into one BERT batch (pad id, attention mask 0, labels −100 on padding).</summary>
    public static BertBatch Bert(IReadOnlyList<EncodedExample> examples, int padId)
    {
        int t = examples.Max(e => e.InputIds.Length);
        int[][] Pad(Func<EncodedExample, int[]?> get, int fill) =>
            examples.Select(e =>
            {
                var src = get(e)!;
                var row = Enumerable.Repeat(fill, t).ToArray();
                src.CopyTo(row, 0);
                return row;
            }).ToArray();
        var ids = Pad(e => e.InputIds, padId);
        var types = Pad(e => e.TokenTypeIds, 0);
        var mask = examples.Select(e => Enumerable.Range(0, t).Select(j => j < e.InputIds.Length ? 1 : 0).ToArray()).ToArray();
        bool tok = examples[0].TokenLabels is not null;
        return new BertBatch(ids, types, mask)
        {
            TokenLabels = tok ? Pad(e => e.TokenLabels, -100) : null,
            Labels = examples.All(e => e.Label != -100) ? examples.Select(e => e.Label).ToArray() : null,
            NextSentenceLabels = examples.All(e => e.NextSentenceLabel != -100) ? examples.Select(e => e.NextSentenceLabel).ToArray() : null,
        };
    }

    /// <summary>
    /// BERT's masked-LM corruption (HF DataCollatorForLanguageModeling): each non-special token is selected with
    /// probability <paramref name="probability"/> (at least one per sequence); a selected token becomes [MASK] 80% of
    /// the time, a random token 10%, stays 10%. Returns the corrupted ids and the labels (original id where selected, −100 elsewhere).
    /// </summary>
    public static (int[] Ids, int[] Labels) MaskTokens(int[] ids, ISet<int> specialIds, int maskId, int vocabSize, TrainRng rng, double probability = 0.15)
    {
        var input = (int[])ids.Clone();
        var labels = Enumerable.Repeat(-100, ids.Length).ToArray();
        var candidates = Enumerable.Range(0, ids.Length).Where(i => !specialIds.Contains(ids[i])).ToList();
        foreach (var i in candidates)
            if (rng.NextDouble() < probability) labels[i] = ids[i];
        if (candidates.Count > 0 && labels.All(l => l == -100)) { int i = candidates[rng.Next(candidates.Count)]; labels[i] = ids[i]; }
        for (int i = 0; i < ids.Length; i++)
        {
            if (labels[i] == -100) continue;
            double r = rng.NextDouble();
            if (r < 0.8) input[i] = maskId;
            else if (r < 0.9) input[i] = rng.Next(vocabSize);
        }
        return (input, labels);
    }

    /// <summary>Splits a token stream into blocks of <paramref name="blockSize"/> (the remainder kept if ≥ 2 tokens), HF run_clm's group_texts.</summary>
    public static List<int[]> Blocks(IReadOnlyList<int> stream, int blockSize)
    {
        var blocks = new List<int[]>();
        for (int i = 0; i < stream.Count; i += blockSize)
        {
            int n = Math.Min(blockSize, stream.Count - i);
            if (n < 2) break;
            blocks.Add(stream.Skip(i).Take(n).ToArray());
        }
        return blocks;
    }

    /// <summary>Right-pads causal-LM blocks into one batch (labels −100 and attention 0 on padding).</summary>
    public static Gpt2Batch Gpt2(IReadOnlyList<int[]> blocks, int padId)
    {
        int t = blocks.Max(b => b.Length);
        if (blocks.All(b => b.Length == t)) return new Gpt2Batch(blocks.ToArray());
        var ids = blocks.Select(b => b.Concat(Enumerable.Repeat(padId, t - b.Length)).ToArray()).ToArray();
        var mask = blocks.Select(b => Enumerable.Range(0, t).Select(j => j < b.Length ? 1 : 0).ToArray()).ToArray();
        var labels = blocks.Select(b => b.Concat(Enumerable.Repeat(-100, t - b.Length)).ToArray()).ToArray();
        return new Gpt2Batch(ids, mask, labels);
    }
}
