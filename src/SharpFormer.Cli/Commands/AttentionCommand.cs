using System.CommandLine;
using SharpFormer.AttentionViews;
using SharpFormer.Checkpoints;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer attention</c>: what each token attends to, as text, a heatmap (PNG/SVG) or an HTML viewer.</summary>
public static class AttentionCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Bert);
        var layer = new Option<int?>("--layer", "-l") { Description = "Layer (0-based). text: default every layer; png/svg: default 0; html: the layer shown first." };
        var head = new Option<int?>("--head") { Description = "Head (0-based). text: default every head; png/svg: default a grid of all heads of the layer; html: the head shown first." };
        var format = new Option<string?>("--format", "-f") { Description = "text (default), png, svg or html; without it the --out extension decides." };
        format.AcceptOnlyFromAmong("text", "png", "svg", "html");
        var output = new Option<string?>("--out", "-o") { Description = "The file to write (atomically); required for png and html. text and svg go to stdout without it. Its extension must match the format." }.Checked();
        var topK = new Option<int>("--top-k", "-k") { Description = "text: the strongest keys listed per query.", DefaultValueFactory = _ => 3 };
        var minWeight = new Option<double>("--min-weight") { Description = "text: list every key whose weight is at least this.", DefaultValueFactory = _ => 0.1 };
        var width = new Option<int?>("--width") { Description = "png/svg: image width in pixels (default: fitted to the tokens)." };
        var height = new Option<int?>("--height") { Description = "png/svg: image height in pixels (default: fitted to the tokens)." };
        var text = new Argument<string[]>("text") { Description = "The text to look at (words are joined with spaces; put -- before it if it starts with '-').", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("attention", "Show a BERT or GPT-2 model's attention on a text: top-k report, heatmap (PNG/SVG) or a self-contained HTML viewer.")
        {
            model, layer, head, format, output, topK, minWeight, width, height, text,
        };
        cmd.SetAction(r =>
        {
            var input = string.Join(' ', r.GetValue(text) ?? []);
            if (string.IsNullOrWhiteSpace(input)) throw new SharpFormerException("the text is empty: give a text to look at");
            var outPath = r.GetValue(output);
            var fmt = OutputFiles.Format(r.GetValue(format), outPath);
            if (fmt is "png" or "html" && string.IsNullOrEmpty(outPath))
                throw new SharpFormerException($"--format {fmt} writes a file: give --out FILE.{fmt}");
            int k = r.GetValue(topK);
            double min = r.GetValue(minWeight);
            if (k < 1) throw new SharpFormerException($"--top-k must be at least 1 (got {k})");
            if (!(min >= 0 && min <= 1)) throw new SharpFormerException($"--min-weight must be between 0 and 1 (got {min})");
            int? w = r.GetValue(width), h = r.GetValue(height);
            if (w is < 16 or > 20000 || h is < 16 or > 20000) throw new SharpFormerException("--width and --height must be between 16 and 20000 pixels");

            var map = AttentionMap.Compute(r.GetValue(model)!, input);
            int? l = r.GetValue(layer), hd = r.GetValue(head);
            if (l is int li) map.CheckLayer(li);
            if (hd is int hi) map.CheckHead(hi);
            switch (fmt)
            {
                case "text":
                    Emit(outPath, AttentionReport.Text(map, l, hd, k, min));
                    break;
                case "png":
                {
                    var fig = hd is int one ? AttentionImages.Head(map, l ?? 0, one) : AttentionImages.Layer(map, l ?? 0);
                    var png = fig.ToPng(w, h);
                    AtomicFile.Write(outPath!, s => s.Write(png));
                    Console.WriteLine($"wrote {outPath} ({fig.Width}×{fig.Height} PNG, {Describe(map, l ?? 0, hd)})");
                    break;
                }
                case "svg":
                {
                    var fig = hd is int one ? AttentionImages.Head(map, l ?? 0, one) : AttentionImages.Layer(map, l ?? 0);
                    var svg = fig.ToSvg(w, h);
                    if (outPath is null) Console.Write(svg);
                    else
                    {
                        AtomicFile.WriteAllText(outPath, svg);
                        Console.WriteLine($"wrote {outPath} ({fig.Width}×{fig.Height} SVG, {Describe(map, l ?? 0, hd)})");
                    }
                    break;
                }
                case "html":
                    AtomicFile.WriteAllText(outPath!, AttentionHtml.Build(map, l, hd));
                    Console.WriteLine($"wrote {outPath} (HTML viewer: {map.Layers} layers × {map.Heads} heads, {map.Length} tokens; open it in a browser)");
                    break;
            }
            return 0;
        });
        return cmd;
    }

    static string Describe(AttentionMap map, int layer, int? head) =>
        head is int h ? $"{map.ModelName} layer {layer} head {h}" : $"{map.ModelName} layer {layer}, all {map.Heads} heads";

    internal static void Emit(string? path, string text)
    {
        if (path is null) Console.Write(text);
        else
        {
            AtomicFile.WriteAllText(path, text);
            Console.WriteLine($"wrote {path}");
        }
    }
}
