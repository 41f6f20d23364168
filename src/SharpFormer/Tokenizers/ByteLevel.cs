using System.Text;

namespace SharpFormer.Tokenizers;

/// <summary>
/// The byte-level alphabet of GPT-2 style BPE (OpenAI's <c>bytes_to_unicode</c>): every byte is one printable
/// character, so a token's string stands for a sequence of UTF-8 bytes (<c>Ġ</c> = space, <c>Ċ</c> = newline).
/// </summary>
internal static class ByteLevelAlphabet
{
    static readonly char[] ByteToChar = BuildByteToChar();
    static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        bool[] direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = direct[b] ? (char)b : (char)(256 + n++);
        return map;
    }

    /// <summary>The alphabet's character of each UTF-8 byte of <paramref name="text"/>.</summary>
    public static string Encode(ReadOnlySpan<char> text)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(text)];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return string.Create(bytes.Length, bytes, static (dst, src) => { for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]]; });
    }

    /// <summary>Whether every character of the token is in the alphabet.</summary>
    public static bool IsByteLevel(string token)
    {
        foreach (var c in token) if (!CharToByte.ContainsKey(c)) return false;
        return true;
    }

    /// <summary>The bytes a byte-level token string stands for (characters outside the alphabet count as their UTF-8).</summary>
    public static byte[] ToBytes(string token)
    {
        var bytes = new List<byte>(token.Length);
        foreach (var c in token)
        {
            if (CharToByte.TryGetValue(c, out var b)) bytes.Add(b);
            else bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(c.ToString()));
        }
        return bytes.ToArray();
    }
}

/// <summary>The bytes each id stands for, what <see cref="ByteStreamDecoder"/> needs of a byte-level tokenizer.</summary>
internal interface IByteTokens
{
    bool IsSpecial(int id);
    ReadOnlySpan<byte> TokenBytes(int id);
}

/// <summary>
/// Turns ids into text as they arrive without ever emitting half a character: the bytes of a UTF-8 sequence that
/// is still incomplete (e.g. a Chinese character whose 3 bytes span several tokens) are held back until the
/// character is complete. Invalid bytes become U+FFFD as in <c>decode(errors="replace")</c>. No clean-up is applied
/// (the streamed text is byte-exact). Holds a small buffer; no allocation per id beyond the returned string.
/// </summary>
public sealed class ByteStreamDecoder : ITokenStreamDecoder
{
    readonly IByteTokens _tok;
    readonly bool _skipSpecial;
    byte[] _pending = new byte[64];
    int _count;

    internal ByteStreamDecoder(IByteTokens tok, bool skipSpecial)
    {
        _tok = tok;
        _skipSpecial = skipSpecial;
    }

    /// <summary>Adds one id; returns the text that is now complete ("" when everything is held back).</summary>
    public string Push(int id)
    {
        if (_skipSpecial && _tok.IsSpecial(id)) return "";
        var bytes = _tok.TokenBytes(id);
        if (_count + bytes.Length > _pending.Length) Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _count + bytes.Length));
        bytes.CopyTo(_pending.AsSpan(_count));
        _count += bytes.Length;
        int ready = _count - IncompleteTail(_pending.AsSpan(0, _count));
        if (ready == 0) return "";
        var text = System.Text.Encoding.UTF8.GetString(_pending, 0, ready);
        _pending.AsSpan(ready, _count - ready).CopyTo(_pending);
        _count -= ready;
        return text;
    }

    /// <summary>Ends the stream: whatever is held back is decoded (an unfinished character becomes U+FFFD).</summary>
    public string Flush()
    {
        var text = System.Text.Encoding.UTF8.GetString(_pending, 0, _count);
        _count = 0;
        return text;
    }

    /// <summary>Bytes at the end that start a UTF-8 sequence which could still be completed by more bytes.</summary>
    internal static int IncompleteTail(ReadOnlySpan<byte> b)
    {
        int n = b.Length;
        for (int back = 1; back <= Math.Min(3, n); back++)
        {
            byte c = b[n - back];
            if ((c & 0xC0) == 0x80) continue;                   // continuation byte: keep looking for the lead
            int need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
            if (need <= back) return 0;                         // complete (or a lone/invalid byte): emit
            // Check the bytes present form a valid prefix; otherwise it can never complete, so emit it now.
            return IsValidPrefix(b[(n - back)..]) ? back : 0;
        }
        return 0;
    }

    static bool IsValidPrefix(ReadOnlySpan<byte> s)
    {
        // s = lead + (len-1) continuation bytes, shorter than the full sequence. Check the second byte's range rules.
        if (s.Length < 2) return true;
        byte lead = s[0], second = s[1];
        return lead switch
        {
            0xE0 => second >= 0xA0 && second <= 0xBF,
            0xED => second >= 0x80 && second <= 0x9F,
            0xF0 => second >= 0x90 && second <= 0xBF,
            0xF4 => second >= 0x80 && second <= 0x8F,
            _ => second >= 0x80 && second <= 0xBF,
        };
    }
}
