namespace SharpFormer;

/// <summary>
/// A problem with the user's input (a file, a checkpoint, an option, a text) whose message is one line
/// that names the problem. The CLI prints the message alone and exits non-zero; library callers can catch it.
/// </summary>
public class SharpFormerException : Exception
{
    /// <summary>A user error with a one-line message.</summary>
    public SharpFormerException(string message) : base(message) { }
    /// <summary>A user error with a one-line message, caused by <paramref name="inner"/>.</summary>
    public SharpFormerException(string message, Exception inner) : base(message, inner) { }
}
