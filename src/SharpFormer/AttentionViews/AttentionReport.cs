using System.Globalization;
using System.Text;

namespace SharpFormer.AttentionViews;

/// <summary>
/// Plain-text reports of an attention map: for each query token its top-k keys with weights, the keys whose
/// weight reaches a threshold, and per-head summary statistics.
/// </summary>
public static class AttentionReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The report: per layer a statistics table, then per head each query's top keys and the keys above the threshold.</summary>
    /// <param name="map">The attention of one model on one text.</param>
    /// <param name="layer">One layer, or null for every layer.</param>
    /// <param name="head">One head, or null for every head of the layer(s).</param>
    /// <param name="topK">How many keys to list per query (at least 1).</param>
    /// <param name="minWeight">The threshold (0..1) of the "keys with weight ≥" lists.</param>
    public static string Text(AttentionMap map, int? layer, int? head, int topK = 3, double minWeight = 0.1)
    {
        if (topK < 1) throw new SharpFormerException($"--top-k must be at least 1 (got {topK})");
        if (!(minWeight >= 0 && minWeight <= 1)) throw new SharpFormerException($"--min-weight must be between 0 and 1 (got {minWeight.ToString(Inv)})");
        if (layer is int l0) map.CheckLayer(l0);
        if (head is int h0) map.CheckHead(h0);
        var sb = new StringBuilder();
        sb.AppendLine($"{map.ModelName}: {map.ModelType} · attention {map.KindName} · {map.Layers} layers × {map.Heads} heads · {map.Length} tokens");
        if (map.HeadGrouping.Length > 0) sb.AppendLine($"heads: {map.HeadGrouping} (query head h reads key/value head h / {map.Heads / map.KvHeads})");
        sb.AppendLine($"text: {map.Text}");
        sb.AppendLine("tokens: " + string.Join(" ", map.Labels.Select((s, i) => $"{i}:{s}")));
        var layers = layer is int l ? new[] { l } : Enumerable.Range(0, map.Layers).ToArray();
        var heads = head is int h ? new[] { h } : Enumerable.Range(0, map.Heads).ToArray();
        foreach (var li in layers)
        {
            sb.AppendLine();
            sb.AppendLine($"== layer {li} ==");
            sb.Append(StatisticsTable(map, li, heads));
            foreach (var hi in heads)
            {
                sb.AppendLine();
                string kv = map.HeadGrouping.Length > 0 ? $" (key/value head {map.KvHeadOf(hi)})" : "";
                sb.AppendLine($"-- layer {li}, head {hi}{kv}: top {topK} keys per query --");
                sb.Append(TopK(map, li, hi, topK));
                sb.AppendLine($"-- layer {li}, head {hi}: keys with weight ≥ {minWeight.ToString("0.###", Inv)} --");
                sb.Append(AboveThreshold(map, li, hi, minWeight));
            }
        }
        return sb.ToString();
    }

    /// <summary>Each query's k strongest keys, strongest first.</summary>
    public static string TopK(AttentionMap map, int layer, int head, int k)
    {
        var sb = new StringBuilder();
        int w = LabelWidth(map);
        for (int q = 0; q < map.Length; q++)
        {
            var row = map.Row(layer, head, q).ToArray();
            int visible = map.IsCausal ? q + 1 : row.Length;   // a decoder's later keys are masked, not candidates
            var best = Enumerable.Range(0, visible).OrderByDescending(i => row[i]).ThenBy(i => i).Take(k);
            sb.Append(Pad($"{q}:{map.Labels[q]}", w)).Append(" → ");
            sb.AppendLine(string.Join("  ", best.Select(i => $"{i}:{map.Labels[i]} {row[i].ToString("0.000", Inv)}")));
        }
        return sb.ToString();
    }

    /// <summary>Each query's keys whose weight is at least <paramref name="minWeight"/>, in key order.</summary>
    public static string AboveThreshold(AttentionMap map, int layer, int head, double minWeight)
    {
        var sb = new StringBuilder();
        int w = LabelWidth(map);
        for (int q = 0; q < map.Length; q++)
        {
            var row = map.Row(layer, head, q);
            var keys = new List<string>();
            for (int i = 0; i < row.Length; i++)
                if (row[i] >= minWeight) keys.Add($"{i}:{map.Labels[i]} {row[i].ToString("0.000", Inv)}");
            sb.Append(Pad($"{q}:{map.Labels[q]}", w)).Append(" → ");
            sb.AppendLine(keys.Count > 0 ? string.Join("  ", keys) : "(none)");
        }
        return sb.ToString();
    }

    /// <summary>Per-head statistics of one layer as an aligned table.</summary>
    public static string StatisticsTable(AttentionMap map, int layer, IEnumerable<int>? heads = null)
    {
        var sb = new StringBuilder();
        string sink = $"on {map.SinkName}";
        sb.AppendLine($"head  {Pad(sink, 18)} on self  on previous  entropy (bits, of max)  pattern");
        foreach (var h in heads ?? Enumerable.Range(0, map.Heads))
        {
            var s = HeadStatistics.Of(map, layer, h);
            sb.AppendLine($"{h,4}  {Pad(Pct(s.SinkShare), 18)} {Pct(s.SelfShare),7}  {Pct(s.PreviousShare),11}  " +
                          $"{Pad($"{s.MeanEntropyBits.ToString("0.00", Inv)} of {s.MaxEntropyBits.Average().ToString("0.00", Inv)}", 22)}  {s.Pattern}");
        }
        return sb.ToString();
    }

    static string Pct(double x) => (100 * x).ToString("0.0", Inv) + "%";

    static int LabelWidth(AttentionMap map) =>
        Enumerable.Range(0, map.Length).Max(i => DisplayWidth($"{i}:{map.Labels[i]}"));

    /// <summary>Terminal columns of a string: East Asian wide characters take two.</summary>
    public static int DisplayWidth(string s)
    {
        int w = 0;
        foreach (var r in s.EnumerateRunes()) w += IsWide(r.Value) ? 2 : 1;
        return w;
    }

    /// <summary><paramref name="s"/> padded with spaces to <paramref name="width"/> terminal columns (CJK characters count two).</summary>
    public static string Pad(string s, int width) => s + new string(' ', Math.Max(0, width - DisplayWidth(s)));

    static bool IsWide(int c) =>
        c is >= 0x1100 and <= 0x115F or >= 0x2E80 and <= 0x303E or >= 0x3041 and <= 0x33FF or >= 0x3400 and <= 0x4DBF
          or >= 0x4E00 and <= 0x9FFF or >= 0xA000 and <= 0xA4CF or >= 0xAC00 and <= 0xD7A3 or >= 0xF900 and <= 0xFAFF
          or >= 0xFE30 and <= 0xFE4F or >= 0xFF00 and <= 0xFF60 or >= 0xFFE0 and <= 0xFFE6 or >= 0x20000 and <= 0x3FFFD;
}
