#!/usr/bin/env bash
# The preference-training study of docs/dpo.md, end to end on the CPU (about 25 minutes on 2
# cores): pretrain gpt-tiny on the corpus, generate real-versus-misspelt pairs, SFT on the
# chosen completions, DPO from the SFT model (reference precomputed), a Bradley-Terry reward
# model on the same pairs, and samples for the held-out prompts from each model, scored for
# spelling. Usage: bash bench/dpo_study.sh [OUT_DIR] [PRETRAINED.safetensors]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dpo_study}
mkdir -p "$out"
spool=build/spool
pre=${2:-}
if [[ -z "$pre" ]]; then
  pre=$out/pretrained.safetensors
  $spool train --model gpt-tiny --steps 1000 --lr 2e-3 --eval-every 250 \
    --log "$out/pretrain.jsonl" --save "$pre"
fi
$spool make-pairs --out "$out/pairs.jsonl" --pairs 4000 --seed 0
$spool train --model gpt-tiny --sft --data "$out/pairs.jsonl" --init "$pre" --steps 300 \
  --lr 5e-4 --eval-every 50 --log "$out/sft.jsonl" --save "$out/sft.safetensors"
$spool train --model dpo-gpt-tiny --data "$out/pairs.jsonl" --init "$out/sft.safetensors" \
  --precompute-ref --steps 300 --lr 5e-5 --eval-every 25 --log "$out/dpo.jsonl" \
  --save "$out/dpo.safetensors"
$spool train --model reward-gpt-tiny --data "$out/pairs.jsonl" --init "$out/sft.safetensors" \
  --steps 300 --lr 1e-4 --eval-every 25 --log "$out/reward.jsonl" --save "$out/rm.safetensors"
for m in pretrained sft dpo; do
  w=$out/$m.safetensors
  [[ $m == pretrained ]] && w=$pre
  $spool generate --weights "$w" --prompts "$out/pairs.jsonl" --samples 400 --tokens 64 \
    --seed 1 --out "$out/samples_$m.jsonl" | tail -1 | tee "$out/rate_$m.json"
  $spool generate --weights "$w" --prompts "$out/pairs.jsonl" --samples 2000 --tokens 64 \
    --seed 2 | tail -1 | tee "$out/rate2k_$m.json"
done
