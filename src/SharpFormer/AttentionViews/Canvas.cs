using System.Globalization;
using System.Text;
using SkiaSharp;

namespace SharpFormer.AttentionViews;

/// <summary>An RGB colour.</summary>
public readonly record struct Rgb(byte R, byte G, byte B)
{
    /// <summary>The colour as CSS/SVG hex, e.g. "#ffffff".</summary>
    public string Hex => $"#{R:x2}{G:x2}{B:x2}";
    /// <summary>Relative luminance (sRGB weights, 0..1), used to check that colours are ordered like the values.</summary>
    public double Luminance => (0.2126 * R + 0.7152 * G + 0.0722 * B) / 255.0;
    /// <summary>Fixed colours of the figures: background, text, secondary text, and masked cells.</summary>
    public static readonly Rgb White = new(255, 255, 255), Black = new(0, 0, 0), Grey = new(110, 110, 110), Masked = new(232, 232, 232);
}

/// <summary>A rectangle in pixels (x, y of the top-left corner).</summary>
public readonly record struct RectF(float X, float Y, float Width, float Height)
{
    /// <summary>The horizontal centre.</summary>
    public float CenterX => X + Width / 2;
    /// <summary>The vertical centre.</summary>
    public float CenterY => Y + Height / 2;
}

/// <summary>
/// The sequential colour scale of the heatmaps (ColorBrewer "Blues"): white for 0, dark blue for the maximum.
/// Luminance falls strictly with the value, so darker always means more attention.
/// </summary>
public static class ColorScale
{
    static readonly (double At, Rgb Colour)[] Stops =
    [
        (0.0, new Rgb(247, 251, 255)), (0.125, new Rgb(222, 235, 247)), (0.25, new Rgb(198, 219, 239)),
        (0.375, new Rgb(158, 202, 225)), (0.5, new Rgb(107, 174, 214)), (0.625, new Rgb(66, 146, 198)),
        (0.75, new Rgb(33, 113, 181)), (0.875, new Rgb(8, 81, 156)), (1.0, new Rgb(8, 48, 107)),
    ];

    /// <summary>The colour of <paramref name="value"/> on a scale from 0 to <paramref name="max"/>.</summary>
    public static Rgb Of(double value, double max)
    {
        double x = max > 0 ? Math.Clamp(value / max, 0, 1) : 0;
        if (double.IsNaN(x)) x = 0;
        for (int i = 1; i < Stops.Length; i++)
        {
            if (x > Stops[i].At) continue;
            var (a0, c0) = Stops[i - 1];
            var (a1, c1) = Stops[i];
            double f = (x - a0) / (a1 - a0);
            return new Rgb(Lerp(c0.R, c1.R, f), Lerp(c0.G, c1.G, f), Lerp(c0.B, c1.B, f));
        }
        return Stops[^1].Colour;
    }

    static byte Lerp(byte a, byte b, double f) => (byte)Math.Round(a + (b - a) * f);
}

/// <summary>The few drawing operations the figures need, so one layout feeds both PNG (Skia) and SVG (text).</summary>
public interface ICanvas
{
    /// <summary>Fills <paramref name="r"/> with <paramref name="colour"/>.</summary>
    void FillRect(RectF r, Rgb colour);
    /// <summary>Draws the outline of <paramref name="r"/>, <paramref name="width"/> pixels wide.</summary>
    void StrokeRect(RectF r, Rgb colour, float width);
    /// <summary>Draws a straight line from (x0, y0) to (x1, y1).</summary>
    void Line(float x0, float y0, float x1, float y1, Rgb colour, float width);
    /// <summary>Text with its baseline at y; align: -1 left, 0 centre, 1 right; rotated by <paramref name="degrees"/> about (x, y).</summary>
    void Text(string text, float x, float y, float size, Rgb colour, int align = -1, float degrees = 0, bool bold = false);
    /// <summary>The width in pixels that <paramref name="text"/> takes at font size <paramref name="size"/>.</summary>
    float MeasureText(string text, float size);
}

/// <summary>Draws with SkiaSharp onto a raster surface and encodes PNG.</summary>
public sealed class SkiaCanvas : ICanvas, IDisposable
{
    readonly SKSurface _surface;
    readonly SKCanvas _c;
    readonly SKTypeface _typeface;
    readonly SKTypeface _bold;
    /// <summary>Width of the image in pixels.</summary>
    public int Width { get; }
    /// <summary>Height of the image in pixels.</summary>
    public int Height { get; }

    /// <summary>A white raster image of the given size that draws text with <paramref name="typeface"/> (and <paramref name="bold"/>, else the same face, for bold text).</summary>
    public SkiaCanvas(int width, int height, SKTypeface typeface, SKTypeface? bold = null)
    {
        if (width <= 0 || height <= 0 || (long)width * height > 400_000_000L)
            throw new SharpFormerException($"image size {width}×{height} is not drawable");
        Width = width; Height = height;
        _surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new SharpFormerException($"could not create a {width}×{height} image");
        _c = _surface.Canvas;
        _c.Clear(SKColors.White);
        _typeface = typeface;
        _bold = bold ?? typeface;
    }

    /// <summary>A measurer with the CJK font, for laying out before a canvas exists.</summary>
    public static Func<string, float, float> Measurer(SKTypeface typeface) => (text, size) =>
    {
        using var font = new SKFont(typeface, size);
        return font.MeasureText(text);
    };

    static SKColor C(Rgb c) => new(c.R, c.G, c.B);

    /// <inheritdoc/>
    public void FillRect(RectF r, Rgb colour)
    {
        using var p = new SKPaint { Color = C(colour), IsAntialias = false, Style = SKPaintStyle.Fill };
        _c.DrawRect(r.X, r.Y, r.Width, r.Height, p);
    }

    /// <inheritdoc/>
    public void StrokeRect(RectF r, Rgb colour, float width)
    {
        using var p = new SKPaint { Color = C(colour), IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = width };
        _c.DrawRect(r.X, r.Y, r.Width, r.Height, p);
    }

    /// <inheritdoc/>
    public void Line(float x0, float y0, float x1, float y1, Rgb colour, float width)
    {
        using var p = new SKPaint { Color = C(colour), IsAntialias = true, StrokeWidth = width };
        _c.DrawLine(x0, y0, x1, y1, p);
    }

    /// <inheritdoc/>
    public void Text(string text, float x, float y, float size, Rgb colour, int align = -1, float degrees = 0, bool bold = false)
    {
        using var font = new SKFont(bold ? _bold : _typeface, size) { Subpixel = true, Edging = SKFontEdging.Antialias };
        using var p = new SKPaint { Color = C(colour), IsAntialias = true };
        var a = align < 0 ? SKTextAlign.Left : align == 0 ? SKTextAlign.Center : SKTextAlign.Right;
        if (degrees != 0)
        {
            _c.Save();
            _c.Translate(x, y);
            _c.RotateDegrees(degrees);
            _c.DrawText(text, 0, 0, a, font, p);
            _c.Restore();
        }
        else _c.DrawText(text, x, y, a, font, p);
    }

    /// <inheritdoc/>
    public float MeasureText(string text, float size)
    {
        using var font = new SKFont(_typeface, size);
        return font.MeasureText(text);
    }

    /// <summary>The image as PNG bytes.</summary>
    public byte[] EncodePng()
    {
        using var image = _surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Releases the Skia surface.</summary>
    public void Dispose() { _surface.Dispose(); }
}

/// <summary>Writes SVG text; needs no graphics library (text widths are estimated: CJK 1 em, others about 0.6 em).</summary>
public sealed class SvgCanvas : ICanvas
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    readonly StringBuilder _body = new();
    /// <summary>Width of the image in pixels.</summary>
    public int Width { get; }
    /// <summary>Height of the image in pixels.</summary>
    public int Height { get; }

    /// <summary>An empty SVG document of the given size.</summary>
    public SvgCanvas(int width, int height) { Width = width; Height = height; }

    /// <summary>An estimate of the width of <paramref name="text"/> at font size <paramref name="size"/> without a font: CJK characters a full em, Latin letters about 0.56–0.68 em.</summary>
    public static float EstimateWidth(string text, float size)
    {
        float w = 0;
        foreach (var r in text.EnumerateRunes())
            w += AttentionReport.DisplayWidth(r.ToString()) == 2 ? size : r.Value < 128 ? (char.IsUpper((char)r.Value) ? 0.68f : 0.56f) * size : 0.8f * size;
        return w;
    }

    static string F(float v) => v.ToString("0.##", Inv);
    static string Esc(string s) => System.Security.SecurityElement.Escape(s) ?? "";

    /// <inheritdoc/>
    public void FillRect(RectF r, Rgb colour) =>
        _body.Append($"<rect x=\"{F(r.X)}\" y=\"{F(r.Y)}\" width=\"{F(r.Width)}\" height=\"{F(r.Height)}\" fill=\"{colour.Hex}\"/>\n");

    /// <inheritdoc/>
    public void StrokeRect(RectF r, Rgb colour, float width) =>
        _body.Append($"<rect x=\"{F(r.X)}\" y=\"{F(r.Y)}\" width=\"{F(r.Width)}\" height=\"{F(r.Height)}\" fill=\"none\" stroke=\"{colour.Hex}\" stroke-width=\"{F(width)}\"/>\n");

    /// <inheritdoc/>
    public void Line(float x0, float y0, float x1, float y1, Rgb colour, float width) =>
        _body.Append($"<line x1=\"{F(x0)}\" y1=\"{F(y0)}\" x2=\"{F(x1)}\" y2=\"{F(y1)}\" stroke=\"{colour.Hex}\" stroke-width=\"{F(width)}\"/>\n");

    /// <inheritdoc/>
    public void Text(string text, float x, float y, float size, Rgb colour, int align = -1, float degrees = 0, bool bold = false)
    {
        var anchor = align < 0 ? "start" : align == 0 ? "middle" : "end";
        var rot = degrees != 0 ? $" transform=\"rotate({F(degrees)} {F(x)} {F(y)})\"" : "";
        var weight = bold ? " font-weight=\"bold\"" : "";
        _body.Append($"<text x=\"{F(x)}\" y=\"{F(y)}\" font-size=\"{F(size)}\" fill=\"{colour.Hex}\" text-anchor=\"{anchor}\"{weight}{rot} xml:space=\"preserve\">{Esc(text)}</text>\n");
    }

    /// <inheritdoc/>
    public float MeasureText(string text, float size) => EstimateWidth(text, size);

    /// <summary>The SVG document (with a white background and <paramref name="title"/> as its title element).</summary>
    public string ToSvg(string title) =>
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
        $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" " +
        "font-family=\"'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif\">\n" +
        $"<title>{Esc(title)}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n" + _body + "</svg>\n";
}
