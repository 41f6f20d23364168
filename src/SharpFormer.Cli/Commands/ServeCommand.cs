using System.CommandLine;
using SharpFormer.Extensions.AI;
using SharpFormer.Kernels;
using SharpFormer.Server;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer serve</c>: OpenAI- and TEI-compatible HTTP endpoints over one or more models, each loaded once.</summary>
public static class ServeCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var models = new Option<string[]>("--model", "-m")
        {
            Description = "A model folder to serve, addressed by its folder name, or a model id ORG/NAME[@REVISION] (from the hub cache, downloaded when missing; see --source), addressed by ORG/NAME (repeat for several; default: the shipped models).",
            AllowMultipleArgumentsPerToken = false,
        };
        var dtype = CommonOptions.DType();
        var defaults = new ServerOptions();
        var host = new Option<string>("--host") { Description = "The address to listen on.", DefaultValueFactory = _ => defaults.Host };
        var port = new Option<int>("--port") { Description = "The port to listen on (0: any free port).", DefaultValueFactory = _ => defaults.Port };
        var maxBody = new Option<long>("--payload-limit") { Description = "Largest request body in bytes (larger: 413).", DefaultValueFactory = _ => defaults.MaxRequestBodySize };
        var maxBatch = new Option<int>("--max-client-batch-size") { Description = "Most inputs per embeddings / classification request (more: 413).", DefaultValueFactory = _ => defaults.MaxClientBatchSize };
        var maxQueue = new Option<int>("--max-queue") { Description = "Most requests that may wait for a busy model (more: 429 with Retry-After).", DefaultValueFactory = _ => defaults.MaxQueue };
        var serving = new ServingOptions();
        var batchTokens = new Option<int>("--max-batch-tokens") { Description = "Most cost of one encoder batch (a text costs its characters + 2); concurrent embedding and classification requests share batches up to it.", DefaultValueFactory = _ => serving.MaxBatchTokens };
        var batchWait = new Option<double>("--batch-wait-ms") { Description = "How long the first request of an encoder batch waits for others, in ms (0: take what is queued when the model is free).", DefaultValueFactory = _ => 0 };
        var slots = new Option<int>("--max-concurrent-generations") { Description = "Generations per model decoded together (continuous batching); more wait for a free slot.", DefaultValueFactory = _ => serving.MaxConcurrentGenerations };
        var context = new Option<int?>("--max-context") { Description = "Positions (prompt + generated) per generation: its KV cache room (default: the model's context, at most 4096)." };
        var noBatching = new Option<bool>("--no-batching") { Description = "Serialise instead: each encoder request alone, one generation at a time (for comparing with batching)." };
        var drain = new Option<double>("--drain-timeout") { Description = "Seconds a stopping server (SIGTERM, Ctrl-C) lets requests in flight finish while it answers new ones 503.", DefaultValueFactory = _ => defaults.DrainTimeout.TotalSeconds };
        var cmd = new Command("serve", "Serve models over HTTP: OpenAI-compatible /v1 (models, embeddings, completions, chat/completions), "
                                       + "text-embeddings-inference (/embed, /predict, /rerank, /tokenize, /info), /fill-mask, /nsp, /ner, /perplexity, /attention, "
                                       + "/health, /metrics, /openapi.json and the playground at /. Concurrent generations share decode steps; encoder requests run in batches.")
            { models, dtype, host, port, maxBody, maxBatch, maxQueue, drain, batchTokens, batchWait, slots, context, noBatching };
        cmd.SetAction(r =>
        {
            double drainSeconds = r.GetValue(drain);
            if (!(drainSeconds >= 0 && drainSeconds <= 3600)) throw new SharpFormerException($"--drain-timeout must be between 0 and 3600 seconds (got {drainSeconds})");
            var options = new ServerOptions
            {
                Host = r.GetValue(host)!, Port = r.GetValue(port), MaxRequestBodySize = r.GetValue(maxBody), MaxClientBatchSize = r.GetValue(maxBatch),
                MaxQueue = r.GetValue(maxQueue), DrainTimeout = TimeSpan.FromSeconds(drainSeconds),
            };
            if (options.Port is < 0 or > 65535) throw new SharpFormerException($"--port must be between 0 and 65535 (got {options.Port})");
            if (options.MaxQueue < 0) throw new SharpFormerException($"--max-queue must be 0 or more (got {options.MaxQueue})");
            double waitMs = r.GetValue(batchWait);
            if (!(waitMs >= 0 && waitMs <= 60_000)) throw new SharpFormerException($"--batch-wait-ms must be between 0 and 60000 (got {waitMs})");
            var servingOptions = new ServingOptions
            {
                MaxBatchTokens = r.GetValue(batchTokens), BatchWait = TimeSpan.FromMilliseconds(waitMs), MaxConcurrentGenerations = r.GetValue(slots),
                MaxContext = r.GetValue(context), Batching = !r.GetValue(noBatching), Threads = r.GetValue(CommonOptions.Threads),
            };
            servingOptions.Validate();
            // Every loop of every model shares the cores: concurrent work splits them instead of oversubscribing them.
            servingOptions = servingOptions with { Cores = new CoreBudget(servingOptions.Threads ?? Environment.ProcessorCount) };
            var precision = r.Precision(dtype);
            // A model id is resolved (downloaded when missing) before listening and served under its id, as hub clients name it.
            var source = r.GetValue(CommonOptions.Source);
            var served = (r.GetValue(models) is { Length: > 0 } given ? given : ShippedModels.All.Select(ShippedModels.PathOf).ToArray())
                .Select(v => HubModels.ToFolder(v, source) is var dir && dir != v
                    ? (Dir: dir, Name: v.Split('@')[0])
                    : (Dir: v, Name: Path.GetFileName(Path.GetFullPath(v).TrimEnd(Path.DirectorySeparatorChar)))).ToArray();
            // What can be checked without loading is checked before listening: a typo fails at once, not after the port opens.
            foreach (var (d, _) in served)
                if (!File.Exists(Path.Combine(d, "config.json"))) throw new SharpFormerException($"{d}: not a model folder (no config.json)");
            var dup = served.GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1);
            if (dup is not null) throw new SharpFormerException($"two models are named '{dup.Key}'; serve folders with different names");

            // Each model is warmed up before /health reports ready: the first requests run at the latency of the later ones.
            var server = new SharpFormerServer(() => served.Select(m =>
            {
                var model = ServedModel.Load(m.Dir, m.Name, precision, servingOptions);
                model.WarmUpAsync().GetAwaiter().GetResult();
                return model;
            }).ToList(), options);
            server.StartAsync().GetAwaiter().GetResult();
            Console.Error.WriteLine($"listening on {server.Address} (loading {served.Length} model(s); /health answers 503 until they are loaded)");
            try { server.Ready.GetAwaiter().GetResult(); }
            catch (Exception)
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
                throw;
            }
            var loaded = server.Models.Values;
            Console.Error.WriteLine($"serving {string.Join(", ", loaded.Select(m => $"{m.Name} ({m.Kind.ToString().ToLowerInvariant()})"))} on {server.Address} (Ctrl-C or SIGTERM stops)");
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            return 0;
        });
        return cmd;
    }
}
