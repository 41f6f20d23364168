using System.Globalization;
using System.Text;

namespace SharpFormer.AttentionViews;

/// <summary>What the real attention probabilities say about the causal mask.</summary>
/// <param name="ModelName">The model's folder name.</param>
/// <param name="Kind">The model's attention kind (an encoder's bidirectional attention is expected to fail the check).</param>
/// <param name="Layers">Number of layers checked.</param>
/// <param name="Heads">Number of heads per layer.</param>
/// <param name="Length">Number of tokens of the text.</param>
/// <param name="MaxAboveDiagonal">The largest weight any query gave to a later key, over every layer and head (0 when causal).</param>
/// <param name="At">Where that weight is (layer, head, query, key), or null when every weight above the diagonal is 0.</param>
/// <param name="NonZeroAboveDiagonal">How many weights above the diagonal are not exactly 0.</param>
/// <param name="Checked">How many above-diagonal weights were looked at (layers × heads × T(T−1)/2).</param>
public sealed record CausalCheck(
    string ModelName, AttentionKind Kind, int Layers, int Heads, int Length,
    double MaxAboveDiagonal, (int Layer, int Head, int Query, int Key)? At, long NonZeroAboveDiagonal, long Checked)
{
    /// <summary>True when no weight above the diagonal is non-zero, i.e. no token saw a later one.</summary>
    public bool IsCausal => NonZeroAboveDiagonal == 0;
}

/// <summary>
/// The causal (look-back only) mask of a decoder: drawn as ●/· text and as an image, and checked against a
/// model's real attention probabilities.
/// </summary>
public static class CausalMask
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    /// <summary>The largest mask size drawn (positions).</summary>
    public const int MaxSize = 512;

    /// <summary>The lower-triangular mask of size n as ● (may attend) / · (masked) and one "position i can attend to [0..i]" line per row.</summary>
    public static string Text(int n, IReadOnlyList<string>? labels = null)
    {
        CheckSize(n);
        if (labels is not null && labels.Count != n) throw new ArgumentException("one label per position");
        var sb = new StringBuilder();
        sb.AppendLine($"causal mask, {n}×{n}: row = query position, column = key position; ● may attend, · masked");
        int iw = (n - 1).ToString(Inv).Length;
        int lw = labels is null ? 0 : labels.Max(AttentionReport.DisplayWidth) + 1;
        string Lab(int i) => labels is null ? "" : AttentionReport.Pad(labels[i], lw);
        // Column header: the last digit of each key index.
        sb.Append(new string(' ', iw + 1 + lw)).AppendLine(string.Join(" ", Enumerable.Range(0, n).Select(j => (j % 10).ToString(Inv))));
        for (int i = 0; i < n; i++)
        {
            sb.Append(i.ToString(Inv).PadLeft(iw)).Append(' ').Append(Lab(i));
            sb.AppendLine(string.Join(" ", Enumerable.Range(0, n).Select(j => j <= i ? "●" : "·")));
        }
        sb.AppendLine();
        for (int i = 0; i < n; i++)
            sb.AppendLine($"position {i}{(labels is null ? "" : $" ({labels[i]})")} can attend to [{(i == 0 ? "0" : $"0..{i}")}]");
        return sb.ToString();
    }

    static void CheckSize(int n)
    {
        if (n < 1 || n > MaxSize) throw new SharpFormerException($"--size must be between 1 and {MaxSize} (got {n})");
    }

    /// <summary>Looks at every layer's and head's probabilities above the diagonal (key after query).</summary>
    public static CausalCheck Check(AttentionMap map)
    {
        int t = map.Length;
        double max = 0; (int, int, int, int)? at = null; long nonZero = 0, count = 0;
        for (int l = 0; l < map.Layers; l++)
            for (int h = 0; h < map.Heads; h++)
                for (int q = 0; q < t; q++)
                {
                    var row = map.Row(l, h, q);
                    for (int k = q + 1; k < t; k++)
                    {
                        count++;
                        float v = row[k];
                        if (v != 0) nonZero++;
                        if (Math.Abs(v) > max || (v != 0 && at is null)) { max = Math.Max(max, Math.Abs(v)); at = (l, h, q, k); }
                    }
                }
        return new CausalCheck(map.ModelName, map.Kind, map.Layers, map.Heads, t, max, at, nonZero, count);
    }

    /// <summary>The check in words: for a decoder whether the mask holds, for an encoder that it is bidirectional.</summary>
    public static string Report(AttentionMap map, CausalCheck check)
    {
        var sb = new StringBuilder();
        string where = check.At is { } a
            ? $" (layer {a.Layer}, head {a.Head}: query {a.Query} “{map.Labels[a.Query]}” → later key {a.Key} “{map.Labels[a.Key]}”)" : "";
        string maxText = check.MaxAboveDiagonal == 0 ? "0" : check.MaxAboveDiagonal.ToString("0.######", Inv);
        sb.AppendLine($"{map.ModelName}: {map.ModelType}, attention {map.KindName}; {map.Length} tokens");
        sb.AppendLine($"checked {check.Layers} layers × {check.Heads} heads × {check.Length * (check.Length - 1) / 2} query→later-key pairs = {check.Checked} weights above the diagonal");
        sb.AppendLine($"largest weight above the diagonal: {maxText}{where}");
        sb.AppendLine($"non-zero weights above the diagonal: {check.NonZeroAboveDiagonal} of {check.Checked}");
        if (map.IsCausal)
            sb.AppendLine(check.IsCausal
                ? "verdict: the causal mask holds — no token attends to a later token in any layer or head"
                : "verdict: VIOLATED — this decoder lets tokens attend to later tokens");
        else
            sb.AppendLine(check.IsCausal
                ? "verdict: this encoder is bidirectional, yet no weight fell above the diagonal on this text"
                : "verdict: not causal — this encoder is bidirectional: every token attends to tokens after it as well as before");
        return sb.ToString();
    }

    /// <summary>
    /// An image of the mask (dark: may attend, grey: masked). With a map, a second panel shows the largest real
    /// weight over every layer and head for each query/key pair, on the same 0..1 scale.
    /// </summary>
    public static HeatmapFigure Figure(int n, AttentionMap? map = null)
    {
        if (map is not null) n = map.Length;
        CheckSize(n);
        var labels = map?.Labels.Select((s, i) => $"{i} {s}").ToArray() ?? Enumerable.Range(0, n).Select(i => i.ToString(Inv)).ToArray();
        var mask = new float[n, n];
        var masked = new bool[n, n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) { mask[i, j] = j <= i ? 1 : 0; masked[i, j] = j > i; }
        var panels = new List<HeatmapPanel> { new("causal mask (grey: masked)", mask, labels, labels, masked) };
        string title = $"causal mask {n}×{n}: position i attends to [0..i]";
        string? subtitle = "rows: query positions, columns: key positions";
        if (map is not null)
        {
            var check = Check(map);
            var maxW = new float[n, n];
            for (int l = 0; l < map.Layers; l++)
                for (int h = 0; h < map.Heads; h++)
                    for (int q = 0; q < n; q++)
                    {
                        var row = map.Row(l, h, q);
                        for (int k = 0; k < n; k++) maxW[q, k] = Math.Max(maxW[q, k], row[k]);
                    }
            panels.Add(new HeatmapPanel($"max weight over {map.Layers}×{map.Heads} heads", maxW, labels, labels));
            title = $"{map.ModelName}, {map.KindName}, against the causal mask";
            subtitle = $"“{map.Text}” — largest weight above the diagonal: {(check.MaxAboveDiagonal == 0 ? "0" : check.MaxAboveDiagonal.ToString("0.####", Inv))}";
        }
        return new HeatmapFigure(title, subtitle, panels, 1.0) { ColourBarLabel = "weight" };
    }
}
