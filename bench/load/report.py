#!/usr/bin/env python3
"""Markdown report of a bench/load run: medians over its rounds (one JSON-lines file per round), targets checked per round."""
import json, statistics, sys

rounds = [[json.loads(l) for l in open(f, encoding="utf-8") if l.strip()] for f in sys.argv[1:]]
if not rounds:
    sys.exit("usage: report.py ROUND.jsonl [ROUND.jsonl ...]")
by = lambda rows, mode: [r for r in rows if r.get("mode") == mode]
one = lambda rows, mode, clients=None: next((r for r in by(rows, mode) if clients is None or r["clients"] == clients), None)
med = lambda xs: statistics.median(xs) if xs else None
spread = lambda xs: f"{min(xs):.0f}–{max(xs):.0f}" if len(xs) > 1 else ""

print(f"Medians of {len(rounds)} round(s).\n")
print("| load | clients | requests | errors | throughput | p50 ms | p95 ms | p99 ms |")
print("|---|---|---|---|---|---|---|---|")
for mode, unit in (("embed", "texts/s"), ("stream", "tok/s")):
    for clients in sorted({r["clients"] for rows in rounds for r in by(rows, mode)}):
        rs = [r for rows in rounds if (r := one(rows, mode, clients))]
        ok = [r for r in rs if r["p50_ms"] is not None]
        m = lambda k: med([r[k] for r in ok]) or float("nan")
        print(f"| {mode} {rs[0]['model']} | {clients} | {sum(r['requests'] for r in rs)} | {sum(r['errors'] for r in rs)} | "
              f"{med([r['units_per_s'] for r in rs]):.1f} {unit} | {m('p50_ms'):.1f} | {m('p95_ms'):.1f} | {m('p99_ms'):.1f} |")
for rows in rounds:
    for r in by(rows, "fault"):
        print(f"\nFault run: {r['requests']} ordinary streams, {r['errors']} errors; misbehaving clients: " +
              ", ".join(f"{k} ×{v}" for k, v in r["faults"].items()))
rss = [r["peak_rss_mb"] for rows in rounds for r in by(rows, "server")]
if rss:
    print(f"\nServer peak RSS: {max(rss)} MB (largest of the rounds)")
oe = [r for rows in rounds if (r := one(rows, "offline-embed"))]
od = [r for rows in rounds if (r := one(rows, "offline-decode"))]
if oe:
    print(f"\nOffline embeddings: batched {med([r['batched_texts_per_s'] for r in oe]):.1f} texts/s; one text alone p50 "
          f"{med([r['single_p50_ms'] for r in oe]):.1f} ms, p99 {med([r['single_p99_ms'] for r in oe]):.1f} ms")
if od:
    print(f"Offline decoding: batch-8 {med([r['batch_tokens_per_s'] for r in od]):.1f} tok/s; one prompt alone p50 "
          f"{med([r['single_p50_ms'] for r in od]):.1f} ms, p99 {med([r['single_p99_ms'] for r in od]):.1f} ms")


def ratios(mode, clients, offline_mode, server_key, offline_key):
    """Server figure / offline figure of the same round, in %, for every round that has both."""
    out = []
    for rows in rounds:
        s, o = one(rows, mode, clients), one(rows, offline_mode)
        if s and o and s.get(server_key) is not None:
            out.append(100 * s[server_key] / o[offline_key])
    return out


print("\nTargets (each round's server figure over the same round's offline figure; median, and the range over rounds):")
for label, args, goal, at_least in (
    ("embeddings at 32 clients / offline batched throughput", ("embed", 32, "offline-embed", "units_per_s", "batched_texts_per_s"), 90, True),
    ("8 streamed generations / offline batch-8 decode tokens/s", ("stream", 8, "offline-decode", "units_per_s", "batch_tokens_per_s"), 80, True),
    ("embeddings, 1 client: p99 / in-process p99 of the same texts alone", ("embed", 1, "offline-embed", "p99_ms", "single_p99_ms"), 110, False),
    ("embeddings, 1 client: p50 / in-process p50", ("embed", 1, "offline-embed", "p50_ms", "single_p50_ms"), 110, False),
    ("streamed generation, 1 client: p99 / in-process p99 of the same prompts alone", ("stream", 1, "offline-decode", "p99_ms", "single_p99_ms"), 110, False),
    ("streamed generation, 1 client: p50 / in-process p50", ("stream", 1, "offline-decode", "p50_ms", "single_p50_ms"), 110, False),
):
    rs = ratios(*args)
    if not rs:
        continue
    m = med(rs)
    met = m >= goal if at_least else m <= goal
    print(f"- {label}: {m:.0f} % {'(' + spread(rs) + ' %) ' if spread(rs) else ''}"
          f"(target {'≥' if at_least else '≤'} {goal} %: {'met' if met else 'not met'})")
