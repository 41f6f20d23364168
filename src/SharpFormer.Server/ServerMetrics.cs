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
    readonly Histogram _latency, _batch, _tokensPerSecond;
    readonly Gauge _queue, _inFlight;

    public ServerMetrics(Func<IEnumerable<ServedModel>> models, Func<int> inFlight)
    {
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);
        _requests = f.CreateCounter("sharpformer_requests_total", "HTTP requests answered, by route pattern and status code.", ["route", "status"]);
        _latency = f.CreateHistogram("sharpformer_request_duration_seconds", "Time from a request's arrival to the end of its answer (streams included), by route.",
            new HistogramConfiguration { LabelNames = ["route"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 18) });
        _batch = f.CreateHistogram("sharpformer_batch_size", "Inputs per request to an encoder task (texts, pairs or documents), by model and route.",
            new HistogramConfiguration { LabelNames = ["model", "route"], Buckets = Histogram.ExponentialBuckets(1, 2, 9) });
        _tokens = f.CreateCounter("sharpformer_generated_tokens_total", "Tokens generated, by model.", ["model"]);
        _tokensPerSecond = f.CreateHistogram("sharpformer_generation_tokens_per_second", "Generated tokens per second of each generation (prefill included), by model.",
            new HistogramConfiguration { LabelNames = ["model"], Buckets = Histogram.ExponentialBuckets(1, 2, 14) });
        _cancelled = f.CreateCounter("sharpformer_generations_cancelled_total", "Generations stopped because their client went away, by model.", ["model"]);
        _queue = f.CreateGauge("sharpformer_queue_depth", "Requests waiting for a busy model, by model.", ["model"]);
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
