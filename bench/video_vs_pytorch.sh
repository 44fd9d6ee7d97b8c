#!/usr/bin/env bash
# tsn-r18, tsm-r18, trn-r18 and i3d-r18 train steps in spool and in PyTorch (Debian's
# python3-torch) on the same machine in the same run, same threads; prints both JSON lines per
# model and the step-time ratio spool / PyTorch.
#   bash bench/video_vs_pytorch.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-5}
threads=$(nproc)
for m in tsn-r18 tsm-r18 trn-r18 i3d-r18; do
  spool=$(OMP_NUM_THREADS=$threads "${SPOOL:-build/spool}" bench --model "$m" --steps "$steps")
  torch=$(/usr/bin/python3 bench/video_pytorch.py --model "$m" --steps "$steps" --threads "$threads")
  echo "spool:   $spool"
  echo "pytorch: $torch"
  /usr/bin/python3 - "$spool" "$torch" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{s['model']}: ratio (spool / pytorch step time) {s['median_step_ms'] / t['median_step_ms']:.3f}"
      f"; parameters {s['parameters']} vs {t['parameters']}")
PY
done
