using System.Text.Json;

namespace SharpFormer.Checkpoints;

/// <summary>A checkpoint split over several safetensors files, described by <c>model.safetensors.index.json</c> (its <c>weight_map</c>).</summary>
public sealed class ShardedSafeTensors : ITensorSource
{
    readonly Dictionary<string, SafeTensorsFile> _byTensor = new(StringComparer.Ordinal);
    readonly List<SafeTensorsFile> _shards = new();

    /// <inheritdoc/>
    public string Describe { get; }

    /// <summary>Opens every shard named by the index file's <c>weight_map</c> (shards are looked up beside the index).</summary>
    public ShardedSafeTensors(string indexPath)
    {
        Describe = Path.GetFileName(indexPath);
        var dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = JsonDocument.Parse(Utf8Text.ReadAllBytes(indexPath));
            weightMap = doc.RootElement.GetProperty("weight_map").EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new SharpFormerException($"{Describe}: not a valid safetensors index (needs a \"weight_map\" object)");
        }
        try
        {
            var opened = new Dictionary<string, SafeTensorsFile>();
            foreach (var (tensor, shard) in weightMap)
            {
                if (shard.Contains('/') || shard.Contains('\\') || shard.StartsWith('.'))
                    throw new SharpFormerException($"{Describe}: shard name '{shard}' must be a plain file name in the model folder");
                if (!opened.TryGetValue(shard, out var file))
                {
                    var path = Path.Combine(dir, shard);
                    if (!File.Exists(path)) throw new SharpFormerException($"{Describe}: shard {shard} (holding '{tensor}') is missing");
                    file = new SafeTensorsFile(path);
                    opened[shard] = file;
                    _shards.Add(file);
                }
                if (!file.Contains(tensor)) throw new SharpFormerException($"{shard}: tensor '{tensor}' listed in {Describe} is not in the shard");
                _byTensor[tensor] = file;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<string> Names => _byTensor.Keys;
    /// <inheritdoc/>
    public bool Contains(string name) => _byTensor.ContainsKey(name);
    /// <inheritdoc/>
    public int[] ShapeOf(string name) => _byTensor[name].ShapeOf(name);
    /// <inheritdoc/>
    public Tensor ReadFloat32(string name) => _byTensor[name].ReadFloat32(name);
    /// <inheritdoc/>
    public bool TryUseInPlace<T>(string name, Func<ReadOnlySpan<float>, T> use, out T result) => _byTensor[name].TryUseInPlace(name, use, out result);

    /// <summary>Closes every shard.</summary>
    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }
}
