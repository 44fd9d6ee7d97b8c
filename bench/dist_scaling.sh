#!/usr/bin/env bash
# Data-parallel scaling on this machine (docs/distributed.md). For gpt-tiny and tsm-r18 at their
# CONFIGS.md sizes (gpt-tiny: batch 8 x 256; tsm-r18: 2 clips of 8 frames at 112 x 112), one
# process with 2 OpenMP threads against 2 processes (mpirun) with 1 thread each on the same
# global batch. A step's time is (wall of LONG steps - wall of SHORT steps) / (LONG - SHORT): the
# start, the last evaluation and the test cancel. The 2-process run's data-parallel log line gives
# the collectives' time and the part backward did not hide. Then spool comm-bench: all-reduce
# times over message sizes, the alpha-beta fit, and the gradient all-reduce and step of
# gpt2-124m predicted for 8, 64 and 512 ranks over 100 and 400 Gb/s links.
#   OUT=docs/distributed SPOOL=build/spool bash bench/dist_scaling.sh
# Needs a quiet machine: the two configurations are timed one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/distributed}
SPOOL=${SPOOL:-build/spool}
COMPUTE_MS=${COMPUTE_MS:-17}  # gpt2-124m's step on one H100-class GPU: an assumption (docs)
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)

wall() {  # wall seconds of a command
  local t0
  t0=$(date +%s.%N)
  "$@" > /dev/null
  echo "$(date +%s.%N) - $t0" | bc -l
}

summary="$OUT/summary.txt"
: > "$summary"
# name, model, short and long step counts, flags. gpt-tiny's 13 MB of gradients fill one bucket
# at the default 25 MB, so nothing can start before backward ends; 2 MB buckets let it.
for spec in "gpt-tiny gpt-tiny 5 25 --batch 8 --eval-every 100000" \
            "gpt-tiny-2mb gpt-tiny 5 25 --batch 8 --eval-every 100000 --bucket-mb 2" \
            "tsm-r18 tsm-r18 2 8 --batch 2 --test-clips 8"; do
  read -r name model short long flags <<< "$spec"
  for layout in 1x2 2x1; do
    for steps in "$short" "$long"; do
      log="$OUT/${name}_${layout}_${steps}.jsonl"
      if [ "$layout" = 1x2 ]; then
        w=$(OMP_NUM_THREADS=2 wall "$SPOOL" train --model "$model" --steps "$steps" $flags --log "$log")
      else
        w=$(OMP_NUM_THREADS=1 wall "${MPIRUN[@]}" "$SPOOL" train --model "$model" --steps "$steps" $flags --log "$log")
      fi
      eval "wall_${layout}_${steps}=$w"
    done
    eval "step_${layout}=\$(echo \"(\$wall_${layout}_${long} - \$wall_${layout}_${short}) / ($long - $short) * 1000\" | bc -l)"
  done
  dp=$(grep '"data_parallel"' "$OUT/${name}_2x1_${long}.jsonl")
  comm=$(echo "$dp" | sed -E 's/.*"comm_seconds": ([0-9.e+-]+).*/\1/')
  exposed=$(echo "$dp" | sed -E 's/.*"exposed_comm_seconds": ([0-9.e+-]+).*/\1/')
  # comm: each bucket's collective from its start to its end (on the communication thread, so
  # it includes waiting for the peer to reach the bucket); exposed: what the step waited for.
  printf '%s: 1 process x 2 threads %.1f ms a step; 2 processes x 1 thread %.1f ms a step (%.2f x); the buckets'"'"' collectives took %.1f ms a step from start to end, %.1f ms of it exposed (the step waited)\n' \
    "$name" "$step_1x2" "$step_2x1" "$(echo "$step_1x2 / $step_2x1" | bc -l)" \
    "$(echo "$comm / $long * 1000" | bc -l)" "$(echo "$exposed / $long * 1000" | bc -l)" | tee -a "$summary"
done
OMP_NUM_THREADS=1 "${MPIRUN[@]}" "$SPOOL" comm-bench --max-mb 64 --reps 10 --csv "$OUT/comm.csv" \
  --compute-ms "$COMPUTE_MS" | tee -a "$summary"
