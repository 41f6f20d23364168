using SharpFormer.Checkpoints;

namespace SharpFormer.Models;

/// <summary>
/// A family's sizes to check: (key, value, limit) for each size, (what, rows, columns) of its largest matrices, and
/// the config key of the layer count, its value, and the name of a tensor every layer has.
/// </summary>
public sealed record ConfigSizes(
    (string Key, int Value, int Max)[] Sizes, (string What, int Rows, int Cols)[] Matrices,
    string LayersKey, int Layers, Func<int, string> TensorOfLayer);

/// <summary>
/// Checks a config's sizes before a model allocates anything from them: each size within a sane limit, each weight
/// matrix addressable by one .NET array, and the layer count the checkpoint actually holds. A config claiming
/// 1,000,000,000 layers would otherwise be allocated (and randomly initialised) layer by layer before any tensor
/// was found missing.
/// </summary>
public static class ConfigLimits
{
    /// <summary>Largest layer count accepted (the largest public GPT/BERT-style models have about 100).</summary>
    public const int MaxLayers = 1024;
    /// <summary>Largest hidden, intermediate or head count accepted.</summary>
    public const int MaxWidth = 1 << 17;
    /// <summary>Largest vocabulary, position or label count accepted.</summary>
    public const int MaxEntries = 1 << 22;

    /// <summary>
    /// The one check every model loader calls before building layers; <paramref name="checkpoint"/> is null for a new
    /// (randomly initialised) model, which gets only the limits.
    /// </summary>
    public static void Check(ModelConfig config, CheckpointReader? checkpoint)
    {
        var (sizes, matrices, layersKey, layers, tensorOfLayer) = config.Sizes();
        foreach (var (key, value, max) in sizes) Within(key, value, max);
        foreach (var (what, rows, cols) in matrices) Matrix(what, rows, cols);
        Layers(checkpoint, layersKey, layers, tensorOfLayer);
    }

    static void Within(string key, int value, int max)
    {
        if (value > max) throw new SharpFormerException($"config.json: {key} {value} is beyond what SharpFormer accepts ({max}); the config is probably corrupt");
    }

    static void Matrix(string what, int rows, int cols)
    {
        if ((long)rows * cols > Array.MaxLength)
            throw new SharpFormerException($"config.json: a {what} matrix of {(long)rows * cols:N0} values is larger than one array can hold");
    }

    /// <summary>The checkpoint must hold every layer the config names (it may hold more: HuggingFace then ignores the rest).</summary>
    static void Layers(CheckpointReader? checkpoint, string key, int layers, Func<int, string> tensorOfLayer)
    {
        if (checkpoint is null || checkpoint.Contains(tensorOfLayer(layers - 1))) return;
        int present = 0;
        while (present < layers && checkpoint.Contains(tensorOfLayer(present))) present++;
        throw new SharpFormerException($"config.json: {key} is {layers} but {checkpoint.FileName} has {present} layer(s)");
    }
}
