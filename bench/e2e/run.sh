#!/usr/bin/env bash
# End-to-end comparison: SharpFormer vs PyTorch (fp32, optional bf16) vs ONNX Runtime on full-size random-weight
# BERT-base (bert-base-chinese shape), GPT-2 124M and Qwen2.5-0.5B-shaped checkpoints, identical inputs. See README.md
# beside this file.
#
#   bench/e2e/run.sh [--models bert,gpt2,qwen2] [--threads N] [--quick] [--warmup W] [--reps R] [--min-reps M]
#                    [--budget S] [--max-time T] [--no-bf16] [--no-int8] [--no-ort] [--no-coldstart] [--omp-active] [--rounds N]
#
# --models: which models to run (default bert,gpt2; add qwen2, or run it alone with --models qwen2). qwen2 has no ONNX
# Runtime column; its run also measures this machine's memory bandwidth (the decode rows' bandwidth limit).
#
# Timing (set in ONE place below and passed unchanged to every engine): per workload W warm-up runs (default 3), then
# timed runs until there are at least R (default 20) and they took at least S seconds (default 3); a slow workload stops
# once its timed runs took T seconds (default 15), but never before M runs (default 5).
#
# --rounds N runs SharpFormer and ONNX Runtime (fp32) N times, alternating, and pools their timed runs: on a shared host
# the load drifts over minutes, so alternating rounds compare the two engines under the same conditions.
# Prints one Markdown table (also written to bench/e2e/.cache/last-run.md); exits non-zero if an engine failed
# or the fp32 engines disagree by more than 1e-3.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$HERE/.cache"
PY=/usr/bin/python3   # Debian's python3 (has python3-torch); the pyenv python3 on PATH has no torch

MODELS=bert,gpt2 THREADS=2 QUICK=0 REPS="" WARMUP="" MIN_REPS="" BUDGET_S="" MAX_TIME_S="" BF16=1 INT8=1 ORT=1 COLD=1 OMP_POLICY=PASSIVE ROUNDS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --reps) REPS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --min-reps) MIN_REPS="$2"; shift 2 ;;
    --budget) BUDGET_S="$2"; shift 2 ;;
    --max-time) MAX_TIME_S="$2"; shift 2 ;;
    --no-bf16) BF16=0; shift ;;
    --no-int8) INT8=0; shift ;;
    --no-ort) ORT=0; shift ;;
    --no-coldstart) COLD=0; shift ;;
    --omp-active) OMP_POLICY=ACTIVE; shift ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer, got '$ROUNDS'" >&2; exit 64; }
[[ "$MODELS" =~ ^(bert|gpt2|qwen2)(,(bert|gpt2|qwen2))*$ ]] || { echo "--models takes a comma-separated list of bert, gpt2, qwen2; got '$MODELS'" >&2; exit 64; }
has_model() { [[ ",$MODELS," == *",$1,"* ]]; }
has_model bert || COLD=0   # the cold-start rows load BERT
# ---- timing: the one place that decides how every engine is timed ------------------------------------------------
# The same warm-up and stopping rule for SharpFormer, ONNX Runtime and PyTorch (they implement the rule, run.sh sets
# its numbers). 3 warm-ups: ORT was still warming up after 1 (issue 15: 64 → 57 ms on BERT 1×128 with 3 warm-ups and
# 30 runs). --quick is a smoke test of the harness, not a measurement.
if [[ $QUICK == 1 ]]; then
  WARMUP="${WARMUP:-1}" REPS="${REPS:-2}" MIN_REPS="${MIN_REPS:-2}" BUDGET_S="${BUDGET_S:-0}" MAX_TIME_S="${MAX_TIME_S:-0}" COLD_REPS=2
  BF16=0; INT8=0
else
  WARMUP="${WARMUP:-3}" REPS="${REPS:-20}" MIN_REPS="${MIN_REPS:-5}" BUDGET_S="${BUDGET_S:-3}" MAX_TIME_S="${MAX_TIME_S:-15}" COLD_REPS=5
fi
for o in warmup:WARMUP reps:REPS min-reps:MIN_REPS budget:BUDGET_S max-time:MAX_TIME_S; do
  v="${o#*:}"; [[ "${!v}" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "--${o%%:*} must be a non-negative number, got '${!v}'" >&2; exit 64; }
done
[[ "$WARMUP$REPS$MIN_REPS" =~ ^[0-9]+$ && $MIN_REPS -ge 1 ]] || { echo "--warmup, --reps and --min-reps must be integers, --min-reps at least 1" >&2; exit 64; }
TIMING=(--warmup "$WARMUP" --reps "$REPS" --min-reps "$MIN_REPS" --budget "$BUDGET_S" --max-time "$MAX_TIME_S")
QFLAG=(); [[ $QUICK == 1 ]] && QFLAG=(--quick)

log() { echo "[e2e $(date +%H:%M:%S)] $*" >&2; }

# ---- 1. dependencies (Debian packages; no pip) ------------------------------------------------------------------
apt_updated=0
need_apt() {  # need_apt PACKAGE: install a Debian package if it is not installed
  if ! dpkg -s "$1" >/dev/null 2>&1; then
    if [[ $apt_updated == 0 ]]; then log "apt-get update"; apt-get update -qq >&2 || true; apt_updated=1; fi
    log "installing $1"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2 || { echo "could not install $1" >&2; exit 1; }
  fi
}
if ! "$PY" -c "import torch, numpy" >/dev/null 2>&1; then need_apt python3-torch; fi
# Without an optimised BLAS Debian's torch falls back to the reference libblas3 (~20× slower GEMMs): OpenBLAS
# (OpenMP build, so it obeys torch.set_num_threads) is what PyTorch uses for fp32 matmuls here.
need_apt libopenblas0-openmp
command -v dotnet >/dev/null || { echo "dotnet SDK not found" >&2; exit 1; }

# ---- 2. builds ---------------------------------------------------------------------------------------------------
mkdir -p "$CACHE"
log "building bench/e2e/SharpFormer.E2E (Release)"
dotnet build "$HERE/SharpFormer.E2E/SharpFormer.E2E.csproj" -c Release -nologo -v q >"$CACHE/build-e2e.log" 2>&1 \
  || { tail -30 "$CACHE/build-e2e.log" >&2; echo "build of SharpFormer.E2E failed" >&2; exit 1; }
E2E="$HERE/SharpFormer.E2E/bin/Release/net10.0/SharpFormer.E2E"
CLI="$ROOT/src/SharpFormer.Cli/bin/Release/net10.0/SharpFormer.Cli.dll"
if [[ $COLD == 1 ]]; then
  log "building src/SharpFormer.Cli (Release) for the cold-start rows"
  dotnet build "$ROOT/src/SharpFormer.Cli/SharpFormer.Cli.csproj" -c Release -nologo -v q >"$CACHE/build-cli.log" 2>&1 \
    || log "CLI build failed (see $CACHE/build-cli.log): CLI cold-start rows use the last built CLI, if any"
fi

# ---- 3. checkpoints, inputs, ONNX exports (cached) --------------------------------------------------------------
log "checkpoints and inputs in $CACHE (created once)"
"$PY" "$HERE/make_checkpoints.py" --cache "$CACHE" --models "$MODELS" || { echo "checkpoint creation failed" >&2; exit 1; }
# ONNX Runtime runs BERT and GPT-2 only (no Qwen2 export).
has_model bert || has_model gpt2 || ORT=0
if [[ $ORT == 1 ]]; then
  log "ONNX exports (created once)"
  "$PY" "$HERE/export_onnx.py" --cache "$CACHE" 2>"$CACHE/export.log" || { tail -20 "$CACHE/export.log" >&2; echo "ONNX export failed" >&2; exit 1; }
fi

# ---- 4. engines, one process per engine and model, one after another -------------------------------------------
rm -rf "$CACHE/out"; mkdir -p "$CACHE/out"
RES="$CACHE/results.jsonl"; : >"$RES"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# PyTorch's OpenMP/OpenBLAS threads spin while they wait. On this shared 2-core host (other sessions compile and
# test concurrently) spinning made PyTorch 3-5x slower with 4x the CPU time; PASSIVE (default here) avoids that.
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" OMP_WAIT_POLICY="$OMP_POLICY"
failures=0
run() {  # run NAME COMMAND...: appends the command's JSON lines to $RES; its stderr goes to $CACHE/NAME.log
  local name="$1"; shift
  log "running $name"
  if ! "$@" >>"$RES" 2>"$CACHE/$name.log"; then
    failures=$((failures + 1)); log "$name FAILED (see $CACHE/$name.log)"; tail -5 "$CACHE/$name.log" >&2
  fi
}
COMMON=(--cache "$CACHE" --threads "$THREADS" "${TIMING[@]}" "${QFLAG[@]}")
for model in bert gpt2 qwen2; do
  has_model "$model" || continue
  ort=$ORT; [[ $model == qwen2 ]] && ort=0
  # The decode rows' limit: this machine's memory bandwidth, measured in this run, next to the timings it bounds.
  [[ $model == qwen2 ]] && run membw "$E2E" --engine membw --threads "$THREADS"
  run "sharpformer-$model" "$E2E" --engine sharp --model "$model" "${COMMON[@]}"
  run "torch-$model" "$PY" "$HERE/torch_bench.py" --model "$model" "${COMMON[@]}"
  [[ $ort == 1 ]] && run "ort-$model" "$E2E" --engine ort --model "$model" "${COMMON[@]}"
  for ((round = 2; round <= ROUNDS; round++)); do
    run "sharpformer-$model-round$round" "$E2E" --engine sharp --model "$model" "${COMMON[@]}"
    [[ $ort == 1 ]] && run "ort-$model-round$round" "$E2E" --engine ort --model "$model" "${COMMON[@]}"
  done
  [[ $BF16 == 1 ]] && run "torch-bf16-$model" "$PY" "$HERE/torch_bench.py" --model "$model" --bf16 "${COMMON[@]}"
  [[ $BF16 == 1 ]] && run "sharpformer-bf16-$model" "$E2E" --engine sharp --bf16 --model "$model" "${COMMON[@]}"
  [[ $INT8 == 1 ]] && run "sharpformer-int8-$model" "$E2E" --engine sharp --int8 --model "$model" "${COMMON[@]}"
done
if [[ $COLD == 1 ]]; then
  E2E_ARG=(); [[ $ORT == 1 ]] && E2E_ARG=(--e2e "$E2E")
  run coldstart "$PY" "$HERE/coldstart.py" --cache "$CACHE" --threads "$THREADS" --reps "$COLD_REPS" --cli "$CLI" "${E2E_ARG[@]}"
fi
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 5. one table ------------------------------------------------------------------------------------------------
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2 | tr -d ' '))"
TORCHV="$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
HEADER="End-to-end bench, $STARTED: $CPU, $(nproc) cores, threads = $THREADS for every engine; \
$([[ $QUICK == 1 ]] && echo 'QUICK mode, ')per workload $WARMUP warm-up run(s), then timed runs until >= $REPS runs and >= ${BUDGET_S} s, \
stopping a slow workload at ${MAX_TIME_S} s but not before $MIN_REPS runs (cold start: $COLD_REPS runs)\
$([[ $ROUNDS -gt 1 ]] && echo " per process; SharpFormer and ONNX Runtime fp32 in $ROUNDS alternating rounds, their timed runs pooled"); .NET $(dotnet --version), \
PyTorch $TORCHV (Debian, OpenBLAS, OMP_WAIT_POLICY=$OMP_POLICY), ONNX Runtime 1.31.1 (C# API, CPU provider). Load average before/after: \
$LOAD_BEFORE / $LOAD_AFTER (a shared host: other work running concurrently makes the figures noisy)."
"$PY" "$HERE/report.py" --results "$RES" --cache "$CACHE" --md "$CACHE/last-run.md" --header "$HEADER"
agree=$?
if [[ $failures -gt 0 ]]; then echo "ERROR: $failures engine run(s) failed (logs in $CACHE)" >&2; exit 1; fi
exit $agree
