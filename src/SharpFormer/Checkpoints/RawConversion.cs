using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace SharpFormer.Checkpoints;

/// <summary>Converts little-endian raw tensor bytes of any stored dtype to the float32 / int64 we compute with.</summary>
public static class RawConversion
{
    /// <summary>Widens <paramref name="raw"/> (F32, F16, BF16 or F64) into <paramref name="dst"/>; another dtype is a <see cref="SharpFormerException"/>.</summary>
    public static void ToFloat32(ReadOnlySpan<byte> raw, DType dtype, Span<float> dst)
    {
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(raw).CopyTo(dst);
                break;
            case DType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(raw);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)halves[i];
                break;
            case DType.BF16:
                // bf16 is the top half of a float32: widening is a shift, exact.
                var bits = MemoryMarshal.Cast<byte, ushort>(raw);
                var outBits = MemoryMarshal.Cast<float, uint>(dst);
                for (int i = 0; i < dst.Length; i++) outBits[i] = (uint)bits[i] << 16;
                break;
            case DType.F64:
                var doubles = MemoryMarshal.Cast<byte, double>(raw);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)doubles[i];
                break;
            default:
                throw new SharpFormerException($"dtype {dtype} is not a floating-point type");
        }
    }

    /// <summary>Widens <paramref name="count"/> integers of <paramref name="raw"/> (I64, I32, I16, I8, U8 or BOOL) to int64.</summary>
    public static long[] ToInt64(ReadOnlySpan<byte> raw, DType dtype, long count)
    {
        var dst = new long[count];
        switch (dtype)
        {
            case DType.I64: MemoryMarshal.Cast<byte, long>(raw).CopyTo(dst); break;
            case DType.I32: { var s = MemoryMarshal.Cast<byte, int>(raw); for (int i = 0; i < dst.Length; i++) dst[i] = s[i]; break; }
            case DType.I16: { var s = MemoryMarshal.Cast<byte, short>(raw); for (int i = 0; i < dst.Length; i++) dst[i] = s[i]; break; }
            case DType.I8: for (int i = 0; i < dst.Length; i++) dst[i] = (sbyte)raw[i]; break;
            case DType.U8 or DType.BOOL: for (int i = 0; i < dst.Length; i++) dst[i] = raw[i]; break;
            default: throw new SharpFormerException($"dtype {dtype} is not an integer type");
        }
        return dst;
    }

    /// <summary>Throws <see cref="PlatformNotSupportedException"/> on a big-endian CPU (the formats are little-endian).</summary>
    public static void AssertLittleEndian()
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("SharpFormer needs a little-endian CPU");
    }
}
