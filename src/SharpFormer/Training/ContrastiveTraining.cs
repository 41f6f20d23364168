using SharpFormer.Models;
using SharpFormer.Tasks;

namespace SharpFormer.Training;

/// <summary>
/// A contrastive batch: <see cref="Rows"/> holds <see cref="Pairs"/> anchors (rows 0..N−1), then their positives (row
/// N+i is anchor i's), then any hard negatives (rows 2N..), each a candidate for every anchor. Unsupervised SimCSE puts
/// every sentence twice (anchors and positives are the same text; dropout makes the two views differ).
/// </summary>
public sealed record ContrastiveBatch(BertBatch Rows, int Pairs)
{
    /// <summary>Rows after the anchors and positives.</summary>
    public int HardNegatives => Rows.Batch - 2 * Pairs;
}

/// <summary>
/// The multiple-negatives ranking loss (InfoNCE with in-batch negatives) over L2-normalised pooled embeddings:
/// anchor i scores every positive and hard negative by cosine / τ, and the cross-entropy asks for its own positive.
/// Symmetric adds the reverse direction (positive j against every anchor) and averages the two.
/// Computed in double, so its backward can be checked against finite differences at float64 precision.
/// </summary>
public static class ContrastiveLoss
{
    /// <summary>
    /// The loss of <paramref name="rows"/> pooled vectors of size <paramref name="dim"/> (row-major, laid out as
    /// <see cref="ContrastiveBatch"/> says) and, when <paramref name="dPooled"/> is not empty, its gradient with respect to
    /// the pooled vectors (before normalisation) scaled by <paramref name="gradScale"/>, written into <paramref name="dPooled"/>.
    /// </summary>
    public static double Compute(ReadOnlySpan<double> pooled, int rows, int dim, int pairs, double temperature, bool symmetric,
                                 Span<double> dPooled, double gradScale = 1)
    {
        if (pairs < 1 || rows < 2 * pairs) throw new ArgumentException($"{rows} rows cannot hold {pairs} anchor/positive pairs");
        if (!(temperature > 0)) throw new ArgumentException("the temperature must be > 0");
        bool backward = !dPooled.IsEmpty;
        // e = u / max(‖u‖, 1e-12), as torch.nn.functional.normalize.
        var e = new double[rows * dim];
        var norm = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int k = 0; k < dim; k++) s += pooled[r * dim + k] * pooled[r * dim + k];
            norm[r] = Math.Max(Math.Sqrt(s), 1e-12);
            for (int k = 0; k < dim; k++) e[r * dim + k] = pooled[r * dim + k] / norm[r];
        }
        var dE = backward ? new double[rows * dim] : null;
        double weight = (symmetric ? 0.5 : 1.0) / pairs;
        double Dot(int a, int b)
        {
            double s = 0;
            for (int k = 0; k < dim; k++) s += e[a * dim + k] * e[b * dim + k];
            return s;
        }
        // One cross-entropy row: query row q against candidate rows [from, to), the target being row `target`.
        var logits = new double[rows];
        double Row(int q, int from, int to, int target)
        {
            int n = to - from;
            double max = double.NegativeInfinity;
            for (int c = 0; c < n; c++) { logits[c] = Dot(q, from + c) / temperature; max = Math.Max(max, logits[c]); }
            double z = 0;
            for (int c = 0; c < n; c++) z += Math.Exp(logits[c] - max);
            double lse = max + Math.Log(z);
            if (backward)
                for (int c = 0; c < n; c++)
                {
                    double g = weight * gradScale * (Math.Exp(logits[c] - lse) - (from + c == target ? 1 : 0)) / temperature;
                    if (g == 0) continue;
                    int cr = from + c;
                    for (int k = 0; k < dim; k++)
                    {
                        dE![q * dim + k] += g * e[cr * dim + k];
                        dE[cr * dim + k] += g * e[q * dim + k];
                    }
                }
            return lse - logits[target - from];
        }
        double loss = 0;
        for (int i = 0; i < pairs; i++) loss += weight * Row(i, pairs, rows, pairs + i);
        if (symmetric)
            for (int j = 0; j < pairs; j++) loss += weight * Row(pairs + j, 0, pairs, j);
        if (backward)
            // Through the normalisation: du = (de − e (e·de)) / ‖u‖.
            for (int r = 0; r < rows; r++)
            {
                double dot = 0;
                for (int k = 0; k < dim; k++) dot += e[r * dim + k] * dE![r * dim + k];
                for (int k = 0; k < dim; k++) dPooled[r * dim + k] = (dE![r * dim + k] - e[r * dim + k] * dot) / norm[r];
            }
        return loss;
    }
}

/// <summary>
/// Contrastive sentence-embedding training of a BERT encoder (SimCSE, Gao et al. 2021; sentence-transformers'
/// MultipleNegativesRankingLoss): the encoder's own forward and backward (<see cref="BertTraining.Encode"/> /
/// <see cref="BertTraining.BackwardEncoder"/>), pooling over the attention mask (mean) or the [CLS] vector, and
/// <see cref="ContrastiveLoss"/>. Anchors, positives and negatives of a batch go through the encoder as one batch.
/// </summary>
public sealed class ContrastiveTraining : ITrainable<ContrastiveBatch>
{
    /// <summary>The encoder being trained.</summary>
    public BertTraining Encoder { get; }
    /// <summary>Mean (over the attention mask) or [CLS].</summary>
    public Pooling Pooling { get; }
    /// <summary>The softmax temperature τ (similarities are cosine / τ).</summary>
    public double Temperature { get; }
    /// <summary>Also score each positive against every anchor (the loss is the mean of the two directions).</summary>
    public bool Symmetric { get; }

    /// <summary>Contrastive training of <paramref name="encoder"/>; only mean and cls pooling are trainable here.</summary>
    public ContrastiveTraining(BertTraining encoder, Pooling pooling = Pooling.Mean, double temperature = 0.05, bool symmetric = false)
    {
        if (pooling is not (Pooling.Mean or Pooling.Cls)) throw new SharpFormerException($"pooling must be mean or cls for contrastive training, not {pooling}");
        if (!(temperature > 0) || !double.IsFinite(temperature)) throw new SharpFormerException($"the temperature must be a finite number > 0, not {temperature}");
        Encoder = encoder;
        Pooling = pooling;
        Temperature = temperature;
        Symmetric = symmetric;
    }

    /// <inheritdoc/>
    public ParameterSet Parameters => Encoder.Parameters;
    /// <inheritdoc/>
    public GradientSet Gradients => Encoder.Gradients;
    /// <inheritdoc/>
    public bool Training { get => Encoder.Training; set => Encoder.Training = value; }
    /// <inheritdoc/>
    public TrainRng Rng => Encoder.Rng;
    /// <inheritdoc/>
    public void WeightsChanged() => Encoder.WeightsChanged();
    /// <inheritdoc/>
    public int TokenCount(ContrastiveBatch batch) => Encoder.TokenCount(batch.Rows);

    /// <inheritdoc/>
    public LossResult Step(ContrastiveBatch batch, bool backward, float gradScale = 1f)
    {
        var rows = batch.Rows;
        if (batch.Pairs < 1 || rows.Batch < 2 * batch.Pairs) throw new SharpFormerException($"a contrastive batch of {rows.Batch} rows cannot hold {batch.Pairs} pairs");
        var pass = Encoder.Encode(rows);
        int b = rows.Batch, t = rows.Length, h = Encoder.Config.HiddenSize;
        var pooled = Pool(pass.SequenceOutput, rows, h, out var counts);
        var dPooled = backward ? new double[b * h] : null;
        double loss = ContrastiveLoss.Compute(pooled, b, h, batch.Pairs, Temperature, Symmetric, dPooled, gradScale);
        if (backward)
        {
            // Through the pooling into the last hidden state, then the encoder's own backward.
            var dSeq = new float[b * t * h];
            for (int i = 0; i < b; i++)
                for (int j = 0; j < t; j++)
                {
                    bool used = Pooling == Pooling.Cls ? j == 0 : Attended(rows, i, j);
                    if (!used) continue;
                    double div = Pooling == Pooling.Cls ? 1 : counts[i];
                    for (int k = 0; k < h; k++) dSeq[(i * t + j) * h + k] = (float)(dPooled![i * h + k] / div);
                }
            Encoder.BackwardEncoder(pass, dSeq);
        }
        return new LossResult { Loss = loss, Count = batch.Pairs };
    }

    static bool Attended(BertBatch batch, int i, int j) => batch.AttentionMask is null || batch.AttentionMask[i][j] != 0;

    /// <summary>Pooled vectors [B, H] in double; <paramref name="counts"/>: attended tokens per row (clamped at 1e-9, as sentence-transformers).</summary>
    double[] Pool(float[] seq, BertBatch batch, int h, out double[] counts)
    {
        int b = batch.Batch, t = batch.Length;
        var pooled = new double[b * h];
        counts = new double[b];
        for (int i = 0; i < b; i++)
        {
            if (Pooling == Pooling.Cls)
            {
                for (int k = 0; k < h; k++) pooled[i * h + k] = seq[i * t * h + k];
                continue;
            }
            int n = 0;
            for (int j = 0; j < t; j++)
            {
                if (!Attended(batch, i, j)) continue;
                n++;
                for (int k = 0; k < h; k++) pooled[i * h + k] += seq[(i * t + j) * h + k];
            }
            counts[i] = Math.Max(n, 1e-9);
            for (int k = 0; k < h; k++) pooled[i * h + k] /= counts[i];
        }
        return pooled;
    }

    /// <summary>L2-normalised embeddings of a batch's rows with dropout off (evaluation during training); gradients untouched.</summary>
    public float[][] Embed(BertBatch batch)
    {
        bool was = Training;
        Training = false;
        try
        {
            int h = Encoder.Config.HiddenSize;
            var pooled = Pool(Encoder.Encode(batch).SequenceOutput, batch, h, out _);
            return Enumerable.Range(0, batch.Batch).Select(i =>
            {
                var v = pooled.AsSpan(i * h, h).ToArray().Select(x => (float)x).ToArray();
                SentenceEmbedder.L2Normalize(v);
                return v;
            }).ToArray();
        }
        finally { Training = was; }
    }
}
