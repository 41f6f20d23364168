using System.CommandLine;
using SharpFormer.Hub;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer download ORG/NAME</c>: a model from the HuggingFace Hub (or ModelScope, <c>--source modelscope</c>) into its Python library's own cache.</summary>
public static class DownloadCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("model") { Description = "The model id, ORG/NAME (e.g. Qwen/Qwen2.5-0.5B-Instruct)." };
        var revision = new Option<string?>("--revision") { Description = "A branch, tag or commit sha (default: main on the HuggingFace Hub, master on ModelScope)." };
        var include = new Option<string[]>("--include")
        {
            Description = "Also download the files matching this glob (fnmatch: * matches across folders), e.g. '*.onnx'. "
                          + "By default only config, tokenizer, generation config and safetensors (pytorch_model.bin when there are none).",
            AllowMultipleArgumentsPerToken = true,
        };
        var endpoint = new Option<string?>("--endpoint") { Description = "The hub's URL (default: $HF_ENDPOINT, else https://huggingface.co; ModelScope: $MODELSCOPE_DOMAIN, else https://www.modelscope.cn)." };
        var cacheDir = CacheDir();
        var token = new Option<string?>("--token") { Description = "Access token for private or gated models (default: $HF_TOKEN, else $HF_HOME/token; ModelScope: $MODELSCOPE_API_TOKEN)." };
        var cmd = new Command("download", "Download a model from the HuggingFace Hub (or ModelScope) into the cache its Python library uses, and print its folder.")
        {
            id, revision, include, endpoint, cacheDir, token,
        };
        cmd.SetAction(async (r, ct) =>
        {
            using var client = HubSources.Create(r.GetValue(CommonOptions.Source), r.GetValue(endpoint), r.GetValue(cacheDir), r.GetValue(token));
            var folder = await client.DownloadAsync(r.GetValue(id)!, r.GetValue(revision), r.GetValue(include) ?? [], HubModels.Progress(), ct);
            Console.WriteLine(folder);
            return 0;
        });
        return cmd;
    }

    /// <summary>--cache-dir of the hub commands: the cache of the chosen hub.</summary>
    public static Option<string?> CacheDir(bool recursive = false) => new("--cache-dir")
    {
        Description = "The hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; ModelScope: $MODELSCOPE_CACHE, else ~/.cache/modelscope/hub).",
        Recursive = recursive,
    };
}
