using System.Diagnostics;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Training;

namespace SharpFormer.Bench;

/// <summary>
/// <c>train-step</c>: forward + backward of <see cref="BertTraining.Step"/> on a randomly initialised 4-layer BERT
/// (hidden 192, 3 heads of 64, FFN 768, vocab 21128: the shape <c>train mlm</c> is profiled on), batch 32 × 128
/// tokens with 15% MLM targets and dropout on, at 1 and 2 threads. Prints the median of several steps in tokens/s.
/// </summary>
static class TrainStep
{
    public static void Run(int steps = 5)
    {
        var config = new BertConfig
        {
            ModelType = "bert", VocabSize = 21128, HiddenSize = 192, NumHiddenLayers = 4, NumAttentionHeads = 3,
            IntermediateSize = 768, MaxPositionEmbeddings = 512,
        };
        var trainer = new BertTraining(new BertModel(config, BertHeads.MaskedLM, null, seed: 1));
        const int B = 32, T = 128;
        var rng = new Random(7);
        var ids = new int[B][]; var labels = new int[B][];
        for (int i = 0; i < B; i++)
        {
            ids[i] = new int[T]; labels[i] = new int[T];
            for (int j = 0; j < T; j++)
            {
                ids[i][j] = rng.Next(1000, config.VocabSize);
                labels[i][j] = rng.NextDouble() < 0.15 ? ids[i][j] : -100;
            }
        }
        var batch = new BertBatch(ids) { MlmLabels = labels };

        Console.WriteLine($"BertTraining.Step (forward + backward), 4 layers × 192 hidden, batch {B}×{T}, median of {steps} steps");
        Console.WriteLine($"{"thr",3} {"median",10} {"tokens/s",9}");
        foreach (int threads in new[] { 1, 2 })
        {
            using var kernels = new KernelContext(threads);
            using var scope = kernels.Enter();
            for (int w = 0; w < 2; w++) trainer.Step(batch, backward: true); // JIT tiering
            var ts = new double[steps];
            for (int s = 0; s < steps; s++)
            {
                trainer.Gradients.Zero();
                var sw = Stopwatch.StartNew();
                trainer.Step(batch, backward: true);
                ts[s] = sw.Elapsed.TotalSeconds;
            }
            Array.Sort(ts);
            double t = ts[steps / 2];
            Console.WriteLine($"{threads,3} {t * 1e3,8:F0}ms {B * T / t,9:F0}");
        }
    }
}
