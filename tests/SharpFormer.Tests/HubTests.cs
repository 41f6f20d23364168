using SharpFormer.Hub;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>The HuggingFace Hub client against <see cref="FakeHub"/>: cache layout, selection, faults, offline, concurrency.</summary>
public sealed class HubTests : IDisposable
{
    const string Repo = "org/gpt2-tiny";
    readonly FakeHub hub = new();
    readonly string cache = Directory.CreateTempSubdirectory("sf-hub-").FullName;
    readonly Dictionary<string, byte[]> files = FakeHub.FixtureFiles("gpt2-tiny");
    readonly string commit;

    public HubTests() => commit = hub.Add(Repo, "main", files);

    public void Dispose()
    {
        hub.Dispose();
        Directory.Delete(cache, recursive: true);
    }

    HubClient Client(string? token = null, bool offline = false, string? endpoint = null) =>
        new(new HubOptions { Endpoint = endpoint ?? hub.Endpoint, CacheDir = cache, Token = token, Offline = offline });

    string RepoFolder => Path.Combine(cache, "models--org--gpt2-tiny");

    static Task<string> Download(HubClient client, string repo = Repo, string revision = "main") => client.DownloadAsync(repo, revision);

    [Fact]
    public async Task Download_writes_huggingface_hubs_layout_with_only_the_files_a_model_needs()
    {
        using var client = Client();
        var folder = await Download(client);

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit), folder);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")));   // no newline, as huggingface_hub writes it
        var linked = Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).Order().ToArray();
        Assert.Equal(["config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"], linked);
        foreach (var name in linked)
        {
            var bytes = files[name];
            var etag = FakeHub.IsLfs(name) ? FakeHub.Sha256(bytes) : FakeHub.GitSha1(bytes);
            var link = new FileInfo(Path.Combine(folder, name));
            Assert.Equal("../../blobs/" + etag, link.LinkTarget);                       // relative, as Python makes them
            Assert.Equal(bytes, File.ReadAllBytes(link.FullName));
        }
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
    }

    [Fact]
    public async Task Files_the_repo_lacks_get_no_exist_markers_as_huggingface_hub_writes_them()
    {
        using var client = Client();
        await Download(client);

        var markers = Path.Combine(RepoFolder, ".no_exist", commit);
        Assert.Equal(0, new FileInfo(Path.Combine(markers, "tokenizer.json")).Length);     // gpt2-tiny has no tokenizer.json
        Assert.True(File.Exists(Path.Combine(markers, "added_tokens.json")));
        Assert.False(File.Exists(Path.Combine(markers, "config.json")));
        Assert.False(File.Exists(Path.Combine(markers, "vocab.json")));
    }

    [Fact]
    public async Task A_mirror_without_etags_is_named_and_verified_by_the_listed_checksums()
    {
        hub.NoEtags = true;
        using var client = Client();
        var folder = await Download(client);

        var weights = new FileInfo(Path.Combine(folder, "model.safetensors"));
        Assert.Equal("../../blobs/" + FakeHub.Sha256(files["model.safetensors"]), weights.LinkTarget);
        Assert.Equal("../../blobs/" + FakeHub.GitSha1(files["config.json"]), new FileInfo(Path.Combine(folder, "config.json")).LinkTarget);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(weights.FullName));
        Assert.Contains(hub.Log, l => l.Path == $"/api/models/{Repo}/revision/main");

        // Still checked: a flipped byte from such a mirror is refused.
        Directory.Delete(RepoFolder, recursive: true);
        hub.Corrupt.Add("model.safetensors");
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => Download(client));
        Assert.Contains("model.safetensors of org/gpt2-tiny failed verification", e.Message);
    }

    [Fact]
    public async Task A_connection_lost_for_good_names_the_file_and_leaves_nothing_in_the_snapshot()
    {
        hub.DropAlways("model.safetensors");
        using var client = Client();
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => Download(client));

        Assert.Contains("downloading model.safetensors of org/gpt2-tiny failed: the connection was lost", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(Path.Combine(RepoFolder, "snapshots", commit, "model.safetensors")));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "snapshots", commit), "*.incomplete", SearchOption.AllDirectories));
        Assert.True(new FileInfo(Path.Combine(RepoFolder, "blobs", FakeHub.Sha256(files["model.safetensors"]) + ".incomplete")).Length > 0);
        Assert.False(File.Exists(Path.Combine(RepoFolder, "refs", "main")));
        Assert.Null(client.Cache.FindSnapshot(Repo, commit));
    }

    [Fact]
    public async Task A_full_disk_is_a_one_line_error_naming_the_file()
    {
        // The weights' partial blob is /dev/full: every write fails with ENOSPC, as on a full disk.
        var blobs = Directory.CreateDirectory(Path.Combine(RepoFolder, "blobs")).FullName;
        File.CreateSymbolicLink(Path.Combine(blobs, FakeHub.Sha256(files["model.safetensors"]) + ".incomplete"), "/dev/full");
        using var client = Client();
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => Download(client));

        Assert.StartsWith($"writing model.safetensors of org/gpt2-tiny into {cache} failed: ", e.Message);
        Assert.Contains("space", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(Path.Combine(RepoFolder, "snapshots", commit, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(blobs, FakeHub.Sha256(files["model.safetensors"]))));
    }

    [Fact]
    public void A_snapshot_missing_a_shard_its_index_names_is_not_a_model()
    {
        var folder = Directory.CreateTempSubdirectory("sf-shards-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), "{}");
            File.WriteAllText(Path.Combine(folder, "model-00001-of-00002.safetensors"), "");
            File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
                """{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}""");
            Assert.False(HubCache.HoldsModel(folder));
            File.WriteAllText(Path.Combine(folder, "model-00002-of-00002.safetensors"), "");
            Assert.True(HubCache.HoldsModel(folder));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Pytorch_bin_is_chosen_only_without_safetensors_and_include_adds_files()
    {
        string[] withBoth = ["config.json", "model.safetensors", "consolidated.safetensors", "pytorch_model.bin", "tf_model.h5", "onnx/model.onnx", "sub/model.safetensors", "README.md"];
        Assert.Equal(["config.json", "model.safetensors"], HubFileSelection.Select(withBoth, []));
        Assert.Equal(["config.json", "pytorch_model.bin"], HubFileSelection.Select(["config.json", "pytorch_model.bin", "flax_model.msgpack"], []));
        Assert.Equal(["weights.safetensors"], HubFileSelection.Select(["weights.safetensors", "pytorch_model.bin"], []));
        Assert.Equal(["config.json", "model.safetensors", "onnx/model.onnx"], HubFileSelection.Select(withBoth, ["*.onnx"]));
        Assert.Equal(["config.json", "model.safetensors", "README.md"], HubFileSelection.Select(withBoth, ["[RX]EADME.md"]));
    }

    [Fact]
    public async Task A_dropped_connection_is_resumed_with_a_range_request()
    {
        hub.DropOnce("model.safetensors");
        using var client = Client();
        var folder = await Download(client);

        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        var ranges = hub.Log.Where(l => l.Path.StartsWith("/cdn/") && l.Range is not null).Select(l => l.Range!).ToList();
        var resumedAt = Assert.Single(ranges);
        Assert.Equal($"bytes={files["model.safetensors"].Length / 2}-", resumedAt);
    }

    [Fact]
    public async Task An_expired_cdn_location_is_resolved_again_and_the_token_never_reaches_the_cdn()
    {
        hub.ExpireOnce("model.safetensors");
        using var client = Client(FakeHub.GoodToken);
        var folder = await Download(client);

        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.Equal(2, hub.Log.Count(l => l.Method == "HEAD" && l.Path.EndsWith("/resolve/" + commit + "/model.safetensors")));
        Assert.All(hub.Log.Where(l => l.Path.StartsWith("/cdn/")), l => Assert.Null(l.Auth));
        Assert.Contains(hub.Log, l => l.Method == "HEAD" && l.Auth == "Bearer " + FakeHub.GoodToken);
    }

    [Fact]
    public async Task A_corrupted_file_is_deleted_reported_and_never_linked()
    {
        hub.Corrupt.Add("model.safetensors");
        using var client = Client();
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => Download(client));

        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("failed verification", e.Message);
        Assert.False(File.Exists(Path.Combine(RepoFolder, "snapshots", commit, "model.safetensors")));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), FakeHub.Sha256(files["model.safetensors"]) + "*"));
        Assert.False(File.Exists(Path.Combine(RepoFolder, "refs", "main")));

        // The snapshot has config.json but no weights: not taken for a model, completed by the next run.
        hub.Corrupt.Clear();
        Assert.Null(client.Cache.FindSnapshot(Repo, commit));
        var folder = await client.ResolveAsync(Repo, commit);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
    }

    [Fact]
    public async Task A_gated_repo_needs_the_token_sent_as_bearer()
    {
        hub.Gated.Add(Repo);
        using (var anonymous = Client())
        {
            var e = await Assert.ThrowsAsync<SharpFormerException>(() => Download(anonymous));
            Assert.Contains("gated", e.Message);
            Assert.Contains("HF_TOKEN", e.Message);
        }
        using var client = Client(FakeHub.GoodToken);
        var folder = await Download(client);
        Assert.True(File.Exists(Path.Combine(folder, "config.json")));
        Assert.Contains(hub.Log, l => l.Path.StartsWith("/api/models/") && l.Auth == "Bearer " + FakeHub.GoodToken);
    }

    [Fact]
    public async Task Missing_repos_and_revisions_are_named()
    {
        using var client = Client();
        var repo = await Assert.ThrowsAsync<SharpFormerException>(() => Download(client, "org/nothing"));
        Assert.Contains("org/nothing not found", repo.Message);
        var revision = await Assert.ThrowsAsync<SharpFormerException>(() => Download(client, Repo, "v9"));
        Assert.Contains("revision 'v9'", revision.Message);
        Assert.Throws<SharpFormerException>(() => client.DownloadAsync("not-an-id").GetAwaiter().GetResult());
    }

    [Fact]
    public async Task A_revision_other_than_main_gets_its_own_snapshot_and_ref()
    {
        var v2 = new Dictionary<string, byte[]>(files) { ["config.json"] = "{\"model_type\": \"gpt2\", \"n_layer\": 2}"u8.ToArray() };
        var v2Commit = hub.Add(Repo, "v2", v2);
        using var client = Client();
        var folder = await Download(client, Repo, "v2");

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", v2Commit), folder);
        Assert.Equal(v2Commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "v2")));
        Assert.False(File.Exists(Path.Combine(RepoFolder, "refs", "main")));
        Assert.Equal(v2["config.json"], File.ReadAllBytes(Path.Combine(folder, "config.json")));
        Assert.Equal(folder, client.Cache.FindSnapshot(Repo, "v2"));
        Assert.Null(client.Cache.FindSnapshot(Repo, "main"));
    }

    [Fact]
    public async Task Offline_uses_the_cache_without_a_request_and_names_the_cache_on_a_miss()
    {
        using (var online = Client()) await Download(online);
        int requests = hub.Log.Count;
        using var offline = Client(offline: true);

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit), await Download(offline));
        Assert.Equal(requests, hub.Log.Count);
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => Download(offline, "org/other"));
        Assert.Contains(cache, e.Message);
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Equal(requests, hub.Log.Count);
    }

    [Fact]
    public async Task Parallel_downloads_of_one_model_share_the_blobs_without_corrupting_them()
    {
        hub.CdnDelayMs = 300;
        using var a = Client();
        using var b = Client();
        var folders = await Task.WhenAll(Download(a), Download(b));

        Assert.Equal(folders[0], folders[1]);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folders[0], "model.safetensors")));
        // The blob lock lets one writer fetch it; the other finds it whole.
        Assert.Single(hub.Log, l => l.Method == "GET" && l.Path == "/cdn/" + FakeHub.Sha256(files["model.safetensors"]));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
    }

    [Fact]
    public async Task A_cache_filled_by_python_is_used_as_is_without_the_network()
    {
        // huggingface_hub's layout made by hand: blobs named by etag, relative links, refs/main.
        const string pyCommit = "0123456789abcdef0123456789abcdef01234567";
        var repoFolder = Path.Combine(cache, "models--py--gpt2");
        var snapshot = Directory.CreateDirectory(Path.Combine(repoFolder, "snapshots", pyCommit)).FullName;
        Directory.CreateDirectory(Path.Combine(repoFolder, "blobs"));
        Directory.CreateDirectory(Path.Combine(repoFolder, "refs"));
        File.WriteAllText(Path.Combine(repoFolder, "refs", "main"), pyCommit);
        foreach (var name in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json" })
        {
            var etag = FakeHub.IsLfs(name) ? FakeHub.Sha256(files[name]) : FakeHub.GitSha1(files[name]);
            File.WriteAllBytes(Path.Combine(repoFolder, "blobs", etag), files[name]);
            File.CreateSymbolicLink(Path.Combine(snapshot, name), "../../blobs/" + etag);
        }
        using var client = Client(endpoint: "http://127.0.0.1:9");   // nothing listens: any request would fail

        var folder = await client.ResolveAsync("py/gpt2");
        Assert.Equal(snapshot, folder);
        // The model and tokenizer load through the links and generate what the fixture folder generates.
        static int[] Greedy(string dir) => Generation.Generate(AutoModel.LoadCausalLM(dir), AutoTokenizer.FromFolder(dir), "Hello, my dog",
            new GenerationOptions { MaxNewTokens = 5 }).Sequences[0].NewIds;
        Assert.Equal(Greedy(SharedPaths.Fixture("gpt2-tiny")), Greedy(folder));
    }

    [Fact]
    public void Checksums_follow_the_etag_kind()
    {
        var path = Path.Combine(cache, "blob");
        File.WriteAllText(path, "hello\n");
        // `git hash-object` of "hello\n" and its sha256sum.
        Assert.Equal("ce013625030ba8dba906f756967f9e9ca394464a", HubTransfer.Checksum(path, "ce013625030ba8dba906f756967f9e9ca394464a"));
        Assert.Equal("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", HubTransfer.Checksum(path, new string('a', 64)));
        Assert.Null(HubTransfer.Checksum(path, "not-a-hash"));
    }
}
