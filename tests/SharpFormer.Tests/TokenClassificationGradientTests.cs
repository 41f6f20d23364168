using SharpFormer.Models;
using SharpFormer.Training;
using Xunit;

namespace SharpFormer.Tests;

/// <summary>
/// The fixtures carry PyTorch gradients for MLM+NSP and sequence classification but none for token classification,
/// so its backward is checked against central finite differences of the loss on the bert-tiny-ner checkpoint.
/// </summary>
public class TokenClassificationGradientTests
{
    static BertBatch Batch() => new(
        [[101, 2769, 4263, 1266, 776, 102, 0], [101, 1266, 776, 3221, 704, 1744, 102]],
        [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]],
        [[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]])
    {
        TokenLabels = [[-100, 0, 0, 5, 6, -100, -100], [-100, 5, 6, 0, 1, 2, -100]],
    };

    [Theory]
    [InlineData("classifier.weight")]
    [InlineData("classifier.bias")]
    [InlineData("bert.encoder.layer.1.output.dense.weight")]
    [InlineData("bert.encoder.layer.0.attention.self.query.weight")]
    [InlineData("bert.encoder.layer.0.intermediate.dense.bias")]
    [InlineData("bert.encoder.layer.0.output.LayerNorm.weight")]
    [InlineData("bert.embeddings.LayerNorm.bias")]
    [InlineData("bert.embeddings.position_embeddings.weight")]
    public void Backward_EqualsFiniteDifferences(string name)
    {
        var tr = new BertTraining(BertModel.Load(SharedPaths.Fixture("bert-tiny-ner")));
        tr.DisableDropout();
        var batch = Batch();
        tr.Step(batch, backward: true);
        var analytic = tr.Gradients[name];
        var w = tr.Parameters[name].Data;

        // The entries with the largest gradients (plus the first few), where a wrong backward cannot hide in rounding.
        var picks = Enumerable.Range(0, w.Length).OrderByDescending(i => Math.Abs(analytic[i])).Take(6).Concat(Enumerable.Range(0, 3)).Distinct();
        const float h = 1e-2f;
        int checkedCount = 0;
        foreach (int i in picks)
        {
            float orig = w[i];
            w[i] = orig + h; tr.WeightsChanged();
            double up = tr.Evaluate(batch).Loss;
            w[i] = orig - h; tr.WeightsChanged();
            double down = tr.Evaluate(batch).Loss;
            w[i] = orig; tr.WeightsChanged();
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric - analytic[i]) <= 2e-4 + 0.02 * Math.Abs(numeric),
                $"{name}[{i}]: backward {analytic[i]:G6}, finite difference {numeric:G6}");
            checkedCount++;
        }
        Assert.True(checkedCount >= 6);
        Assert.Contains(analytic, g => Math.Abs(g) > 1e-4f);   // the loss does depend on this parameter
    }
}
