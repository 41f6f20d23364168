using SharpFormer.Checkpoints;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tasks;

/// <summary>
/// A BERT encoder and its tokenizer, loaded from one model folder, plus what every encoder task needs:
/// input checks (empty / too long → one-line <see cref="SharpFormerException"/>), right padding and length-sorted
/// batching (texts are sorted by token count, cut into batches, and the results put back in input order, so a
/// batch is padded only to its own longest member).
/// </summary>
public sealed class EncoderSession
{
    /// <summary>The model folder the session was loaded from ("" when built from parts).</summary>
    public string ModelDir { get; }
    /// <summary>The encoder.</summary>
    public BertModel Model { get; }
    /// <summary>The tokenizer.</summary>
    public ITokenizer Tokenizer { get; }
    /// <summary>The model's configuration.</summary>
    public BertConfig Config => Model.Config;
    /// <summary>The longest input (special tokens included) the model takes: max_position_embeddings, capped by the tokenizer's model_max_length.</summary>
    public int MaxLength { get; }
    /// <summary>At most this many texts per forward pass.</summary>
    public int BatchSize { get; set; } = 16;
    /// <summary>At most this many tokens (batch × padded length) per forward pass; a single text may exceed it.</summary>
    public int MaxBatchTokens { get; set; } = 8192;
    /// <summary>Parameters the checkpoint lacked and that were randomly initialised (an untrained head when non-empty).</summary>
    public IReadOnlyList<string> InitialisedParameters => Model.InitialisedParameters;
    /// <summary>True when some head this task uses was randomly initialised: its outputs are meaningless until fine-tuned.</summary>
    public bool HeadUntrained => Model.InitialisedParameters.Count > 0;

    /// <summary>A session over a loaded model and tokenizer.</summary>
    public EncoderSession(BertModel model, ITokenizer tokenizer, string modelDir = "")
    {
        Model = model;
        Tokenizer = tokenizer;
        ModelDir = modelDir;
        MaxLength = Math.Min(model.Config.MaxPositionEmbeddings, tokenizer.ModelMaxLength is int m && m > 0 ? m : int.MaxValue);
    }

    /// <summary>
    /// Loads the encoder with exactly <paramref name="heads"/> on top (heads the task does not need are not built,
    /// so e.g. embeddings do not pay for a vocabulary-sized MLM projection). A head the checkpoint lacks is
    /// initialised as HuggingFace does, from <paramref name="seed"/>, and listed in <see cref="InitialisedParameters"/>.
    /// The model is loaded for inference only (<see cref="WeightOptions.Inference"/>), its weights packed in <paramref name="precision"/>.
    /// </summary>
    public static EncoderSession Load(string modelDir, BertHeads heads, int seed = 0, WeightPrecision precision = WeightPrecision.Float32)
    {
        var config = ModelConfig.Load(modelDir) as BertConfig
            ?? throw new SharpFormerException($"{modelDir}: not a BERT model (config.json model_type is not \"bert\"); encoder tasks need a BERT checkpoint");
        BertModel model;
        using (var ckpt = CheckpointReader.Open(modelDir, "bert."))
            model = new BertModel(config, heads, ckpt, seed, WeightOptions.Inference(precision));
        return new EncoderSession(model, AutoTokenizer.FromFolder(modelDir), modelDir);
    }

    /// <summary>The id of a token the tokenizer must have (e.g. "[MASK]").</summary>
    public int RequireTokenId(string token) =>
        Tokenizer.TokenToId(token) ?? throw new SharpFormerException($"{ModelDir}: the tokenizer has no {token} token");

    int PadId => Tokenizer.TokenToId("[PAD]") ?? Config.PadTokenId;

    /// <summary>
    /// Encodes one input for a task that cannot cut it: an empty (or whitespace-only) text, or one longer than
    /// <see cref="MaxLength"/>, is a <see cref="SharpFormerException"/> naming <paramref name="what"/>.
    /// </summary>
    public Encoding EncodeChecked(string text, string? pair = null, string what = "the text")
    {
        RequireText(text, pair is null ? what : $"the first text of {what}");
        if (pair is not null) RequireText(pair, $"the second text of {what}");
        var enc = Tokenizer.Encode(text, pair);
        if (enc.Length > MaxLength)
            throw new SharpFormerException($"{what} has {enc.Length} tokens with special tokens, more than the model's maximum of {MaxLength}; shorten it (this task does not truncate)");
        return enc;
    }

    /// <summary>Throws when a task that needs text gets none.</summary>
    public static void RequireText(string? text, string what = "the text")
    {
        if (string.IsNullOrWhiteSpace(text)) throw new SharpFormerException($"{what} is empty; this task needs text");
    }

    /// <summary>Pads encodings on the right to one length: [PAD] ids, attention 0, token type 0.</summary>
    public BertInputs Collate(IReadOnlyList<Encoding> encodings) => Collate(encodings.Select(e => e.InputIds).ToList(),
        encodings.Select(e => e.TokenTypeIds).ToList(), encodings.Select(e => e.AttentionMask).ToList());

    /// <summary>Pads id rows on the right to one length: [PAD] ids, token types from <paramref name="typeIds"/> (else 0), attention from <paramref name="mask"/> (else 1 on the ids, 0 on padding).</summary>
    public BertInputs Collate(IReadOnlyList<int[]> ids, IReadOnlyList<int[]>? typeIds = null, IReadOnlyList<int[]>? mask = null)
    {
        int t = ids.Max(r => r.Length), pad = PadId;
        var inIds = new int[ids.Count][]; var types = new int[ids.Count][]; var att = new int[ids.Count][];
        for (int i = 0; i < ids.Count; i++)
        {
            int n = ids[i].Length;
            inIds[i] = new int[t]; types[i] = new int[t]; att[i] = new int[t];
            ids[i].CopyTo(inIds[i], 0);
            if (n < t) Array.Fill(inIds[i], pad, n, t - n);
            typeIds?[i].CopyTo(types[i], 0);
            if (mask is not null) mask[i].CopyTo(att[i], 0); else Array.Fill(att[i], 1, 0, n);
        }
        return new BertInputs(inIds, types, att);
    }

    /// <summary>
    /// Groups item indices into batches after sorting them by length (stable, so equal lengths keep input order):
    /// at most <paramref name="batchSize"/> items and <paramref name="maxTokens"/> padded tokens per batch.
    /// </summary>
    public static List<int[]> LengthSortedBatches(IReadOnlyList<int> lengths, int batchSize, int maxTokens = int.MaxValue)
    {
        if (batchSize < 1) throw new SharpFormerException($"the batch size must be at least 1 (got {batchSize})");
        var order = Enumerable.Range(0, lengths.Count).OrderBy(i => lengths[i]).ToArray();
        var batches = new List<int[]>();
        var current = new List<int>();
        foreach (var i in order)
        {
            // Sorted ascending, so the newcomer is the longest: the batch would pad to its length.
            if (current.Count > 0 && (current.Count >= batchSize || (long)(current.Count + 1) * lengths[i] > maxTokens))
            {
                batches.Add(current.ToArray());
                current.Clear();
            }
            current.Add(i);
        }
        if (current.Count > 0) batches.Add(current.ToArray());
        return batches;
    }

    /// <summary>
    /// Runs the model over encodings in length-sorted batches and returns <paramref name="pick"/>(outputs, row in batch,
    /// item index) for every encoding, in input order. Only <paramref name="heads"/> run, and each batch runs without its
    /// padding (<see cref="BertModel.Forward"/>'s <c>unpadded</c>): <paramref name="pick"/> reads real positions only.
    /// <paramref name="progress"/> receives the number of items done.
    /// </summary>
    public T[] RunBatched<T>(IReadOnlyList<Encoding> encodings, BertHeads heads, Func<BertOutputs, int, int, T> pick, IProgress<int>? progress = null)
    {
        var results = new T[encodings.Count];
        int done = 0;
        foreach (var batch in LengthSortedBatches(encodings.Select(e => e.Length).ToList(), BatchSize, MaxBatchTokens))
        {
            var outputs = Forward(Collate(batch.Select(i => encodings[i]).ToList()), heads, unpadded: true);
            for (int r = 0; r < batch.Length; r++) results[batch[r]] = pick(outputs, r, batch[r]);
            done += batch.Length;
            progress?.Report(done);
        }
        return results;
    }

    /// <summary>
    /// One forward pass whose outputs are all finite (a diverged checkpoint is a <see cref="SharpFormerException"/>), running
    /// <paramref name="heads"/> (null: all the model has), <paramref name="unpadded"/> as <see cref="BertModel.Forward"/> says.
    /// </summary>
    public BertOutputs Forward(BertInputs inputs, BertHeads? heads = null, bool unpadded = false)
    {
        var outputs = Model.Forward(inputs, heads: heads, unpadded: unpadded);
        FiniteOutputs.Require(outputs);
        return outputs;
    }

    /// <summary>Softmax over a row, in float32 like HuggingFace's pipelines (max-shifted exp, then divide by the sum).</summary>
    public static float[] SoftmaxOf(ReadOnlySpan<float> logits)
    {
        var p = logits.ToArray();
        Kernels.Softmax.InPlace(p);
        return p;
    }
}
