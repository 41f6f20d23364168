using System.Text.Json.Nodes;
using SharpFormer.Hub;

namespace SharpFormer.Tests;

/// <summary><c>download --source modelscope</c>, <c>--model ORG/NAME</c> with SHARPFORMER_SOURCE=modelscope and <c>cache list|rm --source modelscope</c>, against <see cref="FakeModelScope"/>.</summary>
public sealed class ModelScopeCliTests : IDisposable
{
    readonly FakeModelScope hub = new();
    readonly string cache = Directory.CreateTempSubdirectory("sf-mscli-").FullName;
    readonly string hfCache = Directory.CreateTempSubdirectory("sf-mscli-hf-").FullName;

    public void Dispose()
    {
        hub.Dispose();
        Directory.Delete(cache, recursive: true);
        Directory.Delete(hfCache, recursive: true);
    }

    /// <summary>The CLI with MODELSCOPE_DOMAIN at the fake (a URL: the SDK takes a domain or URL) and MODELSCOPE_CACHE at the temp cache; the HF cache elsewhere and empty.</summary>
    CliHarness.Result Run(Dictionary<string, string?>? env, params string[] args)
    {
        var all = new Dictionary<string, string?>
        {
            ["MODELSCOPE_DOMAIN"] = hub.Endpoint, ["MODELSCOPE_CACHE"] = cache, ["MODELSCOPE_API_TOKEN"] = null, ["HF_HUB_OFFLINE"] = null,
            ["HF_HUB_CACHE"] = hfCache, ["HF_ENDPOINT"] = "http://127.0.0.1:9", [HubSources.SourceVariable] = null,
        };
        foreach (var (k, v) in env ?? []) all[k] = v;
        return CliHarness.RunAsync(all, args).GetAwaiter().GetResult();
    }

    static readonly string[] Generate = ["generate", "--greedy", "--max-new-tokens", "8", "--json"];

    [Fact]
    public void Download_then_generate_with_the_model_id_from_modelscope_matches_the_local_folder()
    {
        hub.Add("org/gpt2-tiny", "master", FakeHubServer.FixtureFiles("gpt2-tiny"));
        var download = Run(null, "download", "org/gpt2-tiny", "--source", "modelscope");
        Assert.True(download.ExitCode == 0, download.Stderr);
        var folder = Path.Combine(cache, "models", "org", "gpt2-tiny");
        Assert.Equal(folder, download.Stdout.Trim());
        Assert.True(File.Exists(Path.Combine(folder, ".msc")));
        Assert.Empty(Directory.GetFileSystemEntries(hfCache));

        var fromFolder = CliHarness.Run([.. Generate, "--model", SharedPaths.Fixture("gpt2-tiny"), "--", "Hello, my dog"]);
        var viaEnv = Run(new() { [HubSources.SourceVariable] = "modelscope", ["HF_HUB_OFFLINE"] = "1" }, [.. Generate, "--model", "org/gpt2-tiny", "--", "Hello, my dog"]);
        Assert.True(viaEnv.ExitCode == 0, viaEnv.Stderr);
        Assert.Equal(fromFolder.Stdout, viaEnv.Stdout);
        var viaOption = Run(new() { ["HF_HUB_OFFLINE"] = "1" }, [.. Generate, "--model", "org/gpt2-tiny", "--source", "modelscope", "--", "Hello, my dog"]);
        Assert.True(viaOption.ExitCode == 0, viaOption.Stderr);
        Assert.Equal(fromFolder.Stdout, viaOption.Stdout);
    }

    [Fact]
    public async Task Two_processes_downloading_one_model_fetch_each_file_once()
    {
        var files = FakeHubServer.FixtureFiles("gpt2-tiny");
        hub.Add("org/gpt2-tiny", "master", files);
        hub.CdnDelayMs = 1000;
        var env = new Dictionary<string, string?> { ["MODELSCOPE_DOMAIN"] = hub.Endpoint, ["MODELSCOPE_CACHE"] = cache, [HubSources.SourceVariable] = "modelscope", ["HF_HUB_OFFLINE"] = null };
        var results = await Task.WhenAll(CliHarness.RunAsync(env, "download", "org/gpt2-tiny"), CliHarness.RunAsync(env, "download", "org/gpt2-tiny"));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.Stderr));
        Assert.Equal(results[0].Stdout, results[1].Stdout);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(results[0].Stdout.Trim(), "model.safetensors")));
        Assert.Single(hub.Log, l => l.Method == "GET" && l.Path == "/cdn/" + FakeHubServer.Sha256(files["model.safetensors"]));
    }

    [Fact]
    public void A_model_id_is_downloaded_from_modelscope_when_missing_at_the_revision_it_names()
    {
        var files = FakeHubServer.FixtureFiles("gpt2-tiny");
        hub.Add("org/gpt2-tiny", "master", files);
        hub.Add("org/gpt2-tiny", "v1.0", files, branch: false);
        var info = Run(new() { [HubSources.SourceVariable] = "modelscope" }, "info", "--model", "org/gpt2-tiny@v1.0");
        Assert.True(info.ExitCode == 0, info.Stderr);
        Assert.Contains("GPT2LMHeadModel", info.Stdout);
        Assert.StartsWith("Revision:v1.0,", File.ReadAllText(Path.Combine(cache, "models", "org", "gpt2-tiny", ".mv")));
        Assert.Contains(hub.Log, l => l.Path == "/api/v1/models/org/gpt2-tiny/repo/files");
    }

    [Fact]
    public void Cache_list_and_rm_work_on_the_modelscope_cache()
    {
        var files = FakeHubServer.FixtureFiles("gpt2-tiny");
        hub.Add("org/gpt2-tiny", "master", files);
        Assert.Equal(0, Run(null, "download", "org/gpt2-tiny", "--source", "modelscope").ExitCode);

        var list = Run(null, "cache", "list", "--source", "modelscope", "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        var listed = JsonNode.Parse(list.Stdout)!;
        Assert.Equal(cache, (string?)listed["cache"]);
        var model = listed["models"]!.AsArray().Single()!;
        Assert.Equal("org/gpt2-tiny", (string?)model["repo_id"]);
        string[] kept = ["config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"];
        Assert.Equal(kept.Sum(f => (long)files[f].Length), (long)model["size_on_disk"]!);
        Assert.Equal("master", (string?)model["revisions"]![0]!["commit"]);
        Assert.Contains("no models in", Run(null, "cache", "list").Stdout);          // the HuggingFace cache is another one

        Assert.Equal(0, Run(null, "cache", "rm", "org/gpt2-tiny", "--source", "modelscope").ExitCode);
        Assert.False(Directory.Exists(Path.Combine(cache, "models", "org", "gpt2-tiny")));
        CliHarness.AssertOneLineError(Run(null, "cache", "rm", "org/gpt2-tiny", "--source", "modelscope"), "not in the cache");
    }

    [Fact]
    public void ModelScope_failures_are_one_line_errors()
    {
        hub.Add("org/gated", "master", FakeHubServer.FixtureFiles("gpt2-tiny"));
        hub.Gated.Add("org/gated");
        CliHarness.AssertOneLineError(Run(null, "download", "org/gated", "--source", "modelscope"), "MODELSCOPE_API_TOKEN");
        CliHarness.AssertOneLineError(Run(null, "download", "org/gated", "--source", "modelscope", "--revision", "v9"), "401");
        CliHarness.AssertOneLineError(Run(new() { [HubSources.SourceVariable] = "modelscope" }, "info", "--model", "org/missing"), "org/missing not found");
        CliHarness.AssertOneLineError(Run(null, "download", "org/gated", "--source", "nowhere"), "unknown hub source 'nowhere'");
        CliHarness.AssertOneLineError(Run(new() { [HubSources.SourceVariable] = "nowhere" }, "download", "org/gated"), "SHARPFORMER_SOURCE");
        var ok = Run(new() { ["MODELSCOPE_API_TOKEN"] = FakeModelScope.GoodToken }, "download", "org/gated", "--source", "modelscope");
        Assert.True(ok.ExitCode == 0, ok.Stderr);
    }
}
