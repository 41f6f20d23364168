namespace SharpFormer.Tokenizers;

/// <summary>
/// Finds added tokens in a text before pre-tokenization, as tokenizers' <c>AddedVocabulary</c>: leftmost match
/// first, the longest token at a position, <c>single_word</c> tokens only between non-word characters,
/// <c>lstrip</c>/<c>rstrip</c> tokens taking the whitespace beside them.
/// </summary>
internal sealed class AddedTokenMatcher
{
    readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens) =>
        _byFirstChar = tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());

    /// <summary>Cuts <paramref name="text"/> into [start, end) segments, each plain text (Token null) or one added token.</summary>
    /// <param name="text">The text to cut.</param>
    /// <param name="skipSpecial">Leave special tokens as text (<c>split_special_tokens</c>).</param>
    /// <param name="output">Receives the segments, in order.</param>
    public void Split(string text, bool skipSpecial, List<(int Start, int End, AddedToken? Token)> output)
    {
        output.Clear();
        int done = 0;                                           // end of the last segment emitted
        for (int p = 0; p < text.Length; p++)
        {
            if (!_byFirstChar.TryGetValue(text[p], out var candidates)) continue;
            foreach (var t in candidates)
            {
                if (skipSpecial && t.Special) continue;
                if (string.CompareOrdinal(text, p, t.Content, 0, t.Content.Length) != 0) continue;
                int start = p, end = p + t.Content.Length;
                if (t.SingleWord && ((start > 0 && IsWordChar(text[start - 1])) || (end < text.Length && IsWordChar(text[end])))) continue;
                if (t.LStrip) while (start > done && char.IsWhiteSpace(text[start - 1])) start--;
                if (t.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
                if (start > done) output.Add((done, start, null));
                output.Add((start, end, t));
                done = end;
                p = end - 1;
                break;
            }
        }
        if (done < text.Length) output.Add((done, text.Length, null));
    }

    static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
