"""PyTorch peer (fp32, or --bf16) of the end-to-end bench: runs one model's workloads, prints one JSON object per line.

  /usr/bin/python3 torch_bench.py --model bert|gpt2|qwen2 --cache DIR --threads N --warmup W --reps R --min-reps M --budget S
                                  --max-time T [--quick --bf16]

Each workload: W warm-up runs, then timed runs (wall clock, time.perf_counter) by run.sh's rule (timed(), the same as
SharpFormer.E2E's Bench.Time; the numbers have no defaults here, run.sh sets them); the median is reported.
Outputs of the last run are written to DIR/out/torch[-bf16]_<workload>.f32|.i32 for the agreement check.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

T0 = time.perf_counter()
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402


def emit(**kw):
    print(json.dumps(kw), flush=True)


def more(a, runs, spent):
    """run.sh's rule: under min-reps runs, or under the budget, or under reps runs and the max time."""
    return runs < a.min_reps or spent < a.budget or (runs < a.reps and spent < a.max_time)


def timed(fn, a):
    out = None
    for _ in range(a.warmup):
        out = fn()
    ts = []
    while more(a, len(ts), sum(ts)):
        t = time.perf_counter()
        o = fn()
        ts.append(time.perf_counter() - t)
        out = out if out is not None else o
    return statistics.median(ts), ts, out


def current_rss_mb():
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def dump(path, t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32):
        t.to(torch.int32).contiguous().numpy().tofile(path + ".i32")
    else:
        t.float().contiguous().numpy().tofile(path + ".f32")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["bert", "gpt2", "qwen2"], required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--min-reps", type=int, required=True)
    ap.add_argument("--budget", type=float, required=True, help="seconds")
    ap.add_argument("--max-time", type=float, required=True, help="seconds")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bf16", action="store_true",
                    help="model.to(bfloat16): bf16 weights and activations (oneDNN AVX512-BF16 where the CPU has it). "
                         "torch.autocast(cpu, bfloat16) was tried and is slower than fp32 here: it recasts every fp32 "
                         "weight on every call.")
    ap.add_argument("--new-tokens", type=int, default=128)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    engine = "torch-bf16" if a.bf16 else "torch"
    outdir = os.path.join(a.cache, "out")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(a.cache, "inputs.json"), encoding="utf-8") as f:
        inputs = json.load(f)[a.model]
    mdir = os.path.join(a.cache, {"bert": "bert-base-chinese", "qwen2": "qwen2.5-0.5b"}.get(a.model, a.model))
    t = time.perf_counter()
    model = tm.load_model(mdir)
    if a.bf16:
        model = model.to(torch.bfloat16)
    emit(engine=engine, workload=f"load_{a.model}", seconds=time.perf_counter() - t, import_torch_s=t - T0)

    with torch.no_grad():
        if a.model == "bert":
            for shape in ["1x16", "1x128", "1x512", "32x128"]:
                if a.quick and shape == "1x512":
                    continue
                ids = torch.tensor(inputs[shape], dtype=torch.long)
                types, mask = torch.zeros_like(ids), torch.ones_like(ids)

                def run():
                    return model(ids, types, mask)[0]
                med, ts, out = timed(run, a)
                dump(os.path.join(outdir, f"{engine}_bert_{shape}"), out)
                emit(engine=engine, workload=f"bert_{shape}", median_s=med, all_s=ts)
        else:
            emit(engine=engine, workload=f"rss_{a.model}_loaded", mb=current_rss_mb())
            # GPT-2: the full logits of 512 tokens. Qwen2: what generate() does with a prompt (keys and values kept, logits
            # of the last position), at 512 and 4096 tokens, as SharpFormer.E2E.
            prefills = ["prefill_1x512"] if a.model == "gpt2" or a.quick else ["prefill_1x512", "prefill_1x4096"]
            for name in prefills:
                ids = torch.tensor(inputs[name], dtype=torch.long)

                def prefill():
                    return model(ids, last_only=a.model != "gpt2")[0]
                med, ts, out = timed(prefill, a)
                dump(os.path.join(outdir, f"{engine}_{a.model}_{name}"), out)
                del out
                emit(engine=engine, workload=f"{a.model}_{name}", median_s=med, all_s=ts)
                emit(engine=engine, workload=f"rss_{a.model}_{name}", mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            for b in (1, 8):
                prompt = torch.tensor(inputs[f"prompt_{b}x16"], dtype=torch.long)

                def decode():
                    return model.greedy(prompt, a.new_tokens)
                med, ts, out = timed(decode, a)
                dump(os.path.join(outdir, f"{engine}_{a.model}_decode_b{b}"), out)
                emit(engine=engine, workload=f"{a.model}_decode_b{b}", median_s=med, all_s=ts,
                     tokens_per_s=b * a.new_tokens / med)
    emit(engine=engine, workload=f"peak_rss_{a.model}", mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
