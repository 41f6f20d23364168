using System.Reflection;
using System.Runtime.CompilerServices;
using SharpFormer.Kernels;

namespace SharpFormer.Tests;

/// <summary>
/// Kernel code must run optimised from its first call. .NET first runs a method as unoptimised tier-0 code and
/// recompiles it only after ~30 calls and a quiet 0.1 s: a vector kernel in tier 0 is 5-10× slower, and a short-lived
/// process (the CLI's <c>generate</c>, an offline measurement) ran whole decodes that way (1.3 ms per token instead of 0.2).
/// </summary>
public class KernelJitTests
{
    const MethodImplAttributes Optimised = MethodImplAttributes.AggressiveOptimization | MethodImplAttributes.AggressiveInlining;

    static IEnumerable<MethodInfo> KernelMethods() =>
        typeof(KernelContext).Assembly.GetTypes()
            .Where(t => t.Namespace == "SharpFormer.Kernels")
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.GetMethodBody() is not null);

    static bool IsVector(Type t) => t.Namespace == "System.Runtime.Intrinsics" && t.Name.StartsWith("Vector", StringComparison.Ordinal);

    [Fact]
    public void EveryVectorHelper_IsInlinedOrOptimised()
    {
        var slow = KernelMethods()
            .Where(m => IsVector(m.ReturnType) || m.GetParameters().Any(p => IsVector(p.ParameterType)))
            .Where(m => (m.MethodImplementationFlags & Optimised) == 0)
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}")
            .ToArray();
        Assert.True(slow.Length == 0, "vector helpers that would run as tier-0 code: " + string.Join(", ", slow));
    }

    [Theory]
    [InlineData("Gemm", "Row512x4")]
    [InlineData("Gemm", "Row512")]
    [InlineData("Gemm", "Row256")]
    [InlineData("Gemm", "Row128")]
    [InlineData("Gemm", "Merge")]
    [InlineData("GemmInt8", "Row512")]
    [InlineData("GemmInt8", "Row256")]
    [InlineData("Attention", "Dot")]
    [InlineData("LayerNorm", "RunChunk")]
    [InlineData("RotaryEmbedding", "Apply")]
    public void DecodeStepLoops_AreOptimisedFromTheFirstCall(string typeName, string name)
    {
        var methods = KernelMethods().Where(m => m.DeclaringType!.Name == typeName && m.Name == name).ToArray();
        Assert.NotEmpty(methods);
        foreach (var m in methods)
            Assert.True((m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0, $"{typeName}.{name} is not AggressiveOptimization");
    }
}
