using System.Buffers.Binary;
using System.Text;

namespace SharpFormer.Hub;

/// <summary>
/// The small part of Python's pickle format the ModelScope cache index uses: lists and dicts of strings (and None).
/// Written with protocol 2 opcodes (every Python 3 reads them); read back from what Python's <c>pickle.dump</c> writes
/// (protocols 2 to 5: frames, memo, short and long strings).
/// </summary>
internal static class PythonPickle
{
    /// <summary>The pickle of a list of string dicts (<c>[{'Path': ..., 'Revision': ...}, ...]</c>).</summary>
    public static byte[] WriteList(IEnumerable<IReadOnlyDictionary<string, string>> items)
    {
        var output = new List<byte> { 0x80, 2, (byte)']', (byte)'(' };
        foreach (var item in items) AppendDict(output, item);
        output.AddRange("e."u8.ToArray());
        return [.. output];
    }

    /// <summary>The pickle of a string dict (<c>{'id': 'ORG/NAME'}</c>).</summary>
    public static byte[] WriteDict(IReadOnlyDictionary<string, string> item)
    {
        var output = new List<byte> { 0x80, 2 };
        AppendDict(output, item);
        output.Add((byte)'.');
        return [.. output];
    }

    static void AppendDict(List<byte> output, IReadOnlyDictionary<string, string> item)
    {
        output.AddRange("}("u8.ToArray());
        foreach (var (key, value) in item)
        {
            AppendString(output, key);
            AppendString(output, value);
        }
        output.Add((byte)'u');
    }

    static void AppendString(List<byte> output, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        output.Add((byte)'X');
        output.AddRange(length.ToArray());
        output.AddRange(bytes);
    }

    /// <summary>The list of string dicts a pickle holds, or null when it holds anything else or is not a pickle this reader knows.</summary>
    public static List<Dictionary<string, string?>>? ReadList(byte[] data)
    {
        try { return Read(data) is List<object?> list && list.All(i => i is Dictionary<string, string?>) ? list.Cast<Dictionary<string, string?>>().ToList() : null; }
        catch (Exception e) when (e is InvalidDataException or IndexOutOfRangeException or ArgumentOutOfRangeException or InvalidCastException or InvalidOperationException) { return null; }
    }

    static readonly object Mark = new();

    static object? Read(byte[] data)
    {
        var stack = new Stack<object?>();
        var memo = new Dictionary<long, object?>();
        int at = 0;
        int Take(int n) { int start = at; at += n; if (at > data.Length) throw new InvalidDataException("truncated"); return start; }
        string Text(long n) => Encoding.UTF8.GetString(data, Take(checked((int)n)), (int)n);
        List<object?> PopToMark()
        {
            var items = new List<object?>();
            while (stack.Peek() != Mark) items.Add(stack.Pop());
            stack.Pop();
            items.Reverse();
            return items;
        }
        while (true)
        {
            byte op = data[Take(1)];
            switch (op)
            {
                case 0x80: Take(1); break;                                                        // PROTO
                case 0x95: Take(8); break;                                                        // FRAME
                case (byte)']': stack.Push(new List<object?>()); break;                           // EMPTY_LIST
                case (byte)'}': stack.Push(new Dictionary<string, string?>()); break;             // EMPTY_DICT
                case (byte)'(': stack.Push(Mark); break;                                          // MARK
                case (byte)'N': stack.Push(null); break;                                          // NONE
                case 0x8c: stack.Push(Text(data[Take(1)])); break;                                // SHORT_BINUNICODE
                case (byte)'X': stack.Push(Text(BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(Take(4))))); break;
                case 0x8d: stack.Push(Text(checked((long)BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(Take(8)))))); break;
                case 0x94: memo[memo.Count] = stack.Peek(); break;                                // MEMOIZE
                case (byte)'q': memo[data[Take(1)]] = stack.Peek(); break;                        // BINPUT
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(Take(4)))] = stack.Peek(); break;
                case (byte)'h': stack.Push(memo[data[Take(1)]]); break;                           // BINGET
                case (byte)'j': stack.Push(memo[BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(Take(4)))]); break;
                case (byte)'a': { var item = stack.Pop(); ((List<object?>)stack.Peek()!).Add(item); break; }
                case (byte)'e': { var items = PopToMark(); ((List<object?>)stack.Peek()!).AddRange(items); break; }
                case (byte)'s': { var value = stack.Pop(); var key = (string)stack.Pop()!; ((Dictionary<string, string?>)stack.Peek()!)[key] = (string?)value; break; }
                case (byte)'u':
                {
                    var items = PopToMark();
                    var dict = (Dictionary<string, string?>)stack.Peek()!;
                    for (int i = 0; i + 1 < items.Count; i += 2) dict[(string)items[i]!] = (string?)items[i + 1];
                    break;
                }
                case (byte)'.': return stack.Pop();                                               // STOP
                default: throw new InvalidDataException($"pickle opcode 0x{op:x2}");
            }
        }
    }
}
