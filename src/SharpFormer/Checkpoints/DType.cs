namespace SharpFormer.Checkpoints;

/// <summary>Element types of the safetensors format (the names are the format's own).</summary>
public enum DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL }

public static class DTypes
{
    public static int Size(this DType t) => t switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        _ => 1,
    };

    public static bool TryParse(string s, out DType t) => Enum.TryParse(s, ignoreCase: false, out t) && Enum.IsDefined(t);

    public static bool IsFloat(this DType t) => t is DType.F64 or DType.F32 or DType.F16 or DType.BF16;
}
