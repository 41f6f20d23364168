using System.Diagnostics;
using SharpFormer.Hub;

namespace SharpFormer.Tests;

/// <summary><c>sharpformer download</c> and <c>--model ORG/NAME</c> end to end, with HF_ENDPOINT at <see cref="FakeHub"/>.</summary>
public sealed class HubCliTests : IDisposable
{
    readonly FakeHub hub = new();
    readonly string cache = Directory.CreateTempSubdirectory("sf-hubcli-").FullName;

    public void Dispose()
    {
        hub.Dispose();
        Directory.Delete(cache, recursive: true);
    }

    CliHarness.Result Run(Dictionary<string, string>? env, params string[] args) => Start(env, args).Result;

    /// <summary>Starts the CLI with HF_ENDPOINT at the fake hub and HF_HUB_CACHE at the temp cache (plus <paramref name="env"/>).</summary>
    Task<CliHarness.Result> Start(Dictionary<string, string>? env, params string[] args)
    {
        var all = new Dictionary<string, string?>
        {
            ["HF_ENDPOINT"] = hub.Endpoint, ["HF_HUB_CACHE"] = cache, ["HF_TOKEN"] = null, ["HF_HUB_OFFLINE"] = null, [HubSources.SourceVariable] = null,
        };
        foreach (var (k, v) in env ?? []) all[k] = v;
        return CliHarness.RunAsync(all, args);
    }

    [Fact]
    public async Task Two_processes_downloading_one_model_fetch_each_blob_once()
    {
        var files = FakeHub.FixtureFiles("gpt2-tiny");
        hub.Add("org/gpt2-tiny", "main", files);
        hub.CdnDelayMs = 1000;
        var results = await Task.WhenAll(Start(null, "download", "org/gpt2-tiny"), Start(null, "download", "org/gpt2-tiny"));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.Stderr));
        Assert.Equal(results[0].Stdout, results[1].Stdout);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(results[0].Stdout.Trim(), "model.safetensors")));
        Assert.Single(hub.Log, l => l.Method == "GET" && l.Path == "/cdn/" + FakeHub.Sha256(files["model.safetensors"]));
    }

    [Fact]
    public async Task Serve_takes_a_model_id_downloads_it_and_names_it_by_the_id()
    {
        hub.Add("org/bert-tiny", "main", FakeHub.FixtureFiles("bert-tiny"));
        var psi = CliHarness.StartInfo("serve", "--model", "org/bert-tiny", "--port", "0");
        psi.Environment["HF_ENDPOINT"] = hub.Endpoint;
        psi.Environment["HF_HUB_CACHE"] = cache;
        psi.Environment[HubSources.SourceVariable] = null;
        using var p = Process.Start(psi)!;
        try
        {
            string? line;
            while ((line = await p.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2))) is not null && !line.StartsWith("listening on")) { }
            Assert.NotNull(line);
            using var http = new HttpClient { BaseAddress = new Uri(line.Split(' ')[2]) };
            for (int i = 0; i < 600 && !(await http.GetAsync("/health")).IsSuccessStatusCode; i++) await Task.Delay(100);
            var models = await http.GetStringAsync("/v1/models");
            Assert.Contains("\"id\":\"org/bert-tiny\"", models);
            using var embed = await http.PostAsync("/v1/embeddings", new StringContent("{\"model\":\"org/bert-tiny\",\"input\":\"hello\"}", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(System.Net.HttpStatusCode.OK, embed.StatusCode);
            Assert.True(Directory.Exists(Path.Combine(cache, "models--org--bert-tiny", "snapshots")));
        }
        finally { p.Kill(entireProcessTree: true); }
    }

    static readonly string[] Generate = ["generate", "--greedy", "--max-new-tokens", "8", "--json"];

    [Fact]
    public void Download_then_generate_with_the_model_id_matches_the_local_folder()
    {
        var commit = hub.Add("org/gpt2-tiny", "main", FakeHub.FixtureFiles("gpt2-tiny"));
        var download = Run(null, "download", "org/gpt2-tiny");
        Assert.True(download.ExitCode == 0, download.Stderr);
        Assert.Equal(Path.Combine(cache, "models--org--gpt2-tiny", "snapshots", commit), download.Stdout.Trim());

        var fromId = Run(new() { ["HF_HUB_OFFLINE"] = "1" }, [.. Generate, "--model", "org/gpt2-tiny", "--", "Hello, my dog"]);
        var fromFolder = CliHarness.Run([.. Generate, "--model", SharedPaths.Fixture("gpt2-tiny"), "--", "Hello, my dog"]);
        Assert.True(fromId.ExitCode == 0, fromId.Stderr);
        Assert.Equal(fromFolder.Stdout, fromId.Stdout);
    }

    [Fact]
    public void Model_id_is_downloaded_when_missing_and_a_local_folder_wins_over_an_id()
    {
        hub.Add("org/gpt2-tiny", "main", FakeHub.FixtureFiles("gpt2-tiny"));
        var info = Run(null, "info", "--model", "org/gpt2-tiny");
        Assert.True(info.ExitCode == 0, info.Stderr);
        Assert.Contains("GPT2LMHeadModel", info.Stdout);
        Assert.True(Directory.Exists(Path.Combine(cache, "models--org--gpt2-tiny", "blobs")));

        // A folder that happens to be named like an id is a folder: no request is made for it.
        var work = Directory.CreateTempSubdirectory("sf-hubcli-local-").FullName;
        try
        {
            var local = Path.Combine(work, "bert", "tiny");
            Directory.CreateDirectory(Path.GetDirectoryName(local)!);
            Directory.CreateSymbolicLink(local, SharedPaths.Fixture("bert-tiny"));
            int requests = hub.Log.Count;
            var psi = CliHarness.StartInfo("info", "--model", "bert/tiny");
            psi.WorkingDirectory = work;
            psi.Environment["HF_ENDPOINT"] = hub.Endpoint;
            psi.Environment["HF_HUB_CACHE"] = cache;
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
            Assert.Contains("BertForPreTraining", stdout);
            Assert.Equal(requests, hub.Log.Count);
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    [Fact]
    public void Cache_list_shows_sizes_and_revisions_and_rm_removes_the_model()
    {
        var files = FakeHub.FixtureFiles("gpt2-tiny");
        var commit = hub.Add("org/gpt2-tiny", "main", files);
        hub.Add("org/gpt2-tiny", "v2", files);
        Assert.Equal(0, Run(null, "download", "org/gpt2-tiny").ExitCode);
        Assert.Equal(0, Run(null, "download", "org/gpt2-tiny", "--revision", commit).ExitCode);

        var list = Run(null, "cache", "list", "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        var model = System.Text.Json.Nodes.JsonNode.Parse(list.Stdout)!["models"]!.AsArray().Single()!;
        Assert.Equal("org/gpt2-tiny", (string?)model["repo_id"]);
        string[] kept = ["config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"];
        Assert.Equal(kept.Sum(f => (long)files[f].Length), (long)model["size_on_disk"]!);
        var revision = model["revisions"]!.AsArray().Single()!;
        Assert.Equal(commit, (string?)revision["commit"]);
        Assert.Equal(["main"], revision["refs"]!.AsArray().Select(r => (string)r!));
        Assert.Equal(kept.Length, (int)revision["files"]!);

        Assert.Equal(0, Run(null, "cache", "rm", "org/gpt2-tiny").ExitCode);
        Assert.False(Directory.Exists(Path.Combine(cache, "models--org--gpt2-tiny")));
        Assert.False(Directory.Exists(Path.Combine(cache, ".locks", "models--org--gpt2-tiny")));
        CliHarness.AssertOneLineError(Run(null, "cache", "rm", "org/gpt2-tiny"), "not in the cache");
    }

    [Fact]
    public void Hub_failures_are_one_line_errors()
    {
        hub.Add("org/gated", "main", FakeHub.FixtureFiles("gpt2-tiny"));
        hub.Gated.Add("org/gated");
        CliHarness.AssertOneLineError(Run(null, "download", "org/gated"), "gated");
        CliHarness.AssertOneLineError(Run(null, "generate", "--model", "org/missing", "--", "Hi"), "org/missing not found");
        CliHarness.AssertOneLineError(Run(new() { ["HF_HUB_OFFLINE"] = "1" }, "info", "--model", "org/gated"), "HF_HUB_OFFLINE");
        var ok = Run(new() { ["HF_TOKEN"] = FakeHub.GoodToken }, "download", "org/gated", "--include", "*.onnx");
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.True(File.Exists(Path.Combine(ok.Stdout.Trim(), "onnx", "model.onnx")));
    }
}
