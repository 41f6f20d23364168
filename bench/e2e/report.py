"""Builds the end-to-end table from the JSON lines the engines printed, checks numerical agreement from the
outputs they dumped (DIR/out), prints everything as Markdown and exits 2 if fp32 engines disagree (> 1e-3).

  /usr/bin/python3 report.py --results DIR/results.jsonl --cache DIR [--md OUT.md] [--header TEXT]
"""
import argparse
import json
import os
import sys

import numpy as np

TOL = 1e-3
NOISY = 1.5  # 90th / 10th percentile of the timed runs above this: the row is marked † (the host was busy)


def load(path):
    r = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                o = json.loads(line)
                key = (o["engine"], o["workload"])
                r[key] = pool(r[key], o) if key in r else o
    return r


def pool(a, b):
    """One workload measured by several processes (run.sh --rounds): the median over all their timed runs."""
    if "error" in a or "error" in b or "all_s" not in a or "all_s" not in b:
        return b if "error" in a else a
    xs = a["all_s"] + b["all_s"]
    o = dict(a, all_s=xs, median_s=float(np.median(xs)))
    if "tokens_per_s" in a:
        o["tokens_per_s"] = a["tokens_per_s"] * a["median_s"] / o["median_s"]  # same token count in every run
    return o


def qwen2_weight_bytes(config: dict, bytes_per_weight: float) -> float:
    """Bytes of weight matrices one decode step streams: every layer's q, k, v, o, gate, up, down and the LM head."""
    h, i, L = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    d = h // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * d
    per_layer = h * (config["num_attention_heads"] * d) * 2 + h * kv * 2 + 3 * h * i
    return (L * per_layer + config["vocab_size"] * h) * bytes_per_weight


def bandwidth_lines(R, get, cache):
    """The decode rows against this run's measured memory bandwidth: tokens/s ÷ (bandwidth ÷ weight bytes per token)."""
    bw = [o for (e, w), o in R.items() if e == "membw"]
    cfg_path = os.path.join(cache, "qwen2.5-0.5b", "config.json")
    if not bw or not os.path.exists(cfg_path):
        return []
    with open(cfg_path, encoding="utf-8") as f:
        config = json.load(f)
    best = max(bw, key=lambda o: o["threads"])
    read = best["read_gb_s"] * 1e9
    out = ["", f"Memory bandwidth measured in this run ({best['threads']} threads, STREAM-style, best of 7 passes over 256 MB "
           f"arrays): read {best['read_gb_s']:.1f} GB/s, copy {best['copy_gb_s']:.1f}, triad {best['triad_gb_s']:.1f}"
           + "".join(f"; {o['threads']} thread: read {o['read_gb_s']:.1f}" for o in bw if o is not best)
           + ". Bandwidth limit of a decode step = weight bytes per token ÷ read bandwidth (the KV cache and activations "
             "are not counted: an upper bound on tokens/s):"]
    for engine, name, width in [("sharpformer", "SharpFormer f32", 4), ("sharpformer-bf16", "SharpFormer bf16", 2),
                                ("sharpformer-int8", "SharpFormer int8", 1), ("torch", "PyTorch f32", 4), ("torch-bf16", "PyTorch bf16", 2)]:
        wb = qwen2_weight_bytes(config, width)
        limit = read / wb
        parts = []
        for b in (1, 8):
            o = get(engine, f"qwen2_decode_b{b}")
            if o is not None:
                # A batch shares each weight read: the limit is per step, b tokens per step.
                parts.append(f"batch {b} = {100 * o['tokens_per_s'] / (b * limit):.0f} % of the bandwidth limit ({b * limit:.1f} tok/s)")
        if parts:
            out.append(f"- {name} decode ({wb / 1e6:.0f} MB of weights per step): " + ", ".join(parts))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--md")
    ap.add_argument("--header", default="")
    a = ap.parse_args()
    R = load(a.results)
    out = os.path.join(a.cache, "out")

    def get(engine, workload):
        o = R.get((engine, workload))
        return None if o is None or "error" in o else o

    def noisy(o):
        xs = o.get("all_s") or []
        # Percentiles, not max/min: with tens or hundreds of runs one preempted run must not mark a row.
        return len(xs) > 1 and min(xs) > 0 and np.percentile(xs, 90) / np.percentile(xs, 10) > NOISY

    # (label, workload, value(o) -> float, format, higher_is_better)
    ms = (lambda o: o["median_s"] * 1e3, "{:.0f} ms", False)
    sec = (lambda o: o["median_s"], "{:.2f} s", False)
    tps = (lambda o: o["tokens_per_s"], "{:.1f} tok/s", True)
    mb = (lambda o: o["mb"], "{:.0f} MB", False)
    load_s = (lambda o: o["seconds"], "{:.2f} s", False)
    rows = [
        ("BERT-base latency, batch 1 × 16 tokens", "bert_1x16", *ms),
        ("BERT-base latency, batch 1 × 128", "bert_1x128", *ms),
        ("BERT-base latency, batch 1 × 512", "bert_1x512", *ms),
        ("BERT-base throughput, 32 × 128 (time per batch)", "bert_32x128", *sec),
        ("GPT-2 124M prefill 512 tokens (full logits)", "gpt2_prefill_1x512", *ms),
        ("GPT-2 greedy decode, batch 1 (16-token prompt + 128 new)", "gpt2_decode_b1", *tps),
        ("GPT-2 greedy decode, batch 8 (16-token prompts + 128 new each)", "gpt2_decode_b8", *tps),
        ("Qwen2.5-0.5B prefill 512 tokens (cache + last logits)", "qwen2_prefill_1x512", *ms),
        ("Qwen2.5-0.5B prefill 4096 tokens (cache + last logits)", "qwen2_prefill_1x4096", *sec),
        ("Qwen2.5-0.5B greedy decode, batch 1 (16-token prompt + 128 new)", "qwen2_decode_b1", *tps),
        ("Qwen2.5-0.5B greedy decode, batch 8 (16-token prompts + 128 new each)", "qwen2_decode_b8", *tps),
        ("peak RSS, BERT-base process", "peak_rss_bert", *mb),
        ("peak RSS, GPT-2 process", "peak_rss_gpt2", *mb),
        ("Qwen2.5-0.5B: RSS after load", "rss_qwen2_loaded", *mb),
        ("Qwen2.5-0.5B: peak RSS after prefill 512", "rss_qwen2_prefill_1x512", *mb),
        ("Qwen2.5-0.5B: peak RSS after prefill 4096", "rss_qwen2_prefill_1x4096", *mb),
        ("peak RSS, Qwen2.5-0.5B process", "peak_rss_qwen2", *mb),
        ("model load in the bench process, BERT-base", "load_bert", *load_s),
        ("model load in the bench process, GPT-2", "load_gpt2", *load_s),
        ("model load in the bench process, Qwen2.5-0.5B", "load_qwen2", *load_s),
        ("cold start to first output: CLI `info` bert-tiny", "cold_info_tiny", *sec),
        ("cold start to first output: CLI `info` BERT-base", "cold_info_bert", *sec),
        ("cold start to first output: BERT-base load + 1 sentence", "cold_embed_bert", *sec),
        ("cold start: `python3 -c \"import torch\"`", "cold_import", *sec),
    ]
    engines = [("sharpformer", "SharpFormer"), ("torch", "PyTorch fp32"), ("ort", "ONNX Runtime"), ("torch-bf16", "PyTorch bf16"),
               ("sharpformer-bf16", "SharpFormer bf16"), ("sharpformer-int8", "SharpFormer int8")]
    lines = ["| workload | SharpFormer | PyTorch fp32 | ONNX Runtime | ratio vs PyTorch | ratio vs ORT | PyTorch bf16 | SharpFormer bf16 | SharpFormer int8 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, wl, fn, fmt, hib in rows:
        vals, cells = {}, {}
        for e, _ in engines:
            o = get(e, wl)
            if o is None:
                cells[e] = "n/a"
                continue
            v = fn(o)
            vals[e] = v
            cells[e] = fmt.format(v) + (" †" if noisy(o) else "")
            if wl == "bert_32x128":
                cells[e] += f" ({32 * 128 / v:.0f} tok/s)"
        if not vals:
            continue

        def ratio(peer):
            if "sharpformer" not in vals or peer not in vals or vals["sharpformer"] == 0 or vals[peer] == 0:
                return "—"
            r = vals["sharpformer"] / vals[peer] if hib else vals[peer] / vals["sharpformer"]
            return f"{r:.2f}×"
        lines.append(f"| {label} | {cells['sharpformer']} | {cells['torch']} | {cells['ort']} | {ratio('torch')} | "
                     f"{ratio('ort')} | {cells['torch-bf16']} | {cells['sharpformer-bf16']} | {cells['sharpformer-int8']} |")

    # ---- numerical agreement
    checks, failed = [], False

    def f32(engine, wl):
        p = os.path.join(out, f"{engine}_{wl}.f32")
        return np.fromfile(p, dtype=np.float32) if os.path.exists(p) else None

    def i32(engine, wl):
        p = os.path.join(out, f"{engine}_{wl}.i32")
        return np.fromfile(p, dtype=np.int32) if os.path.exists(p) else None

    for wl, what in [("bert_1x16", "last hidden state"), ("bert_1x128", "last hidden state"),
                     ("bert_1x512", "last hidden state"), ("bert_32x128", "last hidden state"),
                     ("gpt2_prefill_1x512", "logits [512 × 50257]"),
                     ("qwen2_prefill_1x512", "last logits [151936]"), ("qwen2_prefill_1x4096", "last logits [151936]")]:
        ref = f32("torch", wl)
        if ref is None:
            continue
        parts = []
        for e, name, strict in [("sharpformer", "SharpFormer", True), ("ort", "ORT", True), ("torch-bf16", "PyTorch bf16", False),
                                ("sharpformer-bf16", "SharpFormer bf16", False), ("sharpformer-int8", "SharpFormer int8", False)]:
            x = f32(e, wl)
            if x is None:
                continue
            if x.shape != ref.shape:
                parts.append(f"{name}: SHAPE MISMATCH {x.shape} vs {ref.shape}")
                failed |= strict
                continue
            d = float(np.abs(x - ref).max())
            bad = strict and not d <= TOL
            failed |= bad
            parts.append(f"{name} {d:.2e}" + (" **FAIL**" if bad else "") + ("" if strict else " (informative)"))
        checks.append(f"- {wl} {what}, max |x − PyTorch fp32| (scale {float(np.abs(ref).max()):.2f}): " + ", ".join(parts))
    for wl in ("gpt2_decode_b1", "gpt2_decode_b8", "qwen2_decode_b1", "qwen2_decode_b8"):
        ref = i32("torch", wl)
        if ref is None:
            continue
        parts = []
        for e, name in [("sharpformer", "SharpFormer"), ("ort", "ORT"), ("torch-bf16", "PyTorch bf16"), ("sharpformer-bf16", "SharpFormer bf16"),
                        ("sharpformer-int8", "SharpFormer int8")]:
            x = i32(e, wl)
            if x is not None:
                parts.append(f"{name} {int((x == ref).sum())}/{ref.size}" if x.shape == ref.shape
                             else f"{name}: {x.size} tokens, not {ref.size} (a run with other options)")
        checks.append(f"- {wl} greedy tokens equal to PyTorch fp32's: " + ", ".join(parts)
                      + " (a near-tie between two logits may legitimately flip one token and everything after it)")

    text = []
    if a.header:
        text.append(a.header.rstrip() + "\n")
    text += lines
    text.append("")
    text.append("Medians of the timed runs. Ratios: > 1 means SharpFormer is better (faster, more tokens/s, less "
                "memory). † = the 90th percentile of the timed runs is more than 1.5× the 10th (busy host; read with care).")
    text += bandwidth_lines(R, get, a.cache)
    text.append("")
    text.append(f"Numerical agreement (fp32 engines must agree within {TOL:g}):")
    text += checks or ["- no outputs to compare"]
    text.append("")
    text.append("Agreement: " + ("**FAILED** (see above)" if failed else "OK"))
    md = "\n".join(text) + "\n"
    print(md)
    if a.md:
        with open(a.md, "w", encoding="utf-8") as f:
            f.write(md)
    if failed:
        print(f"ERROR: the engines disagree by more than {TOL:g}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
