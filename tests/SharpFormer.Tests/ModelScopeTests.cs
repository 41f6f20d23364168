using SharpFormer.Hub;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>The ModelScope client against <see cref="FakeModelScope"/>: the SDK's cache layout, faults, offline, revisions, concurrency.</summary>
public sealed class ModelScopeTests : IDisposable
{
    const string Repo = "org/gpt2-tiny";
    static readonly string[] Kept = ["config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"];
    readonly FakeModelScope hub = new();
    readonly string cache = Directory.CreateTempSubdirectory("sf-ms-").FullName;
    readonly Dictionary<string, byte[]> files = FakeHubServer.FixtureFiles("gpt2-tiny");
    readonly string commit;

    public ModelScopeTests() => commit = hub.Add(Repo, "master", files);

    public void Dispose()
    {
        hub.Dispose();
        Directory.Delete(cache, recursive: true);
    }

    ModelScopeClient Client(string? token = null, bool offline = false, string? endpoint = null, int parallelism = 4) =>
        new(new HubOptions { Endpoint = endpoint ?? hub.Endpoint, CacheDir = cache, Token = token, Offline = offline, Parallelism = parallelism });

    string ModelFolder => Path.Combine(cache, "models", "org", "gpt2-tiny");
    string Temp => Path.Combine(cache, "models", "._____temp", "org", "gpt2-tiny");

    static string[] FilesIn(string folder) =>
        Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).Where(f => !f.StartsWith('.')).Order().ToArray();

    [Fact]
    public async Task Download_writes_the_sdks_layout_with_only_the_files_a_model_needs()
    {
        using var client = Client();
        var folder = await client.DownloadAsync(Repo);

        Assert.Equal(ModelFolder, folder);
        Assert.Equal(Kept, FilesIn(folder));
        foreach (var name in Kept) Assert.Equal(files[name], File.ReadAllBytes(Path.Combine(folder, name)));
        // The SDK's index: a pickled list of {'Path', 'Revision'} (the file's commit), the model meta, the revision.
        var index = PythonPickle.ReadList(File.ReadAllBytes(Path.Combine(folder, ".msc")))!;
        Assert.Equal(Kept, index.Select(e => e["Path"]).Order());
        Assert.All(index, e => Assert.Equal(commit, e["Revision"]));
        Assert.Equal("Revision:master,CreatedAt:1700000000", File.ReadAllText(Path.Combine(folder, ".mv")));
        Assert.Equal([0x80, 2, (byte)'}', (byte)'(', (byte)'X', 2, 0, 0, 0, (byte)'i', (byte)'d'], File.ReadAllBytes(Path.Combine(folder, ".mdl"))[..11]);
        Assert.Empty(Directory.GetFiles(Temp, "*", SearchOption.AllDirectories));
        Assert.True(File.Exists(Path.Combine(cache, ".lock", "org___gpt2-tiny")));
        Assert.Equal(folder, client.FindCached(Repo, "master"));

        // A second run finds every file indexed under its commit: only the file list is asked for.
        int FileGets() => hub.Log.Count(l => l.Path.StartsWith("/cdn/") || l.Path.EndsWith("/repo"));
        int gets = FileGets();
        Assert.Equal(folder, await client.DownloadAsync(Repo));
        Assert.Equal(gets, FileGets());
    }

    [Fact]
    public async Task A_dotted_name_is_written_with_underscores_and_linked_from_its_name()
    {
        hub.Add("org/gpt2.5-tiny", "master", files);
        using var client = Client();
        var folder = await client.DownloadAsync("org/gpt2.5-tiny");

        Assert.Equal(Path.Combine(cache, "models", "org", "gpt2___5-tiny"), folder);
        Assert.Equal(folder, new DirectoryInfo(Path.Combine(cache, "models", "org", "gpt2.5-tiny")).LinkTarget);
        var model = Assert.Single(client.Scan());
        Assert.Equal("org/gpt2.5-tiny", model.RepoId);
        Assert.True(client.Remove("org/gpt2.5-tiny"));
        Assert.False(Directory.Exists(folder));
        Assert.False(Path.Exists(Path.Combine(cache, "models", "org", "gpt2.5-tiny")));
    }

    [Fact]
    public async Task A_dropped_connection_is_resumed_with_a_range_request()
    {
        hub.DropOnce("model.safetensors");
        using var client = Client();
        var folder = await client.DownloadAsync(Repo);

        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        var resumedAt = Assert.Single(hub.Log.Where(l => l.Path.StartsWith("/cdn/") && l.Range is not null).Select(l => l.Range!));
        Assert.Equal($"bytes={files["model.safetensors"].Length / 2}-", resumedAt);
    }

    [Fact]
    public async Task A_connection_lost_for_good_names_the_file_and_leaves_no_model_behind()
    {
        hub.DropAlways("model.safetensors");
        using var client = Client();
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => client.DownloadAsync(Repo));

        Assert.Contains("model.safetensors of org/gpt2-tiny", e.Message);
        Assert.Contains("connection was lost", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(Path.Combine(ModelFolder, "model.safetensors")));
        Assert.True(new FileInfo(Path.Combine(Temp, "model.safetensors")).Length > 0);   // kept for the next run to resume
        Assert.Null(client.FindCached(Repo));
    }

    [Fact]
    public async Task A_corrupted_file_is_deleted_reported_and_never_put_in_the_model_folder()
    {
        hub.Corrupt.Add("model.safetensors");
        hub.Corrupt.Add("vocab.json");
        // One file at a time: in parallel, the download that would fail second can be cancelled mid-transfer by the first
        // failure and keep its partial file for a resume (as any interrupted download does), so the temp folder would
        // not be empty.
        using var client = Client(parallelism: 1);
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => client.DownloadAsync(Repo));

        Assert.Contains("failed verification", e.Message);
        Assert.Matches("(model.safetensors|vocab.json) of org/gpt2-tiny", e.Message);
        Assert.False(File.Exists(Path.Combine(ModelFolder, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(ModelFolder, "vocab.json")));
        Assert.Empty(Directory.GetFiles(Temp, "*", SearchOption.AllDirectories));
        Assert.False(File.Exists(Path.Combine(ModelFolder, ".mv")));
        Assert.Null(client.FindCached(Repo));

        hub.Corrupt.Clear();
        var folder = await client.DownloadAsync(Repo);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.Equal(folder, client.FindCached(Repo));
    }

    [Fact]
    public async Task A_gated_model_needs_the_token_as_the_sdks_cookie_which_never_reaches_the_cdn()
    {
        hub.Gated.Add(Repo);
        using (var anonymous = Client())
        {
            var e = await Assert.ThrowsAsync<SharpFormerException>(() => anonymous.DownloadAsync(Repo));
            Assert.Contains("401", e.Message);
            Assert.Contains("MODELSCOPE_API_TOKEN", e.Message);
        }
        using var client = Client(FakeModelScope.GoodToken);
        var folder = await client.DownloadAsync(Repo);
        Assert.Equal(Kept, FilesIn(folder));
        Assert.Contains(hub.Log, l => l.Path.EndsWith("/repo/files") && l.Auth == "m_session_id=" + FakeModelScope.GoodToken);
        Assert.All(hub.Log.Where(l => l.Path.StartsWith("/cdn/")), l => Assert.Null(l.Auth));
    }

    [Fact]
    public async Task Missing_models_and_revisions_are_named()
    {
        using var client = Client();
        var model = await Assert.ThrowsAsync<SharpFormerException>(() => client.DownloadAsync("org/nothing"));
        Assert.Contains("org/nothing not found", model.Message);
        var revision = await Assert.ThrowsAsync<SharpFormerException>(() => client.DownloadAsync(Repo, "v9"));
        Assert.Contains("revision 'v9' of org/gpt2-tiny not found", revision.Message);
        Assert.Contains("master", revision.Message);
    }

    [Fact]
    public async Task A_tag_other_than_master_is_downloaded_and_recorded()
    {
        var v1 = new Dictionary<string, byte[]>(files) { ["config.json"] = "{\"model_type\": \"gpt2\", \"n_layer\": 2}"u8.ToArray() };
        var v1Commit = hub.Add(Repo, "v1.0", v1, branch: false);
        using var client = Client();
        var folder = await client.DownloadAsync(Repo, "v1.0");

        Assert.Equal(v1["config.json"], File.ReadAllBytes(Path.Combine(folder, "config.json")));
        Assert.StartsWith("Revision:v1.0,", File.ReadAllText(Path.Combine(folder, ".mv")));
        Assert.All(PythonPickle.ReadList(File.ReadAllBytes(Path.Combine(folder, ".msc")))!, e => Assert.Equal(v1Commit, e["Revision"]));
        Assert.Equal(folder, client.FindCached(Repo, "v1.0"));
        Assert.Equal(folder, client.FindCached(Repo));       // no revision named: whatever the cache holds, as the SDK offline
        Assert.Null(client.FindCached(Repo, "master"));

        // Back to master: every file's commit changed, so all are fetched again and the record follows.
        await client.DownloadAsync(Repo, "master");
        Assert.Equal(files["config.json"], File.ReadAllBytes(Path.Combine(folder, "config.json")));
        Assert.StartsWith("Revision:master,", File.ReadAllText(Path.Combine(folder, ".mv")));
    }

    [Fact]
    public async Task Offline_uses_the_cache_without_a_request_and_names_the_cache_on_a_miss()
    {
        using (var online = Client()) await online.DownloadAsync(Repo);
        int requests = hub.Log.Count;
        using var offline = Client(offline: true);

        Assert.Equal(ModelFolder, await offline.DownloadAsync(Repo));
        var e = await Assert.ThrowsAsync<SharpFormerException>(() => offline.DownloadAsync("org/other"));
        Assert.Contains(cache, e.Message);
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Equal(requests, hub.Log.Count);
    }

    [Fact]
    public async Task Parallel_downloads_of_one_model_fetch_each_file_once()
    {
        hub.CdnDelayMs = 300;
        using var a = Client();
        using var b = Client();
        var folders = await Task.WhenAll(a.DownloadAsync(Repo), b.DownloadAsync(Repo));

        Assert.Equal(folders[0], folders[1]);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(folders[0], "model.safetensors")));
        // The model lock lets one writer fetch; the other finds the files indexed under their commit.
        Assert.Single(hub.Log, l => l.Method == "GET" && l.Path == "/cdn/" + FakeHubServer.Sha256(files["model.safetensors"]));
        Assert.Equal(Kept.Length, PythonPickle.ReadList(File.ReadAllBytes(Path.Combine(folders[0], ".msc")))!.Count);
    }

    [Fact]
    public async Task A_cache_filled_by_the_python_sdk_is_used_as_is_without_the_network()
    {
        // What modelscope's snapshot_download leaves (index and meta pickled by Python 3.11, protocol 4).
        var folder = Directory.CreateDirectory(Path.Combine(cache, "models", "py", "gpt2")).FullName;
        string[] names = ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json"];
        foreach (var name in names) File.WriteAllBytes(Path.Combine(folder, name), files[name]);
        File.WriteAllBytes(Path.Combine(folder, ".msc"), Convert.FromHexString(
            "800495c2000000000000005d94287d94288c0450617468948c0b636f6e6669672e6a736f6e948c085265766973696f6e948c28303132333435363738396162636465663031"
            + "3233343536373839616263646566303132333435363794757d942868028c116d6f64656c2e7361666574656e736f72739468046805757d942868028c0a766f6361622e6a73"
            + "6f6e9468046805757d942868028c0a6d65726765732e7478749468046805757d942868028c15746f6b656e697a65725f636f6e6669672e6a736f6e946804680575652e"));
        File.WriteAllBytes(Path.Combine(folder, ".mdl"), Convert.FromHexString("80049513000000000000007d948c026964948c0770792f6770743294732e"));
        File.WriteAllText(Path.Combine(folder, ".mv"), "Revision:v1.0.2,CreatedAt:1700000000");
        using var client = Client(endpoint: "http://127.0.0.1:9");   // nothing listens: any request would fail

        Assert.Equal(folder, await client.ResolveAsync("py/gpt2"));
        Assert.Equal(folder, client.FindCached("py/gpt2", "v1.0.2"));
        Assert.Equal(names.Order(), client.Cache.ReadIndex("py/gpt2").Keys.Order());
        Assert.Equal("v1.0.2", Assert.Single(Assert.Single(client.Scan()).Revisions).Commit);
        static int[] Greedy(string dir) => Generation.Generate(AutoModel.LoadCausalLM(dir), AutoTokenizer.FromFolder(dir), "Hello, my dog",
            new GenerationOptions { MaxNewTokens = 5 }).Sequences[0].NewIds;
        Assert.Equal(Greedy(SharedPaths.Fixture("gpt2-tiny")), Greedy(folder));
    }

    [Fact]
    public void The_index_pickle_round_trips_and_rejects_what_it_cannot_read()
    {
        var written = PythonPickle.WriteList([new Dictionary<string, string> { ["Path"] = "a/b.json", ["Revision"] = "r1" }, new Dictionary<string, string> { ["Path"] = "é", ["Revision"] = "r2" }]);
        var read = PythonPickle.ReadList(written)!;
        Assert.Equal(["a/b.json", "é"], read.Select(e => e["Path"]));
        Assert.Equal(["r1", "r2"], read.Select(e => e["Revision"]));
        Assert.Null(PythonPickle.ReadList(written[..^3]));
        Assert.Null(PythonPickle.ReadList([0x80, 4, (byte)'K', 5, (byte)'.']));   // an int, not a list
    }
}
