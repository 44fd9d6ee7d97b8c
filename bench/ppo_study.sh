#!/usr/bin/env bash
# The RLHF comparison of docs/rl.md: PPO on gpt-tiny from the SFT model of bench/dpo_study.sh,
# rewarded by that study's reward model, then the SFT, DPO and PPO models' samples for the
# held-out prompts scored alike: the reward model's mean score, the win rate against the SFT
# model's samples of the same prompts (judged by the reward model), the sampled KL to the SFT
# model (the reference of both DPO and PPO) and the spelling property of docs/dpo.md.
# Usage: bash bench/ppo_study.sh DPO_STUDY_DIR [STEPS] [LR]   (the folder bench/dpo_study.sh
# wrote: pairs.jsonl, sft.safetensors, rm.safetensors, dpo.safetensors, dpo.jsonl). docs/rl.md's
# table: 700 steps (about DPO's wall time with its reference precomputed) and 300 (DPO's steps).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: bash bench/ppo_study.sh DPO_STUDY_DIR [STEPS] [LR]}
steps=${2:-700}
lr=${3:-5e-5}
spool=build/spool
$spool train --model ppo-gpt-tiny --data "$dir/pairs.jsonl" --init "$dir/sft.safetensors" \
  --reward "$dir/rm.safetensors" --steps "$steps" --lr "$lr" --eval-every 50 \
  --log "$dir/ppo.jsonl" --save "$dir/ppo.safetensors" | tail -1 | cut -c1-120
for m in sft dpo ppo; do
  against=()
  [[ $m != sft ]] && against=(--against "$dir/sft.safetensors")
  $spool generate --weights "$dir/$m.safetensors" --prompts "$dir/pairs.jsonl" --samples 1000 \
    --tokens 64 --seed 3 --reward "$dir/rm.safetensors" --ref "$dir/sft.safetensors" \
    "${against[@]}" --out "$dir/rlhf_samples_$m.jsonl" | tail -1 | tee "$dir/rlhf_eval_$m.json"
done
for m in dpo ppo; do  # wall time of the training runs
  echo "$m: $(tail -1 "$dir/$m.jsonl" | grep -o '"seconds": [0-9.]*')"
done
# What the samples are made of: shares of their characters (bytes that are not UTF-8 were written
# as U+FFFD, so "outside ASCII" counts those too).
python3 - "$dir" <<'PY'
import json, sys
for m in ("sft", "dpo", "ppo"):
    text = "".join(json.loads(l)["completion"] for l in open(f"{sys.argv[1]}/rlhf_samples_{m}.jsonl"))
    share = lambda f: sum(1 for ch in text if f(ch)) / len(text)
    print(f"{m}: capitals {share(str.isupper):.4f}, punctuation {share(lambda c: c in '.,;:!?-' + chr(34) + chr(39)):.4f}, "
          f"ASCII letters {share(lambda c: c.isalpha() and ord(c) < 128):.4f}, "
          f"outside ASCII {share(lambda c: ord(c) > 126 or (ord(c) < 32 and c not in chr(9) + chr(10))):.4f}")
PY
