using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Tasks;

/// <summary>
/// Sentence embeddings from a BERT encoder: the last hidden state pooled (<see cref="Pooling"/>) and optionally
/// L2-normalised, and cosine similarities between them. A folder in sentence-transformers layout supplies its own
/// pooling / normalisation defaults (<see cref="SentenceTransformersConfig"/>); otherwise the default is [CLS] pooling.
/// Texts are never truncated: one longer than the model's maximum is an error.
/// </summary>
/// <example><code>
/// var embedder = SentenceEmbedder.Load("models/bert-base-chinese", Pooling.Mean);
/// float cos = embedder.Similarity("今天天气很好", "今天天气不错");
/// </code></example>
public sealed class SentenceEmbedder
{
    /// <summary>The encoder and tokenizer.</summary>
    public EncoderSession Session { get; }
    /// <summary>How token vectors become one sentence vector.</summary>
    public Pooling Pooling { get; }
    /// <summary>Whether vectors are L2-normalised.</summary>
    public bool Normalize { get; }
    /// <summary>The sentence-transformers configuration found in the folder, if any.</summary>
    public SentenceTransformersConfig? SentenceTransformers { get; }
    /// <summary>Length of the vectors (the hidden size).</summary>
    public int Dimension => Session.Config.HiddenSize;

    /// <summary>An embedder over a loaded session (<paramref name="st"/>: the sentence-transformers configuration it came from, if any).</summary>
    public SentenceEmbedder(EncoderSession session, Pooling pooling = Pooling.Cls, bool normalize = false, SentenceTransformersConfig? st = null)
    {
        Session = session;
        Pooling = pooling;
        Normalize = normalize;
        SentenceTransformers = st;
    }

    /// <summary>
    /// Loads a model folder. <paramref name="pooling"/> / <paramref name="normalize"/> override what a
    /// sentence-transformers layout says (default without one: cls, not normalised).
    /// </summary>
    public static SentenceEmbedder Load(string modelDir, Pooling? pooling = null, bool? normalize = null, WeightPrecision precision = WeightPrecision.Float32)
    {
        var st = SentenceTransformersConfig.Read(modelDir);
        var session = EncoderSession.Load(st?.TransformerDir ?? modelDir, BertHeads.None, precision: precision);
        var embedder = new SentenceEmbedder(session, pooling ?? st?.Pooling ?? Pooling.Cls, normalize ?? st?.Normalize ?? false, st);
        return embedder;
    }

    /// <summary>Longest input accepted: the model's, or sentence-transformers' max_seq_length when smaller.</summary>
    public int MaxLength => Math.Min(Session.MaxLength, SentenceTransformers?.MaxSeqLength ?? int.MaxValue);

    /// <summary>The vector of one text.</summary>
    public float[] Embed(string text) => Embed([text])[0];

    /// <summary>One vector per text, in input order (computed in length-sorted batches).</summary>
    public float[][] Embed(IReadOnlyList<string> texts, IProgress<int>? progress = null)
    {
        var encodings = texts.Select((t, i) =>
        {
            var e = Session.EncodeChecked(t, what: texts.Count == 1 ? "the text" : $"text {i + 1}");
            if (e.Length > MaxLength)
                throw new SharpFormerException($"text {i + 1} has {e.Length} tokens, more than max_seq_length {MaxLength} of the sentence-transformers config; shorten it");
            return e;
        }).ToList();
        // An encoding's own attention mask is shorter than the padded batch: the positions past it are padding.
        return Session.RunBatched(encodings, BertHeads.None, (o, row, item) => Pool(o.LastHiddenState.Data, o.LastHiddenState.Shape[1],
            Session.Config.HiddenSize, row, encodings[item].AttentionMask, Pooling, Normalize), progress);
    }

    /// <summary>
    /// Pools row <paramref name="row"/> of a [B, T, H] hidden-state buffer. <paramref name="mask"/> is that row's
    /// attention mask (length ≤ T; missing entries count as padding); an empty mask means "every position".
    /// </summary>
    public static float[] Pool(ReadOnlySpan<float> hidden, int t, int h, int row, ReadOnlySpan<int> mask, Pooling pooling, bool normalize)
    {
        var v = new float[h];
        var seq = hidden.Slice(row * t * h, t * h);
        bool Attended(int j, ReadOnlySpan<int> m) => m.Length == 0 || (j < m.Length && m[j] != 0);
        switch (pooling)
        {
            case Pooling.Cls:
                seq[..h].CopyTo(v);
                break;
            case Pooling.Mean:
            case Pooling.MeanSqrtLen:
            {
                var sum = new double[h];
                int count = 0;
                for (int j = 0; j < t; j++)
                {
                    if (!Attended(j, mask)) continue;
                    count++;
                    var x = seq.Slice(j * h, h);
                    for (int k = 0; k < h; k++) sum[k] += x[k];
                }
                // sentence-transformers clamps the count at 1e-9.
                double div = pooling == Pooling.Mean ? Math.Max(count, 1e-9) : Math.Sqrt(Math.Max(count, 1e-9));
                for (int k = 0; k < h; k++) v[k] = (float)(sum[k] / div);
                break;
            }
            case Pooling.Max:
            {
                Array.Fill(v, float.NegativeInfinity);
                bool any = false;
                for (int j = 0; j < t; j++)
                {
                    if (!Attended(j, mask)) continue;
                    any = true;
                    var x = seq.Slice(j * h, h);
                    for (int k = 0; k < h; k++) if (x[k] > v[k]) v[k] = x[k];
                }
                if (!any) Array.Clear(v);
                break;
            }
        }
        if (normalize) L2Normalize(v);
        return v;
    }

    /// <summary>x / max(‖x‖₂, 1e-12), as torch.nn.functional.normalize.</summary>
    public static void L2Normalize(Span<float> x)
    {
        double n = 0;
        foreach (var a in x) n += (double)a * a;
        float inv = (float)(1.0 / Math.Max(Math.Sqrt(n), 1e-12));
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }

    /// <summary>Cosine similarity of two vectors of one size (each norm at least 1e-8, as torch's cosine_similarity).</summary>
    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new SharpFormerException($"vectors of different sizes ({a.Length} and {b.Length})");
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        // torch.nn.functional.cosine_similarity's eps 1e-8 on each norm.
        return (float)(dot / (Math.Max(Math.Sqrt(na), 1e-8) * Math.Max(Math.Sqrt(nb), 1e-8)));
    }

    /// <summary>Cosine similarity of two texts' embeddings (one batch).</summary>
    public float Similarity(string a, string b)
    {
        var v = Embed([a, b]);
        return Cosine(v[0], v[1]);
    }

    /// <summary>The full cosine matrix [n, n] of the texts' embeddings.</summary>
    public float[][] SimilarityMatrix(IReadOnlyList<string> texts, IProgress<int>? progress = null) => CosineMatrix(Embed(texts, progress));

    /// <summary>The cosine similarity of every pair of vectors, [n, n].</summary>
    public static float[][] CosineMatrix(IReadOnlyList<float[]> vectors)
    {
        int n = vectors.Count;
        var m = new float[n][];
        for (int i = 0; i < n; i++) m[i] = new float[n];
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++)
                m[i][j] = m[j][i] = Cosine(vectors[i], vectors[j]);
        return m;
    }
}
