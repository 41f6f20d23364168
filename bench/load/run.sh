#!/usr/bin/env bash
# Load bench of `sharpformer serve` on loopback (issue 17 part 5). See README.md beside this file.
#
#   bench/load/run.sh [--embed-model DIR] [--gen-model DIR] [--endpoint completions|chat] [--clients 1,8,32,128]
#                     [--requests N] [--max-seconds S] [--max-tokens M] [--serve-args "..."] [--tag NAME] [--rounds R]
#                     [--warmup-seconds W]
#
# Each of R rounds (default 3) starts one server (Release build) with the two models, measures embeddings and streamed
# generation at each client count (and, in round 1, a fault run), stops it, and measures the same work offline
# (in-process, no server) for the targets; even rounds measure offline first, so drift of a shared machine falls on both
# sides. Prints medians over rounds as one Markdown table and writes the raw JSON lines to bench/load/.cache/<tag>.rN.jsonl.
# Bounded: every load stops after N requests or S seconds. Every load and offline figure follows W seconds (default 10) of
# untimed requests: on 2026-12-07 a 1 s warm-up left the one-client p99 at 110-230 % of in-process, 10 s at 110-125 %
# (the server's and the load generator's code was still being JIT-optimised; bench/RESULTS.md).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
EMBED_MODEL="$ROOT/models/bert-chinese-small-embed" GEN_MODEL="$ROOT/models/gpt2-chinese-poems-small" ENDPOINT=completions
CLIENTS=1,8,32,128 REQUESTS=400 MAX_S=60 MAX_TOKENS=32 SERVE_ARGS="" TAG="load-$(date -u +%Y%m%d-%H%M)" ROUNDS=3 WARMUP=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --embed-model) EMBED_MODEL="$2"; shift 2 ;;
    --gen-model) GEN_MODEL="$2"; shift 2 ;;
    --endpoint) ENDPOINT="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --requests) REQUESTS="$2"; shift 2 ;;
    --max-seconds) MAX_S="$2"; shift 2 ;;
    --max-tokens) MAX_TOKENS="$2"; shift 2 ;;
    --serve-args) SERVE_ARGS="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --warmup-seconds) WARMUP="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "error: --rounds must be a positive integer (got $ROUNDS)" >&2; exit 64; }
[[ "$WARMUP" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "error: --warmup-seconds must be a non-negative number (got $WARMUP)" >&2; exit 64; }
CACHE="$HERE/.cache"; mkdir -p "$CACHE"
TEXTS="$ROOT/recipes/sentiment-sanity.tsv"

dotnet build -c Release "$ROOT/src/SharpFormer.Cli" >&2
dotnet build -c Release "$HERE/SharpFormer.Load" >&2
CLI="$ROOT/src/SharpFormer.Cli/bin/Release/net10.0/SharpFormer.Cli.dll"
LOAD="$HERE/SharpFormer.Load/bin/Release/net10.0/SharpFormer.Load.dll"
EMBED_NAME="$(basename "$EMBED_MODEL")" GEN_NAME="$(basename "$GEN_MODEL")"
SERVER=""
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null || true' EXIT

load() { dotnet "$LOAD" --texts "$TEXTS" --out "$OUT" --requests "$REQUESTS" --max-seconds "$MAX_S" --max-tokens "$MAX_TOKENS" --endpoint "$ENDPOINT" --warmup-seconds "$WARMUP" "$@"; }

served() {   # one server: the loads at every client count, the fault run in round 1, its peak RSS
  local port=$((20000 + RANDOM % 20000)) log="$CACHE/$TAG.r$1.server.log"
  local url="http://127.0.0.1:$port"
  # shellcheck disable=SC2086
  dotnet "$CLI" serve --model "$EMBED_MODEL" --model "$GEN_MODEL" --host 127.0.0.1 --port "$port" $SERVE_ARGS > "$log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 600); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done
  curl -sf "$url/health" >/dev/null || { echo "error: the server did not become healthy (log: $log)" >&2; exit 1; }
  load --url "$url" --mode embed --model "$EMBED_NAME" --clients "$CLIENTS"
  load --url "$url" --mode stream --model "$GEN_NAME" --clients "$CLIENTS" --requests $((REQUESTS / 4))
  [ "$1" = 1 ] && load --url "$url" --mode fault --model "$GEN_NAME" --requests $((REQUESTS / 4))
  echo "{\"mode\": \"server\", \"peak_rss_mb\": $(($(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status") / 1024))}" >> "$OUT"
  kill -TERM $SERVER; wait $SERVER || true; SERVER=""
}

offline() {   # the same texts and prompts in-process, no server running
  load --mode offline-embed --model "$EMBED_NAME" --model-dir "$EMBED_MODEL"
  load --mode offline-decode --model "$GEN_NAME" --model-dir "$GEN_MODEL"
}

FILES=()
for r in $(seq 1 "$ROUNDS"); do
  OUT="$CACHE/$TAG.r$r.jsonl"; : > "$OUT"; FILES+=("$OUT")
  if [ $((r % 2)) = 1 ]; then served "$r"; offline; else offline; served "$r"; fi
done
python3 "$HERE/report.py" "${FILES[@]}"
