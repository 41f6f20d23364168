using System.CommandLine;
using System.Text.Json;
using SharpFormer.AttentionViews;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer info</c>: what a model folder holds (the one-model form of <c>compare</c>'s summary).</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Bert);
        var json = CommonOptions.Json();
        var cmd = new Command("info", "Describe a model folder: architecture, sizes, parameter count, heads, tokenizer.") { model, json };
        cmd.SetAction(r =>
        {
            var s = ModelSummary.Load(r.GetValue(model)!);
            var info = new Dictionary<string, object>
            {
                ["model_type"] = $"{s.ModelType} ({s.Family}; {s.AttentionType})",
                ["architecture"] = s.Architecture,
                ["layers"] = s.Layers,
                ["heads"] = s.Heads,
                ["kv_heads"] = s.KvHeads,
                ["mlp"] = s.Mlp,
                ["normalisation"] = s.Normalisation,
                ["positions"] = s.PositionEmbeddings,
                ["hidden_size"] = s.HiddenSize,
                ["intermediate_size"] = s.FfnSize,
                ["activation"] = s.Activation,
                ["max_positions"] = s.ContextLength,
                ["vocab_size"] = s.VocabSize,
                ["parameters"] = s.TotalParameters,
                ["heads_present"] = s.HeadsPresent,
                ["head_parameters"] = s.Parameters.Heads,
                ["tokenizer"] = s.Tokenizer,
            };
            if (s.Labels.Count > 0) info["labels"] = string.Join(", ", s.Labels);
            if (s.Untrained.Count > 0) info["untrained"] = string.Join(", ", s.Untrained);
            if (r.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(info, JsonOutput.Options));
            else foreach (var (key, value) in info) Console.WriteLine($"{key,-18} {value}");
            return 0;
        });
        return cmd;
    }
}
