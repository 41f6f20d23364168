#!/usr/bin/env bash
# Load bench of `sharpformer serve` on loopback (issue 17 part 5). See README.md beside this file.
#
#   bench/load/run.sh [--embed-model DIR] [--gen-model DIR] [--endpoint completions|chat] [--clients 1,8,32,128]
#                     [--requests N] [--max-seconds S] [--max-tokens M] [--serve-args "..."] [--tag NAME]
#
# Starts one server (Release build) with the two models, measures embeddings and streamed generation at each client
# count, a fault run, and the same work offline (in-process, no server) for the targets; prints one Markdown table and
# writes the raw JSON lines to bench/load/.cache/<tag>.jsonl. Bounded: every load stops after N requests or S seconds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
EMBED_MODEL="$ROOT/models/bert-chinese-small-embed" GEN_MODEL="$ROOT/models/gpt2-chinese-poems-small" ENDPOINT=completions
CLIENTS=1,8,32,128 REQUESTS=400 MAX_S=60 MAX_TOKENS=32 SERVE_ARGS="" TAG="load-$(date -u +%Y%m%d-%H%M)"
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
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
CACHE="$HERE/.cache"; mkdir -p "$CACHE"; OUT="$CACHE/$TAG.jsonl"; : > "$OUT"
TEXTS="$ROOT/recipes/sentiment-sanity.tsv"
PORT=$((20000 + RANDOM % 20000))
URL="http://127.0.0.1:$PORT"

dotnet build -c Release "$ROOT/src/SharpFormer.Cli" >&2
dotnet build -c Release "$HERE/SharpFormer.Load" >&2
CLI="$ROOT/src/SharpFormer.Cli/bin/Release/net10.0/SharpFormer.Cli.dll"
LOAD="$HERE/SharpFormer.Load/bin/Release/net10.0/SharpFormer.Load.dll"
EMBED_NAME="$(basename "$EMBED_MODEL")" GEN_NAME="$(basename "$GEN_MODEL")"

# shellcheck disable=SC2086
dotnet "$CLI" serve --model "$EMBED_MODEL" --model "$GEN_MODEL" --host 127.0.0.1 --port "$PORT" $SERVE_ARGS > "$CACHE/$TAG.server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/health" >/dev/null || { echo "error: the server did not become healthy (log: $CACHE/$TAG.server.log)" >&2; exit 1; }

load() { dotnet "$LOAD" --url "$URL" --texts "$TEXTS" --out "$OUT" --requests "$REQUESTS" --max-seconds "$MAX_S" --max-tokens "$MAX_TOKENS" --endpoint "$ENDPOINT" "$@"; }
load --mode embed --model "$EMBED_NAME" --clients "$CLIENTS"
load --mode stream --model "$GEN_NAME" --clients "$CLIENTS" --requests $((REQUESTS / 4))
load --mode fault --model "$GEN_NAME" --requests $((REQUESTS / 4))
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
echo "{\"mode\": \"server\", \"peak_rss_mb\": $((HWM / 1024))}" >> "$OUT"
kill -TERM $SERVER; wait $SERVER || true
# Offline: the same texts and prompts in-process, with the server stopped.
load --mode offline-embed --model "$EMBED_NAME" --model-dir "$EMBED_MODEL"
load --mode offline-decode --model "$GEN_NAME" --model-dir "$GEN_MODEL"
python3 "$HERE/report.py" "$OUT"
