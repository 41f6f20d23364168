"""Cold start: wall time from process start to the first byte on stdout (median of R runs after 1 warm-up run,
which fills the OS file cache). Prints one JSON object per measured command.

  /usr/bin/python3 coldstart.py --cache DIR --threads N --reps R [--cli PATH/SharpFormer.Cli.dll] [--e2e PATH/SharpFormer.E2E]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def first_output(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = p.stdout.read(1)
    dt = time.perf_counter() - t
    rest = p.stdout.read()
    err = p.stderr.read()
    p.wait()
    if p.returncode != 0 or not first:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {p.returncode}): {err.decode(errors='replace')[-500:]}")
    return dt, (first + rest).decode(errors="replace")


def measure(engine, workload, cmd, reps, env=None):
    try:
        first_output(cmd, env)  # warm-up: file cache, JIT disk caches
        ts = [first_output(cmd, env)[0] for _ in range(reps)]
        print(json.dumps({"engine": engine, "workload": workload, "median_s": statistics.median(ts), "all_s": ts,
                          "command": " ".join(cmd)}), flush=True)
    except Exception as e:  # noqa: BLE001 - report and go on: a broken CLI must not hide the other rows
        print(f"cold start {engine}/{workload}: {e}", file=sys.stderr)
        print(json.dumps({"engine": engine, "workload": workload, "error": str(e)[:300]}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cli")
    ap.add_argument("--e2e")
    ap.add_argument("--tiny", default=os.path.join(REPO, "tests", "fixtures", "bert-tiny"))
    a = ap.parse_args()
    bert = os.path.join(a.cache, "bert-base-chinese")
    text = "今天天气很好。"
    if a.cli and os.path.exists(a.cli):
        measure("sharpformer", "cold_info_tiny", ["dotnet", a.cli, "info", "--model", a.tiny], a.reps)
        measure("sharpformer", "cold_info_bert", ["dotnet", a.cli, "info", "--model", bert], a.reps)
        measure("sharpformer", "cold_embed_bert", ["dotnet", a.cli, "embed", "--model", bert, "--threads", str(a.threads), text], a.reps)
    else:
        print(f"cold start: no CLI at {a.cli}; CLI rows skipped", file=sys.stderr)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    measure("torch", "cold_import", ["/usr/bin/python3", "-c", "import torch; print(torch.__version__)"], a.reps, env)
    measure("torch", "cold_embed_bert", ["/usr/bin/python3", os.path.join(HERE, "coldstart_torch.py"), bert, str(a.threads)], a.reps, env)
    if a.e2e and os.path.exists(a.e2e):
        measure("ort", "cold_embed_bert", [a.e2e, "--engine", "ort", "--model", "bert", "--cache", a.cache,
                                           "--threads", str(a.threads), "--coldstart"], a.reps)


if __name__ == "__main__":
    main()
