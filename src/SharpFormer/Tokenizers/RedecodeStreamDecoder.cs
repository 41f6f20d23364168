namespace SharpFormer.Tokenizers;

/// <summary>
/// A streaming decoder for tokenizers whose tokens are whole characters (WordPiece): re-decodes everything so far
/// and emits the growth, as HF's <c>TextStreamer</c> does, holding back text that ends in U+FFFD.
/// </summary>
internal sealed class RedecodeStreamDecoder(ITokenizer tok) : ITokenStreamDecoder
{
    readonly List<int> _ids = new();
    int _emitted;

    public string Push(int id)
    {
        _ids.Add(id);
        var text = tok.DecodeForCausalLm(_ids);
        if (text.EndsWith('\uFFFD') || text.Length <= _emitted) return "";
        var chunk = text[_emitted..];
        _emitted = text.Length;
        return chunk;
    }

    public string Flush()
    {
        var text = tok.DecodeForCausalLm(_ids);
        var chunk = text.Length > _emitted ? text[_emitted..] : "";
        _emitted = text.Length;
        return chunk;
    }
}
