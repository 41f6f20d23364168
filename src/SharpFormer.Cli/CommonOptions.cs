using System.CommandLine;
using SharpFormer.Hub;
using SharpFormer.Kernels;
using SharpFormer.Tasks;

namespace SharpFormer.Cli;

/// <summary>Options several commands share, defined once so their names and help read the same everywhere.</summary>
public static class CommonOptions
{
    public static readonly Option<int?> Threads = new("--threads") { Description = "Threads for the numeric kernels (default: all cores).", Recursive = true };

    /// <summary>--source of every command that takes a model id: which hub ids come from (see <see cref="HubSources"/>).</summary>
    public static readonly Option<string?> Source = new("--source")
    {
        Description = "The hub model ids come from: hf (the HuggingFace Hub, the default) or modelscope (default: $SHARPFORMER_SOURCE, else hf).",
        HelpName = "hf|modelscope",
        Recursive = true,
    };

    public static Option<string> Model(bool required = true) => new("--model", "-m")
    {
        Description = "A HuggingFace model folder (config.json, weights, tokenizer files), or a model id ORG/NAME[@REVISION] (from the hub cache, downloaded when missing; see --source).",
        Required = required,
        CustomParser = ModelFolder,
    };

    /// <summary>--model that defaults to one of the models SharpFormer ships (<see cref="ShippedModels"/>).</summary>
    public static Option<string> Model(string shipped) => new("--model", "-m")
    {
        Description = $"A HuggingFace model folder (config.json, weights, tokenizer files), or a model id ORG/NAME[@REVISION]; default: the shipped {shipped}.",
        DefaultValueFactory = _ => ShippedModels.PathOf(shipped),
        CustomParser = ModelFolder,
    };

    /// <summary>The folder a --model value names: itself, or a hub id's cached snapshot (<see cref="HubModels.ToFolder"/>); failures become parse errors.</summary>
    public static string? ModelFolder(System.CommandLine.Parsing.ArgumentResult r)
    {
        var value = r.Tokens[^1].Value;
        try { return HubModels.ToFolder(value, r.GetValue(Source)); }
        catch (SharpFormerException e)
        {
            r.AddError(e.Message);
            return null;
        }
    }

    /// <summary>--dtype of the inference commands: how the packed weights of the matrix products are stored (read with <see cref="Precision"/>).</summary>
    public static Option<string> DType() => new("--dtype")
    {
        Description = "Weights of the matrix products: f32; bf16 (half the memory and weight traffic, float32 arithmetic; outputs differ slightly); "
                      + "or int8 (a quarter of the memory, integer products with activations quantised per token; outputs differ by a few percent).",
        HelpName = "f32|bf16|int8",
        DefaultValueFactory = _ => "f32",
    };

    /// <summary>The value of a <see cref="DType"/> option; anything else is a one-line user error.</summary>
    public static WeightPrecision Precision(this ParseResult r, Option<string> dtype) =>
        WeightPrecisions.FromName(r.GetValue(dtype)) ?? throw new SharpFormerException($"--dtype must be f32, bf16 or int8 (got '{r.GetValue(dtype)}')");

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON object instead of human-readable text." };

    /// <summary>--decode of the token-classification commands (read with <see cref="Decoding"/>).</summary>
    public static Option<string> Decode() => new("--decode")
    {
        Description = "How tokens get tags: argmax (each token's most probable label, as HuggingFace's pipeline) or bio (the most probable valid BIO sequence: no I-X without B-X before it).",
        HelpName = "argmax|bio",
        DefaultValueFactory = _ => "argmax",
    };

    public static TagDecoding Decoding(this ParseResult r, Option<string> decode) => r.GetValue(decode) switch
    {
        "argmax" => TagDecoding.Argmax,
        "bio" => TagDecoding.Bio,
        var s => throw new SharpFormerException($"--decode must be argmax or bio (got '{s}')"),
    };
}
