using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Training;
using Xunit.Abstractions;

namespace SharpFormer.Tests;

/// <summary>Training parity against HuggingFace/PyTorch on the fixtures' <c>training/</c> goldens (tolerances from its README).</summary>
public class TrainingTests(ITestOutputHelper output)
{
    static readonly Lazy<JsonElement> Json = new(() =>
        JsonDocument.Parse(File.ReadAllText(SharedPaths.Fixture("training", "training.json"))).RootElement);

    internal static JsonElement Golden(string key) => Json.Value.GetProperty(key);

    internal static int[][] Ints(JsonElement e) =>
        e.EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();

    internal static int[] Ints1(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    internal static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    internal static Gpt2Batch Gpt2GoldenBatch() => new(Ints(Golden("gpt2_tiny").GetProperty("batch").GetProperty("input_ids")));

    internal static BertBatch BertGoldenBatch()
    {
        var b = Golden("bert_tiny").GetProperty("batch");
        return new BertBatch(Ints(b.GetProperty("input_ids")), Ints(b.GetProperty("token_type_ids")), Ints(b.GetProperty("attention_mask")))
        {
            MlmLabels = Ints(b.GetProperty("labels")),
            NextSentenceLabels = Ints1(b.GetProperty("next_sentence_label")),
        };
    }

    internal static BertBatch SeqClsGoldenBatch()
    {
        var b = Golden("bert_tiny_seqcls").GetProperty("batch");
        return new BertBatch(Ints(b.GetProperty("input_ids")), Ints(b.GetProperty("token_type_ids")), Ints(b.GetProperty("attention_mask")))
        {
            Labels = Ints1(b.GetProperty("labels")),
        };
    }

    internal static Gpt2Training Gpt2() => new(Gpt2Model.Load(SharedPaths.Fixture("gpt2-tiny"))) { Training = true };

    internal static BertTraining Bert(string folder)
    {
        var t = new BertTraining(BertModel.Load(SharedPaths.Fixture(folder)));
        t.DisableDropout();
        return t;
    }

    static void AssertRelClose(double expected, double actual, double rel, string what) =>
        Assert.True(Math.Abs(expected - actual) <= rel * Math.Abs(expected), $"{what}: expected {expected:R}, got {actual:R} (rel err {Math.Abs(expected - actual) / Math.Abs(expected):G3})");

    /// <summary>Every gradient tensor of the golden file against ours: |Δ| ≤ 1e-5 + 1e-3·|expected|.</summary>
    void AssertGradients(string file, ParameterSet parameters, GradientSet grads)
    {
        using var golden = new SafeTensorsFile(SharedPaths.Fixture("training", file));
        Assert.Equal(golden.Names.OrderBy(n => n, StringComparer.Ordinal), grads.Names.OrderBy(n => n, StringComparer.Ordinal));
        double worstAll = 0;
        foreach (var name in golden.Names)
        {
            var exp = golden.ReadFloat32(name);
            Assert.True(exp.HasShape(parameters[name].Shape), $"{name}: golden shape {exp.ShapeString}, parameter {parameters[name].ShapeString}");
            var act = grads[name];
            double worst = 0; int at = -1;
            for (int i = 0; i < act.Length; i++)
            {
                double err = Math.Abs(exp.Data[i] - act[i]);
                double excess = err - (1e-5 + 1e-3 * Math.Abs(exp.Data[i]));
                if (double.IsNaN(err) || excess > 0 && (at < 0 || err > worst)) { worst = double.IsNaN(err) ? double.PositiveInfinity : err; at = i; }
                worstAll = Math.Max(worstAll, err);
            }
            Assert.True(at < 0, $"{name}: gradient error {worst:G4} at {at} (expected {(at >= 0 ? exp.Data[at] : 0)}, got {(at >= 0 ? act[at] : 0)})");
        }
        output.WriteLine($"{file}: {golden.Names.Count()} gradient tensors, max abs error {worstAll:G3}");
    }

    // ------------------------------------------------------------------ gradient parity

    [Fact]
    public void Gpt2LossAndEveryGradientMatch()
    {
        var g = Golden("gpt2_tiny");
        var tr = Gpt2();
        tr.DisableDropout();
        var r = tr.Step(Gpt2GoldenBatch(), backward: true);
        AssertRelClose(g.GetProperty("loss").GetDouble(), r.Loss, 1e-5, "loss");
        Assert.Equal(30, r.Count);
        AssertGradients("gpt2_tiny_grads.safetensors", tr.Parameters, tr.Gradients);
        AssertRelClose(g.GetProperty("grad_total_norm").GetDouble(), tr.Gradients.GlobalNorm(), 1e-4, "grad_total_norm");
    }

    [Fact]
    public void BertPreTrainingLossAndEveryGradientMatch()
    {
        var g = Golden("bert_tiny");
        var tr = Bert("bert-tiny");
        var r = tr.Step(BertGoldenBatch(), backward: true);
        AssertRelClose(g.GetProperty("masked_lm_loss").GetDouble(), r.MaskedLmLoss!.Value, 1e-5, "masked_lm_loss");
        AssertRelClose(g.GetProperty("next_sentence_loss").GetDouble(), r.NextSentenceLoss!.Value, 1e-5, "next_sentence_loss");
        AssertRelClose(g.GetProperty("loss").GetDouble(), r.Loss, 1e-5, "loss");
        AssertGradients("bert_tiny_grads.safetensors", tr.Parameters, tr.Gradients);
        AssertRelClose(g.GetProperty("grad_total_norm").GetDouble(), tr.Gradients.GlobalNorm(), 1e-4, "grad_total_norm");
    }

    [Fact]
    public void BertSequenceClassificationLossAndEveryGradientMatch()
    {
        var g = Golden("bert_tiny_seqcls");
        var tr = Bert("bert-tiny-seqcls");
        var r = tr.Step(SeqClsGoldenBatch(), backward: true);
        AssertRelClose(g.GetProperty("loss").GetDouble(), r.Loss, 1e-5, "loss");
        var expLogits = g.GetProperty("logits").EnumerateArray().SelectMany(row => row.EnumerateArray().Select(x => (float)x.GetDouble())).ToArray();
        TensorAssert.Close(expLogits, r.Logits!.Data, 1e-4f, "logits");
        AssertGradients("bert_tiny_seqcls_grads.safetensors", tr.Parameters, tr.Gradients);
        AssertRelClose(g.GetProperty("grad_total_norm").GetDouble(), tr.Gradients.GlobalNorm(), 1e-4, "grad_total_norm");
    }

    // ------------------------------------------------------------------ AdamW

    static TrainerOptions PlainAdamW => new()
    {
        LearningRate = 1e-3, WeightDecay = 0.01f, NoDecayOnBiasAndLayerNorm = false, MaxGradNorm = 0,
        Schedule = ScheduleKind.Constant, TotalSteps = 10,
    };

    void AssertCurve(double[] expected, IReadOnlyList<double> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Count);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4, $"{what}: step {i} loss {actual[i]:R}, expected {expected[i]:R}");
        }
        output.WriteLine($"{what}: {expected.Length} losses, max abs error {worst:G3}");
    }

    [Fact]
    public void Gpt2AdamWLossCurveAndParametersMatch()
    {
        var g = Golden("gpt2_tiny").GetProperty("adamw");
        var tr = Gpt2();
        tr.DisableDropout();
        var trainer = new Trainer<Gpt2Batch>(tr, PlainAdamW);
        var batch = Gpt2GoldenBatch();
        var losses = new List<double>();
        using var golden = new SafeTensorsFile(SharedPaths.Fixture("training", "gpt2_tiny_adamw_params.safetensors"));
        int e = tr.Config.NEmbd;
        for (int step = 1; step <= 10; step++)
        {
            losses.Add(trainer.TrainStep(batch).Loss);
            if (step is not (1 or 10)) continue;
            double worst = 0;
            int compared = 0;
            foreach (var (name, t) in tr.Parameters.All)
            {
                var key = $"after_step_{step}.{name}";
                if (!golden.Contains(key)) { Assert.Equal("transformer.wte.weight", name); continue; }
                var exp = golden.ReadFloat32(key);
                var act = (float[])t.Data.Clone();
                if (name.EndsWith("attn.c_attn.bias", StringComparison.Ordinal))
                    for (int i = e; i < 2 * e; i++) act[i] = exp.Data[i];   // key bias: zero true gradient, noise-driven updates (README)
                TensorAssert.Close(exp.Data, act, 1e-4f, key);
                for (int i = 0; i < act.Length; i++) worst = Math.Max(worst, Math.Abs(exp.Data[i] - act[i]));
                compared++;
            }
            Assert.Equal(tr.Parameters.All.Count() - 1, compared);
            output.WriteLine($"after step {step}: {compared} parameters, max abs error {worst:G3}");
        }
        AssertCurve(Doubles(g.GetProperty("losses")), losses, "gpt2 adamw");
    }

    [Theory]
    [InlineData("bert_tiny", "bert-tiny")]
    [InlineData("bert_tiny_seqcls", "bert-tiny-seqcls")]
    public void BertAdamWLossCurveMatches(string key, string folder)
    {
        var g = Golden(key).GetProperty("adamw");
        var tr = Bert(folder);
        var trainer = new Trainer<BertBatch>(tr, PlainAdamW);
        var batch = key == "bert_tiny" ? BertGoldenBatch() : SeqClsGoldenBatch();
        var losses = Enumerable.Range(0, 5).Select(_ => trainer.TrainStep(batch).Loss).ToList();
        AssertCurve(Doubles(g.GetProperty("losses")), losses, key + " adamw");
    }

    [Fact]
    public void Gpt2TrainerStyleRunMatches()
    {
        var g = Golden("gpt2_tiny").GetProperty("adamw_trainer_style");
        var tr = Gpt2();
        tr.DisableDropout();
        var trainer = new Trainer<Gpt2Batch>(tr, new TrainerOptions
        {
            LearningRate = 1e-3, WeightDecay = 0.01f, NoDecayOnBiasAndLayerNorm = true, MaxGradNorm = 1.0,
            Schedule = ScheduleKind.Linear, WarmupSteps = 2, TotalSteps = 10,
        });
        var noDecay = g.GetProperty("no_decay_parameters").EnumerateArray().Select(x => x.GetString()!).ToHashSet();
        Assert.Equal(noDecay.OrderBy(x => x, StringComparer.Ordinal), trainer.Optimizer.Groups.Where(gr => gr.WeightDecay == 0).SelectMany(gr => gr.Names).OrderBy(x => x, StringComparer.Ordinal));
        var batch = Gpt2GoldenBatch();
        var reports = Enumerable.Range(0, 10).Select(_ => trainer.TrainStep(batch)).ToList();
        AssertCurve(Doubles(g.GetProperty("losses")), reports.Select(r => r.Loss).ToList(), "gpt2 trainer-style");
        var lrs = Doubles(g.GetProperty("learning_rates"));
        var norms = Doubles(g.GetProperty("grad_norms_before_clipping"));
        for (int i = 0; i < 10; i++)
        {
            Assert.True(Math.Abs(lrs[i] - reports[i].LearningRate) <= 1e-12, $"lr at step {i}: {reports[i].LearningRate}, expected {lrs[i]}");
            AssertRelClose(norms[i], reports[i].GradNorm, 1e-4, $"grad norm before clipping at step {i}");
        }
    }

    // ------------------------------------------------------------------ loop behaviour

    [Fact]
    public void TinyBertOverfitsASmallBatch()
    {
        var tr = Bert("bert-tiny-seqcls");
        var trainer = new Trainer<BertBatch>(tr, new TrainerOptions { LearningRate = 3e-3, Schedule = ScheduleKind.Constant, TotalSteps = 60 });
        var batch = SeqClsGoldenBatch();
        double loss = 0;
        for (int i = 0; i < 60; i++) loss = trainer.TrainStep(batch).Loss;
        var final = tr.Evaluate(batch);
        output.WriteLine($"seqcls loss after 60 steps: {loss:G4}, eval {final.Loss:G4}");
        Assert.True(final.Loss < 0.01, $"loss {final.Loss} did not approach 0");
    }

    [Fact]
    public void InferenceSeesTheTrainedWeights()
    {
        var tr = Bert("bert-tiny-seqcls");
        var batch = SeqClsGoldenBatch();
        var inputs = new BertInputs(batch.InputIds, batch.TokenTypeIds, batch.AttentionMask);
        var before = (float[])tr.Model.Forward(inputs).Logits!.Data.Clone(); // packs the weights for inference
        var trainer = new Trainer<BertBatch>(tr, new TrainerOptions { LearningRate = 3e-3, Schedule = ScheduleKind.Constant, TotalSteps = 3 });
        for (int i = 0; i < 3; i++) trainer.TrainStep(batch);
        var after = tr.Model.Forward(inputs).Logits!.Data;
        Assert.NotEqual(before, after);
        var fresh = new BertModel(tr.Model.Config, tr.Model.Heads, null);
        foreach (var (name, t) in tr.Model.Parameters.All) t.Data.CopyTo(fresh.Parameters[name].Data, 0);
        TensorAssert.Close(fresh.Forward(inputs).Logits!.Data, after, 1e-6f, "logits after training");
    }

    [Fact]
    public void TinyGpt2OverfitsASmallBatch()
    {
        var tr = Gpt2();
        tr.DisableDropout();
        var trainer = new Trainer<Gpt2Batch>(tr, new TrainerOptions { LearningRate = 1e-2, Schedule = ScheduleKind.Constant, TotalSteps = 80 });
        var batch = Gpt2GoldenBatch();
        for (int i = 0; i < 80; i++) trainer.TrainStep(batch);
        var final = tr.Evaluate(batch);
        output.WriteLine($"gpt2 loss after 80 steps: {final:G4}");
        Assert.True(final < 0.05, $"loss {final} did not approach 0");
    }

    [Fact]
    public void ResumeFromCheckpointGivesTheSameTrajectory()
    {
        TrainerOptions opts = new() { LearningRate = 1e-3, WeightDecay = 0.01f, Schedule = ScheduleKind.Cosine, WarmupSteps = 1, TotalSteps = 6, GradientAccumulation = 2 };
        var batch = Gpt2GoldenBatch();
        var halves = new[] { new Gpt2Batch([batch.InputIds[0]]), new Gpt2Batch([batch.InputIds[1]]) };
        // Dropout on (config's 0.1), so the RNG state matters.
        var full = new Trainer<Gpt2Batch>(Gpt2(), opts);
        var expected = Enumerable.Range(0, 6).Select(_ => full.TrainStep(halves).Loss).ToList();

        var dir = Directory.CreateTempSubdirectory("sf-resume-").FullName;
        try
        {
            var first = new Trainer<Gpt2Batch>(Gpt2(), opts);
            var got = Enumerable.Range(0, 3).Select(_ => first.TrainStep(halves).Loss).ToList();
            first.SaveCheckpoint(dir, new System.Text.Json.Nodes.JsonObject { ["epoch"] = 0 });
            var second = new Trainer<Gpt2Batch>(Gpt2(), opts);
            var extra = second.LoadCheckpoint(dir);
            Assert.Equal(0, extra!["epoch"]!.GetValue<int>());
            Assert.Equal(3, second.Step);
            got.AddRange(Enumerable.Range(0, 3).Select(_ => second.TrainStep(halves).Loss));
            Assert.Equal(expected, got);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ReinitialisingTopLayersReplacesOnlyThoseWithAFreshInit()
    {
        var dir = SharedPaths.Fixture("bert-tiny-ner");
        var loaded = TrainingModels.Bert(dir, null, BertHeads.TokenClassification, null, 7, out _);
        var reinit = TrainingModels.Bert(dir, null, BertHeads.TokenClassification, null, 7, out _, reinitTopLayers: 1);
        var fresh = new BertModel(loaded.Config, loaded.Heads, null, 7);
        int top = loaded.Config.NumHiddenLayers - 1;
        int replaced = 0;
        foreach (var (name, t) in reinit.Parameters.All)
        {
            bool isTop = name.StartsWith($"bert.encoder.layer.{top}.", StringComparison.Ordinal);
            var expected = isTop ? fresh.Parameters[name] : loaded.Parameters[name];
            Assert.True(expected.Data.AsSpan().SequenceEqual(t.Data), name);
            if (isTop && !loaded.Parameters[name].Data.AsSpan().SequenceEqual(t.Data)) replaced++;
        }
        Assert.True(replaced >= 6, $"only {replaced} tensors of the top layer changed");
        // The packed weights follow: the forward pass differs from the loaded model's.
        var a = loaded.Forward(new BertInputs([[2, 5, 6, 3]])).Logits!;
        var b = reinit.Forward(new BertInputs([[2, 5, 6, 3]])).Logits!;
        Assert.False(a.Data.AsSpan().SequenceEqual(b.Data));
        Assert.Throws<SharpFormerException>(() => TrainingModels.Bert(dir, null, BertHeads.TokenClassification, null, 7, out _, reinitTopLayers: top + 2));
    }

    [Fact]
    public void SavedBertClassifierReloadsWithTheSameLogits()
    {
        var src = SharedPaths.Fixture("bert-tiny-seqcls");
        var tr = Bert("bert-tiny-seqcls");
        var trainer = new Trainer<BertBatch>(tr, new TrainerOptions { LearningRate = 1e-3, TotalSteps = 3 });
        var batch = SeqClsGoldenBatch();
        for (int i = 0; i < 3; i++) trainer.TrainStep(batch);
        var expected = tr.Evaluate(batch);
        var dir = Directory.CreateTempSubdirectory("sf-save-").FullName;
        try
        {
            ModelSaver.Save(dir, tr.Model, src);
            foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" }) Assert.True(File.Exists(Path.Combine(dir, f)), f);
            var cfg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
            Assert.Equal("正面", cfg["id2label"]!["1"]!.GetValue<string>());
            Assert.Equal(0, cfg["label2id"]!["负面"]!.GetValue<int>());
            using (var saved = new SafeTensorsFile(Path.Combine(dir, "model.safetensors")))
            using (var orig = new SafeTensorsFile(Path.Combine(src, "model.safetensors")))
                Assert.Equal(orig.Names.OrderBy(n => n, StringComparer.Ordinal), saved.Names.OrderBy(n => n, StringComparer.Ordinal));
            var reloaded = BertModel.Load(dir);
            Assert.Empty(reloaded.InitialisedParameters);
            var logits = reloaded.Forward(new BertInputs(batch.InputIds, batch.TokenTypeIds, batch.AttentionMask)).Logits!;
            TensorAssert.Close(expected.Logits!, logits, 1e-5f, "reloaded logits");
            // The evaluation metric agrees too.
            var reloadedLoss = new BertTraining(reloaded).Evaluate(batch).Loss;
            Assert.True(Math.Abs(reloadedLoss - expected.Loss) < 1e-6, $"loss {reloadedLoss} vs {expected.Loss}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void SavedGpt2ReloadsWithTheSameLoss()
    {
        var src = SharedPaths.Fixture("gpt2-tiny");
        var tr = Gpt2();
        tr.DisableDropout();
        var trainer = new Trainer<Gpt2Batch>(tr, new TrainerOptions { LearningRate = 1e-3, TotalSteps = 3 });
        var batch = Gpt2GoldenBatch();
        for (int i = 0; i < 3; i++) trainer.TrainStep(batch);
        double expected = tr.Evaluate(batch);
        var dir = Directory.CreateTempSubdirectory("sf-save-").FullName;
        try
        {
            ModelSaver.Save(dir, tr.Model, src);
            using (var saved = new SafeTensorsFile(Path.Combine(dir, "model.safetensors")))
            using (var orig = new SafeTensorsFile(Path.Combine(src, "model.safetensors")))
                Assert.Equal(orig.Names.OrderBy(n => n, StringComparer.Ordinal), saved.Names.OrderBy(n => n, StringComparer.Ordinal));
            var reloaded = Gpt2Model.Load(dir);
            double nll = batch.InputIds.SelectMany(ids => reloaded.TokenNll(ids)).Average();
            Assert.True(Math.Abs(nll - expected) < 1e-5, $"reloaded loss {nll} vs trained {expected}");
        }
        finally { Directory.Delete(dir, true); }
    }
}
