using System.CommandLine;
using SharpFormer.Extensions.AI;
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
            Description = "A model folder to serve, addressed by its folder name (repeat for several; default: the shipped models).",
            AllowMultipleArgumentsPerToken = false,
        };
        var dtype = CommonOptions.DType();
        var defaults = new ServerOptions();
        var host = new Option<string>("--host") { Description = "The address to listen on.", DefaultValueFactory = _ => defaults.Host };
        var port = new Option<int>("--port") { Description = "The port to listen on (0: any free port).", DefaultValueFactory = _ => defaults.Port };
        var maxBody = new Option<long>("--payload-limit") { Description = "Largest request body in bytes (larger: 413).", DefaultValueFactory = _ => defaults.MaxRequestBodySize };
        var maxBatch = new Option<int>("--max-client-batch-size") { Description = "Most inputs per embeddings / classification request (more: 413).", DefaultValueFactory = _ => defaults.MaxClientBatchSize };
        var cmd = new Command("serve", "Serve models over HTTP: OpenAI-compatible /v1 (models, embeddings, completions, chat/completions), "
                                       + "text-embeddings-inference (/embed, /predict, /tokenize, /info) and /health. Requests to one model run one at a time.")
            { models, dtype, host, port, maxBody, maxBatch };
        cmd.SetAction(r =>
        {
            var options = new ServerOptions
            {
                Host = r.GetValue(host)!, Port = r.GetValue(port), MaxRequestBodySize = r.GetValue(maxBody), MaxClientBatchSize = r.GetValue(maxBatch),
            };
            if (options.Port is < 0 or > 65535) throw new SharpFormerException($"--port must be between 0 and 65535 (got {options.Port})");
            var precision = r.Precision(dtype);
            var dirs = r.GetValue(models) is { Length: > 0 } given ? given
                : [ShippedModels.PathOf(ShippedModels.Gpt2), ShippedModels.PathOf(ShippedModels.Bert), ShippedModels.PathOf(ShippedModels.Sentiment),
                   ShippedModels.PathOf(ShippedModels.Ner), ShippedModels.PathOf(ShippedModels.PairClassifier)];
            var loaded = dirs.Select(d => ServedModel.Load(d, precision: precision)).ToList();
            var server = new SharpFormerServer(loaded, options);
            server.StartAsync().GetAwaiter().GetResult();
            Console.Error.WriteLine($"serving {string.Join(", ", loaded.Select(m => $"{m.Name} ({m.Kind.ToString().ToLowerInvariant()})"))} on {server.Address} (Ctrl-C stops)");
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            return 0;
        });
        return cmd;
    }
}
