using System.CommandLine;
using System.Text.Json;
using SharpFormer.Hub;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer cache list|rm</c>: the models in a hub's cache (shared with its Python library), and removing one.</summary>
public static class CacheCommand
{
    public static Command Create()
    {
        var cacheDir = DownloadCommand.CacheDir(recursive: true);
        var json = CommonOptions.Json();
        var list = new Command("list", "List the cached models: id, size on disk, revisions (commit and the refs naming it), files.") { json };
        list.SetAction(r =>
        {
            using var cache = HubSources.Create(r.GetValue(CommonOptions.Source), cacheDir: r.GetValue(cacheDir));
            var models = cache.Scan();
            if (r.GetValue(json))
            {
                var rows = models.Select(m => new
                {
                    repo_id = m.RepoId, folder = m.Folder, size_on_disk = m.SizeOnDisk,
                    revisions = m.Revisions.Select(v => new { commit = v.Commit, refs = v.Refs, files = v.Files }),
                });
                Console.WriteLine(JsonSerializer.Serialize(new { cache = cache.CacheRoot, models = rows }, JsonOutput.Options));
                return 0;
            }
            if (models.Count == 0) { Console.WriteLine($"no models in {cache.CacheRoot}"); return 0; }
            foreach (var m in models)
            {
                Console.WriteLine($"{m.RepoId,-40} {m.SizeOnDisk / 1e6,10:F1} MB  {m.Folder}");
                foreach (var rev in m.Revisions)
                    Console.WriteLine($"    {rev.Commit} {(rev.Refs.Count > 0 ? string.Join(", ", rev.Refs) : "(no ref)")}  {rev.Files} file(s)");
            }
            return 0;
        });
        var id = new Argument<string>("model") { Description = "The model id, ORG/NAME." };
        var rm = new Command("rm", "Delete a cached model (every revision of it).") { id };
        rm.SetAction(r =>
        {
            using var cache = HubSources.Create(r.GetValue(CommonOptions.Source), cacheDir: r.GetValue(cacheDir));
            var repoId = r.GetValue(id)!;
            if (!HubCache.IsRepoId(repoId)) throw new SharpFormerException($"'{repoId}' is not a model id of the form ORG/NAME");
            if (!cache.Remove(repoId)) throw new SharpFormerException($"{repoId} is not in the cache {cache.CacheRoot}");
            Console.WriteLine($"removed {repoId}");
            return 0;
        });
        return new Command("cache", "The hub cache SharpFormer shares with Python (huggingface_hub's, or ModelScope's with --source modelscope): list, rm.") { cacheDir, list, rm };
    }
}
