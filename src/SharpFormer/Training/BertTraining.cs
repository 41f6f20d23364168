using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using SharpFormer.Checkpoints;
using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Training;

/// <summary>
/// A BERT training batch [B, T] plus whichever labels apply (HuggingFace's argument names):
/// <c>labels</c> of BertForPreTraining/BertForMaskedLM are <see cref="MlmLabels"/> (−100 = not predicted),
/// <c>next_sentence_label</c> is <see cref="NextSentenceLabels"/> (0 = B follows A), a sequence classifier's
/// <c>labels</c> are <see cref="Labels"/> and a token classifier's are <see cref="TokenLabels"/> (−100 = ignored).
/// </summary>
public sealed record BertBatch(int[][] InputIds, int[][]? TokenTypeIds = null, int[][]? AttentionMask = null)
{
    /// <summary>Masked-LM labels [B, T]: the original id at predicted positions, −100 elsewhere.</summary>
    public int[][]? MlmLabels { get; init; }
    /// <summary>Next-sentence labels [B]: 0 when B follows A, 1 when it is random.</summary>
    public int[]? NextSentenceLabels { get; init; }
    /// <summary>Sequence-classification labels [B].</summary>
    public int[]? Labels { get; init; }
    /// <summary>Token-classification labels [B, T] (−100 = ignored).</summary>
    public int[][]? TokenLabels { get; init; }
    /// <summary>Number of rows (B).</summary>
    public int Batch => InputIds.Length;
    /// <summary>Tokens per row (T).</summary>
    public int Length => InputIds.Length == 0 ? 0 : InputIds[0].Length;
}

/// <summary>
/// Training for <see cref="BertModel"/>: embeddings → post-LN encoder layers → pooler and the task heads the
/// model carries (MLM with the decoder tied to the word embeddings, NSP, sequence or token classifier). The
/// forward keeps what the backward needs; the backward is written out by hand, layer by layer, in reverse.
/// It trains the model's own parameter tensors, so the trained model is the <see cref="BertModel"/>.
/// </summary>
public sealed class BertTraining : ITrainable<BertBatch>
{
    /// <summary>The model being trained (its own parameter tensors are updated).</summary>
    public BertModel Model { get; }
    /// <summary>The model's configuration.</summary>
    public BertConfig Config => Model.Config;
    /// <inheritdoc/>
    public ParameterSet Parameters => Model.Parameters;
    /// <inheritdoc/>
    public GradientSet Gradients { get; }
    /// <inheritdoc/>
    public bool Training { get; set; } = true;
    /// <inheritdoc/>
    public TrainRng Rng { get; }
    /// <summary>Dropout probability on hidden states (config <c>hidden_dropout_prob</c>).</summary>
    public float HiddenDropout { get; set; }
    /// <summary>Dropout probability on attention probabilities (config <c>attention_probs_dropout_prob</c>).</summary>
    public float AttentionDropout { get; set; }
    /// <summary>Dropout probability before the classifier (config <c>classifier_dropout</c>, else the hidden dropout).</summary>
    public float ClassifierDropout { get; set; }

    readonly Activation _act;
    readonly bool _mlm, _nsp, _pooler, _seqCls, _tokCls;

    /// <summary>Prepares training of <paramref name="model"/> (which must hold every parameter as float32); <paramref name="seed"/> seeds dropout.</summary>
    public BertTraining(BertModel model, ulong seed = 42)
    {
        model.Weights.RequireParameters("training");
        Model = model;
        Gradients = new GradientSet(model.Parameters);
        Rng = new TrainRng(seed);
        HiddenDropout = model.Config.HiddenDropoutProb;
        AttentionDropout = model.Config.AttentionProbsDropoutProb;
        ClassifierDropout = model.Config.ClassifierDropout ?? model.Config.HiddenDropoutProb;
        _act = Activations.Parse(model.Config.HiddenAct);
        var p = model.Parameters;
        _mlm = p.Contains("cls.predictions.bias");
        _nsp = p.Contains("cls.seq_relationship.weight");
        _pooler = p.Contains("bert.pooler.dense.weight");
        _seqCls = model.Heads.HasFlag(BertHeads.SequenceClassification);
        _tokCls = model.Heads.HasFlag(BertHeads.TokenClassification);
    }

    /// <summary>Disables every dropout (the parity goldens run train() with probabilities 0).</summary>
    public void DisableDropout() { HiddenDropout = AttentionDropout = ClassifierDropout = 0f; }

    float[] P(string name) => Model.Parameters[name].Data;
    float[] G(string name) => Gradients[name];

    /// <inheritdoc/>
    public void WeightsChanged() => Model.WeightsChanged();

    /// <inheritdoc/>
    public int TokenCount(BertBatch batch) =>
        batch.AttentionMask is null ? batch.Batch * batch.Length : batch.AttentionMask.Sum(r => r.Count(m => m != 0));

    internal sealed class LayerActs
    {
        public required float[] XIn, Q, K, V, Probs, Ctx, APre, AMean, ARstd, A, InterPre, Inter, OPre, OMean, ORstd;
        public float[]? AttnMask, AttnOutMask, OutMask;
    }

    /// <inheritdoc/>
    public LossResult Step(BertBatch batch, bool backward, float gradScale = 1f)
    {
        var pass = Encode(batch);
        var seq = pass.SequenceOutput;
        int b = batch.Batch, t = batch.Length, h = Config.HiddenSize, v = Config.VocabSize, rows = b * t;
        bool drop = Training;
        float eps = Config.LayerNormEps;
        var word = P("bert.embeddings.word_embeddings.weight");

        // ---- heads
        double total = 0;
        double? mlmLoss = null, nspLoss = null;
        int count = 0;
        Tensor? clsLogits = null;
        var dSeq = backward ? new float[rows * h] : null;

        // pooler: tanh(dense(hidden of [CLS]))
        float[]? clsRows = null, pooled = null, dPooled = null;
        if (_pooler && (_nsp && batch.NextSentenceLabels is not null || _seqCls))
        {
            clsRows = new float[b * h];
            for (int i = 0; i < b; i++) seq.AsSpan(i * t * h, h).CopyTo(clsRows.AsSpan(i * h));
            pooled = new float[b * h];
            TrainOps.LinearForward(clsRows, b, P("bert.pooler.dense.weight"), P("bert.pooler.dense.bias"), h, h, pooled);
            for (int i = 0; i < pooled.Length; i++) pooled[i] = MathF.Tanh(pooled[i]);
            if (backward) dPooled = new float[b * h];
        }

        // NSP: seq_relationship(pooled), cross-entropy over the batch
        if (_nsp && batch.NextSentenceLabels is not null)
        {
            if (batch.NextSentenceLabels.Length != b) throw new SharpFormerException($"next_sentence_label has {batch.NextSentenceLabels.Length} entries, the batch {b}");
            var logits = new float[b * 2];
            TrainOps.LinearForward(pooled!, b, P("cls.seq_relationship.weight"), P("cls.seq_relationship.bias"), h, 2, logits);
            int n = batch.NextSentenceLabels.Count(y => y != -100);
            var (sum, c) = TrainOps.CrossEntropy(logits, b, 2, batch.NextSentenceLabels, backward ? logits : null, n == 0 ? 0 : gradScale / n);
            nspLoss = sum / c;
            total += nspLoss.Value;
            count = Math.Max(count, c);
            if (backward) TrainOps.LinearBackward(logits, pooled!, b, P("cls.seq_relationship.weight"), h, 2, dPooled, G("cls.seq_relationship.weight"), G("cls.seq_relationship.bias"));
        }

        // Sequence classifier: classifier(dropout(pooled))
        if (_seqCls)
        {
            int nl = Config.NumLabels;
            var inp = (float[])pooled!.Clone();
            var mask = drop ? TrainOps.Dropout(inp, inp.Length, ClassifierDropout, Rng) : null;
            var logits = new float[b * nl];
            TrainOps.LinearForward(inp, b, P("classifier.weight"), P("classifier.bias"), h, nl, logits);
            clsLogits = new Tensor([b, nl], (float[])logits.Clone());
            if (batch.Labels is not null)
            {
                if (batch.Labels.Length != b) throw new SharpFormerException($"labels has {batch.Labels.Length} entries, the batch {b}");
                int n = batch.Labels.Count(y => y != -100);
                var (sum, c) = TrainOps.CrossEntropy(logits, b, nl, batch.Labels, backward ? logits : null, n == 0 ? 0 : gradScale / n);
                total += sum / c;
                count = Math.Max(count, c);
                if (backward)
                {
                    var dInp = new float[b * h];
                    TrainOps.LinearBackward(logits, inp, b, P("classifier.weight"), h, nl, dInp, G("classifier.weight"), G("classifier.bias"));
                    TrainOps.DropoutBackward(dInp, mask);
                    TensorPrimitives.Add(dPooled!, dInp, dPooled!);
                }
            }
        }

        // Token classifier: classifier(dropout(sequence output)) at every position
        if (_tokCls)
        {
            int nl = Config.NumLabels;
            var inp = (float[])seq.Clone();
            var mask = drop ? TrainOps.Dropout(inp, inp.Length, ClassifierDropout, Rng) : null;
            var logits = new float[rows * nl];
            TrainOps.LinearForward(inp, rows, P("classifier.weight"), P("classifier.bias"), h, nl, logits);
            clsLogits = new Tensor([b, t, nl], (float[])logits.Clone());
            if (batch.TokenLabels is not null)
            {
                var labels = Flatten(batch.TokenLabels, t, "token labels");
                int n = labels.Count(y => y != -100);
                var (sum, c) = TrainOps.CrossEntropy(logits, rows, nl, labels, backward ? logits : null, n == 0 ? 0 : gradScale / n);
                total += sum / c;
                count = Math.Max(count, c);
                if (backward)
                {
                    var dInp = new float[rows * h];
                    TrainOps.LinearBackward(logits, inp, rows, P("classifier.weight"), h, nl, dInp, G("classifier.weight"), G("classifier.bias"));
                    TrainOps.DropoutBackward(dInp, mask);
                    TensorPrimitives.Add(dSeq!, dInp, dSeq!);
                }
            }
        }

        // MLM: transform (dense → act → LayerNorm) → decoder tied to word embeddings + cls.predictions.bias,
        // evaluated only at the positions that carry a label (the others contribute nothing to loss or gradient).
        if (_mlm && batch.MlmLabels is not null)
        {
            var labels = Flatten(batch.MlmLabels, t, "labels");
            var sel = Enumerable.Range(0, rows).Where(r => labels[r] != -100).ToArray();
            int n = sel.Length;
            var hs = new float[n * h];
            for (int r = 0; r < n; r++) seq.AsSpan(sel[r] * h, h).CopyTo(hs.AsSpan(r * h));
            var t1Pre = new float[n * h];
            TrainOps.LinearForward(hs, n, P("cls.predictions.transform.dense.weight"), P("cls.predictions.transform.dense.bias"), h, h, t1Pre);
            var t1 = (float[])t1Pre.Clone();
            Activations.Apply(_act, t1);
            var t2 = new float[n * h]; var tMean = new float[n]; var tRstd = new float[n];
            TrainOps.LayerNormForward(t1, n, P("cls.predictions.transform.LayerNorm.weight"), P("cls.predictions.transform.LayerNorm.bias"), eps, t2, tMean, tRstd);
            var logits = new float[n * v];
            TrainOps.LinearForward(t2, n, word, P("cls.predictions.bias"), h, v, logits);
            var targets = sel.Select(r => labels[r]).ToArray();
            var (sum, c) = TrainOps.CrossEntropy(logits, n, v, targets, backward ? logits : null, n == 0 ? 0 : gradScale / n);
            mlmLoss = n == 0 ? double.NaN : sum / c;
            total += mlmLoss.Value;
            count = Math.Max(count, c);
            if (backward && n > 0)
            {
                var dT2 = new float[n * h];
                TrainOps.LinearBackward(logits, t2, n, word, h, v, dT2, G("bert.embeddings.word_embeddings.weight"), G("cls.predictions.bias"), accumulateDx: false);
                var dT1 = new float[n * h];
                TrainOps.LayerNormBackward(dT2, t1, tMean, tRstd, n, P("cls.predictions.transform.LayerNorm.weight"), dT1,
                    G("cls.predictions.transform.LayerNorm.weight"), G("cls.predictions.transform.LayerNorm.bias"), accumulate: false);
                TrainOps.ActivationBackward(_act, t1Pre, dT1, dT1, dT1.Length);
                var dHs = new float[n * h];
                TrainOps.LinearBackward(dT1, hs, n, P("cls.predictions.transform.dense.weight"), h, h, dHs,
                    G("cls.predictions.transform.dense.weight"), G("cls.predictions.transform.dense.bias"), accumulateDx: false);
                for (int r = 0; r < n; r++)
                {
                    var dst = dSeq!.AsSpan(sel[r] * h, h);
                    TensorPrimitives.Add(dst, dHs.AsSpan(r * h, h), dst);
                }
            }
        }

        var result = new LossResult { Loss = total, MaskedLmLoss = mlmLoss, NextSentenceLoss = nspLoss, Count = count, Logits = clsLogits };
        if (!backward) return result;

        // ================================================================ backward
        // pooler: tanh → dense, into the [CLS] rows of the sequence gradient
        if (dPooled is not null)
        {
            TrainOps.TanhBackwardFromOutput(pooled!, dPooled, dPooled, dPooled.Length);
            var dCls = new float[b * h];
            TrainOps.LinearBackward(dPooled, clsRows!, b, P("bert.pooler.dense.weight"), h, h, dCls, G("bert.pooler.dense.weight"), G("bert.pooler.dense.bias"), accumulateDx: false);
            for (int i = 0; i < b; i++)
            {
                var dst = dSeq!.AsSpan(i * t * h, h);
                TensorPrimitives.Add(dst, dCls.AsSpan(i * h, h), dst);
            }
        }

        BackwardEncoder(pass, dSeq!);
        return result;
    }

    /// <summary>
    /// What <see cref="Encode"/> kept for <see cref="BackwardEncoder"/>: the batch, every layer's activations and dropout
    /// masks, and the last hidden state.
    /// </summary>
    public sealed class EncoderPass
    {
        internal EncoderPass(BertBatch batch, float[] embSum, float[] embMean, float[] embRstd, float[]? embMask, LayerActs[] acts, float[] seq)
        {
            Batch = batch; EmbSum = embSum; EmbMean = embMean; EmbRstd = embRstd; EmbMask = embMask; Acts = acts; SequenceOutput = seq;
        }
        /// <summary>The batch that was encoded.</summary>
        public BertBatch Batch { get; }
        /// <summary>The last hidden state [B, T, H], row-major (read-only by convention: the backward uses the activations that made it).</summary>
        public float[] SequenceOutput { get; }
        internal float[] EmbSum { get; }
        internal float[] EmbMean { get; }
        internal float[] EmbRstd { get; }
        internal float[]? EmbMask { get; }
        internal LayerActs[] Acts { get; }
    }

    /// <summary>
    /// The encoder's forward (embeddings → post-LN layers, dropout when <see cref="Training"/>), keeping what
    /// <see cref="BackwardEncoder"/> needs. Task heads built outside this class (e.g. <see cref="ContrastiveTraining"/>)
    /// start from <see cref="EncoderPass.SequenceOutput"/>.
    /// </summary>
    public EncoderPass Encode(BertBatch batch)
    {
        int b = batch.Batch, t = batch.Length, h = Config.HiddenSize, heads = Config.NumAttentionHeads, d = Config.HeadDim;
        int inner = Config.IntermediateSize, v = Config.VocabSize, rows = b * t;
        if (b == 0 || t == 0) throw new SharpFormerException("the batch is empty");
        if (t > Config.MaxPositionEmbeddings) throw new SharpFormerException($"sequence length {t} exceeds max_position_embeddings {Config.MaxPositionEmbeddings}");
        bool drop = Training;
        float eps = Config.LayerNormEps;

        // ================================================================ forward
        // ---- embeddings: word + position + token type → LayerNorm → dropout
        var word = P("bert.embeddings.word_embeddings.weight");
        var pos = P("bert.embeddings.position_embeddings.weight");
        var type = P("bert.embeddings.token_type_embeddings.weight");
        var embSum = new float[rows * h];
        for (int i = 0; i < b; i++)
        {
            if (batch.InputIds[i].Length != t) throw new SharpFormerException($"input_ids row {i} has {batch.InputIds[i].Length} entries, expected {t}");
            for (int j = 0; j < t; j++)
            {
                int id = batch.InputIds[i][j], tt = batch.TokenTypeIds?[i][j] ?? 0;
                if ((uint)id >= (uint)v) throw new SharpFormerException($"input_ids row {i} contains {id}, outside [0, {v})");
                if ((uint)tt >= (uint)Config.TypeVocabSize) throw new SharpFormerException($"token_type_ids row {i} contains {tt}, outside [0, {Config.TypeVocabSize})");
                var row = embSum.AsSpan((i * t + j) * h, h);
                TensorPrimitives.Add(word.AsSpan(id * h, h), pos.AsSpan(j * h, h), row);
                TensorPrimitives.Add(row, type.AsSpan(tt * h, h), row);
            }
        }
        var embMean = new float[rows]; var embRstd = new float[rows]; var x = new float[rows * h];
        TrainOps.LayerNormForward(embSum, rows, P("bert.embeddings.LayerNorm.weight"), P("bert.embeddings.LayerNorm.bias"), eps, x, embMean, embRstd);
        var embMask = drop ? TrainOps.Dropout(x, rows * h, HiddenDropout, Rng) : null;

        float[]? keyBias = null;
        if (batch.AttentionMask is not null)
        {
            keyBias = new float[rows];
            for (int i = 0; i < b; i++)
                for (int j = 0; j < t; j++) keyBias[i * t + j] = batch.AttentionMask[i][j] != 0 ? 0f : Attention.Masked;
        }

        // ---- encoder layers (post-LN)
        float scale = 1f / MathF.Sqrt(d);
        var acts = new LayerActs[Config.NumHiddenLayers];
        for (int l = 0; l < acts.Length; l++)
        {
            string pre = $"bert.encoder.layer.{l}.";
            var a = new LayerActs
            {
                XIn = x, Q = new float[rows * h], K = new float[rows * h], V = new float[rows * h], Probs = new float[b * heads * t * t],
                Ctx = new float[rows * h], APre = new float[rows * h], AMean = new float[rows], ARstd = new float[rows], A = new float[rows * h],
                InterPre = new float[rows * inner], Inter = new float[rows * inner], OPre = new float[rows * h], OMean = new float[rows], ORstd = new float[rows],
            };
            // self-attention (bidirectional, padded keys masked)
            TrainOps.LinearForward(x, rows, P(pre + "attention.self.query.weight"), P(pre + "attention.self.query.bias"), h, h, a.Q);
            TrainOps.LinearForward(x, rows, P(pre + "attention.self.key.weight"), P(pre + "attention.self.key.bias"), h, h, a.K);
            TrainOps.LinearForward(x, rows, P(pre + "attention.self.value.weight"), P(pre + "attention.self.value.bias"), h, h, a.V);
            a.AttnMask = drop ? TrainOps.DropoutMask(b * heads * t * t, AttentionDropout, Rng) : null;
            TrainOps.AttentionForward(new(a.Q, 0, h), new(a.K, 0, h), new(a.V, 0, h), b, t, heads, d, scale, causal: false, keyBias, a.Probs, a.AttnMask, a.Ctx);
            // attention.output: dense → dropout → + input → LayerNorm
            TrainOps.LinearForward(a.Ctx, rows, P(pre + "attention.output.dense.weight"), P(pre + "attention.output.dense.bias"), h, h, a.APre);
            a.AttnOutMask = drop ? TrainOps.Dropout(a.APre, rows * h, HiddenDropout, Rng) : null;
            TensorPrimitives.Add(a.APre, x, a.APre);
            TrainOps.LayerNormForward(a.APre, rows, P(pre + "attention.output.LayerNorm.weight"), P(pre + "attention.output.LayerNorm.bias"), eps, a.A, a.AMean, a.ARstd);
            // feed-forward: intermediate dense → activation → output dense → dropout → + a → LayerNorm
            TrainOps.LinearForward(a.A, rows, P(pre + "intermediate.dense.weight"), P(pre + "intermediate.dense.bias"), h, inner, a.InterPre);
            Array.Copy(a.InterPre, a.Inter, a.Inter.Length);
            Activations.Apply(_act, a.Inter);
            TrainOps.LinearForward(a.Inter, rows, P(pre + "output.dense.weight"), P(pre + "output.dense.bias"), inner, h, a.OPre);
            a.OutMask = drop ? TrainOps.Dropout(a.OPre, rows * h, HiddenDropout, Rng) : null;
            TensorPrimitives.Add(a.OPre, a.A, a.OPre);
            var xOut = new float[rows * h];
            TrainOps.LayerNormForward(a.OPre, rows, P(pre + "output.LayerNorm.weight"), P(pre + "output.LayerNorm.bias"), eps, xOut, a.OMean, a.ORstd);
            acts[l] = a;
            x = xOut;
        }
        return new EncoderPass(batch, embSum, embMean, embRstd, embMask, acts, x);
    }

    /// <summary>
    /// Backpropagates <paramref name="dSequence"/> (d loss / d last hidden state, [B, T, H]; overwritten) through the
    /// encoder of <paramref name="pass"/>, ADDING the parameter gradients to <see cref="Gradients"/>.
    /// </summary>
    public void BackwardEncoder(EncoderPass pass, float[] dSequence)
    {
        var batch = pass.Batch;
        int b = batch.Batch, t = batch.Length, h = Config.HiddenSize, heads = Config.NumAttentionHeads, d = Config.HeadDim;
        int inner = Config.IntermediateSize, rows = b * t;
        if (dSequence.Length != rows * h) throw new ArgumentException($"dSequence has {dSequence.Length} entries, the pass {rows * h}");
        float scale = 1f / MathF.Sqrt(d);
        var acts = pass.Acts;
        var (embSum, embMean, embRstd, embMask) = (pass.EmbSum, pass.EmbMean, pass.EmbRstd, pass.EmbMask);
        var dx = dSequence;   // gradient of the current layer's output
        for (int l = acts.Length - 1; l >= 0; l--)
        {
            string pre = $"bert.encoder.layer.{l}.";
            var a = acts[l];
            // output.LayerNorm → (residual to a) + dropout → output.dense → activation → intermediate.dense
            var dOPre = new float[rows * h];
            TrainOps.LayerNormBackward(dx, a.OPre, a.OMean, a.ORstd, rows, P(pre + "output.LayerNorm.weight"), dOPre, G(pre + "output.LayerNorm.weight"), G(pre + "output.LayerNorm.bias"), accumulate: false);
            var dA = (float[])dOPre.Clone();          // residual path
            TrainOps.DropoutBackward(dOPre, a.OutMask);
            var dInter = new float[rows * inner];
            TrainOps.LinearBackward(dOPre, a.Inter, rows, P(pre + "output.dense.weight"), inner, h, dInter, G(pre + "output.dense.weight"), G(pre + "output.dense.bias"), accumulateDx: false);
            TrainOps.ActivationBackward(_act, a.InterPre, dInter, dInter, dInter.Length);
            TrainOps.LinearBackward(dInter, a.A, rows, P(pre + "intermediate.dense.weight"), h, inner, dA, G(pre + "intermediate.dense.weight"), G(pre + "intermediate.dense.bias"));
            // attention.output.LayerNorm → (residual to the input) + dropout → attention.output.dense
            var dAPre = new float[rows * h];
            TrainOps.LayerNormBackward(dA, a.APre, a.AMean, a.ARstd, rows, P(pre + "attention.output.LayerNorm.weight"), dAPre,
                G(pre + "attention.output.LayerNorm.weight"), G(pre + "attention.output.LayerNorm.bias"), accumulate: false);
            var dXIn = (float[])dAPre.Clone();        // residual path
            TrainOps.DropoutBackward(dAPre, a.AttnOutMask);
            var dCtx = new float[rows * h];
            TrainOps.LinearBackward(dAPre, a.Ctx, rows, P(pre + "attention.output.dense.weight"), h, h, dCtx, G(pre + "attention.output.dense.weight"), G(pre + "attention.output.dense.bias"), accumulateDx: false);
            // attention → query / key / value projections
            var dQ = new float[rows * h]; var dK = new float[rows * h]; var dV = new float[rows * h];
            TrainOps.AttentionBackward(dCtx, new(a.Q, 0, h), new(a.K, 0, h), new(a.V, 0, h), new(dQ, 0, h), new(dK, 0, h), new(dV, 0, h),
                b, t, heads, d, scale, a.Probs, a.AttnMask);
            TrainOps.LinearBackward(dQ, a.XIn, rows, P(pre + "attention.self.query.weight"), h, h, dXIn, G(pre + "attention.self.query.weight"), G(pre + "attention.self.query.bias"));
            TrainOps.LinearBackward(dK, a.XIn, rows, P(pre + "attention.self.key.weight"), h, h, dXIn, G(pre + "attention.self.key.weight"), G(pre + "attention.self.key.bias"));
            TrainOps.LinearBackward(dV, a.XIn, rows, P(pre + "attention.self.value.weight"), h, h, dXIn, G(pre + "attention.self.value.weight"), G(pre + "attention.self.value.bias"));
            dx = dXIn;
        }

        // embeddings: dropout → LayerNorm → scatter-add into the three tables
        TrainOps.DropoutBackward(dx, embMask);
        var dEmb = new float[rows * h];
        TrainOps.LayerNormBackward(dx, embSum, embMean, embRstd, rows, P("bert.embeddings.LayerNorm.weight"), dEmb,
            G("bert.embeddings.LayerNorm.weight"), G("bert.embeddings.LayerNorm.bias"), accumulate: false);
        var dWord = G("bert.embeddings.word_embeddings.weight");
        var dPos = G("bert.embeddings.position_embeddings.weight");
        var dType = G("bert.embeddings.token_type_embeddings.weight");
        for (int i = 0; i < b; i++)
            for (int j = 0; j < t; j++)
            {
                var g = dEmb.AsSpan((i * t + j) * h, h);
                Add(dWord, batch.InputIds[i][j] * h, g);
                Add(dPos, j * h, g);
                Add(dType, (batch.TokenTypeIds?[i][j] ?? 0) * h, g);
            }
        static void Add(float[] dst, int offset, ReadOnlySpan<float> g)
        {
            var s = dst.AsSpan(offset, g.Length);
            TensorPrimitives.Add(s, g, s);
        }
    }

    static int[] Flatten(int[][] m, int t, string what)
    {
        var flat = new int[m.Length * t];
        for (int i = 0; i < m.Length; i++)
        {
            if (m[i].Length != t) throw new SharpFormerException($"{what} row {i} has {m[i].Length} entries, expected {t}");
            m[i].CopyTo(flat, i * t);
        }
        return flat;
    }

    /// <summary>Forward with dropout off (evaluation): loss and classifier logits; gradients untouched.</summary>
    public LossResult Evaluate(BertBatch batch)
    {
        bool was = Training;
        Training = false;
        try { return Step(batch, backward: false); }
        finally { Training = was; }
    }
}
