namespace SharpFormer.Checkpoints;

/// <summary>Element types of the safetensors format (the names are the format's own).</summary>
public enum DType
{
    /// <summary>64-bit float.</summary>
    F64,
    /// <summary>32-bit float.</summary>
    F32,
    /// <summary>IEEE 16-bit float (half).</summary>
    F16,
    /// <summary>bfloat16: the upper 16 bits of a float32.</summary>
    BF16,
    /// <summary>64-bit signed integer.</summary>
    I64,
    /// <summary>32-bit signed integer.</summary>
    I32,
    /// <summary>16-bit signed integer.</summary>
    I16,
    /// <summary>8-bit signed integer.</summary>
    I8,
    /// <summary>8-bit unsigned integer.</summary>
    U8,
    /// <summary>Boolean, one byte each.</summary>
    BOOL,
}

/// <summary>Facts about <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType t) => t switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        _ => 1,
    };

    /// <summary>Parses a safetensors dtype name ("F32", "BF16", ...; case-sensitive, as the format).</summary>
    public static bool TryParse(string s, out DType t) => Enum.TryParse(s, ignoreCase: false, out t) && Enum.IsDefined(t);

    /// <summary>True for the floating-point types.</summary>
    public static bool IsFloat(this DType t) => t is DType.F64 or DType.F32 or DType.F16 or DType.BF16;
}
