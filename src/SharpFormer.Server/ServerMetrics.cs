using Microsoft.AspNetCore.Http;
using Prometheus;
using SharpFormer.Extensions.AI;
using SharpFormer.Tasks;

namespace SharpFormer.Server;

/// <summary>
/// The server's metrics in Prometheus text format (prometheus-net, a registry per server: no process-wide state).
/// Label sets are bounded: routes are the route patterns (or "unmatched"), models the served names; histogram
/// buckets are fixed. Queue depth, requests in flight and cancelled generations are read live at each scrape.
/// </summary>
sealed class ServerMetrics
{
    readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    readonly Counter _requests, _tokens, _cancelled;
    readonly Histogram _latency, _batch, _tokensPerSecond, _encoderBatch, _decodeBatch;
    readonly List<(ServedModel Model, Action<int, int> Batch, Action<int> Step)> _watched = [];
    readonly Gauge _queue, _inFlight;

    public ServerMetrics(Func<IEnumerable<ServedModel>> models, Func<int> inFlight)
    {
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);
        _requests = f.CreateCounter("sharpformer_requests_total", "HTTP requests answered, by route pattern and status code.", ["route", "status"]);
        _latency = f.CreateHistogram("sharpformer_request_duration_seconds", "Time from a request's arrival to the end of its answer (streams included), by route.",
            new HistogramConfiguration { LabelNames = ["route"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 18) });
        _batch = f.CreateHistogram("sharpformer_batch_size", "Inputs per request to an encoder task (texts, pairs or documents), by model and route.",
            new HistogramConfiguration { LabelNames = ["model", "route"], Buckets = Histogram.ExponentialBuckets(1, 2, 9) });
        _encoderBatch = f.CreateHistogram("sharpformer_encoder_batch_requests", "Requests served by one encoder model call (dynamic batching), by model.",
            new HistogramConfiguration { LabelNames = ["model"], Buckets = Histogram.ExponentialBuckets(1, 2, 9) });
        _decodeBatch = f.CreateHistogram("sharpformer_decode_batch_size", "Sequences advanced by one decode step (continuous batching), by model.",
            new HistogramConfiguration { LabelNames = ["model"], Buckets = Histogram.LinearBuckets(1, 1, 16) });
        _tokens = f.CreateCounter("sharpformer_generated_tokens_total", "Tokens generated, by model.", ["model"]);
        _tokensPerSecond = f.CreateHistogram("sharpformer_generation_tokens_per_second", "Generated tokens per second of each generation (prefill included), by model.",
            new HistogramConfiguration { LabelNames = ["model"], Buckets = Histogram.ExponentialBuckets(1, 2, 14) });
        _cancelled = f.CreateCounter("sharpformer_generations_cancelled_total", "Generations stopped because their client went away, by model.", ["model"]);
        _queue = f.CreateGauge("sharpformer_queue_depth", "Requests waiting for a busy model (its turn, an encoder batch or a decode slot), by model.", ["model"]);
        _inFlight = f.CreateGauge("sharpformer_requests_in_flight", "Requests being served now.");
        _registry.AddBeforeCollectCallback(() =>
        {
            foreach (var m in models())
            {
                _queue.WithLabels(m.Name).Set(m.Waiting);
                _cancelled.WithLabels(m.Name).IncTo(m.GenerationsCancelled);
            }
            _inFlight.Set(inFlight());
        });
    }

    /// <summary>Observes <paramref name="model"/>'s encoder batches and decode steps (until <see cref="Unwatch"/>).</summary>
    public void Watch(ServedModel model)
    {
        var encoder = _encoderBatch.WithLabels(model.Name);
        var decoder = _decodeBatch.WithLabels(model.Name);
        Action<int, int> batch = (requests, _) => encoder.Observe(requests);
        Action<int> step = n => decoder.Observe(n);
        model.BatchCompleted += batch;
        model.DecodeStepCompleted += step;
        lock (_watched) _watched.Add((model, batch, step));
    }

    /// <summary>Stops observing the models (a server that stops; its models may be served again by another).</summary>
    public void Unwatch()
    {
        lock (_watched)
        {
            foreach (var (m, batch, step) in _watched) { m.BatchCompleted -= batch; m.DecodeStepCompleted -= step; }
            _watched.Clear();
        }
    }

    /// <summary>Counts and times one answered request.</summary>
    public void Request(string route, int status, TimeSpan elapsed)
    {
        _requests.WithLabels(route, status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
        _latency.WithLabels(route).Observe(elapsed.TotalSeconds);
    }

    /// <summary>Records the number of inputs of one encoder request.</summary>
    public void Batch(ServedModel model, string route, int size) => _batch.WithLabels(model.Name, route).Observe(size);

    /// <summary>Records a finished generation: its tokens and its rate.</summary>
    public void Generated(ServedModel model, GenerationFinish finish, TimeSpan elapsed)
    {
        _tokens.WithLabels(model.Name).Inc(finish.CompletionTokens);
        if (finish.CompletionTokens > 0 && elapsed > TimeSpan.Zero) _tokensPerSecond.WithLabels(model.Name).Observe(finish.CompletionTokens / elapsed.TotalSeconds);
    }

    /// <summary>Writes the exposition (text format 0.0.4).</summary>
    public async Task WriteAsync(HttpContext ctx)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await _registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
    }
}
