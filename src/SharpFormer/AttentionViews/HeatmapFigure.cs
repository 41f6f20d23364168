using System.Globalization;

namespace SharpFormer.AttentionViews;

/// <summary>One matrix of a figure: rows (queries) × columns (keys) with their labels; masked cells are drawn grey.</summary>
public sealed record HeatmapPanel(string Title, float[,] Values, string[] RowLabels, string[] ColumnLabels, bool[,]? Masked = null)
{
    /// <summary>Number of rows (queries).</summary>
    public int Rows => Values.GetLength(0);
    /// <summary>Number of columns (keys).</summary>
    public int Columns => Values.GetLength(1);
}

/// <summary>
/// A figure of one or more heatmaps on a shared colour scale from 0 to <see cref="Max"/> (white → dark blue),
/// with tick labels, panel titles, a title and a colour bar. Laid out once for a measurer, then drawn on a
/// Skia canvas (PNG) or an SVG canvas. <see cref="CellRect"/> tells where each cell landed.
/// </summary>
public sealed class HeatmapFigure
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    const float Margin = 16, GapX = 20, GapY = 14, TitleSize = 16, SubtitleSize = 12.5f;

    /// <summary>The figure's title.</summary>
    public string Title { get; }
    /// <summary>A second line under the title, or null.</summary>
    public string? Subtitle { get; }
    /// <summary>The heatmaps, laid out in a grid.</summary>
    public IReadOnlyList<HeatmapPanel> Panels { get; }
    /// <summary>The value drawn darkest (the scale runs from 0 to Max).</summary>
    public double Max { get; }
    /// <summary>Whether a colour bar is drawn beside the panels.</summary>
    public bool ColourBar { get; init; } = true;
    /// <summary>The colour bar's caption.</summary>
    public string ColourBarLabel { get; init; } = "attention weight";

    // Layout
    /// <summary>Width of the laid-out figure in pixels (set by <see cref="Layout"/>).</summary>
    public int Width { get; private set; }
    /// <summary>Height of the laid-out figure in pixels (set by <see cref="Layout"/>).</summary>
    public int Height { get; private set; }
    /// <summary>Side of one cell in pixels (set by <see cref="Layout"/>).</summary>
    public float Cell { get; private set; }
    /// <summary>Font size of the tick labels (set by <see cref="Layout"/>).</summary>
    public float LabelSize { get; private set; }
    /// <summary>Whether the cells are large enough for tick labels to be drawn (set by <see cref="Layout"/>).</summary>
    public bool LabelsShown { get; private set; }
    bool _rotateColumnLabels;
    float _rowLabelW, _colLabelH, _panelTitleH, _titleH, _offsetX, _offsetY, _colourBarW;
    int _gridCols, _gridRows;
    string _title = "", _subtitle = "";
    bool _laidOut;

    /// <summary>A figure of <paramref name="panels"/> on one colour scale up to <paramref name="max"/> (a non-positive or non-finite max becomes 1).</summary>
    public HeatmapFigure(string title, string? subtitle, IReadOnlyList<HeatmapPanel> panels, double max)
    {
        if (panels.Count == 0) throw new ArgumentException("a figure needs at least one panel");
        Title = title; Subtitle = subtitle; Panels = panels;
        Max = max > 0 && double.IsFinite(max) ? max : 1;
    }

    int MaxRows => Panels.Max(p => p.Rows);
    int MaxCols => Panels.Max(p => p.Columns);

    /// <summary>Fixes sizes: the requested image size (content scaled to fit and centred), or a size that suits the matrices.</summary>
    public void Layout(Func<string, float, float> measure, int? width = null, int? height = null)
    {
        if (width is < 1 || height is < 1) throw new SharpFormerException("--width and --height must be positive");
        int n = Panels.Count;
        _gridCols = n == 1 ? 1 : (int)Math.Ceiling(Math.Sqrt(n));
        _gridRows = (n + _gridCols - 1) / _gridCols;
        _panelTitleH = n > 1 ? 18 : 0;
        _titleH = TitleSize + 8 + (Subtitle is null ? 0 : SubtitleSize + 8);
        _colourBarW = ColourBar ? 18 + 8 + measure(FormatTick(Max), 11) + 8 + 16 : 0;
        int rows = MaxRows, cols = MaxCols;

        if (width is null && height is null)
        {
            float c = n == 1 ? Math.Clamp(560f / Math.Max(rows, cols), 5, 40) : Math.Clamp(300f / Math.Max(rows, cols), 4, 30);
            float fs = Math.Clamp(c * 0.62f, 7, 14);
            Fit(c, fs, measure, labels: c >= 7);
            Width = (int)Math.Ceiling(ContentWidth());
            Height = (int)Math.Ceiling(ContentHeight());
            int minW = (int)Math.Ceiling(Math.Min(measure(Title, TitleSize), 900) + 2 * Margin);
            Width = Math.Max(Width, minW);
        }
        else
        {
            // Only one side given: keep the matrices square.
            int w = width ?? 0, h = height ?? 0;
            bool solved = false;
            for (float fs = 14; fs >= 5 && !solved; fs -= 0.5f)
                solved = TrySolve(fs, true);
            if (!solved && !TrySolve(0, false))
                throw new SharpFormerException($"{width}×{height} pixels is too small for a {rows}×{cols} heatmap{(n > 1 ? $" grid of {n}" : "")}");
            Width = width ?? (int)Math.Ceiling(ContentWidth());
            Height = height ?? (int)Math.Ceiling(ContentHeight());

            bool TrySolve(float fs, bool labels)
            {
                // Column labels: try horizontal first, rotated when they do not fit in a cell.
                foreach (var rotate in new[] { false, true })
                {
                    float c = SolveCell(fs, labels, rotate, measure, w, h);
                    if (c < 1) continue;
                    if (labels && (c < fs * 1.12f)) continue;
                    Fit(c, fs, measure, labels, rotate);
                    if (labels && !rotate && _rotateColumnLabels) continue;
                    return true;
                }
                return false;
            }
        }
        _title = Ellipsize(Title, TitleSize, Width - 2 * Margin, measure);
        _subtitle = Subtitle is null ? "" : Ellipsize(Subtitle, SubtitleSize, Width - 2 * Margin, measure);
        _offsetX = Math.Max(0, (Width - ContentWidth()) / 2);
        _offsetY = Math.Max(0, (Height - ContentHeight()) / 2);
        _laidOut = true;
    }

    float SolveCell(float fs, bool labels, bool rotate, Func<string, float, float> measure, int w, int h)
    {
        float rowLabW = labels ? MaxLabel(p => p.RowLabels, fs, measure) + 6 : 0;
        float colLabH = !labels ? 0 : rotate ? MaxLabel(p => p.ColumnLabels, fs, measure) + 6 : fs + 6;
        float fixedW = 2 * Margin + _gridCols * rowLabW + (_gridCols - 1) * GapX + _colourBarW;
        float fixedH = 2 * Margin + _titleH + _gridRows * (_panelTitleH + colLabH) + (_gridRows - 1) * GapY;
        float cw = w > 0 ? (w - fixedW) / (_gridCols * MaxCols) : float.MaxValue;
        float ch = h > 0 ? (h - fixedH) / (_gridRows * MaxRows) : float.MaxValue;
        return MathF.Min(cw, ch);
    }

    void Fit(float cell, float fs, Func<string, float, float> measure, bool labels, bool? rotate = null)
    {
        Cell = cell; LabelSize = fs; LabelsShown = labels;
        _rowLabelW = labels ? MaxLabel(p => p.RowLabels, fs, measure) + 6 : 0;
        float colMax = labels ? MaxLabel(p => p.ColumnLabels, fs, measure) : 0;
        _rotateColumnLabels = rotate ?? colMax > cell - 2;
        if (rotate == false && colMax > cell - 2) _rotateColumnLabels = true;
        _colLabelH = !labels ? 0 : _rotateColumnLabels ? colMax + 6 : fs + 6;
    }

    float MaxLabel(Func<HeatmapPanel, string[]> pick, float fs, Func<string, float, float> measure) =>
        Panels.SelectMany(pick).Select(s => measure(s, fs)).DefaultIfEmpty(0).Max();

    float PanelWidth => _rowLabelW + MaxCols * Cell;
    float PanelHeight => _panelTitleH + _colLabelH + MaxRows * Cell;
    float ContentWidth() => 2 * Margin + _gridCols * PanelWidth + (_gridCols - 1) * GapX + _colourBarW;
    float ContentHeight() => 2 * Margin + _titleH + _gridRows * PanelHeight + (_gridRows - 1) * GapY;

    /// <summary>Top-left of panel <paramref name="panel"/>'s first cell.</summary>
    (float X, float Y) Origin(int panel)
    {
        int gr = panel / _gridCols, gc = panel % _gridCols;
        float x = _offsetX + Margin + gc * (PanelWidth + GapX) + _rowLabelW;
        float y = _offsetY + Margin + _titleH + gr * (PanelHeight + GapY) + _panelTitleH + _colLabelH;
        return (x, y);
    }

    /// <summary>Where cell (row, column) of a panel is drawn, in pixels.</summary>
    public RectF CellRect(int panel, int row, int column)
    {
        if (!_laidOut) throw new InvalidOperationException("Layout first");
        var (x, y) = Origin(panel);
        return new RectF(x + column * Cell, y + row * Cell, Cell, Cell);
    }

    /// <summary>The colour a value gets on this figure's scale.</summary>
    public Rgb ColourOf(double value) => ColorScale.Of(value, Max);

    /// <summary>Draws the laid-out figure on <paramref name="c"/> (call <see cref="Layout"/> first).</summary>
    public void Draw(ICanvas c)
    {
        if (!_laidOut) throw new InvalidOperationException("Layout first");
        float x0 = _offsetX + Margin, y0 = _offsetY + Margin;
        c.Text(_title, x0, y0 + TitleSize, TitleSize, Rgb.Black, bold: true);
        if (_subtitle.Length > 0) c.Text(_subtitle, x0, y0 + TitleSize + 8 + SubtitleSize, SubtitleSize, Rgb.Grey);

        float fs = LabelSize;
        for (int p = 0; p < Panels.Count; p++)
        {
            var panel = Panels[p];
            var (ox, oy) = Origin(p);
            float mw = panel.Columns * Cell, mh = panel.Rows * Cell;
            if (_panelTitleH > 0)
                c.Text(Ellipsize(panel.Title, 12.5f, PanelWidth + GapX - 6, c.MeasureText), ox + mw / 2, oy - _colLabelH - 5, 12.5f, Rgb.Black, align: 0, bold: true);
            for (int r = 0; r < panel.Rows; r++)
                for (int k = 0; k < panel.Columns; k++)
                {
                    var colour = panel.Masked is { } m && m[r, k] ? Rgb.Masked : ColourOf(panel.Values[r, k]);
                    // Cells overlap by a fraction of a pixel so no white seams show between them.
                    c.FillRect(new RectF(ox + k * Cell, oy + r * Cell, Cell + 0.5f, Cell + 0.5f), colour);
                }
            c.StrokeRect(new RectF(ox, oy, mw, mh), new Rgb(150, 150, 150), 1);
            if (!LabelsShown) continue;
            for (int r = 0; r < panel.Rows; r++)
                c.Text(panel.RowLabels[r], ox - 4, oy + r * Cell + Cell / 2 + fs * 0.36f, fs, Rgb.Black, align: 1);
            for (int k = 0; k < panel.Columns; k++)
            {
                float cx = ox + k * Cell + Cell / 2;
                // Labels that fit in a cell (a Chinese character) stay upright even when longer ones are rotated.
                if (_rotateColumnLabels && c.MeasureText(panel.ColumnLabels[k], fs) > Cell - 2) c.Text(panel.ColumnLabels[k], cx + fs * 0.36f, oy - 4, fs, Rgb.Black, align: -1, degrees: -90);
                else c.Text(panel.ColumnLabels[k], cx, oy - 5, fs, Rgb.Black, align: 0);
            }
        }
        if (ColourBar) DrawColourBar(c);
    }

    void DrawColourBar(ICanvas c)
    {
        var (_, oy) = Origin(0);
        float gridRight = _offsetX + Margin + _gridCols * PanelWidth + (_gridCols - 1) * GapX;
        float x = gridRight + 18;
        float h = Math.Max(MaxRows * Cell, 60);
        if (_gridRows > 1) h = Math.Max(h, _gridRows * PanelHeight - _panelTitleH - _colLabelH);
        const float w = 14;
        int steps = Math.Max(2, (int)Math.Ceiling(h / 2));
        for (int i = 0; i < steps; i++)
        {
            double v = Max * (1 - (i + 0.5) / steps);
            c.FillRect(new RectF(x, oy + i * h / steps, w, h / steps + 0.5f), ColourOf(v));
        }
        c.StrokeRect(new RectF(x, oy, w, h), new Rgb(150, 150, 150), 1);
        foreach (var f in new[] { 0.0, 0.5, 1.0 })
        {
            float y = oy + (float)(1 - f) * h;
            c.Line(x + w, y, x + w + 4, y, Rgb.Black, 1);
            c.Text(FormatTick(Max * f), x + w + 6, y + 4, 11, Rgb.Black);
        }
        c.Text(ColourBarLabel, _offsetX + ContentWidth() - Margin - 2, oy + h / 2, 11, Rgb.Grey, align: 0, degrees: 90);
    }

    static string FormatTick(double v) => v.ToString(v >= 0.1 || v == 0 ? "0.00" : "0.000", Inv);

    static string Ellipsize(string s, float size, float width, Func<string, float, float> measure)
    {
        if (measure(s, size) <= width) return s;
        var runes = s.EnumerateRunes().ToList();
        while (runes.Count > 1 && measure(string.Concat(runes) + "…", size) > width) runes.RemoveAt(runes.Count - 1);
        return string.Concat(runes) + "…";
    }

    /// <summary>Draws the figure with SkiaSharp and the system's CJK font; returns PNG bytes.</summary>
    public byte[] ToPng(int? width = null, int? height = null)
    {
        var typeface = CjkFont.Typeface;
        Layout(SkiaCanvas.Measurer(typeface), width, height);
        using var canvas = new SkiaCanvas(Width, Height, typeface, CjkFont.BoldTypeface);
        Draw(canvas);
        return canvas.EncodePng();
    }

    /// <summary>Writes the figure as SVG (no font file needed: the viewer's CJK font draws the labels).</summary>
    public string ToSvg(int? width = null, int? height = null)
    {
        Layout(SvgCanvas.EstimateWidth, width, height);
        var canvas = new SvgCanvas(Width, Height);
        Draw(canvas);
        return canvas.ToSvg(Title + (Subtitle is null ? "" : " — " + Subtitle));
    }
}

/// <summary>The attention heatmaps: one head, or every head of a layer in a grid.</summary>
public static class AttentionImages
{
    /// <summary>One head: query rows, key columns; for a decoder the cells above the diagonal (masked) are grey.</summary>
    public static HeatmapFigure Head(AttentionMap map, int layer, int head)
    {
        map.CheckLayer(layer); map.CheckHead(head);
        var panel = Panel(map, layer, head, $"head {head}");
        return new HeatmapFigure($"{map.ModelName} · layer {layer} · head {head} · {map.KindName}", Subtitle(map), [panel], MaxOf(panel));
    }

    /// <summary>Every head of a layer on one colour scale.</summary>
    public static HeatmapFigure Layer(AttentionMap map, int layer)
    {
        map.CheckLayer(layer);
        var panels = Enumerable.Range(0, map.Heads).Select(h => Panel(map, layer, h, $"head {h}")).ToList();
        return new HeatmapFigure($"{map.ModelName} · layer {layer} · all {map.Heads} heads · {map.KindName}", Subtitle(map), panels, panels.Max(MaxOf));
    }

    static string Subtitle(AttentionMap map) => $"“{map.Text}” — rows: query tokens, columns: key tokens";

    static HeatmapPanel Panel(AttentionMap map, int layer, int head, string title)
    {
        int t = map.Length;
        bool[,]? masked = null;
        if (map.IsCausal)
        {
            masked = new bool[t, t];
            for (int q = 0; q < t; q++) for (int k = q + 1; k < t; k++) masked[q, k] = true;
        }
        return new HeatmapPanel(title, map.Matrix(layer, head), map.Labels, map.Labels, masked);
    }

    static double MaxOf(HeatmapPanel p)
    {
        double m = 0;
        foreach (var v in p.Values) m = Math.Max(m, v);
        return m;
    }
}
