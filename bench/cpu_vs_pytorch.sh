#!/usr/bin/env bash
# The five standard CPU models' train steps (CONFIGS.md: gpt-tiny, tsn-r18, tsm-r18, i3d-r18,
# dpo-gpt-tiny; zero_grad + forward + backward + AdamW step) in spool and in a current PyTorch 2,
# alternated in one run on the same machine with the same threads. Each round runs every model in
# both engines; a model's time is the best (lowest) of its rounds' medians. Prints one JSON line per
# engine and round, then a table with the ratio spool / PyTorch.
#   bash bench/cpu_vs_pytorch.sh [--steps N] [--rounds R] [--models a,b,...]
# PyTorch 2 comes from the virtual environment ../shared/tools/torch2-venv.sh makes
# (TORCH2_DIR, default $HOME/.cache/spool-torch2; made on first use). PYTHON=/usr/bin/python3 runs
# Debian's PyTorch 1.13 instead (its CPU attention is the naive softmax(QK^T)V).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=5 rounds=2 models=gpt-tiny,tsn-r18,tsm-r18,i3d-r18,dpo-gpt-tiny
while [ $# -gt 0 ]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) echo "cpu_vs_pytorch.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
threads=$(nproc)
spool=${SPOOL:-build/spool}
if [ -z "${PYTHON:-}" ]; then
  dir=${TORCH2_DIR:-$HOME/.cache/spool-torch2}
  if [ ! -x "$dir/venv/bin/python" ]; then
    if [ ! -f ../shared/tools/torch2-venv.sh ]; then
      echo "cpu_vs_pytorch.sh: no PyTorch 2 environment in $dir and no ../shared/tools/torch2-venv.sh" \
        "to make one; set TORCH2_DIR to one, or PYTHON to a python with torch" >&2
      exit 2
    fi
    bash ../shared/tools/torch2-venv.sh "$dir" >&2
  fi
  # shellcheck disable=SC1091
  source "$dir/env.sh"
  PYTHON=$dir/venv/bin/python
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  for m in ${models//,/ }; do
    case $m in
      gpt-tiny | dpo-gpt-tiny) script=bench/gpt_pytorch.py ;;
      *) script=bench/video_pytorch.py ;;
    esac
    s=$(OMP_NUM_THREADS=$threads "$spool" bench --model "$m" --steps "$steps")
    t=$(OMP_NUM_THREADS=$threads "$PYTHON" "$script" --model "$m" --steps "$steps" \
      --threads "$threads")
    echo "round $r spool:   $s"
    echo "round $r pytorch: $t"
    printf '%s\t%s\t%s\n' "$m" "$s" "$t" >>"$out"
  done
done
"$PYTHON" - "$out" "$threads" "$steps" "$rounds" <<'PY'
import json, sys
rows, best, version = {}, {}, ""
for line in open(sys.argv[1]):
    m, s, t = line.rstrip("\n").split("\t")
    s, t = json.loads(s), json.loads(t)
    version = t.get("engine") or t.get("framework")
    b = best.setdefault(m, [float("inf"), float("inf")])
    b[0] = min(b[0], s["median_step_ms"])
    b[1] = min(b[1], t["median_step_ms"])
print(f"\n{version}, {sys.argv[2]} threads, best median of {sys.argv[4]} rounds of {sys.argv[3]} steps")
print("| model | spool ms | PyTorch ms | ratio |")
print("|---|---|---|---|")
for m, (s, t) in best.items():
    print(f"| {m} | {s:.0f} | {t:.0f} | {s / t:.2f} |")
PY
