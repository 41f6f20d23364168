#!/usr/bin/env python3
"""Markdown report of one bench/load run (its JSON lines), with the issue's three targets checked."""
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
by = lambda mode: [r for r in rows if r.get("mode") == mode]
off_e = next(iter(by("offline-embed")), {})
off_d = next(iter(by("offline-decode")), {})
print("| load | clients | requests | errors | throughput | p50 ms | p95 ms | p99 ms |")
print("|---|---|---|---|---|---|---|---|")
for r in by("embed") + by("stream"):
    unit = "texts/s" if r["mode"] == "embed" else "tok/s"
    print(f"| {r['mode']} {r['model']} | {r['clients']} | {r['requests']} | {r['errors']} | {r['units_per_s']:.1f} {unit} | "
          f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} |")
for r in by("fault"):
    print(f"\nFault run: {r['requests']} ordinary streams, {r['errors']} errors; misbehaving clients: " +
          ", ".join(f"{k} ×{v}" for k, v in r["faults"].items()))
for r in by("server"):
    print(f"\nServer peak RSS: {r['peak_rss_mb']} MB")
print("\nTargets:")
e32 = next((r for r in by("embed") if r["clients"] == 32), None)
if e32 and off_e:
    f = e32["units_per_s"] / off_e["batched_texts_per_s"]
    print(f"- embeddings, 32 clients: {e32['units_per_s']:.1f} texts/s = {100*f:.0f} % of offline batched {off_e['batched_texts_per_s']:.1f} (target ≥ 90 %)")
s8 = next((r for r in by("stream") if r["clients"] == 8), None)
if s8 and off_d:
    f = s8["units_per_s"] / off_d["batch_tokens_per_s"]
    print(f"- 8 streamed generations: {s8['units_per_s']:.1f} tok/s = {100*f:.0f} % of offline batch-8 decode {off_d['batch_tokens_per_s']:.1f} (target ≥ 80 %)")
e1 = next((r for r in by("embed") if r["clients"] == 1), None)
if e1 and off_e:
    print(f"- embeddings, 1 client: p99 {e1['p99_ms']:.1f} ms vs warm in-process {off_e['single_ms']:.1f} ms "
          f"(+{100*(e1['p99_ms']/off_e['single_ms']-1):.0f} %; target ≤ +10 %)")
s1 = next((r for r in by("stream") if r["clients"] == 1), None)
if s1 and off_d:
    print(f"- streamed generation, 1 client: p99 {s1['p99_ms']:.1f} ms vs warm in-process {off_d['single_request_ms']:.1f} ms "
          f"(+{100*(s1['p99_ms']/off_d['single_request_ms']-1):.0f} %; target ≤ +10 %)")
