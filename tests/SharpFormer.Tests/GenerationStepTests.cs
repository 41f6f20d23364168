using SharpFormer.Models;
using SharpFormer.Tasks;

namespace SharpFormer.Tests;

/// <summary>
/// <see cref="Generation"/>'s per-token report (the playground's probabilities and alternatives): the chosen token's
/// probability is the model's (checked against <see cref="ICausalLM.TokenNll"/>), the sampling probability follows
/// temperature and top-k, and reporting changes nothing that is generated.
/// </summary>
public class GenerationStepTests
{
    static readonly Lazy<ICausalLM> Gpt2 = new(() => AutoModel.LoadCausalLM(SharedPaths.Fixture("gpt2-tiny"), WeightOptions.Inference()));
    static readonly int[] Prompt = [15496, 11, 616, 3290];   // "Hello, my dog"

    [Fact]
    public void GenerationSteps_GreedyProbabilitiesAreTheModels()
    {
        var options = new GenerationOptions { MaxNewTokens = 5, DoSample = false };
        var steps = new List<TokenStep>();
        var result = Generation.Generate(Gpt2.Value, [Prompt], options, 4, steps.Add);
        Assert.Equal(Generation.Generate(Gpt2.Value, [Prompt], options).Sequences[0].NewIds, result.Sequences[0].NewIds);
        Assert.Equal(result.Sequences[0].NewIds, steps.Select(s => s.Chosen.Id));
        var ids = Prompt.Concat(result.Sequences[0].NewIds).ToArray();
        var nll = Gpt2.Value.TokenNll(ids, Prompt.Length);   // one entry per generated token
        Assert.Equal(steps.Count, nll.Length);
        for (int i = 0; i < steps.Count; i++)
        {
            var s = steps[i];
            Assert.Equal(4, s.Alternatives.Count);
            Assert.Equal(s.Chosen, s.Alternatives[0]);               // greedy: the most likely token
            Assert.Equal(s.Chosen.Probability, s.Chosen.SampledProbability);
            Assert.Equal(1.0, s.Chosen.Probability / Math.Exp(-nll[i]), 3);   // relative: the probabilities are small (random weights)
            for (int k = 1; k < 4; k++) Assert.True(s.Alternatives[k].Probability <= s.Alternatives[k - 1].Probability);
        }
    }

    [Fact]
    public void GenerationSteps_SamplingProbabilitiesFollowTemperatureAndTopK()
    {
        const float t = 0.7f;
        var options = new GenerationOptions { MaxNewTokens = 6, DoSample = true, Temperature = t, TopK = 2, Seed = 5 };
        var steps = new List<TokenStep>();
        var result = Generation.Generate(Gpt2.Value, [Prompt], options, 3, steps.Add);
        Assert.Equal(Generation.Generate(Gpt2.Value, [Prompt], options).Sequences[0].NewIds, result.Sequences[0].NewIds);
        foreach (var s in steps)
        {
            var (a, b, c) = (s.Alternatives[0], s.Alternatives[1], s.Alternatives[2]);
            // Within the top 2, p^(1/T) renormalised; the third was cut by top-k.
            double wa = Math.Pow(a.Probability, 1 / t), wb = Math.Pow(b.Probability, 1 / t);
            Assert.Equal(wa / (wa + wb), a.SampledProbability, 4);
            Assert.Equal(wb / (wa + wb), b.SampledProbability, 4);
            Assert.Equal(0f, c.SampledProbability);
            Assert.Contains(s.Chosen.Id, new[] { a.Id, b.Id });
        }
        Assert.Throws<SharpFormerException>(() => Generation.Generate(Gpt2.Value, [Prompt], options, 0, steps.Add));
    }
}
