using System.Numerics.Tensors;
using SharpFormer.Models;

namespace SharpFormer.Tasks;

/// <summary>
/// Refuses NaN and infinite model outputs: a diverged or corrupt checkpoint must fail with one line saying so, never
/// print "NaN" probabilities or pick tokens from garbage.
/// </summary>
public static class FiniteOutputs
{
    /// <summary>Throws a <see cref="SharpFormerException"/> unless every value is finite; <paramref name="what"/> names the output.</summary>
    public static void Require(ReadOnlySpan<float> values, string what)
    {
        if (!TensorPrimitives.IsFiniteAll(values)) throw Error(what);
    }

    /// <summary>Throws unless the scalar (a loss, say) is finite.</summary>
    public static void Require(double value, string what)
    {
        if (!double.IsFinite(value)) throw Error(what);
    }

    /// <summary>Checks every output an encoder task may read: the last hidden state, the pooler and every head's logits.</summary>
    public static void Require(BertOutputs o)
    {
        Require(o.LastHiddenState.Data, "last hidden state");
        if (o.PoolerOutput is not null) Require(o.PoolerOutput.Data, "pooler output");
        if (o.PredictionLogits is not null) Require(o.PredictionLogits.Data, "masked-LM logits");
        if (o.SeqRelationshipLogits is not null) Require(o.SeqRelationshipLogits.Data, "next-sentence logits");
        if (o.Logits is not null) Require(o.Logits.Data, "classifier logits");
    }

    static SharpFormerException Error(string what) =>
        new($"the model produced non-finite values (NaN/inf) in its {what}: its weights are probably diverged or corrupt");
}
