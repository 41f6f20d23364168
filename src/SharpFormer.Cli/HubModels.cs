using SharpFormer.Hub;

namespace SharpFormer.Cli;

/// <summary>Model ids on the command line: <c>--model ORG/NAME[@REVISION]</c> resolved to a folder of a hub's cache (<see cref="HubSources"/>).</summary>
public static class HubModels
{
    /// <summary>
    /// <paramref name="value"/> itself when it is an existing path or not of the form ORG/NAME[@REV] (a local folder
    /// always wins over an id); else the cached model folder of that id on the hub <paramref name="source"/> names
    /// (<see cref="HubSources.Get"/>), downloaded first when missing (unless offline).
    /// </summary>
    public static string ToFolder(string value, string? source = null)
    {
        if (Directory.Exists(value) || File.Exists(value)) return value;
        var at = value.IndexOf('@');
        var (id, revision) = at < 0 ? (value, null) : (value[..at], value[(at + 1)..]);
        if (!HubCache.IsRepoId(id) || revision?.Length == 0) return value;
        try
        {
            using var client = HubSources.Create(source);
            return client.ResolveAsync(id, revision, Progress(), CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (SharpFormerException e)
        {
            // The user may have meant a folder: say both readings failed.
            throw new SharpFormerException($"'{value}' is no local folder, and as a model id: {e.Message}", e);
        }
    }

    /// <summary>One progress display on stderr for all the files of a download: bytes done over bytes known.</summary>
    public static IProgress<HubProgress> Progress()
    {
        var files = new Dictionary<string, HubProgress>();
        var last = DateTime.MinValue;
        return new SynchronousProgress(p =>
        {
            lock (files)
            {
                files[p.File] = p;
                bool finished = p.Total == p.Done;
                if (!finished && (DateTime.UtcNow - last).TotalMilliseconds < 500) return;
                last = DateTime.UtcNow;
                long done = files.Values.Sum(f => f.Done), total = files.Values.Sum(f => f.Total ?? f.Done);
                if (finished) Console.Error.WriteLine($"downloaded {p.File} ({p.Done:N0} bytes)");
                else if (!Console.IsErrorRedirected) Console.Error.Write($"\rdownloading {files.Count} file(s): {done / 1e6:F1} / {total / 1e6:F1} MB ");
            }
        });
    }

    /// <summary>Reports on the writer's thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    sealed class SynchronousProgress(Action<HubProgress> report) : IProgress<HubProgress>
    {
        public void Report(HubProgress value) => report(value);
    }
}
