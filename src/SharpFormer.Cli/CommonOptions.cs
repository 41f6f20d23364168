using System.CommandLine;

namespace SharpFormer.Cli;

/// <summary>Options several commands share, defined once so their names and help read the same everywhere.</summary>
public static class CommonOptions
{
    public static readonly Option<int?> Threads = new("--threads") { Description = "Threads for the numeric kernels (default: all cores).", Recursive = true };

    public static Option<string> Model(bool required = true) => new("--model", "-m")
    {
        Description = "A HuggingFace model folder (config.json, weights, tokenizer files).",
        Required = required,
    };

    /// <summary>--model that defaults to one of the models SharpFormer ships (<see cref="ShippedModels"/>).</summary>
    public static Option<string> Model(string shipped) => new("--model", "-m")
    {
        Description = $"A HuggingFace model folder (config.json, weights, tokenizer files); default: the shipped {shipped}.",
        DefaultValueFactory = _ => ShippedModels.PathOf(shipped),
    };

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON object instead of human-readable text." };
}
