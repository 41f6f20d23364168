using SharpFormer.Kernels;
using SharpFormer.Models;

namespace SharpFormer.Tests;

/// <summary>
/// A batch of more rows than the gated MLP takes at once (256) goes through it in chunks: every sequence's logits and
/// cache equal those of the sequence run alone (one chunk), bit for bit, in f32, bf16 and int8.
/// </summary>
public class DecoderChunkingTests
{
    [Theory]
    [InlineData(WeightPrecision.Float32)]
    [InlineData(WeightPrecision.BFloat16)]
    [InlineData(WeightPrecision.Int8)]
    public void Chunked_mlp_rows_equal_the_unchunked_ones(WeightPrecision precision)
    {
        var model = LlamaModel.Load(SharedPaths.Fixture("qwen2-tiny"), weights: WeightOptions.Inference(precision));
        var r = new Random(3);
        // 5 × 120 = 600 rows: three chunks of 200, each cutting through a sequence.
        var ids = Enumerable.Range(0, 5).Select(_ => Enumerable.Range(0, 120).Select(_ => r.Next(151643)).ToArray()).ToArray();
        var cache = model.CreateCache(5, 120);
        var batch = model.Forward(ids, cache: cache, outputPresents: false).Logits;
        int v = model.Shape.VocabSize, kv = model.Shape.KvHeads * 120 * model.Shape.HeadDim;
        for (int b = 0; b < ids.Length; b++)
        {
            var alone = model.CreateCache(1, 120);
            var logits = model.Forward([ids[b]], cache: alone, outputPresents: false).Logits;
            Assert.True(logits.Span.SequenceEqual(batch.Span.Slice(b * 120 * v, 120 * v)), $"{precision}: sequence {b}'s logits differ");
            Assert.True(alone.Present(1, false, model.Shape.KvHeads).Span.SequenceEqual(cache.Present(1, false, model.Shape.KvHeads).Span.Slice(b * kv, kv)),
                        $"{precision}: sequence {b}'s cached keys differ");
        }
    }
}
