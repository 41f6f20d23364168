using System.CommandLine;
using System.Text.Json;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer info</c>: what a model folder holds.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Bert);
        var json = CommonOptions.Json();
        var cmd = new Command("info", "Describe a model folder: architecture, sizes, parameter count, heads, tokenizer.") { model, json };
        cmd.SetAction(r =>
        {
            var info = ModelInfo.Describe(r.GetValue(model)!);
            if (r.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(info, JsonOutput.Options));
            else foreach (var (key, value) in info) Console.WriteLine($"{key,-22} {value}");
            return 0;
        });
        return cmd;
    }
}
