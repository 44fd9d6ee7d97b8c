#!/usr/bin/env bash
# Per-rank memory under data parallel (docs/distributed.md): spool memstudy in one process, then
# in each of 2 processes (mpirun) with replicated optimizer state and with ZeRO-1. Every row
# gives each rank's predicted and measured peak of the whole step (forward, backward, the
# gradients' reduction and the update).
#   OUT=docs/distributed SPOOL=build/spool bash bench/dist_memstudy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/distributed}
SPOOL=${SPOOL:-build/spool}
MODELS=${MODELS:-mlp,resnet18,gpt-tiny,dpo-gpt-tiny,tsm-r18}
ARGS=(memstudy --model "$MODELS" --policies none,sqrt,dtr --budgets 1,0.5 --steps 2 --no-plot)
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
"$SPOOL" "${ARGS[@]}" --out "$OUT/memstudy_1" > "$OUT/memstudy_1.txt"
"${MPIRUN[@]}" "$SPOOL" "${ARGS[@]}" --out "$OUT/memstudy_2" > "$OUT/memstudy_2.txt"
"${MPIRUN[@]}" "$SPOOL" "${ARGS[@]}" --zero 1 --out "$OUT/memstudy_2_zero1" > "$OUT/memstudy_2_zero1.txt"
for f in memstudy_1 memstudy_2 memstudy_2_zero1; do
  echo "== $f"
  grep -E "fixed|per rank" "$OUT/$f.txt" || true
done
