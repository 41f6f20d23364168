using System.Text;

namespace SharpFormer.Tasks;

/// <summary>
/// Finds stop strings in streamed text that may span token boundaries: text that could still be the start of a stop
/// string is held back until it is decided, the output ends exactly before the first stop string found, and
/// <see cref="Flush"/> releases what was held back when generation ends for another reason.
/// </summary>
public sealed class StopMatcher
{
    readonly string[] _stops;
    readonly StringBuilder _held = new();

    /// <summary>A matcher for these stop strings (none: text passes straight through). An empty stop string is an error.</summary>
    public StopMatcher(IReadOnlyList<string>? stops)
    {
        _stops = stops?.ToArray() ?? [];
        if (_stops.Any(s => s.Length == 0)) throw new SharpFormerException("a stop string is empty");
    }

    /// <summary>True once a stop string has been found (everything after it is dropped).</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds streamed text; returns the part that is now final (before any stop string, never a possible stop prefix).</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        if (_stops.Length == 0) return text;
        _held.Append(text);
        var s = _held.ToString();
        int at = -1;
        foreach (var stop in _stops)
        {
            int i = s.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (at < 0 || i < at)) at = i;
        }
        _held.Clear();
        if (at >= 0) { Stopped = true; return s[..at]; }
        int keep = 0;
        foreach (var stop in _stops)
            for (int k = Math.Min(stop.Length - 1, s.Length); k > keep; k--)
                if (s.AsSpan(s.Length - k).SequenceEqual(stop.AsSpan(0, k))) { keep = k; break; }
        _held.Append(s, s.Length - keep, keep);
        return s[..^keep];
    }

    /// <summary>Ends the stream: the held-back text (nothing after a stop string).</summary>
    public string Flush()
    {
        var s = Stopped ? "" : _held.ToString();
        _held.Clear();
        return s;
    }
}
