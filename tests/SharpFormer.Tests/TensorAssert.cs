using SharpFormer.Checkpoints;

namespace SharpFormer.Tests;

public static class TensorAssert
{
    /// <summary>Same shape, and every element within tol (absolute); the message names the worst element.</summary>
    public static void Close(Tensor expected, Tensor actual, float tol, string what)
    {
        Assert.True(expected.HasShape(actual.Shape), $"{what}: shape {actual.ShapeString}, expected {expected.ShapeString}");
        Close(expected.Data, actual.Data, tol, what);
    }

    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float worst = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            float d = MathF.Abs(expected[i] - actual[i]);
            if (!(d <= worst) || float.IsNaN(d)) { worst = float.IsNaN(d) ? float.PositiveInfinity : d; at = i; }
        }
        Assert.True(worst <= tol, $"{what}: max abs error {worst:G4} at element {at} (expected {(at >= 0 ? expected[at] : 0)}, got {(at >= 0 ? actual[at] : 0)}), tolerance {tol}");
    }
}
