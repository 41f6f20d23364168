using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using SharpFormer.AttentionViews;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SkiaSharp;

namespace SharpFormer.Tests;

/// <summary>
/// Attention views (issue 5): the tensors they draw are HuggingFace's (goldens), the images and pages are valid
/// and show what they should, the causal check tells a decoder from an encoder, the comparison adds up.
/// </summary>
public class AttentionViewTests
{
    const float Tol = 1e-4f;
    const string BertText = "今天天气很好适合出门";
    static string Bert => SharedPaths.Fixture("bert-tiny");
    static string Gpt2 => SharedPaths.Fixture("gpt2-tiny");

    static readonly Lazy<AttentionMap> BertMap = new(() => AttentionMap.Compute(Bert, BertText));
    static readonly Lazy<AttentionMap> Gpt2Map = new(() => AttentionMap.Compute(Gpt2, Gpt2Prompt("prompt_zh").Text));

    static (string Text, int[] Ids) Gpt2Prompt(string name)
    {
        var g = JsonNode.Parse(File.ReadAllText(SharedPaths.Fixture("gpt2-tiny", "goldens.json")))!["prompts"]![name]!;
        return (g["text"]!.GetValue<string>(), g["input_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray());
    }

    static string TempFile(string ext) => Path.Combine(Path.GetTempPath(), $"sf-attn-{Guid.NewGuid():N}.{ext}");

    // ---- the tensors the views draw -------------------------------------------------------------------

    [Fact]
    public void AttentionView_BertMapHoldsTheGoldenAttentions()
    {
        var map = BertMap.Value;
        using var g = new SafeTensorsFile(Path.Combine(Bert, "goldens.safetensors"));
        Assert.Equal(g.ReadInt64("single.input_ids").Select(x => (int)x), map.InputIds);
        Assert.Equal(["[CLS]", "今", "天", "天", "气", "很", "好", "适", "合", "出", "门", "[SEP]"], map.Tokens);
        Assert.Equal(AttentionKind.Bidirectional, map.Kind);
        Assert.Equal(2, map.Layers);
        for (int l = 0; l < map.Layers; l++)
            TensorAssert.Close(g.ReadFloat32($"single.attentions.{l}"), map.Attentions[l], Tol, $"single.attentions.{l}");
        Assert.Equal([0, 11], map.SinkPositions);
    }

    [Theory]
    [InlineData("prompt_zh")]
    [InlineData("prompt_en")]
    [InlineData("prompt_mixed")]
    public void AttentionView_Gpt2MapHoldsTheGoldenAttentions(string prompt)
    {
        var (text, ids) = Gpt2Prompt(prompt);
        var map = AttentionMap.Compute(Gpt2, text);
        Assert.Equal(ids, map.InputIds);
        Assert.Equal(AttentionKind.Causal, map.Kind);
        using var g = new SafeTensorsFile(Path.Combine(Gpt2, "goldens.safetensors"));
        for (int l = 0; l < map.Layers; l++)
            TensorAssert.Close(g.ReadFloat32($"{prompt}.attentions.{l}"), map.Attentions[l], Tol, $"{prompt}.attentions.{l}");
    }

    [Fact]
    public void AttentionView_HtmlEmbedsTheGoldenAttentions()
    {
        using var g = new SafeTensorsFile(Path.Combine(Bert, "goldens.safetensors"));
        var (w, tokens, layers, heads, t) = AttentionHtml.ReadData(AttentionHtml.Build(BertMap.Value));
        Assert.Equal(BertMap.Value.Tokens, tokens);
        int per = heads * t * t;
        for (int l = 0; l < layers; l++)
            TensorAssert.Close(g.ReadFloat32($"single.attentions.{l}").Data, w.AsSpan(l * per, per), Tol, $"html layer {l}");

        using var g2 = new SafeTensorsFile(Path.Combine(Gpt2, "goldens.safetensors"));
        (w, _, layers, heads, t) = AttentionHtml.ReadData(AttentionHtml.Build(Gpt2Map.Value));
        per = heads * t * t;
        for (int l = 0; l < layers; l++)
            TensorAssert.Close(g2.ReadFloat32($"prompt_zh.attentions.{l}").Data, w.AsSpan(l * per, per), Tol, $"html gpt2 layer {l}");
    }

    [Fact]
    public void AttentionView_Gpt2LabelsShowCharactersSplitAcrossByteTokens()
    {
        // 人 is one byte-level token; 工 is split over two (its first two bytes, then the last one).
        var labels = Gpt2Map.Value.Labels;
        Assert.Equal("人", labels[0]);
        Assert.Equal("工…", labels[1]);
        Assert.Equal("…工", labels[2]);
        Assert.Equal("␣my", AttentionMap.Compute(Gpt2, "Hello, my dog").Labels[2]);
    }

    // ---- images ------------------------------------------------------------------------------------------

    /// <summary>Decodes the PNG, checks its size, and checks that darker cells always carry more weight.</summary>
    static void AssertPngCellsOrderedLikeWeights(HeatmapFigure fig, byte[] png, int width, int height, Func<int, int, int, float?> weight)
    {
        using var bmp = SKBitmap.Decode(png);
        Assert.NotNull(bmp);
        Assert.Equal(width, bmp.Width);
        Assert.Equal(height, bmp.Height);
        var cells = new List<(float W, double Lum)>();
        for (int p = 0; p < fig.Panels.Count; p++)
            for (int q = 0; q < fig.Panels[p].Rows; q++)
                for (int k = 0; k < fig.Panels[p].Columns; k++)
                {
                    if (weight(p, q, k) is not float w) continue;
                    var r = fig.CellRect(p, q, k);
                    var c = bmp.GetPixel((int)r.CenterX, (int)r.CenterY);
                    var expected = fig.ColourOf(w);
                    Assert.True(Math.Abs(c.Red - expected.R) <= 2 && Math.Abs(c.Green - expected.G) <= 2 && Math.Abs(c.Blue - expected.B) <= 2,
                        $"panel {p} cell ({q},{k}) weight {w}: pixel {c}, expected {expected.Hex}");
                    cells.Add((w, new Rgb(c.Red, c.Green, c.Blue).Luminance));
                }
        Assert.True(cells.Count > 10);
        // Sorted by weight, the luminance never rises (beyond 8-bit rounding), and clearly different weights get clearly different shades.
        var sorted = cells.OrderBy(c => c.W).ToList();
        for (int i = 1; i < sorted.Count; i++)
            Assert.True(sorted[i].Lum <= sorted[i - 1].Lum + 0.006, $"weight {sorted[i].W} is lighter than weight {sorted[i - 1].W}");
        double span = fig.Max / 20;
        foreach (var a in sorted)
            foreach (var b in sorted)
                if (b.W - a.W > span) Assert.True(b.Lum < a.Lum, $"weight {b.W} is not darker than weight {a.W}");
    }

    [Fact]
    public void AttentionView_HeadPngHasRequestedSizeAndColoursOrderedLikeWeights()
    {
        var map = BertMap.Value;
        var fig = AttentionImages.Head(map, 1, 2);
        var png = fig.ToPng(640, 480);
        AssertPngCellsOrderedLikeWeights(fig, png, 640, 480, (_, q, k) => map.Weight(1, 2, q, k));
    }

    [Fact]
    public void AttentionView_LayerGridPngHasRequestedSizeAndColoursOrderedLikeWeights()
    {
        var map = BertMap.Value;
        var fig = AttentionImages.Layer(map, 0);
        var png = fig.ToPng(900, 760);
        Assert.Equal(map.Heads, fig.Panels.Count);
        AssertPngCellsOrderedLikeWeights(fig, png, 900, 760, (p, q, k) => map.Weight(0, p, q, k));
    }

    [Fact]
    public void AttentionView_Gpt2PngDrawsMaskedCellsGreyAndTheRestByWeight()
    {
        var map = Gpt2Map.Value;
        var fig = AttentionImages.Head(map, 1, 3);
        var png = fig.ToPng(700, 700);
        AssertPngCellsOrderedLikeWeights(fig, png, 700, 700, (_, q, k) => k <= q ? map.Weight(1, 3, q, k) : null);
        using var bmp = SKBitmap.Decode(png);
        var r = fig.CellRect(0, 0, map.Length - 1);
        var c = bmp.GetPixel((int)r.CenterX, (int)r.CenterY);
        Assert.Equal((Rgb.Masked.R, Rgb.Masked.G, Rgb.Masked.B), (c.Red, c.Green, c.Blue));
    }

    [Fact]
    public void AttentionView_CliWritesPngOfTheRequestedSize()
    {
        var file = TempFile("png");
        try
        {
            var r = CliHarness.Run("attention", "--model", Bert, "--layer", "1", "--head", "0", "--format", "png", "--width", "520", "--height", "430", "--out", file, BertText);
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var bmp = SKBitmap.Decode(file);
            Assert.Equal((520, 430), (bmp.Width, bmp.Height));
            // Something dark (a cell or text) and mostly white background.
            Assert.Contains(Enumerable.Range(0, 520).SelectMany(x => new[] { bmp.GetPixel(x, 215) }), p => p.Red < 100);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void AttentionView_SvgParsesAsXml()
    {
        var map = BertMap.Value;
        var svg = AttentionImages.Head(map, 0, 1).ToSvg();
        var doc = XDocument.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(ns + "svg", doc.Root!.Name);
        Assert.True(doc.Descendants(ns + "rect").Count() >= map.Length * map.Length);
        Assert.Contains(doc.Descendants(ns + "text"), t => t.Value == "今");
        Assert.Contains(doc.Descendants(ns + "text"), t => t.Value == "[SEP]");

        var grid = XDocument.Parse(AttentionImages.Layer(Gpt2Map.Value, 1).ToSvg(800, 800));
        Assert.Equal("800", grid.Root!.Attribute("width")!.Value);
        Assert.Contains(grid.Descendants(ns + "text"), t => t.Value == "head 3");
    }

    [Fact]
    public void AttentionView_MissingCjkFontNamesThePackage()
    {
        var empty = Directory.CreateTempSubdirectory("sf-nofonts-");
        try
        {
            var e = Assert.Throws<SharpFormerException>(() => CjkFont.Load([empty.FullName], useKnownPaths: false));
            Assert.Contains("fonts-noto-cjk", e.Message);
            Assert.DoesNotContain("\n", e.Message);
        }
        finally { empty.Delete(true); }
    }

    [Fact]
    public void AttentionView_SystemCjkFontDrawsChinese()
    {
        var (typeface, path, _) = CjkFont.Load(null);
        Assert.True(typeface.ContainsGlyphs("今天天气很好适合出门"), $"{path} lacks Chinese glyphs");
        if (path.EndsWith("NotoSansCJK-Regular.ttc")) Assert.Contains("SC", typeface.FamilyName);
    }

    // ---- HTML viewer in headless Chromium ---------------------------------------------------------------

    const string ChromiumPath = "/usr/bin/chromium";

    sealed record BrowserRun(string Stdout, string Stderr, byte[]? Screenshot);

    static BrowserRun Chromium(string url, bool screenshot)
    {
        if (!File.Exists(ChromiumPath))
            Assert.Fail($"Chromium is missing ({ChromiumPath}): run tests/install-test-deps.sh (installs Debian's chromium and fonts-noto-cjk)");
        var profile = Directory.CreateTempSubdirectory("sf-chromium-");
        var shot = Path.Combine(profile.FullName, "shot.png");
        try
        {
            var psi = new ProcessStartInfo(ChromiumPath) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                                      "--disable-component-update", "--disable-sync", $"--user-data-dir={profile.FullName}", "--enable-logging=stderr", "--v=0",
                                      "--hide-scrollbars", "--window-size=1200,1600" })
                psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(screenshot ? $"--screenshot={shot}" : "--dump-dom");
            psi.ArgumentList.Add(url);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(120_000)) { p.Kill(true); Assert.Fail($"chromium did not finish on {url}"); }
            var console = stderr.Result.Split('\n').Where(l => l.Contains(":CONSOLE", StringComparison.Ordinal) || l.Contains("Uncaught", StringComparison.Ordinal)).ToList();
            Assert.True(console.Count == 0, $"console output on {url}:\n{string.Join("\n", console)}");
            return new BrowserRun(stdout.Result, stderr.Result, screenshot && File.Exists(shot) ? File.ReadAllBytes(shot) : null);
        }
        finally { profile.Delete(true); }
    }

    public static TheoryData<string> Models() => new() { "bert-tiny", "gpt2-tiny" };

    [Theory]
    [MemberData(nameof(Models))]
    public void AttentionView_HtmlRendersInChromiumAndFollowsTheHash(string folder)
    {
        var map = folder == "bert-tiny" ? BertMap.Value : Gpt2Map.Value;
        var file = TempFile("html");
        try
        {
            AtomicFile.WriteAllText(file, AttentionHtml.Build(map));
            var html = File.ReadAllText(file);
            Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));
            Assert.DoesNotContain("https://", html);
            Assert.DoesNotContain("<script src", html);
            Assert.DoesNotContain("<link", html);
            var url = new Uri(file).AbsoluteUri;

            var dom = Chromium(url + "#layer=1&head=2", screenshot: false).Stdout;
            Assert.Contains("data-rendered=\"layer=1;head=2\"", dom);
            Assert.Contains("layer 1 · head 2", dom);
            // The head view drew every token on both sides and the model view one thumbnail per layer × head.
            Assert.True(CountOf(dom, "class=\"tok") >= 2 * map.Length, "head view tokens missing");
            Assert.Equal(map.Layers * map.Heads, CountOf(dom, "<canvas width="));
            Assert.Contains(map.Labels[1], dom);

            var first = Chromium(url + "#layer=0&head=0", screenshot: true).Screenshot;
            var other = Chromium(url + "#layer=1&head=2", screenshot: true).Screenshot;
            Assert.NotNull(first);
            Assert.NotNull(other);
            using var a = SKBitmap.Decode(first);
            using var b = SKBitmap.Decode(other);
            Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
            long differing = 0;
            for (int y = 0; y < a.Height; y += 2)
                for (int x = 0; x < a.Width; x += 2)
                    if (a.GetPixel(x, y) != b.GetPixel(x, y)) differing++;
            Assert.True(differing > 500, $"selecting layer 1 / head 2 changed only {differing} sampled pixels");
        }
        finally { File.Delete(file); }
    }

    static int CountOf(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    // ---- causal mask -----------------------------------------------------------------------------------

    [Theory]
    [InlineData("prompt_zh")]
    [InlineData("prompt_en")]
    [InlineData("prompt_mixed")]
    public void AttentionView_CausalCheckIsExactlyZeroForGpt2(string prompt)
    {
        var map = AttentionMap.Compute(Gpt2, Gpt2Prompt(prompt).Text);
        var check = CausalMask.Check(map);
        Assert.Equal(0.0, check.MaxAboveDiagonal);
        Assert.Equal(0, check.NonZeroAboveDiagonal);
        Assert.Null(check.At);
        Assert.True(check.IsCausal);
        Assert.Equal((long)map.Layers * map.Heads * map.Length * (map.Length - 1) / 2, check.Checked);
    }

    [Fact]
    public void AttentionView_CausalCheckFlagsBertAsNotCausal()
    {
        var map = BertMap.Value;
        var check = CausalMask.Check(map);
        Assert.False(check.IsCausal);
        Assert.True(check.MaxAboveDiagonal > 0);
        var (l, h, q, k) = check.At!.Value;
        Assert.True(k > q);
        Assert.Equal(check.MaxAboveDiagonal, map.Weight(l, h, q, k), 6);
        Assert.Contains("bidirectional", CausalMask.Report(map, check));
    }

    [Fact]
    public void AttentionView_CausalMaskTextAndCli()
    {
        var text = CausalMask.Text(4);
        Assert.Contains("3 ● ● ● ●", text);
        Assert.Contains("0 ● · · ·", text);
        Assert.Contains("position 0 can attend to [0]", text);
        Assert.Contains("position 3 can attend to [0..3]", text);

        var r = CliHarness.Run("causal-mask", "--model", Gpt2, "Hello, my dog is cute");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("largest weight above the diagonal: 0\n", r.Stdout.ReplaceLineEndings("\n"));
        Assert.Contains("the causal mask holds", r.Stdout);

        r = CliHarness.Run("causal-mask", "--model", Bert, BertText);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("not causal", r.Stdout);

        var file = TempFile("png");
        try
        {
            r = CliHarness.Run("causal-mask", "--size", "6", "--format", "png", "--width", "400", "--height", "360", "--out", file);
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var bmp = SKBitmap.Decode(file);
            Assert.Equal((400, 360), (bmp.Width, bmp.Height));
        }
        finally { File.Delete(file); }
    }

    // ---- statistics and text report ---------------------------------------------------------------------

    [Fact]
    public void AttentionView_HeadStatisticsFollowTheirDefinitions()
    {
        var map = BertMap.Value;
        int t = map.Length;
        var s = HeadStatistics.Of(map, 1, 2);
        double sink = 0, self = 0, prev = 0;
        for (int q = 0; q < t; q++) { sink += map.Weight(1, 2, q, 0) + map.Weight(1, 2, q, t - 1); self += map.Weight(1, 2, q, q); if (q > 0) prev += map.Weight(1, 2, q, q - 1); }
        Assert.Equal(sink / t, s.SinkShare, 6);
        Assert.Equal(self / t, s.SelfShare, 6);
        Assert.Equal(prev / (t - 1), s.PreviousShare, 6);
        Assert.All(s.RowEntropyBits, e => Assert.InRange(e, 0, Math.Log2(t) + 1e-9));

        // A decoder's first row sees only itself: all its weight on the first token, entropy 0.
        var g = HeadStatistics.Of(Gpt2Map.Value, 0, 0);
        Assert.Equal(0, g.RowEntropyBits[0], 5);
        Assert.Equal(0, g.MaxEntropyBits[0]);
    }

    [Fact]
    public void AttentionView_TextReportListsTopKAndThreshold()
    {
        var r = CliHarness.Run("attention", "--model", Bert, "--layer", "1", "--head", "2", "--top-k", "2", "--min-weight", "0.3", BertText);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var map = BertMap.Value;
        // Row 3 (天): its strongest key and the keys at or above 0.3.
        var row = map.Row(1, 2, 3).ToArray();
        int best = Array.IndexOf(row, row.Max());
        var lines = r.Stdout.Split('\n');
        var top = lines.First(l => l.StartsWith("3:天"));
        Assert.Contains($"{best}:{map.Labels[best]} {row[best]:0.000}", top);
        Assert.Contains("on [CLS]/[SEP]", r.Stdout);
        Assert.Contains("keys with weight ≥ 0.3", r.Stdout);
        var thresholdLines = lines.SkipWhile(l => !l.Contains("keys with weight")).Skip(1).Take(map.Length).ToList();
        for (int q = 0; q < map.Length; q++)
        {
            int expected = map.Row(1, 2, q).ToArray().Count(w => w >= 0.3f);
            int listed = thresholdLines[q].Contains("(none)") ? 0 : thresholdLines[q].Split("→")[1].Split("  ", StringSplitOptions.RemoveEmptyEntries).Length;
            Assert.Equal(expected, listed);
        }
    }

    // ---- CLI errors ----------------------------------------------------------------------------------

    [Fact]
    public void AttentionView_BadInputGivesOneLineErrors()
    {
        CliHarness.AssertOneLineError(CliHarness.Run("attention", "--model", Bert, "--layer", "2", BertText), "--layer 2 is out of range");
        CliHarness.AssertOneLineError(CliHarness.Run("attention", "--model", Gpt2, "--head", "4", "hello"), "--head 4 is out of range");
        CliHarness.AssertOneLineError(CliHarness.Run("attention", "--model", Bert, "--format", "png", BertText), "--out");
        CliHarness.AssertOneLineError(CliHarness.Run("attention", "--model", Bert, "--format", "html", BertText), "--out");
        CliHarness.AssertOneLineError(CliHarness.Run("attention", "--model", Bert, ""), "empty");
        CliHarness.AssertOneLineError(CliHarness.Run("attention", "--model", Bert, "--out", "/nonexistent-dir/x.png", BertText), "does not exist");
        CliHarness.AssertOneLineError(CliHarness.Run("causal-mask"), "--size");
        CliHarness.AssertOneLineError(CliHarness.Run("causal-mask", "--size", "3", "--model", Gpt2, "hi"), "either");
        CliHarness.AssertOneLineError(CliHarness.Run("causal-mask", "--size", "0"), "--size");
        CliHarness.AssertOneLineError(CliHarness.Run("compare", "--model", Bert), "two models");
    }

    // ---- architecture comparison --------------------------------------------------------------------------

    static long SafetensorsElements(string dir)
    {
        using var f = new SafeTensorsFile(Path.Combine(dir, "model.safetensors"));
        return f.Entries.Values.Sum(e => Tensor.ElementCount(e.Shape));
    }

    [Theory]
    [InlineData("bert-tiny")]
    [InlineData("bert-tiny-seqcls")]
    [InlineData("bert-tiny-ner")]
    [InlineData("gpt2-tiny")]
    public void AttentionView_CompareParameterCountsSumToTheTotal(string folder)
    {
        var dir = SharedPaths.Fixture(folder);
        var s = ModelSummary.Load(dir);
        Assert.Equal(0, s.Parameters.Other);
        Assert.Equal(s.TotalParameters, s.Parameters.Total);
        // The checkpoint's own tensors (tied copies absent) add up to the same total.
        Assert.Equal(SafetensorsElements(dir), s.TotalParameters);
        Assert.True(s.Parameters.Embeddings > 0 && s.Parameters.Attention > 0 && s.Parameters.FeedForward > 0 && s.Parameters.LayerNorm > 0);
    }

    [Fact]
    public void AttentionView_CompareBertAndGpt2()
    {
        var c = ModelComparison.Load([Bert, Gpt2]);
        var (bert, gpt) = (c.Models[0], c.Models[1]);
        Assert.StartsWith("bidirectional", bert.AttentionType);
        Assert.StartsWith("causal", gpt.AttentionType);
        // 4 × (q, k, v, o: 32×32 + 32) per layer, 2 layers, for both.
        Assert.Equal(2 * 4 * (32 * 32 + 32), bert.Parameters.Attention);
        Assert.Equal(2 * 4 * (32 * 32 + 32), gpt.Parameters.Attention);
        Assert.Equal(21128L * 32 + 64 * 32 + 2 * 32, bert.Parameters.Embeddings);
        Assert.Equal(50257L * 32 + 64 * 32, gpt.Parameters.Embeddings);
        Assert.Equal((128, 64), (gpt.FfnSize, bert.FfnSize));
        Assert.Contains("WordPiece", bert.Tokenizer);
        Assert.Contains("byte-level BPE", gpt.Tokenizer);

        var r = CliHarness.Run("compare", "--model", Bert, "--model", Gpt2, "--format", "json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        foreach (var m in doc.RootElement.GetProperty("models").EnumerateArray())
        {
            var p = m.GetProperty("parameters");
            long sum = new[] { "embeddings", "attention", "ffn", "layernorm", "heads", "other" }.Sum(k => p.GetProperty(k).GetInt64());
            Assert.Equal(p.GetProperty("total").GetInt64(), sum);
        }
        var md = CliHarness.Run("compare", "--model", Bert, "--model", Gpt2, "--format", "markdown");
        Assert.StartsWith("|  | bert-tiny | gpt2-tiny |", md.Stdout);
        var table = CliHarness.Run("compare", "--model", Bert, "--model", Gpt2);
        Assert.Contains("params: total", table.Stdout);
        Assert.Contains("718,730", table.Stdout);
    }
}
