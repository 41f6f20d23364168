#!/usr/bin/env bash
# Trains the shipped Chinese models (models/*) from scratch with the sharpformer CLI, on 2 CPU cores.
#
#   recipes/train-models.sh                 # every stage
#   recipes/train-models.sh gpt sentiment   # only some stages (data is prepared first if missing)
#
# Stages: data gpt bert sentiment sentiment-scratch ner ner-scratch lcqmc lcqmc-scratch evaluate install
#   install copies the final folders (config, F16 weights, tokenizer files; no checkpoints) into models/.
# Issue 19 stages (not in the default list; see recipes/README.md): splits, base (a long masked-LM run, resumable),
#   base-decay (its learning-rate decay phase).
#
# Environment:
#   SHARED   labelled data and novels      (default: <repo>/../shared/data, see its README.md for licences)
#   SF_WORK  scratch folder: npm package, derived text, runs (default: ~/.cache/sharpformer-recipe)
#            Everything there is derived from research/teaching-only data: keep it OUT of git.
#   THREADS  kernel threads (default 2)
#   MODELS   where `install` writes (default: <repo>/models)
#   SF_CLI   optional path of a built SharpFormer.Cli.dll to run instead of `dotnet run` on the repository
#
# Needs: dotnet 10 SDK, node + npm (for chinese-poetry@2.0.1, MIT).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$REPO/../shared/data}"
SF_WORK="${SF_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/sharpformer-recipe}"
THREADS="${THREADS:-2}"
MODELS="${MODELS:-$REPO/models}"
CFG="$REPO/recipes/configs"
DATA="$SF_WORK/data"
RUNS="$SF_WORK/runs"
TOK="$DATA/tokenizer"
mkdir -p "$SF_WORK" "$RUNS"

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# SF_CLI: a copy of the built CLI (SharpFormer.Cli.dll) to train with, so rebuilding the repository cannot touch a running job.
sf() {
  if [ -n "${SF_CLI:-}" ]; then dotnet "$SF_CLI" --threads "$THREADS" "$@"
  else dotnet run -c Release --no-build --project "$REPO/src/SharpFormer.Cli" -- --threads "$THREADS" "$@"; fi
}

# Runs one training command, recording its JSON summary, stderr progress and wall time under $RUNS/NAME.*
train() {
  local name="$1"; shift
  log "train $name: $*"
  local t0; t0=$(date +%s)
  sf train "$@" --json > "$RUNS/$name.json" 2> "$RUNS/$name.log"
  echo $(( $(date +%s) - t0 )) > "$RUNS/$name.seconds"
  log "train $name done in $(cat "$RUNS/$name.seconds") s: $(tr -d '\n' < "$RUNS/$name.json" | cut -c1-300)"
}

stage_data() {
  if [ ! -d "$SF_WORK/npm/node_modules/chinese-poetry/dist/quantangshi" ]; then
    log "npm install chinese-poetry@2.0.1 into $SF_WORK/npm"
    mkdir -p "$SF_WORK/npm"
    (cd "$SF_WORK/npm" && npm install --no-audit --no-fund --no-save chinese-poetry@2.0.1 >&2)
  fi
  log "preparing text, fine-tuning files and the character vocabulary in $DATA"
  SF_MAX_VOCAB=7000 node "$REPO/recipes/prepare-data.mjs" "$SF_WORK/npm/node_modules/chinese-poetry/dist" "$SHARED" "$DATA"
  cp "$CFG/tokenizer_config.json" "$CFG/special_tokens_map.json" "$TOK/"
}

# GPT-2: 4 layers, 192 hidden, 3 heads, 128 positions; Tang poems + the two novels; 16 blocks × 128 tokens per step:
# 1,000 steps, then 4,000 more from those weights with a fresh optimizer and schedule (one thread).
stage_gpt() {
  train gpt2 clm --config "$CFG/gpt2-chinese-small.json" --tokenizer "$TOK" --data "$DATA/clm-train.txt" --eval "$DATA/clm-eval-poems.txt" \
    --output "$RUNS/gpt2-phase1" --max-steps 1000 --batch-size 16 --max-length 128 --lr 1e-3 --warmup-steps 50 \
    --schedule cosine --save-steps 200 --dtype f16 --seed 42
  THREADS=1 train gpt2-phase2 clm --model "$RUNS/gpt2-phase1" --data "$DATA/clm-train.txt" --eval "$DATA/clm-eval-poems.txt" \
    --output "$RUNS/gpt2-chinese-poems-small" --max-steps 4000 --batch-size 16 --max-length 128 --lr 1e-3 --warmup-steps 100 \
    --schedule cosine --save-steps 500 --dtype f16 --seed 43
}

# BERT: 4 layers, 192 hidden, 3 heads; masked LM + next-sentence prediction on the novels (public-domain text only) in
# phases, each restarting the optimizer from the previous one's weights; phase 2b's output is the shipped base.
# Phase 3 continues phase 2's weights task-adaptively on the novels plus the unlabelled text of the fine-tuning train
# splits (mlm-adapt-train.txt, see prepare-data.mjs; no dev text). That chain is the starting point of the fine-tuned
# models and is not shipped by itself: its text is research/teaching-only data, unlike the base model's.
stage_bert() {
  train bert-phase1 mlm --config "$CFG/bert-chinese-small.json" --tokenizer "$TOK" --data "$DATA/mlm-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-phase1" --max-steps 400 --batch-size 32 --max-length 128 --lr 7e-4 --warmup-steps 40 --save-steps 100 --dtype f32 --seed 42
  train bert-phase2 mlm --model "$RUNS/bert-phase1" --data "$DATA/mlm-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-phase2" --max-steps 600 --batch-size 32 --max-length 128 --lr 5e-4 --warmup-steps 20 --save-steps 100 --dtype f16 --seed 43
  train bert-phase2b mlm --model "$RUNS/bert-phase2" --data "$DATA/mlm-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-chinese-small" --max-steps 3000 --batch-size 32 --max-length 128 --lr 1e-3 --warmup-steps 200 --save-steps 500 --dtype f16 --seed 47
  train bert-phase3 mlm --model "$RUNS/bert-phase2" --data "$DATA/mlm-adapt-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-phase3" --max-steps 2400 --batch-size 32 --max-length 128 --lr 5e-4 --warmup-steps 100 --save-steps 200 --dtype f16 --seed 44
  # Phase 4: the same text again, fresh optimizer, twice the peak LR. Until here the masked LM barely looks at its
  # neighbours (林黛[MASK] → "，"); during this phase it starts to (宋[MASK]道 → 江). One thread: two one-thread jobs
  # use the 2 cores better than one two-thread job.
  THREADS=1 train bert-phase4 mlm --model "$RUNS/bert-phase3" --data "$DATA/mlm-adapt-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-phase4" --max-steps 5000 --batch-size 32 --max-length 128 --lr 1e-3 --warmup-steps 200 --save-steps 500 --dtype f16 --seed 45
  # Phases 5 and 6: the same twice more (fresh optimizer, new seed each; held-out MLM perplexity 183 → 69 → 42), then a
  # shorter phase 7 at half the peak LR (perplexity unchanged): NER and LCQMC are fine-tuned from its output.
  THREADS=1 train bert-phase5 mlm --model "$RUNS/bert-phase4" --data "$DATA/mlm-adapt-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-phase5" --max-steps 5000 --batch-size 32 --max-length 128 --lr 1e-3 --warmup-steps 200 --save-steps 500 --dtype f16 --seed 46
  THREADS=1 train bert-phase6 mlm --model "$RUNS/bert-phase5" --data "$DATA/mlm-adapt-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-phase6" --max-steps 5000 --batch-size 32 --max-length 128 --lr 1e-3 --warmup-steps 200 --save-steps 500 --dtype f16 --seed 48
  THREADS=1 train bert-phase7 mlm --model "$RUNS/bert-phase6" --data "$DATA/mlm-adapt-train.txt" --eval "$DATA/mlm-eval.txt" \
    --output "$RUNS/bert-chinese-small-adapted" --max-steps 1500 --batch-size 32 --max-length 128 --lr 5e-4 --warmup-steps 100 --save-steps 500 --dtype f16 --seed 49
}

# Fine-tuning hyper-parameters are shared by the pre-trained model and the from-scratch baseline (same architecture,
# same options, no pre-training).
SENTI_ARGS=(--data "$DATA/sentiment-train.jsonl" --eval "$DATA/sentiment-dev.jsonl" --epochs 5 --batch-size 32 --max-length 128 --lr 1.5e-4 --warmup-steps 100 --dtype f16 --seed 42)

# From phase 4, 5 epochs at 1.5e-4 (was 4: 89.2 %): 90.7 % on dev. Chosen on dev among the runs the model card lists; the
# higher LRs scored up to 91.25 % but read 太精彩了 praise as complaints (the demo's first review).
stage_sentiment() {
  train sentiment classify --model "$RUNS/bert-phase4" --output "$RUNS/bert-chinese-small-sentiment" "${SENTI_ARGS[@]}"
}

stage_sentiment-scratch() {
  train sentiment-scratch classify --config "$CFG/bert-chinese-small.json" --tokenizer "$TOK" --output "$RUNS/bert-chinese-small-sentiment-scratch" "${SENTI_ARGS[@]}"
}

# CLUENER2020 converted to BIO (one character per line) by prepare-data.mjs; dev = the labelled official dev (test.json upstream).
# The small model learns this task slowly: many epochs at a high peak LR.
NER_ARGS=(--data "$DATA/ner-train.bio" --eval "$DATA/ner-dev.bio" --epochs 12 --batch-size 32 --max-length 64 --lr 8e-4 --warmup-steps 200 --dtype f16 --seed 42)

stage_ner() {
  train ner ner --model "$RUNS/bert-chinese-small-adapted" --output "$RUNS/bert-chinese-small-ner" "${NER_ARGS[@]}"
}

stage_ner-scratch() {
  train ner-scratch ner --config "$CFG/bert-chinese-small.json" --tokenizer "$TOK" --output "$RUNS/bert-chinese-small-ner-scratch" "${NER_ARGS[@]}"
}

# LCQMC ships only dev.txt here: 3/4 of it (lines i % 4 != 0, 6,601 pairs) train, the other 1/4 (2,201 pairs) is the test set.
LCQMC_ARGS=(--data "$DATA/lcqmc-train.jsonl" --eval "$DATA/lcqmc-test.jsonl" --epochs 4 --batch-size 32 --max-length 64 --lr 2e-4 --warmup-steps 50 --dtype f16 --seed 42)

stage_lcqmc() {
  train lcqmc classify --model "$RUNS/bert-chinese-small-adapted" --output "$RUNS/bert-chinese-small-lcqmc" "${LCQMC_ARGS[@]}"
}

stage_lcqmc-scratch() {
  train lcqmc-scratch classify --config "$CFG/bert-chinese-small.json" --tokenizer "$TOK" --output "$RUNS/bert-chinese-small-lcqmc-scratch" "${LCQMC_ARGS[@]}"
}

stage_evaluate() {
  sf evaluate --model "$RUNS/bert-chinese-small-sentiment" --task classify --data "$SHARED/sentiment/chnsenticorp/dev.tsv" --json | tee "$RUNS/eval-sentiment.json"
  sf evaluate --model "$RUNS/bert-chinese-small-sentiment-scratch" --task classify --data "$SHARED/sentiment/chnsenticorp/dev.tsv" --json | tee "$RUNS/eval-sentiment-scratch.json"
  sf evaluate --model "$RUNS/bert-chinese-small-ner" --task ner --data "$SHARED/ner/cluener2020/dev.json" --json | tee "$RUNS/eval-ner.json"
  sf evaluate --model "$RUNS/bert-chinese-small-ner-scratch" --task ner --data "$SHARED/ner/cluener2020/dev.json" --json | tee "$RUNS/eval-ner-scratch.json"
  sf evaluate --model "$RUNS/bert-chinese-small-lcqmc" --task pairs --data "$DATA/lcqmc-test.txt" --json | tee "$RUNS/eval-lcqmc.json"
  sf evaluate --model "$RUNS/bert-chinese-small-lcqmc-scratch" --task pairs --data "$DATA/lcqmc-test.txt" --json | tee "$RUNS/eval-lcqmc-scratch.json"
  sf evaluate --model "$RUNS/bert-chinese-small-lcqmc" --task sts --data "$SHARED/similarity/sts-b-zh/cnsd-sts-dev.txt" --json | tee "$RUNS/eval-stsb.json"
}

# ---------------------------------------------------------------- issue 19
DATA2="$SF_WORK/data-v2"

# Honest splits of every labelled source, the modern pre-training corpus without any dev/test text, its character vocabulary.
stage_splits() {
  node "$REPO/recipes/prepare-splits.mjs" "$SHARED" "$DATA2"
  cp "$CFG/tokenizer_config.json" "$CFG/special_tokens_map.json" "$DATA2/tokenizer/"
}

# The new base: 6 layers × 256 hidden, 4 heads, FFN 1024, 128 positions, the 5,863-character vocabulary
# (configs/bert-zh-modern-6x256.json, 6.4 M parameters), masked LM + NSP from scratch on data-v2/pretrain, batch 32 × ≤ 128
# tokens. Chosen over 4 × 384 by a 40-step probe on one thread: 2.71 CPU-seconds per step vs 3.35 (recipes/README.md).
# Schedule "warmup-stable-decay" (Hu et al. 2024, MiniCPM), because the run spans an unknown number of ≤ 2-hour sessions:
# 1,000 warm-up steps, then a CONSTANT peak LR of 5e-4 for as long as sessions allow (--max-steps 100000 is only a cap), a
# checkpoint every 500 steps ($RUNS/bert-zh-modern/checkpoint-N). Each run resumes from the newest complete checkpoint
# with the same options. When a base is wanted, a short decay phase (about 10 % of the steps done, linear to 0, fresh
# optimizer) continues from a checkpoint with --model: see stage base-decay. Run it as
#   SF_CLI=~/.cache/sharpformer-recipe/cli-DATE/SharpFormer.Cli.dll THREADS=1 nohup nice -n 19 recipes/train-models.sh base &
# Its data must not change between runs: the first run records the SHA-256 of the text and later runs refuse other text.
BASE_ARGS=(--config "$CFG/bert-zh-modern-6x256.json" --tokenizer "$DATA2/tokenizer" --data "$DATA2/pretrain/mlm-train.txt"
  --eval "$DATA2/pretrain/mlm-eval.txt" --output "$RUNS/bert-zh-modern" --max-steps 100000 --batch-size 32 --max-length 128
  --lr 5e-4 --warmup-steps 1000 --schedule constant --save-steps 500 --dtype f32 --seed 19)

# The newest complete checkpoint of a run folder ("" when none): an older trainer killed while saving leaves one without
# its tokenizer files (written last).
newest_checkpoint() {
  local c n best=-1 last=""
  for c in "$1"/checkpoint-*; do
    n=${c##*checkpoint-}
    if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt "$best" ] && [ -f "$c/trainer_state.json" ] && [ -f "$c/tokenizer_config.json" ]; then best=$n; last=$c; fi
  done
  echo "$last"
}

stage_base() {
  local out="$RUNS/bert-zh-modern" sum last
  sum=$(sha256sum "$DATA2/pretrain/mlm-train.txt" | cut -d' ' -f1)
  last=$(newest_checkpoint "$out")
  if [ -n "$last" ]; then
    [ "$(cat "$out.data-sha256")" = "$sum" ] || { log "base: $DATA2/pretrain/mlm-train.txt differs from the text the run started on; not resuming"; exit 1; }
    train "base-from-$(basename "$last")" mlm "${BASE_ARGS[@]}" --resume "$last"
  else
    # A fresh start into an empty folder (the trainer refuses a non-empty one unless resuming inside it).
    rm -rf "$out"; echo "$sum" > "$out.data-sha256"
    train base mlm "${BASE_ARGS[@]}"
  fi
}

# The decay phase of the base: from checkpoint BASE_FROM (e.g. $RUNS/bert-zh-modern/checkpoint-6000), DECAY_STEPS steps
# (about a tenth of the steps done) with a fresh optimizer: 100 warm-up steps, then linear decay from 5e-4 to 0, into $RUNS/bert-zh-modern-decayed.
stage_base-decay() {
  [ -n "${BASE_FROM:-}" ] && [ -n "${DECAY_STEPS:-}" ] || { log "base-decay needs BASE_FROM=checkpoint folder and DECAY_STEPS=N"; exit 1; }
  rm -rf "$RUNS/bert-zh-modern-decayed"
  train base-decay mlm --model "$BASE_FROM" --data "$DATA2/pretrain/mlm-train.txt" --eval "$DATA2/pretrain/mlm-eval.txt" \
    --output "$RUNS/bert-zh-modern-decayed" --max-steps "$DECAY_STEPS" --batch-size 32 --max-length 128 --lr 5e-4 --warmup-steps 100 \
    --schedule linear --save-steps 500 --dtype f32 --seed 20
}

# Issue 19, the path taken (2026-12-07, second session): the 6 x 256 base above needs more 1-thread hours than one session
# has, and a new machine starts without ~/.cache. Instead the shipped base (models/bert-chinese-small, 4 x 192, pre-trained
# on the novels) continues masked LM + NSP on the modern pre-training text (domain-adaptive pre-training, Gururangan et
# al. 2020): planned as 5,000 steps (fresh optimizer, 200 warm-up steps, cosine to 0); on the shared host of 2026-12-07 it
# ran at 1.4 CPU-s per step, and was stopped with Ctrl-C after step 547 (checkpoint-547, MLM loss 6.06 at step 249 ->
# 5.87 at 499) so that the task models could be trained in the same session: ADAPTED defaults to that checkpoint. Its 7,000-entry
# vocabulary misses 0.18 % of the characters of the dev/test texts (the new 5,863-entry one 0.03 %).
ADAPT_ARGS=(--model "$REPO/models/bert-chinese-small" --data "$DATA2/pretrain/mlm-train.txt" --eval "$DATA2/pretrain/mlm-eval.txt"
  --output "$RUNS/bert-zh-adapted" --max-steps "${ADAPT_STEPS:-5000}" --batch-size 32 --max-length 128 --lr 1e-3 --warmup-steps 200
  --schedule cosine --save-steps 500 --save-total-limit 2 --dtype f32 --seed 50)
stage_adapt() { rm -rf "$RUNS/bert-zh-adapted"; train adapt mlm "${ADAPT_ARGS[@]}"; }
# The rest of the planned 5,000 steps (third session on): resumes the newest complete checkpoint, and can be stopped and
# resumed again (it saves every 500 steps, and on the first Ctrl-C). Its checkpoints go into the same folder.
stage_adapt-resume() {
  local last; last=$(newest_checkpoint "$RUNS/bert-zh-adapted")
  [ -n "$last" ] || { log "adapt-resume: no checkpoint in $RUNS/bert-zh-adapted (run stage adapt)"; exit 1; }
  # The shipped task models start from checkpoint-547; --save-total-limit would delete it as the run goes on.
  [ -d "$RUNS/bert-zh-adapted-547" ] || [ ! -d "$RUNS/bert-zh-adapted/checkpoint-547" ] || cp -r "$RUNS/bert-zh-adapted/checkpoint-547" "$RUNS/bert-zh-adapted-547"
  train "adapt-from-$(basename "$last")" mlm "${ADAPT_ARGS[@]}" --resume "$last"
}

# Fine-tuning files from the splits (recipes/prepare-finetune.mjs: sentiment of every review source, pairs without the
# length shortcut, coarse NER, sentence-embedding pairs and SimCSE sentences) into data-v2/finetune.
stage_ft-data() { node "$REPO/recipes/prepare-finetune.mjs" "$DATA2"; }

# Every task model is fine-tuned from the adapted base with the options below, and a from-scratch baseline of the same
# architecture with the same options (stage NAME-scratch). Options were fixed before any run (not selected on dev); the
# epochs are few because a 2-core session has about two CPU-hours for all of them (48k reviews, 83k pairs, 46k headlines
# and 56k NER sentences are each seen once or twice).
FT="$DATA2/finetune"; SPL="$DATA2/splits"
ADAPTED="${ADAPTED:-$RUNS/bert-zh-adapted-547}"   # stage adapt-resume keeps this copy of checkpoint-547
# Fourth session: the finished adaptation (5,000 steps) is the base of a second set of task runs, told apart by a suffix:
# `ADAPTED=$RUNS/bert-zh-adapted-5000 TAG=-a5k recipes/train-models.sh tnews ...` writes bert-zh-tnews-a5k (and
# tnews-a5k.json/.log); the stages that continue a run read the run of the same TAG. Stage adapt-final makes that folder.
TAG="${TAG:-}"
stage_adapt-final() {
  local last; last=$(newest_checkpoint "$RUNS/bert-zh-adapted")
  [ "$(basename "$last")" = checkpoint-5000 ] || { log "adapt-final: newest checkpoint is ${last:-none}, not checkpoint-5000 (run adapt-resume)"; exit 1; }
  rm -rf "$RUNS/bert-zh-adapted-5000"; cp -r "$last" "$RUNS/bert-zh-adapted-5000"; log "copied $last to $RUNS/bert-zh-adapted-5000"
}
V2_SENTI=(--data "$FT/sentiment-train.jsonl" --eval "$FT/sentiment-dev.jsonl" --epochs 1 --batch-size 32 --max-length 128 --lr 2e-4 --warmup-steps 200 --dtype f16 --seed 42)
V2_PAIRS=(--data "$FT/pairs-train.jsonl" --eval "$FT/pairs-dev.jsonl" --epochs 1 --batch-size 32 --max-length 64 --warmup-steps 200 --dtype f16)
V2_TNEWS=(--data "$SPL/tnews/train.jsonl" --eval "$SPL/tnews/dev.jsonl" --epochs 1 --batch-size 32 --max-length 64 --lr 2e-4 --warmup-steps 200 --dtype f16 --seed 42)
V2_NERC=(--data "$FT/ner-coarse-train.bio" --eval "$FT/ner-coarse-dev.bio" --epochs 1 --batch-size 32 --max-length 128 --lr 5e-4 --warmup-steps 200 --dtype f16 --seed 42)
V2_NER=(--data "$SPL/cluener/train.bio" --eval "$SPL/cluener/dev.bio" --epochs 12 --batch-size 32 --max-length 64 --lr 8e-4 --warmup-steps 200 --dtype f16 --seed 42)
SCRATCH=(--config "$CFG/bert-chinese-small.json" --tokenizer "$REPO/models/bert-chinese-small")
v2() { local name=$1$TAG task=$2 out=$3$TAG; shift 3; rm -rf "$RUNS/$out"; train "$name" "$task" --output "$RUNS/$out" "$@"; }
# One more epoch of a run (its options again, fresh optimizer): next_epoch STAGE TASK RUN N LR SEED OPTIONS... runs stage
# STAGE-epochN, writing RUN-eN from RUN-e(N-1) (from RUN itself for N = 2) at peak LR LR and seed SEED.
next_epoch() { local stage=$1 task=$2 run=$3 n=$4 lr=$5 seed=$6 from=$3 i; shift 6; local a=("$@")
  [ "$n" -gt 2 ] && from=$run-e$((n - 1))
  for i in "${!a[@]}"; do case "${a[i]}" in --lr) a[i+1]=$lr ;; --seed) a[i+1]=$seed ;; esac; done
  v2 "$stage-epoch$n" "$task" "$run-e$n" --model "$RUNS/$from$TAG" "${a[@]}"; }
# The two epochs of the sentiment runs on a review file: senti_epoch1|2 FILE NAME RUN [FROM] writes RUN (from the base),
# then RUN-e2 (from FROM, default RUN: half the peak LR, fresh optimizer, seed 43).
senti_epoch1() { local a=("${V2_SENTI[@]/#*sentiment-train.jsonl/$FT/$1}"); v2 "$2" classify "$3" --model "$ADAPTED" "${a[@]}"; }
senti_epoch2() { local a=("${V2_SENTI[@]/#*sentiment-train.jsonl/$FT/$1}"); a=("${a[@]/2e-4/1e-4}"); v2 "$2-epoch2" classify "$3-e2" --model "$RUNS/${4:-$3}$TAG" "${a[@]/#42/43}"; }
stage_sentiment2()         { senti_epoch1 sentiment-train.jsonl sentiment2 bert-zh-sentiment; }
stage_sentiment2-scratch() { v2 sentiment2-scratch classify bert-zh-sentiment-scratch "${SCRATCH[@]}" "${V2_SENTI[@]}"; }
# Fifth session, TAG=-a5k: pairs2, pairs2-epoch2 and pairs2-identity from the finished base (then, added before it ran,
# pairs2-identity2: identity dev 86.8 % missed the bar by 3 questions). Rule fixed before they ran:
# one of them replaces the shipped pairs model (run pairs2-identity4: LCQMC dev 77.0 %, identical dev questions 87.2 %
# "same") only if it is at least as good on both; among such runs, the higher LCQMC dev accuracy.
stage_pairs2()             { v2 pairs2 classify bert-zh-pairs --model "$ADAPTED" "${V2_PAIRS[@]}" --lr 2e-4 --seed 42; }
# A second epoch from run pairs2 (its LCQMC dev accuracy 74.2 %, and an identical question pair still "different" at 0.57):
# the same data again at half the peak LR, fresh optimizer. The shipped pairs model is whichever of the two scores higher on LCQMC dev.
stage_pairs2-epoch2()      { v2 pairs2-epoch2 classify bert-zh-pairs-e2 --model "$RUNS/bert-zh-pairs$TAG" "${V2_PAIRS[@]}" --lr 1e-4 --seed 43; }
# A short second stage from run pairs2-epoch2 (LCQMC dev 77.9 %, yet 26 % of the identical train pairs called "same"):
# pairs-identity.jsonl, a quarter same-text positives (see prepare-finetune.mjs), at half its LR.
stage_pairs2-identity()    { v2 pairs2-identity classify bert-zh-pairs-id --model "$RUNS/bert-zh-pairs-e2$TAG" --data "$FT/pairs-identity.jsonl" --eval "$FT/pairs-dev.jsonl" --epochs 1 --batch-size 32 --max-length 64 --warmup-steps 50 --dtype f16 --lr 5e-5 --seed 44; }
# Run pairs2-identity: LCQMC dev 74.6 %, identical LCQMC dev questions "same" 78.9 % (pairs2-epoch2: 71.6 %). Once more at 4x its LR.
stage_pairs2-identity2()   { v2 pairs2-identity2 classify bert-zh-pairs-id2 --model "$RUNS/bert-zh-pairs-id$TAG" --data "$FT/pairs-identity.jsonl" --eval "$FT/pairs-dev.jsonl" --epochs 1 --batch-size 32 --max-length 64 --warmup-steps 50 --dtype f16 --lr 2e-4 --seed 45; }
# Run pairs2-identity2: LCQMC dev 74.0 %, identical dev questions 82.8 %. Two epochs on a file of half same-text positives.
stage_pairs2-identity3()   { v2 pairs2-identity3 classify bert-zh-pairs-id3 --model "$RUNS/bert-zh-pairs-id2$TAG" --data "$FT/pairs-identity-half.jsonl" --eval "$FT/pairs-dev.jsonl" --epochs 2 --batch-size 32 --max-length 64 --warmup-steps 50 --dtype f16 --lr 2e-4 --seed 46; }
# Run pairs2-identity3: identical dev questions 95.1 % "same", LCQMC dev 72.6 %. Back to a quarter same-text pairs at 5e-5.
stage_pairs2-identity4()   { v2 pairs2-identity4 classify bert-zh-pairs-id4 --model "$RUNS/bert-zh-pairs-id3$TAG" --data "$FT/pairs-identity.jsonl" --eval "$FT/pairs-dev.jsonl" --epochs 1 --batch-size 32 --max-length 64 --warmup-steps 50 --dtype f16 --lr 5e-5 --seed 47; }
# Sixth session, TAG=-a5k: pairs2-identity3 then pairs2-identity4 from the shipped run pairs2-identity2-a5k (LCQMC dev
# 78.0 %, identical dev questions 88.9 % "same"; 9.5 % of the identical test questions still "different"). Rule fixed
# before they ran: one of them replaces the shipped model only if it is at least as good on both dev figures; among
# such runs, the higher LCQMC dev accuracy.
# Runs: pairs2-identity3-a5k LCQMC dev 75.6 %, identical dev 98.0 % (fails); pairs2-identity4-a5k 79.5 % and 91.4 %: shipped.
stage_pairs2-scratch()     { v2 pairs2-scratch classify bert-zh-pairs-scratch "${SCRATCH[@]}" "${V2_PAIRS[@]}" --lr 2e-4 --seed 42; }
stage_tnews()              { v2 tnews classify bert-zh-tnews --model "$ADAPTED" "${V2_TNEWS[@]}"; }
# Second epochs from the one-epoch runs (TNEWS dev 43.5 %; sentiment dev 90.66 %, yet the demo's lukewarm review positive):
# the same data again at half the peak LR, fresh optimizer, another seed. Shipped: whichever run scores higher on dev.
stage_tnews-epoch2()       { next_epoch tnews classify bert-zh-tnews 2 1e-4 43 "${V2_TNEWS[@]}"; }
# Sixth session, TAG=-a5k: a third epoch from the shipped run tnews-epoch2 (dev 47.6 %, 1.8 points over its first epoch;
# the demo's sports headline "国足客场战平对手…" still called military), a quarter of the first epoch's peak LR, seed 44.
# Rule fixed before it ran: it replaces the shipped model if its dev accuracy is higher.
stage_tnews-epoch3()       { next_epoch tnews classify bert-zh-tnews 3 5e-5 44 "${V2_TNEWS[@]}"; }
# Run tnews-epoch3-a5k: dev 48.4 %, shipped. A fourth epoch from it at an eighth of the peak LR, seed 45; rule fixed
# before it ran: it replaces the shipped model if its dev accuracy is higher.
stage_tnews-epoch4()       { next_epoch tnews classify bert-zh-tnews 4 2.5e-5 45 "${V2_TNEWS[@]}"; }
# Run tnews-epoch4-a5k: dev 48.36 % (below 48.42 %): not shipped.
# Fourth session, TAG=-a5k: one epoch from the finished base scored best on dev (91.3 %) but calls an obvious short book
# review negative ("这本书写得非常好，值得一读，强烈推荐。", ShippedModelTests' guard: short reviews naming 书 are 84 %
# negative in the train data). Rule fixed before its second epoch ran: ship the a5k run with the higher dev accuracy
# among those that pass that guard; if neither passes, keep the shipped model.
stage_sentiment2-epoch2()  { senti_epoch2 sentiment-train.jsonl sentiment2 bert-zh-sentiment; }
# Fifth session: the a5k runs' short-book-review bias comes from the data (see sentiment-train-balanced.jsonl in
# prepare-finetune.mjs): the same two epochs on the reviews balanced within each category × length group. Rule fixed
# before they ran: ship the one with the higher dev accuracy among those that pass ShippedModelTests' guards and score
# at least the shipped model's dev accuracy (90.7 %); dev is the natural mix, so balancing may cost a little there.
stage_sentiment2-balanced()        { senti_epoch1 sentiment-train-balanced.jsonl sentiment2-balanced bert-zh-sentiment-bal; }
stage_sentiment2-balanced-epoch2() { senti_epoch2 sentiment-train-balanced.jsonl sentiment2-balanced bert-zh-sentiment-bal; }
# The balanced runs lost against the unbalanced ones on dev (91.0 vs 91.7 %) and on ChnSentiCorp test (87.9 vs 90.0 %; the
# model card says this test figure prompted the run): the same two epochs on the groups capped at 2 to 1
# (sentiment-train-capped.jsonl), under the same shipping rule. Its second epoch (dev 91.5 %) is the shipped model.
stage_sentiment2-capped()          { senti_epoch1 sentiment-train-capped.jsonl sentiment2-capped bert-zh-sentiment-cap; }
stage_sentiment2-capped-epoch2()   { senti_epoch2 sentiment-train-capped.jsonl sentiment2-capped bert-zh-sentiment-cap; }
# Third stage of the sentiment run (third session): the "A，但是B" mix of prepare-finetune.mjs (sentiment-contrast.jsonl),
# one epoch at a low LR from the shipped second epoch; installed only if its dev accuracy is not below the second epoch's.
# senti_contrast FILE NAME FROM RUN: one epoch of a contrast file from run FROM, written to RUN.
senti_contrast() { v2 "$2" classify "$4" --model "$RUNS/$3$TAG" --data "$FT/$1" --eval "$FT/sentiment-dev.jsonl" --epochs 1 --batch-size 32 --max-length 128 --lr 5e-5 --warmup-steps 50 --dtype f16 --seed 48; }
stage_sentiment2-contrast() { senti_contrast sentiment-contrast.jsonl sentiment2-contrast bert-zh-sentiment-e2 bert-zh-sentiment-contrast; }
# Sixth session, TAG=-a5k: the same stage from the shipped capped run (dev 91.5 %; the demo's lukewarm "画面还可以，但是
# 故事有点老套。" positive 0.68), its plain reviews drawn from the capped file. Rule fixed before it ran: it replaces the
# shipped model if its dev accuracy is at least 91.5 % and it passes ShippedModelTests' guards.
stage_sentiment2-capped-contrast() { senti_contrast sentiment-contrast-capped.jsonl sentiment2-capped-contrast bert-zh-sentiment-cap-e2 bert-zh-sentiment-cap-contrast; }
# Run sentiment2-capped-contrast-a5k: dev 90.5 %, the lukewarm review negative 0.57 but the guard's book review negative
# 0.55: not shipped. The composed reviews inside the capped run's second epoch instead (sentiment-train-capped-contrast.jsonl,
# the capped reviews plus the 4,000 composed ones), from its first epoch; the same rule (dev ≥ 91.5 %, guards pass).
stage_sentiment2-capcon-epoch2() { senti_epoch2 sentiment-train-capped-contrast.jsonl sentiment2-capcon bert-zh-sentiment-capcon bert-zh-sentiment-cap; }
# Run sentiment2-capcon-epoch2-a5k: dev 91.5 % (the capped run's count exactly), guards pass: the shipped model.
stage_tnews-scratch()      { v2 tnews-scratch classify bert-zh-tnews-scratch "${SCRATCH[@]}" "${V2_TNEWS[@]}"; }
stage_ner-coarse()         { v2 ner-coarse ner bert-zh-ner-coarse --model "$ADAPTED" "${V2_NERC[@]}"; }
# A second epoch from run ner-coarse on a NER file: nerc_epoch2 FILE NAME RUN (half the peak LR, seed 43).
nerc_epoch2() { local a=("${V2_NERC[@]/#*ner-coarse-train.bio/$FT/$1}"); a=("${a[@]/5e-4/2.5e-4}"); v2 "$2" ner "$3" --model "$RUNS/bert-zh-ner-coarse$TAG" "${a[@]/#42/43}"; }
# Run ner-coarse's dev entity F1 was 0.43 after its one epoch, still rising: the same data again.
stage_ner-coarse-epoch2()  { nerc_epoch2 ner-coarse-train.bio ner-coarse-epoch2 bert-zh-ner-coarse-e2; }
# Epoch 2 took dev entity F1 (BIO decoding) from 53.1 to 59.9; a third from it, at 2e-4, seed 44.
stage_ner-coarse-epoch3()  { next_epoch ner-coarse ner bert-zh-ner-coarse 3 2e-4 44 "${V2_NERC[@]}"; }
# Sixth session, TAG=-a5k: the same third epoch from the shipped run ner-coarse-epoch2-a5k (dev F1 66.2; from the 547-step
# base the third epoch added 4.2 points). Rule fixed before it ran: it replaces the shipped model if its dev F1 is higher.
# Run ner-coarse-epoch3-a5k: dev F1 68.7: shipped.
# A fourth epoch from it at half that LR, seed 45. Rule fixed before it ran: it replaces the shipped model if its dev F1 is higher.
stage_ner-coarse-epoch4()  { next_epoch ner-coarse ner bert-zh-ner-coarse 4 1e-4 45 "${V2_NERC[@]}"; }
# Run ner-coarse-epoch4-a5k: dev F1 70.1: shipped.
# A fifth epoch from it at half that LR, seed 46. Rule fixed before it ran: it replaces the shipped model if its dev F1 is higher.
stage_ner-coarse-epoch5()  { next_epoch ner-coarse ner bert-zh-ner-coarse 5 5e-5 46 "${V2_NERC[@]}"; }
# Run ner-coarse-epoch5-a5k: dev F1 70.7: shipped.
# Fourth session: one epoch of run ner-coarse's options on ner-coarse-train-mr.bio (the same sentences with half the
# mentions swapped for other train mentions of their type, prepare-finetune.mjs): the augmentation alone, at the same cost.
stage_ner-coarse-mr()      { local a=("${V2_NERC[@]/#*ner-coarse-train.bio/$FT/ner-coarse-train-mr.bio}"); v2 ner-coarse-mr ner bert-zh-ner-coarse-mr --model "$ADAPTED" "${a[@]}"; }
# Fifth session: the augmentation as the second epoch — from run ner-coarse (TAG=-a5k: dev F1 60.1), run
# ner-coarse-epoch2's options on the mention-replacement file instead of the plain one (whose run is the shipped model, dev
# F1 66.2). Rule fixed before it ran: ship it if its dev F1 is higher.
stage_ner-coarse-mr-epoch2() { nerc_epoch2 ner-coarse-train-mr.bio ner-coarse-mr-epoch2 bert-zh-ner-coarse-mr-e2; }
stage_ner-coarse-scratch() { v2 ner-coarse-scratch ner bert-zh-ner-coarse-scratch "${SCRATCH[@]}" "${V2_NERC[@]}"; }
stage_ner2()               { v2 ner2 ner bert-zh-ner --model "$ADAPTED" "${V2_NER[@]}"; }
stage_ner2-scratch()       { v2 ner2-scratch ner bert-zh-ner-scratch "${SCRATCH[@]}" "${V2_NER[@]}"; }

# Scores on every dev/test split into $RUNS/eval2/<model>.<split>.json: the runs of this section (and their scratch
# baselines when trained), and with EVAL_OLD=1 the previously shipped models (models/*, before install2) on the same splits.
stage_evaluate2() {
  local E="$RUNS/eval2"; mkdir -p "$E"
  ev() { local m=$1 name=$2 task=$3 split=$4 file=$5; shift 5
    [ -f "$m/config.json" ] || return 0
    [ -f "$E/$name.$split.json" ] && return 0
    sf evaluate --model "$m" --task "$task" --data "$file" --json "$@" > "$E/$name.$split.json.tmp" && mv "$E/$name.$split.json.tmp" "$E/$name.$split.json"
    log "eval $name $split: $(tr -d '\n ' < "$E/$name.$split.json" | grep -o '"\(accuracy\|f1\|spearman\)":[0-9.]*' | head -2 | tr '\n' ' ')"; }
  senti() { ev "$1" "$2" classify dev "$FT/sentiment-dev.jsonl"; ev "$1" "$2" classify test-chnsenticorp "$SPL/chnsenticorp/test.jsonl"
    ev "$1" "$2" classify test-online-shopping "$SPL/online_shopping/test.jsonl"; ev "$1" "$2" classify test-heldout-category "$SPL/online_shopping/test-heldout-category.jsonl"
    ev "$1" "$2" classify sanity "$REPO/recipes/sentiment-sanity.tsv"; }
  # Identity: every first question of LCQMC dev (selection) and test (report) paired with itself, labelled "same".
  local f; for f in dev test; do [ -f "$E/identical-$f.jsonl" ] || node -e 'const fs = require("fs");
    const out = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(l => l.trim()).map(l => JSON.parse(l).text);
    fs.writeFileSync(process.argv[2], [...new Set(out)].map(t => JSON.stringify({ text: t, text_pair: t, label: "1" })).join("\n") + "\n");' "$SPL/lcqmc/$f.jsonl" "$E/identical-$f.jsonl"; done
  pairs() { ev "$1" "$2" pairs dev "$FT/pairs-dev.jsonl"; ev "$1" "$2" pairs test-lcqmc "$SPL/lcqmc/test.jsonl"
    ev "$1" "$2" pairs dev-identical "$E/identical-dev.jsonl"; ev "$1" "$2" pairs test-identical "$E/identical-test.jsonl"
    ev "$1" "$2" pairs test-afqmc "$SPL/afqmc/test.jsonl"; ev "$1" "$2" sts test-stsb "$SPL/stsb/test.txt"; }
  nerc() { ev "$1" "$2" ner dev "$FT/ner-coarse-dev.bio" --decode bio
    for src in dh_msra cluener weibo; do ev "$1" "$2" ner "test-$src" "$FT/ner-coarse-test-$src.bio" --decode bio; done; }
  tnews() { ev "$1" "$2" classify dev "$SPL/tnews/dev.jsonl"; ev "$1" "$2" classify test "$SPL/tnews/test.jsonl"; }
  if [ "${EVAL_OLD:-0}" = 1 ]; then
    senti "$REPO/models/bert-chinese-small-sentiment" old-sentiment
    pairs "$REPO/models/bert-chinese-small-lcqmc" old-lcqmc
    ev "$REPO/models/bert-chinese-small-ner" old-ner ner test-cluener "$SPL/cluener/test.bio" --decode bio
    ev "$REPO/models/bert-chinese-small-ner" old-ner ner dev-cluener "$SPL/cluener/dev.bio" --decode bio
    return 0
  fi
  local v
  for v in "" -scratch -a5k; do
    for r in "" -e2 -contrast -bal -bal-e2 -cap -cap-e2 -cap-contrast -capcon-e2; do senti "$RUNS/bert-zh-sentiment$r$v" "sentiment$r$v"; done
    for r in "" -e2 -e3 -e4; do tnews "$RUNS/bert-zh-tnews$r$v" "tnews$r$v"; done
    for r in "" -e2 -e3 -e4 -e5 -mr -mr-e2; do nerc "$RUNS/bert-zh-ner-coarse$r$v" "ner-coarse$r$v"; done
  done
  for v in "" -e2 -id -id2 -id3 -id4 -scratch -a5k -e2-a5k -id-a5k -id2-a5k -id3-a5k -id4-a5k; do pairs "$RUNS/bert-zh-pairs$v" "pairs$v"; done
  for v in "" -b -scratch -a5k -b-a5k; do
    ev "$RUNS/bert-zh-embed$v" "embed$v" sts dev-stsb "$SPL/stsb/dev.txt"; ev "$RUNS/bert-zh-embed$v" "embed$v" sts test-stsb "$SPL/stsb/test.txt"
    ev "$RUNS/bert-zh-embed$v" "embed$v" pairs test-lcqmc "$SPL/lcqmc/test.jsonl"
  done
  # The untrained bases as embedding models (cosine of mean-pooled vectors): what contrastive training adds.
  ev "$REPO/models/bert-chinese-small" base-as-embed sts test-stsb "$SPL/stsb/test.txt"
  ev "$RUNS/bert-zh-adapted-547" adapted-as-embed sts test-stsb "$SPL/stsb/test.txt"
  ev "$RUNS/bert-zh-adapted-5000" adapted-5000-as-embed sts test-stsb "$SPL/stsb/test.txt"
}

# The sentence-embedding model (train embed, issue 19 item 4): supervised contrastive training on the positive pairs of
# AFQMC, LCQMC and STS-B train (embed-pairs.jsonl; in-batch negatives, temperature 0.05, mean pooling), from the adapted
# base; --eval is STS-B dev (Spearman of cosine). The untrained adapted base and bert-chinese-small are its baselines.
V2_EMBED=(--data "$FT/embed-pairs.jsonl" --eval "$SPL/stsb/dev.txt" --batch-size 32 --max-length 64 --warmup-steps 40 --temperature 0.05 --pooling mean --dtype f16 --seed 42)
stage_embed()         { v2 embed embed bert-zh-embed --model "$ADAPTED" "${V2_EMBED[@]}" --lr 5e-5 --epochs 1; }
# Run b, chosen among the two on STS-B dev: 4x the peak LR, two epochs (run a above: dev Spearman 0.478; untrained base 0.406).
# Fifth session, TAG=-a5k: run b from the finished base. Rule fixed before it ran: it replaces the shipped embedding model
# (the from-scratch run, STS-B dev Spearman 0.604) if its dev Spearman is higher.
stage_embed-b()       { v2 embed-b embed bert-zh-embed-b --model "$ADAPTED" "${V2_EMBED[@]}" --lr 2e-4 --epochs 2; }
stage_embed-scratch() { v2 embed-scratch embed bert-zh-embed-scratch "${SCRATCH[@]}" "${V2_EMBED[@]}" --lr 2e-4 --epochs 2; }

# Installs the issue-19 runs chosen on dev into models/ (config, F16 weights, tokenizer files, sentence-transformers files):
# INSTALL2 lists run:folder pairs, e.g. "bert-zh-sentiment:bert-chinese-small-sentiment bert-zh-tnews:bert-chinese-small-tnews".
stage_install2() {
  local pair run m
  for pair in ${INSTALL2:?set INSTALL2 to run:folder pairs}; do
    run=${pair%%:*} m=${pair#*:}
    [ -f "$RUNS/$run/model.safetensors" ] || { log "install2: $RUNS/$run is not a trained model"; exit 1; }
    rm -rf "${MODELS:?}/$m.new"; mkdir -p "$MODELS/$m.new"
    for f in config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json modules.json; do
      [ -f "$RUNS/$run/$f" ] && cp "$RUNS/$run/$f" "$MODELS/$m.new/"
    done
    [ -d "$RUNS/$run/1_Pooling" ] && cp -r "$RUNS/$run/1_Pooling" "$MODELS/$m.new/"
    [ -f "$MODELS/$m/README.md" ] && cp "$MODELS/$m/README.md" "$MODELS/$m.new/"
    rm -rf "${MODELS:?}/$m"; mv "$MODELS/$m.new" "$MODELS/$m"
    log "installed $run as $MODELS/$m ($(du -sh "$MODELS/$m" | cut -f1))"
  done
}

stage_install() {
  for m in gpt2-chinese-poems-small bert-chinese-small bert-chinese-small-sentiment bert-chinese-small-ner bert-chinese-small-lcqmc; do
    [ -f "$RUNS/$m/model.safetensors" ] || { log "skip $m (not trained)"; continue; }
    mkdir -p "$MODELS/$m"
    for f in config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json; do cp "$RUNS/$m/$f" "$MODELS/$m/"; done
    case "$m" in gpt2-*) cp "$CFG/generation_config.json" "$MODELS/$m/" ;; esac
    log "installed $MODELS/$m ($(du -sh "$MODELS/$m" | cut -f1)); the model card README.md is written by hand from $RUNS/*.json"
  done
}

# The whole run is one function called on the last line, so that bash has read all of it before anything runs: editing
# this file while a long run is under way cannot change what that run does next.
main() {
  stages=("$@")
  [ ${#stages[@]} -eq 0 ] && stages=(data gpt bert sentiment sentiment-scratch ner ner-scratch lcqmc lcqmc-scratch evaluate install)
  # Data is prepared when asked for or missing, so two stage lists can run side by side (THREADS=1 each, with SF_CLI set so
  # neither rebuilds the CLI under the other).
  if [ -z "${SF_CLI:-}" ]; then
    log "building the CLI (Release)"
    dotnet build -c Release "$REPO/src/SharpFormer.Cli" >&2
  fi
  # The issue-19 stages read data-v2 (stage splits) only.
  needs_data=0
  for s in "${stages[@]}"; do case "$s" in splits|base|base-decay|adapt|adapt-resume|adapt-final|ft-data|*2|*2-*|tnews*|ner-coarse*|evaluate2|embed*|install2) ;; *) needs_data=1 ;; esac; done
  if [[ " ${stages[*]} " == *" data "* ]] || { [ "$needs_data" = 1 ] && [ ! -f "$TOK/vocab.txt" ]; }; then stage_data; fi
  for s in "${stages[@]}"; do
    [ "$s" = data ] && continue
    "stage_$s"
  done
  log "done: ${stages[*]}"
}
main "$@"; exit $?
