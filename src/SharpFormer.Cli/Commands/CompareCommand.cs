using System.CommandLine;
using SharpFormer.AttentionViews;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer compare</c>: two (or more) model folders side by side, from their configs, tokenizers and weights.</summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model", "-m")
        {
            Description = "A HuggingFace model folder or model id ORG/NAME; give it twice (or more): --model A --model B.",
            Required = true,
        };
        var format = new Option<string>("--format", "-f") { Description = "table (default), markdown or json.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "markdown", "json");
        var cmd = new Command("compare", "Compare model architectures: family, attention type, sizes, tokenizer, context, parameters by component, objective, tasks.") { models, format };
        cmd.SetAction(r =>
        {
            var dirs = r.GetValue(models) ?? [];
            if (dirs.Length < 2) throw new SharpFormerException("compare needs two models: --model A --model B");
            var comparison = ModelComparison.Load([.. dirs.Select(d => HubModels.ToFolder(d, r.GetValue(CommonOptions.Source)))]);
            Console.Write(r.GetValue(format) switch
            {
                "markdown" => comparison.Markdown(),
                "json" => comparison.Json() + Environment.NewLine,
                _ => comparison.Table(),
            });
            return 0;
        });
        return cmd;
    }
}
