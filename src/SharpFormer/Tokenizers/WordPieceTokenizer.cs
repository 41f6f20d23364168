namespace SharpFormer.Tokenizers;

/// <summary>One word piece: its vocabulary string and the original [Start, End) span of the characters it covers.</summary>
internal readonly record struct WordPiece(string Token, int Start, int End);

/// <summary>
/// HuggingFace <c>WordpieceTokenizer</c>: greedy longest-match-first over code points with "##" continuations; a word
/// longer than <see cref="MaxInputCharsPerWord"/> code points, or one that cannot be covered, becomes the unknown token.
/// </summary>
internal sealed class WordPieceTokenizer
{
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public string UnkToken { get; }
    public int MaxInputCharsPerWord { get; }

    public WordPieceTokenizer(Dictionary<string, int> vocab, string unkToken, int maxInputCharsPerWord = 100)
    {
        _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        UnkToken = unkToken;
        MaxInputCharsPerWord = maxInputCharsPerWord;
    }

    /// <summary>
    /// Splits one basic-tokenizer word (no whitespace inside) into pieces and appends them. Each piece's span is the
    /// union of the original spans of the code points it covers; an unknown word gets the span of the whole word.
    /// </summary>
    public void Tokenize(BasicToken word, List<WordPiece> output)
    {
        var chars = word.Chars;
        int n = chars.Length;
        if (n == 0) return;
        if (n > MaxInputCharsPerWord)
        {
            output.Add(new WordPiece(UnkToken, word.Start, word.End));
            return;
        }

        string text = word.Text;
        // UTF-16 index of every code point in text (plus the end).
        Span<int> index = n <= 128 ? stackalloc int[n + 1] : new int[n + 1];
        for (int k = 0, pos = 0; k <= n; k++)
        {
            index[k] = pos;
            if (k < n) pos += chars[k].Cp >= 0x10000 ? 2 : 1;
        }

        // "##" + the rest of the word, rewritten for every start > 0.
        Span<char> scratch = text.Length + 2 <= 512 ? stackalloc char[text.Length + 2] : new char[text.Length + 2];
        scratch[0] = '#';
        scratch[1] = '#';

        int firstPiece = output.Count;
        int start = 0;
        while (start < n)
        {
            scoped ReadOnlySpan<char> candidate;
            int prefix;
            if (start == 0)
            {
                candidate = text.AsSpan();
                prefix = 0;
            }
            else
            {
                text.AsSpan(index[start]).CopyTo(scratch[2..]);
                candidate = scratch[..(2 + text.Length - index[start])];
                prefix = 2 - index[start];
            }

            int end = n;
            string? found = null;
            while (start < end)
            {
                var sub = candidate[..(index[end] + prefix)];
                if (_lookup.TryGetValue(sub, out var key, out _))
                {
                    found = key;
                    break;
                }
                end--;
            }
            if (found is null)
            {
                output.RemoveRange(firstPiece, output.Count - firstPiece);
                output.Add(new WordPiece(UnkToken, word.Start, word.End));
                return;
            }

            int s = int.MaxValue, e = int.MinValue;
            for (int k = start; k < end; k++)
            {
                s = Math.Min(s, chars[k].Start);
                e = Math.Max(e, chars[k].End);
            }
            output.Add(new WordPiece(found, s, e));
            start = end;
        }
    }
}
