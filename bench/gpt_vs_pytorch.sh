#!/usr/bin/env bash
# gpt-tiny train steps in spool and in PyTorch (Debian's python3-torch) on the same machine in the
# same run, same threads; prints both JSON lines and the step-time ratio spool / PyTorch.
#   bash bench/gpt_vs_pytorch.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-10}
threads=$(nproc)
spool=$(OMP_NUM_THREADS=$threads build/spool bench --model gpt-tiny --steps "$steps")
torch=$(/usr/bin/python3 bench/gpt_pytorch.py --steps "$steps" --threads "$threads")
echo "spool:   $spool"
echo "pytorch: $torch"
/usr/bin/python3 - "$spool" "$torch" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"ratio (spool / pytorch step time): {s['median_step_ms'] / t['median_step_ms']:.3f}")
PY
