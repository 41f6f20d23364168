namespace SharpFormer.Checkpoints;

/// <summary>
/// The weights of a HuggingFace model folder, whichever file holds them (model.safetensors, a sharded
/// safetensors index, pytorch_model.bin), looked up by HuggingFace parameter name. Tolerates checkpoints
/// saved from the base model (no <c>bert.</c> / <c>transformer.</c> prefix) and old LayerNorm names
/// (<c>gamma</c>/<c>beta</c>); checks every shape against what the config implies.
/// </summary>
public sealed class CheckpointReader : IDisposable
{
    readonly ITensorSource _source;
    readonly string _basePrefix;
    readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>The weight file's name, for error messages.</summary>
    public string FileName => _source.Describe;

    /// <summary>Reads weights from <paramref name="source"/>; <paramref name="basePrefix"/> is the base model's prefix ("bert." or "transformer."), which a checkpoint of the bare base model lacks.</summary>
    public CheckpointReader(ITensorSource source, string basePrefix)
    {
        _source = source;
        _basePrefix = basePrefix;
    }

    /// <summary>The files HuggingFace looks for, in its order of preference.</summary>
    public static readonly string[] WeightFiles =
        ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"];

    /// <summary>Opens the weights of the model folder <paramref name="modelDir"/> (see <see cref="OpenWeights"/>).</summary>
    public static CheckpointReader Open(string modelDir, string basePrefix) => new(OpenWeights(modelDir), basePrefix);

    /// <summary>The weight file of a model folder that HuggingFace would load.</summary>
    public static ITensorSource OpenWeights(string modelDir)
    {
        foreach (var f in WeightFiles)
        {
            var path = Path.Combine(modelDir, f);
            if (!File.Exists(path)) continue;
            return f switch
            {
                "model.safetensors" => new SafeTensorsFile(path),
                "model.safetensors.index.json" => new ShardedSafeTensors(path),
                "pytorch_model.bin" => new PyTorchCheckpoint(path),
                _ => throw new SharpFormerException($"{f}: sharded pytorch_model.bin checkpoints are not supported; convert to safetensors"),
            };
        }
        throw new SharpFormerException($"{modelDir}: no weights found (looked for {string.Join(", ", WeightFiles)})");
    }

    IEnumerable<string> Candidates(string name)
    {
        var names = new List<string> { name };
        if (name.StartsWith(_basePrefix, StringComparison.Ordinal)) names.Add(name[_basePrefix.Length..]);
        else names.Add(_basePrefix + name);
        foreach (var n in names.ToArray())
        {
            if (n.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) names.Add(n[..^"weight".Length] + "gamma");
            if (n.EndsWith("LayerNorm.bias", StringComparison.Ordinal)) names.Add(n[..^"bias".Length] + "beta");
        }
        return names;
    }

    /// <summary>True when the checkpoint holds <paramref name="name"/> under any of the names it tolerates.</summary>
    public bool Contains(string name) => Candidates(name).Any(_source.Contains);

    /// <summary>Loads a tensor that must exist and have this shape.</summary>
    public Tensor Load(string name, params int[] shape) =>
        TryLoad(name, shape) ?? throw new SharpFormerException($"{FileName}: tensor '{name}' is missing");

    /// <summary>Loads a tensor if the checkpoint has it (its shape must then match), else null.</summary>
    public Tensor? TryLoad(string name, params int[] shape) => Find(name, shape) is { } found ? _source.ReadFloat32(found) : null;

    /// <summary>
    /// If the checkpoint has the tensor (its shape must then match), hands its float32 values to <paramref name="use"/>
    /// and returns the result, else null. The values come straight from the mapped file when stored as F32, else from a
    /// temporary conversion: for data read once (e.g. packed for the GEMM), so that no float32 copy outlives the call.
    /// </summary>
    public T? TryUse<T>(string name, int[] shape, Func<ReadOnlySpan<float>, T> use) where T : class
    {
        if (Find(name, shape) is not { } found) return null;
        return _source.TryUseInPlace(found, use, out var result) ? result : use(_source.ReadFloat32(found).Data);
    }

    /// <summary>The name the checkpoint stores a tensor under (marked used), after checking its shape; null if absent.</summary>
    string? Find(string name, int[] shape)
    {
        var found = Candidates(name).FirstOrDefault(_source.Contains);
        if (found is null) return null;
        var actual = _source.ShapeOf(found);
        if (!actual.AsSpan().SequenceEqual(shape))
            throw new SharpFormerException($"{FileName}: tensor '{found}' has shape [{string.Join(", ", actual)}], the config implies [{string.Join(", ", shape)}]");
        _used.Add(found);
        return found;
    }

    /// <summary>Tensors in the checkpoint that no layer asked for.</summary>
    public IEnumerable<string> Unused => _source.Names.Where(n => !_used.Contains(n));

    /// <summary>Closes the weight file.</summary>
    public void Dispose() => _source.Dispose();
}
