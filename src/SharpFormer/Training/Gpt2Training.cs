using SharpFormer.Checkpoints;
using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Training;

/// <summary>
/// A causal-LM batch: B rows of T token ids. Labels default to the inputs (HuggingFace's <c>labels=input_ids</c>);
/// −100 marks positions that are not predicted (padding). The model shifts internally: position j predicts label j+1.
/// </summary>
public sealed record Gpt2Batch(int[][] InputIds, int[][]? AttentionMask = null, int[][]? Labels = null)
{
    /// <summary>Number of rows (B).</summary>
    public int Batch => InputIds.Length;
    /// <summary>Tokens per row (T).</summary>
    public int Length => InputIds.Length == 0 ? 0 : InputIds[0].Length;
}

/// <summary>
/// Training for <see cref="Gpt2Model"/> (GPT2LMHeadModel): a forward pass that keeps every activation the
/// backward needs, and the backward written out by hand, step by step in reverse. It reads and trains the
/// model's own parameter tensors (by HuggingFace name), so the trained model is the <see cref="Gpt2Model"/>.
/// </summary>
public sealed class Gpt2Training : ITrainable<Gpt2Batch>
{
    /// <summary>The model being trained (its own parameter tensors are updated).</summary>
    public Gpt2Model Model { get; }
    /// <summary>The model's configuration.</summary>
    public Gpt2Config Config => Model.Config;
    /// <inheritdoc/>
    public ParameterSet Parameters => Model.Parameters;
    /// <inheritdoc/>
    public GradientSet Gradients { get; }
    /// <inheritdoc/>
    public bool Training { get; set; } = true;
    /// <inheritdoc/>
    public TrainRng Rng { get; }
    /// <summary>Dropout probability on the embeddings (config <c>embd_pdrop</c>).</summary>
    public float EmbdDropout { get; set; }
    /// <summary>Dropout probability on residual branches (config <c>resid_pdrop</c>).</summary>
    public float ResidDropout { get; set; }
    /// <summary>Dropout probability on attention probabilities (config <c>attn_pdrop</c>).</summary>
    public float AttnDropout { get; set; }

    readonly Activation _act;
    readonly string _lmHeadName;

    /// <summary>Prepares training of <paramref name="model"/> (which must hold every parameter as float32); <paramref name="seed"/> seeds dropout.</summary>
    public Gpt2Training(Gpt2Model model, ulong seed = 42)
    {
        model.Weights.RequireParameters("training");
        Model = model;
        Gradients = new GradientSet(model.Parameters);
        Rng = new TrainRng(seed);
        EmbdDropout = model.Config.EmbdPdrop;
        ResidDropout = model.Config.ResidPdrop;
        AttnDropout = model.Config.AttnPdrop;
        _act = Activations.Parse(model.Config.ActivationFunction);
        _lmHeadName = model.Parameters.Contains("lm_head.weight") ? "lm_head.weight" : "transformer.wte.weight";
    }

    /// <summary>Disables every dropout (the parity goldens run train() with probabilities 0).</summary>
    public void DisableDropout() { EmbdDropout = ResidDropout = AttnDropout = 0f; }

    float[] P(string name) => Model.Parameters[name].Data;
    float[] G(string name) => Gradients[name];

    /// <inheritdoc/>
    public void WeightsChanged() => Model.WeightsChanged();

    /// <inheritdoc/>
    public int TokenCount(Gpt2Batch batch) => batch.Batch * batch.Length;

    /// <summary>Everything one block's backward needs.</summary>
    sealed class BlockActs
    {
        public required float[] XIn, Ln1Mean, Ln1Rstd, H1, Qkv, Probs, Ctx, X2, Ln2Mean, Ln2Rstd, H2, FcPre, FcAct;
        public float[]? AttnMask, Resid1Mask, Resid2Mask;
    }

    /// <inheritdoc/>
    public LossResult Step(Gpt2Batch batch, bool backward, float gradScale = 1f)
    {
        int b = batch.Batch, t = batch.Length;
        if (b == 0 || t == 0) throw new SharpFormerException("the batch is empty");
        if (t > Config.NPositions) throw new SharpFormerException($"sequence length {t} exceeds n_positions {Config.NPositions}");
        int e = Config.NEmbd, heads = Config.NHead, d = Config.HeadDim, inner = Config.InnerDim, v = Config.VocabSize, rows = b * t;
        bool drop = Training;
        var wte = P("transformer.wte.weight");
        var wpe = P("transformer.wpe.weight");

        // ---- embeddings: wte[id] + wpe[position], dropout
        var x = new float[rows * e];
        for (int i = 0; i < b; i++)
        {
            if (batch.InputIds[i].Length != t) throw new SharpFormerException($"input_ids row {i} has {batch.InputIds[i].Length} entries, expected {t}");
            for (int j = 0; j < t; j++)
            {
                int id = batch.InputIds[i][j];
                if ((uint)id >= (uint)v) throw new SharpFormerException($"input_ids row {i} contains {id}, outside [0, {v})");
                var row = x.AsSpan((i * t + j) * e, e);
                System.Numerics.Tensors.TensorPrimitives.Add(wte.AsSpan(id * e, e), wpe.AsSpan(j * e, e), row);
            }
        }
        var embMask = drop ? TrainOps.Dropout(x, rows * e, EmbdDropout, Rng) : null;

        float[]? keyBias = null;
        if (batch.AttentionMask is not null)
        {
            keyBias = new float[rows];
            for (int i = 0; i < b; i++)
                for (int j = 0; j < t; j++) keyBias[i * t + j] = batch.AttentionMask[i][j] != 0 ? 0f : Attention.Masked;
        }

        // ---- blocks
        var acts = new BlockActs[Config.NLayer];
        for (int l = 0; l < Config.NLayer; l++)
        {
            string pre = $"transformer.h.{l}.";
            var a = new BlockActs
            {
                XIn = x, Ln1Mean = new float[rows], Ln1Rstd = new float[rows], H1 = new float[rows * e], Qkv = new float[rows * 3 * e],
                Probs = new float[b * heads * t * t], Ctx = new float[rows * e], X2 = new float[rows * e],
                Ln2Mean = new float[rows], Ln2Rstd = new float[rows], H2 = new float[rows * e], FcPre = new float[rows * inner], FcAct = new float[rows * inner],
            };
            // ln_1 → c_attn → causal attention → c_proj → dropout → residual
            TrainOps.LayerNormForward(x, rows, P(pre + "ln_1.weight"), P(pre + "ln_1.bias"), Config.LayerNormEpsilon, a.H1, a.Ln1Mean, a.Ln1Rstd);
            TrainOps.Conv1DForward(a.H1, rows, P(pre + "attn.c_attn.weight"), P(pre + "attn.c_attn.bias"), e, 3 * e, a.Qkv);
            a.AttnMask = drop ? TrainOps.DropoutMask(b * heads * t * t, AttnDropout, Rng) : null;
            TrainOps.AttentionForward(new(a.Qkv, 0, 3 * e), new(a.Qkv, e, 3 * e), new(a.Qkv, 2 * e, 3 * e), b, t, heads, d, AttnScale(l),
                causal: true, keyBias, a.Probs, a.AttnMask, a.Ctx);
            var proj = new float[rows * e];
            TrainOps.Conv1DForward(a.Ctx, rows, P(pre + "attn.c_proj.weight"), P(pre + "attn.c_proj.bias"), e, e, proj);
            a.Resid1Mask = drop ? TrainOps.Dropout(proj, rows * e, ResidDropout, Rng) : null;
            System.Numerics.Tensors.TensorPrimitives.Add(x, proj, a.X2);
            // ln_2 → c_fc → activation → c_proj → dropout → residual
            TrainOps.LayerNormForward(a.X2, rows, P(pre + "ln_2.weight"), P(pre + "ln_2.bias"), Config.LayerNormEpsilon, a.H2, a.Ln2Mean, a.Ln2Rstd);
            TrainOps.Conv1DForward(a.H2, rows, P(pre + "mlp.c_fc.weight"), P(pre + "mlp.c_fc.bias"), e, inner, a.FcPre);
            Array.Copy(a.FcPre, a.FcAct, a.FcPre.Length);
            Activations.Apply(_act, a.FcAct);
            var mlp = new float[rows * e];
            TrainOps.Conv1DForward(a.FcAct, rows, P(pre + "mlp.c_proj.weight"), P(pre + "mlp.c_proj.bias"), inner, e, mlp);
            a.Resid2Mask = drop ? TrainOps.Dropout(mlp, rows * e, ResidDropout, Rng) : null;
            var xOut = new float[rows * e];
            System.Numerics.Tensors.TensorPrimitives.Add(a.X2, mlp, xOut);
            acts[l] = a;
            x = xOut;
        }

        // ---- ln_f, then the tied lm_head on the rows that predict something (position j predicts label j+1)
        var lnfMean = new float[rows]; var lnfRstd = new float[rows]; var xf = new float[rows * e];
        TrainOps.LayerNormForward(x, rows, P("transformer.ln_f.weight"), P("transformer.ln_f.bias"), Config.LayerNormEpsilon, xf, lnfMean, lnfRstd);
        var selRows = new List<int>();
        var targets = new List<int>();
        for (int i = 0; i < b; i++)
        {
            var labels = batch.Labels?[i] ?? batch.InputIds[i];
            if (labels.Length != t) throw new SharpFormerException($"labels row {i} has {labels.Length} entries, expected {t}");
            for (int j = 0; j + 1 < t; j++)
                if (labels[j + 1] != -100) { selRows.Add(i * t + j); targets.Add(labels[j + 1]); }
        }
        int n = selRows.Count;
        if (n == 0) return new LossResult { Loss = double.NaN, Count = 0 };   // PyTorch: mean over nothing = nan
        var xs = new float[n * e];
        for (int r = 0; r < n; r++) xf.AsSpan(selRows[r] * e, e).CopyTo(xs.AsSpan(r * e, e));
        var lmW = P(_lmHeadName);
        if ((long)n * v > int.MaxValue) throw new SharpFormerException($"{n} predicted positions × {v} vocabulary entries do not fit one logits buffer; use a smaller batch");
        var logits = new float[n * v];
        TrainOps.MatMulABt(xs, lmW, logits, n, e, v, accumulate: false);
        var (sum, count) = TrainOps.CrossEntropy(logits, n, v, targets.ToArray(), backward ? logits : null, gradScale / n);
        var result = new LossResult { Loss = sum / count, Count = count };
        if (!backward) return result;

        // ================================================================ backward
        // lm_head (tied to wte): dW += dlogitsᵀ·xs, dxs = dlogits·W
        var dlogits = logits;
        TrainOps.MatMulAtB(dlogits, xs, G(_lmHeadName), v, n, e, accumulate: true);
        var dxs = new float[n * e];
        TrainOps.MatMulAB(dlogits, lmW, dxs, n, v, e, accumulate: false);
        var dxf = new float[rows * e];
        for (int r = 0; r < n; r++) dxs.AsSpan(r * e, e).CopyTo(dxf.AsSpan(selRows[r] * e, e));
        // ln_f
        var dx = new float[rows * e];
        TrainOps.LayerNormBackward(dxf, x, lnfMean, lnfRstd, rows, P("transformer.ln_f.weight"), dx, G("transformer.ln_f.weight"), G("transformer.ln_f.bias"), accumulate: false);

        for (int l = Config.NLayer - 1; l >= 0; l--)
        {
            string pre = $"transformer.h.{l}.";
            var a = acts[l];
            // MLP branch: dropout → c_proj → activation → c_fc → ln_2 (dx is the gradient of the block output)
            var dMlp = Branch(dx, a.Resid2Mask);
            var dFc = new float[rows * inner];
            TrainOps.Conv1DBackward(dMlp, a.FcAct, rows, P(pre + "mlp.c_proj.weight"), inner, e, dFc, G(pre + "mlp.c_proj.weight"), G(pre + "mlp.c_proj.bias"), accumulateDx: false);
            TrainOps.ActivationBackward(_act, a.FcPre, dFc, dFc, dFc.Length);
            var dH2 = new float[rows * e];
            TrainOps.Conv1DBackward(dFc, a.H2, rows, P(pre + "mlp.c_fc.weight"), e, inner, dH2, G(pre + "mlp.c_fc.weight"), G(pre + "mlp.c_fc.bias"), accumulateDx: false);
            TrainOps.LayerNormBackward(dH2, a.X2, a.Ln2Mean, a.Ln2Rstd, rows, P(pre + "ln_2.weight"), dx, G(pre + "ln_2.weight"), G(pre + "ln_2.bias"), accumulate: true);
            // Attention branch: dropout → c_proj → attention → c_attn → ln_1
            var dProj = Branch(dx, a.Resid1Mask);
            var dCtx = new float[rows * e];
            TrainOps.Conv1DBackward(dProj, a.Ctx, rows, P(pre + "attn.c_proj.weight"), e, e, dCtx, G(pre + "attn.c_proj.weight"), G(pre + "attn.c_proj.bias"), accumulateDx: false);
            var dQkv = new float[rows * 3 * e];
            TrainOps.AttentionBackward(dCtx, new(a.Qkv, 0, 3 * e), new(a.Qkv, e, 3 * e), new(a.Qkv, 2 * e, 3 * e),
                new(dQkv, 0, 3 * e), new(dQkv, e, 3 * e), new(dQkv, 2 * e, 3 * e), b, t, heads, d, AttnScale(l), a.Probs, a.AttnMask);
            var dH1 = new float[rows * e];
            TrainOps.Conv1DBackward(dQkv, a.H1, rows, P(pre + "attn.c_attn.weight"), e, 3 * e, dH1, G(pre + "attn.c_attn.weight"), G(pre + "attn.c_attn.bias"), accumulateDx: false);
            TrainOps.LayerNormBackward(dH1, a.XIn, a.Ln1Mean, a.Ln1Rstd, rows, P(pre + "ln_1.weight"), dx, G(pre + "ln_1.weight"), G(pre + "ln_1.bias"), accumulate: true);
        }

        // Embeddings: dropout, then scatter-add into wte / wpe rows.
        TrainOps.DropoutBackward(dx, embMask);
        var dWte = G("transformer.wte.weight"); var dWpe = G("transformer.wpe.weight");
        for (int i = 0; i < b; i++)
            for (int j = 0; j < t; j++)
            {
                var g = dx.AsSpan((i * t + j) * e, e);
                var w = dWte.AsSpan(batch.InputIds[i][j] * e, e);
                System.Numerics.Tensors.TensorPrimitives.Add(w, g, w);
                var p = dWpe.AsSpan(j * e, e);
                System.Numerics.Tensors.TensorPrimitives.Add(p, g, p);
            }
        return result;
    }

    float AttnScale(int layer) =>
        (Config.ScaleAttnWeights ? 1f / MathF.Sqrt(Config.HeadDim) : 1f) / (Config.ScaleAttnByInverseLayerIdx ? layer + 1 : 1);

    /// <summary>The gradient entering a residual branch: dx itself, or dx ⊙ dropout mask (a copy).</summary>
    static float[] Branch(float[] dx, float[]? mask)
    {
        if (mask is null) return dx;
        var c = (float[])dx.Clone();
        TrainOps.DropoutBackward(c, mask);
        return c;
    }

    /// <summary>The language-model loss of a batch with dropout off (evaluation); gradients untouched.</summary>
    public double Evaluate(Gpt2Batch batch)
    {
        bool was = Training;
        Training = false;
        try { return Step(batch, backward: false).Loss; }
        finally { Training = was; }
    }
}
