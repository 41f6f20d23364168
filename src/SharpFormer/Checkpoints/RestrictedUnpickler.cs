using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace SharpFormer.Checkpoints;

/// <summary>A <c>module.name</c> reference read by GLOBAL / STACK_GLOBAL. Inert: it is only ever compared, never resolved.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => Module + "." + Name;
    public override string ToString() => FullName;
}

/// <summary>A Python tuple.</summary>
internal sealed class PickleTuple(object?[] items)
{
    public object?[] Items { get; } = items;
    public int Count => Items.Length;
    public object? this[int i] => Items[i];
}

/// <summary>A Python dict (or OrderedDict), insertion-ordered; a repeated key replaces the earlier value in place.</summary>
internal sealed class PickleDict
{
    readonly List<KeyValuePair<object?, object?>> _items = new();
    readonly Dictionary<object, int> _index = new();

    public IReadOnlyList<KeyValuePair<object?, object?>> Items => _items;

    public void Set(object? key, object? value)
    {
        if (key is string or long or bool && _index.TryGetValue(key!, out int at))
        {
            _items[at] = new(key, value);
            return;
        }
        if (key is string or long or bool) _index[key!] = _items.Count;
        _items.Add(new(key, value));
    }

    public bool TryGet(string key, out object? value)
    {
        if (_index.TryGetValue(key, out int at)) { value = _items[at].Value; return true; }
        value = null;
        return false;
    }
}

/// <summary>A Python set / frozenset (kept as a plain list of members).</summary>
internal sealed class PickleSet
{
    public List<object?> Items { get; } = new();
}

/// <summary>Thrown inside the VM for a malformed stream; turned into a one-line <see cref="SharpFormerException"/>.</summary>
internal sealed class PickleCorruptException(string message) : Exception(message) { }

/// <summary>
/// A pickle virtual machine that understands the data opcodes of protocols 0–5 but can never run code:
/// GLOBAL / STACK_GLOBAL only yield inert <see cref="PickleGlobal"/> references, and only names accepted by
/// <c>isAllowed</c> may appear at all (anything else — <c>os.system</c>, <c>builtins.eval</c>, … — refuses the
/// whole file). REDUCE / NEWOBJ hand the (allowed) callable and its arguments to <c>call</c>, which builds plain
/// data; BINPERSID / PERSID hand the persistent id to <c>persistentLoad</c>. Opcodes that would import or
/// instantiate arbitrary classes (INST, OBJ, EXT1/2/4) are refused.
/// </summary>
internal sealed class RestrictedUnpickler
{
    readonly Stream _s;
    readonly string _file;
    readonly Func<PickleGlobal, bool> _isAllowed;
    readonly Func<object?, object?> _persistentLoad;
    readonly Func<PickleGlobal, object?[], object?> _call;
    readonly List<object?> _stack = new();
    readonly Stack<int> _marks = new();
    readonly Dictionary<long, object?> _memo = new();
    readonly long _limit;
    long _opPos;

    /// <summary>Refusal message for a global a state_dict has no business referencing.</summary>
    public static string RefusalMessage(string file, string fullName) =>
        $"{file}: refused to load: the pickle references {Clean(fullName)}, which a state_dict never needs (SharpFormer never runs pickled code)";

    public RestrictedUnpickler(Stream s, string file, Func<PickleGlobal, bool> isAllowed,
        Func<object?, object?> persistentLoad, Func<PickleGlobal, object?[], object?> call)
    {
        _s = s;
        _file = file;
        _isAllowed = isAllowed;
        _persistentLoad = persistentLoad;
        _call = call;
        _limit = s.CanSeek ? s.Length : long.MaxValue;
    }

    /// <summary>Runs the stream up to STOP and returns the result. Leaves the stream just after STOP.</summary>
    public object? Load()
    {
        try { return Run(); }
        catch (PickleCorruptException e) { throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint ({e.Message})"); }
        catch (EndOfStreamException) { throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint (the pickle ends in the middle, at byte {_opPos})"); }
        catch (InvalidDataException e) { throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint ({FirstLine(e.Message)})"); }
        catch (OverflowException) { throw new SharpFormerException($"{_file}: corrupt or truncated checkpoint (a number in the pickle is out of range, at byte {_opPos})"); }
    }

    object? Run()
    {
        while (true)
        {
            _opPos = Pos;
            int op = _s.ReadByte();
            if (op < 0) throw new EndOfStreamException();
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        int v = ReadU8();
                        if (v > 5) throw Corrupt($"unsupported pickle protocol {v}");
                        break;
                    }
                case 0x95: ReadU64(); break; // FRAME: a length hint only
                case '.': // STOP
                    if (_stack.Count == 0) throw Corrupt("STOP with an empty stack");
                    return Pop();
                case '(': _marks.Push(_stack.Count); break; // MARK
                case '0': Pop(); break; // POP
                case '1': PopMark(); break; // POP_MARK
                case '2': Push(Peek()); break; // DUP

                // --- constants and numbers ---
                case 'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case 'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;
                case 'K': Push((long)ReadU8()); break;
                case 'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;
                case 0x8a: Push(DecodeLong(ReadBytes(ReadU8()))); break; // LONG1
                case 0x8b: Push(DecodeLong(ReadBytes(CheckLen(ReadI32())))); break; // LONG4
                case 'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT
                case 'I': // INT (text); "00"/"01" are protocol-0 booleans
                    {
                        var t = ReadLine();
                        if (t == "00") Push(false);
                        else if (t == "01") Push(true);
                        else Push(ParseLong(t));
                        break;
                    }
                case 'L': Push(ParseLong(ReadLine().TrimEnd('L'))); break; // LONG (text)
                case 'F': // FLOAT (text)
                    {
                        var t = ReadLine();
                        if (!double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d))
                            throw Corrupt($"bad FLOAT literal at byte {_opPos}");
                        Push(d);
                        break;
                    }

                // --- strings and bytes ---
                case 'X': Push(Utf8(ReadBytes(CheckLen(ReadU32())))); break; // BINUNICODE
                case 0x8c: Push(Utf8(ReadBytes(ReadU8()))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadBytes(CheckLen(ReadU64())))); break; // BINUNICODE8
                case 'T': Push(Encoding.Latin1.GetString(ReadBytes(CheckLen(ReadI32())))); break; // BINSTRING (py2 str)
                case 'U': Push(Encoding.Latin1.GetString(ReadBytes(ReadU8()))); break; // SHORT_BINSTRING
                case 'B': Push(ReadBytes(CheckLen(ReadU32()))); break; // BINBYTES
                case 'C': Push(ReadBytes(ReadU8())); break; // SHORT_BINBYTES
                case 0x8e: Push(ReadBytes(CheckLen(ReadU64()))); break; // BINBYTES8
                case 0x96: Push(ReadBytes(CheckLen(ReadU64()))); break; // BYTEARRAY8

                // --- containers ---
                case '}': Push(new PickleDict()); break;
                case ']': Push(new List<object?>()); break;
                case ')': Push(new PickleTuple([])); break;
                case 0x8f: Push(new PickleSet()); break; // EMPTY_SET
                case 't': Push(new PickleTuple(PopMark())); break;
                case 0x85: Push(new PickleTuple([Pop()])); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b])); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b, c])); break; }
                case 'l': Push(new List<object?>(PopMark())); break; // LIST
                case 'd': // DICT
                    {
                        var items = PopMark();
                        if (items.Length % 2 != 0) throw Corrupt($"DICT with an odd number of items at byte {_opPos}");
                        var d = new PickleDict();
                        for (int i = 0; i < items.Length; i += 2) d.Set(items[i], items[i + 1]);
                        Push(d);
                        break;
                    }
                case 'a': { var v = Pop(); AsList(Peek()).Add(v); break; } // APPEND
                case 'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
                case 's': { var v = Pop(); var k = Pop(); AsDict(Peek()).Set(k, v); break; } // SETITEM
                case 'u': // SETITEMS
                    {
                        var items = PopMark();
                        if (items.Length % 2 != 0) throw Corrupt($"SETITEMS with an odd number of items at byte {_opPos}");
                        var d = AsDict(Peek());
                        for (int i = 0; i < items.Length; i += 2) d.Set(items[i], items[i + 1]);
                        break;
                    }
                case 0x90: // ADDITEMS
                    {
                        var items = PopMark();
                        if (Peek() is not PickleSet set) throw Corrupt($"ADDITEMS on a non-set at byte {_opPos}");
                        set.Items.AddRange(items);
                        break;
                    }
                case 0x91: { var set = new PickleSet(); set.Items.AddRange(PopMark()); Push(set); break; } // FROZENSET

                // --- memo ---
                case 'q': _memo[ReadU8()] = Peek(); break; // BINPUT
                case 'r': _memo[ReadU32()] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                case 'p': _memo[ParseLong(ReadLine())] = Peek(); break; // PUT
                case 'h': Push(MemoGet(ReadU8())); break; // BINGET
                case 'j': Push(MemoGet(ReadU32())); break; // LONG_BINGET
                case 'g': Push(MemoGet(ParseLong(ReadLine()))); break; // GET

                // --- references to Python objects: inert, and whitelisted ---
                case 'c': // GLOBAL
                    {
                        var module = ReadLine();
                        var name = ReadLine();
                        Push(Resolve(module, name));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop();
                        var module = Pop();
                        if (module is not string m || name is not string n) throw Corrupt($"STACK_GLOBAL without two strings at byte {_opPos}");
                        Push(Resolve(m, n));
                        break;
                    }
                case 'R': // REDUCE
                    {
                        var args = Pop();
                        var func = Pop();
                        Push(Call(func, args, "REDUCE"));
                        break;
                    }
                case 0x81: // NEWOBJ: cls.__new__(cls, *args)
                    {
                        var args = Pop();
                        var cls = Pop();
                        Push(Call(cls, args, "NEWOBJ"));
                        break;
                    }
                case 0x92: // NEWOBJ_EX: cls, args, kwargs
                    {
                        var kwargs = Pop();
                        var args = Pop();
                        var cls = Pop();
                        if (kwargs is PickleDict kd && kd.Items.Count > 0) throw Corrupt($"NEWOBJ_EX with keyword arguments for {cls} at byte {_opPos}");
                        Push(Call(cls, args, "NEWOBJ_EX"));
                        break;
                    }
                case 'b': // BUILD: obj.__setstate__(state) — we only accept it on inert data, where it is metadata
                    {
                        var state = Pop();
                        var obj = Peek();
                        if (obj is PickleDict or PyTorchCheckpoint.TensorRef or null) break; // e.g. state_dict._metadata
                        throw Corrupt($"BUILD on an unexpected {Describe(obj)} at byte {_opPos}");
                    }
                case 'Q': Push(_persistentLoad(Pop())); break; // BINPERSID
                case 'P': Push(_persistentLoad(ReadLine())); break; // PERSID

                // --- opcodes that import or instantiate arbitrary classes: never ---
                case 'i': // INST
                    {
                        var module = ReadLine();
                        var name = ReadLine();
                        Resolve(module, name); // refuses with the name when not allowed
                        throw Refused($"the INST opcode (instantiating {Clean(module)}.{Clean(name)})");
                    }
                case 'o': throw Refused("the OBJ opcode (instantiating an arbitrary class)");
                case 0x82: case 0x83: case 0x84: throw Refused("an EXT opcode (the copyreg extension registry)");
                case 'S': case 'V': // text-protocol strings, out-of-band buffers: torch.save never writes them
                case 0x97: case 0x98:
                    throw Corrupt($"unsupported pickle opcode 0x{op:x2} ('{(char)op}') at byte {_opPos}");
                default:
                    throw Corrupt($"unknown pickle opcode 0x{op:x2} at byte {_opPos}");
            }
        }
    }

    object Resolve(string module, string name)
    {
        var g = new PickleGlobal(module, name);
        if (!_isAllowed(g)) throw new SharpFormerException(RefusalMessage(_file, g.FullName));
        return g;
    }

    object? Call(object? func, object? args, string opName)
    {
        if (func is not PickleGlobal g) throw Corrupt($"{opName} on a non-callable {Describe(func)} at byte {_opPos}");
        if (args is not PickleTuple t) throw Corrupt($"{opName} with non-tuple arguments at byte {_opPos}");
        return _call(g, t.Items);
    }

    SharpFormerException Refused(string what) =>
        new($"{_file}: refused to load: the pickle uses {what}, which a state_dict never needs (SharpFormer never runs pickled code)");

    PickleCorruptException Corrupt(string message) => new(message);

    long Pos => _s.CanSeek ? _s.Position : -1;

    void Push(object? v) => _stack.Add(v);

    object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks.Peek() >= _stack.Count))
            throw Corrupt($"stack underflow at byte {_opPos}");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    object? Peek()
    {
        if (_stack.Count == 0) throw Corrupt($"stack underflow at byte {_opPos}");
        return _stack[^1];
    }

    object?[] PopMark()
    {
        if (_marks.Count == 0) throw Corrupt($"missing MARK at byte {_opPos}");
        int at = _marks.Pop();
        if (at > _stack.Count) throw Corrupt($"bad MARK at byte {_opPos}");
        var items = _stack.GetRange(at, _stack.Count - at).ToArray();
        _stack.RemoveRange(at, _stack.Count - at);
        return items;
    }

    object? MemoGet(long key) =>
        _memo.TryGetValue(key, out var v) ? v : throw Corrupt($"memo key {key} read before it was written, at byte {_opPos}");

    List<object?> AsList(object? o) => o as List<object?> ?? throw Corrupt($"APPEND to a non-list {Describe(o)} at byte {_opPos}");
    PickleDict AsDict(object? o) => o as PickleDict ?? throw Corrupt($"SETITEM on a non-dict {Describe(o)} at byte {_opPos}");

    internal static string Describe(object? o) => o switch
    {
        null => "None",
        PickleGlobal g => Clean(g.FullName),
        PickleTuple => "tuple",
        PickleDict => "dict",
        List<object?> => "list",
        string => "string",
        long or BigInteger => "int",
        _ => o.GetType().Name,
    };

    internal static string Clean(string s)
    {
        var sb = new StringBuilder();
        foreach (var ch in s.Length > 120 ? s[..120] + "…" : s) sb.Append(char.IsControl(ch) ? '?' : ch);
        return sb.ToString();
    }

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    // --- raw reading ---

    int ReadU8()
    {
        int b = _s.ReadByte();
        if (b < 0) throw new EndOfStreamException();
        return b;
    }

    byte[] ReadBytes(long n)
    {
        var buf = new byte[n];
        _s.ReadExactly(buf);
        return buf;
    }

    int ReadI32() => BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));
    long ReadU32() => BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));
    long ReadU64()
    {
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8));
        return v > long.MaxValue ? long.MaxValue : (long)v;
    }

    /// <summary>A length read from the stream must fit in what is left of it (so a corrupt length cannot allocate gigabytes).</summary>
    long CheckLen(long n)
    {
        if (n < 0) throw Corrupt($"negative length at byte {_opPos}");
        long left = _s.CanSeek ? _limit - _s.Position : long.MaxValue;
        if (n > left || n > Array.MaxLength) throw new EndOfStreamException();
        return n;
    }

    string ReadLine()
    {
        var bytes = new List<byte>();
        while (true)
        {
            int b = _s.ReadByte();
            if (b < 0) throw new EndOfStreamException();
            if (b == '\n') break;
            if (bytes.Count > 4096) throw Corrupt($"text line longer than 4096 bytes at byte {_opPos}");
            bytes.Add((byte)b);
        }
        if (bytes.Count > 0 && bytes[^1] == '\r') bytes.RemoveAt(bytes.Count - 1);
        return Utf8(bytes.ToArray());
    }

    string Utf8(byte[] b)
    {
        try { return new UTF8Encoding(false, true).GetString(b); }
        catch (DecoderFallbackException) { throw Corrupt($"invalid UTF-8 string at byte {_opPos}"); }
    }

    long ParseLong(string t) =>
        long.TryParse(t, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw Corrupt($"bad integer literal at byte {_opPos}");

    /// <summary>LONG1/LONG4 payload: little-endian two's complement. Returns a long when it fits, else a BigInteger.</summary>
    static object DecodeLong(byte[] b)
    {
        if (b.Length == 0) return 0L;
        var big = new BigInteger(b, isUnsigned: false, isBigEndian: false);
        return big >= long.MinValue && big <= long.MaxValue ? (long)big : big;
    }
}
