using System.CommandLine;
using SharpFormer.AttentionViews;
using SharpFormer.Checkpoints;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer causal-mask</c>: the lower-triangular mask of a decoder as ●/· text or an image; with a model and a
/// text, a check of every layer's and head's real attention for weight above the diagonal.
/// </summary>
public static class CausalMaskCommand
{
    public static Command Create()
    {
        var size = new Option<int?>("--size", "-n") { Description = "Draw the mask for this many positions." };
        var model = CommonOptions.Model(required: false);
        var format = new Option<string?>("--format", "-f") { Description = "text (default) or png; without it the --out extension decides." };
        format.AcceptOnlyFromAmong("text", "png");
        var output = new Option<string?>("--out", "-o") { Description = "The file to write (atomically); required for png. Its extension must match the format." }.Checked();
        var width = new Option<int?>("--width") { Description = "png: image width in pixels." };
        var height = new Option<int?>("--height") { Description = "png: image height in pixels." };
        var text = new Argument<string[]>("text") { Description = "With --model: the text whose attention is checked.", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("causal-mask", "Draw the causal mask (position i attends to [0..i]); with --model and a text, verify it on the model's real attention probabilities.")
        {
            size, model, format, output, width, height, text,
        };
        cmd.SetAction(r =>
        {
            int? n = r.GetValue(size);
            var dir = r.GetValue(model);
            var input = string.Join(' ', r.GetValue(text) ?? []);
            if (n is null == dir is null) throw new SharpFormerException("give either --size N or --model DIR and a text");
            if (n is not null && input.Length > 0) throw new SharpFormerException("a text is only used with --model; with --size give no text");
            if (dir is not null && string.IsNullOrWhiteSpace(input)) throw new SharpFormerException("the text is empty: --model needs a text to check");
            var outPath = r.GetValue(output);
            var fmt = OutputFiles.Format(r.GetValue(format), outPath);
            if (fmt is not ("text" or "png")) throw new SharpFormerException($"causal-mask writes text or png, not {fmt}");
            if (fmt == "png" && string.IsNullOrEmpty(outPath)) throw new SharpFormerException("--format png writes a file: give --out FILE.png");
            int? w = r.GetValue(width), h = r.GetValue(height);
            if (w is < 16 or > 20000 || h is < 16 or > 20000) throw new SharpFormerException("--width and --height must be between 16 and 20000 pixels");

            var map = dir is null ? null : AttentionMap.Compute(dir, input);
            int count = map?.Length ?? n!.Value;
            if (map is null && (count < 1 || count > CausalMask.MaxSize))
                throw new SharpFormerException($"--size must be between 1 and {CausalMask.MaxSize} (got {count})");
            if (fmt == "png")
            {
                var fig = CausalMask.Figure(count, map);
                var png = fig.ToPng(w, h);
                AtomicFile.Write(outPath!, s => s.Write(png));
                Console.WriteLine($"wrote {outPath} ({fig.Width}×{fig.Height} PNG)");
                if (map is not null) Console.Write(CausalMask.Report(map, CausalMask.Check(map)));
            }
            else
            {
                var report = CausalMask.Text(count, map?.Labels);
                if (map is not null) report += Environment.NewLine + CausalMask.Report(map, CausalMask.Check(map));
                AttentionCommand.Emit(outPath, report);
            }
            return 0;
        });
        return cmd;
    }
}
