#!/usr/bin/env bash
# Cold start of the `sharpformer` CLI: time from process start to the first byte on stdout (wall) and the
# process's whole CPU time (user + sys), median of R runs after one warm-up run (file cache warm).
#
#   bench/coldstart.sh [--reps R] [--threads N] [--cache DIR] [--no-build] [--only NAME]
#
# Rows: tiny BERT fill-mask, tiny GPT-2 generate (fixtures in tests/fixtures), BERT-base embed and GPT-2 124M
# generate of 1 token (full-size random checkpoints from bench/e2e/run.sh's cache; rows skipped if absent).
# Runs the built dll as the README does (`dotnet src/SharpFormer.Cli/bin/Release/net10.0/SharpFormer.Cli.dll`).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
REPS=7 THREADS=2 BUILD=1 ONLY=""
CACHE="$HERE/e2e/.cache"
FIX="$ROOT/tests/fixtures"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --fixtures) FIX="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
CLI="$ROOT/src/SharpFormer.Cli/bin/Release/net10.0/SharpFormer.Cli.dll"
if [[ $BUILD == 1 ]]; then
  dotnet build "$ROOT/src/SharpFormer.Cli/SharpFormer.Cli.csproj" -c Release -nologo -v q >/tmp/coldstart-build.log 2>&1 \
    || { tail -20 /tmp/coldstart-build.log >&2; echo "build failed" >&2; exit 1; }
fi
[[ -f $CLI ]] || { echo "no CLI at $CLI (build it: dotnet build -c Release)" >&2; exit 1; }
PY="$(command -v python3 || echo /usr/bin/python3)"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), median of $REPS after 1 warm-up, --threads $THREADS"
printf '%-28s %10s %10s %10s %10s\n' workload "first out" "wall" "user+sys" "max RSS"
row() {  # row NAME DIR ARGS...: skipped when DIR is missing
  local name="$1" dir="$2"; shift 2
  [[ -z $ONLY || $name == *"$ONLY"* ]] || return 0
  if [[ ! -d $dir ]]; then printf '%-28s skipped: no %s\n' "$name" "$dir"; return 0; fi
  "$PY" - "$name" "$REPS" dotnet "$CLI" "$@" <<'PYEOF'
import os, statistics, subprocess, sys, time
name, reps, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def once():
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.read(1)
    t1 = time.perf_counter() - t
    rest = p.stdout.read(); err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    t2 = time.perf_counter() - t
    if status != 0 or not first:
        sys.exit(f"{name}: {' '.join(cmd)} failed: {err.decode(errors='replace')[-400:]}")
    return t1, t2, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
once()
runs = [once() for _ in range(reps)]
med = [statistics.median(r[i] for r in runs) for i in range(4)]
print(f"{name:<28} {med[0]:9.3f}s {med[1]:9.3f}s {med[2]:9.3f}s {med[3]:7.0f} MB", flush=True)
PYEOF
}
T=(--threads "$THREADS")
row "tiny BERT fill-mask" "$FIX/bert-tiny" fill-mask --model "$FIX/bert-tiny" "${T[@]}" "今天[MASK]气很好"
row "tiny GPT-2 generate 20" "$FIX/gpt2-tiny" generate --model "$FIX/gpt2-tiny" "${T[@]}" --max-new-tokens 20 -- "Hello, my dog is cute"
row "BERT-base embed" "$CACHE/bert-base-chinese" embed --model "$CACHE/bert-base-chinese" "${T[@]}" "今天天气很好。"
row "GPT-2 124M generate 1" "$CACHE/gpt2" generate --model "$CACHE/gpt2" "${T[@]}" --max-new-tokens 1 -- "Hello, my dog is cute"
