#!/usr/bin/env bash
# The order test of docs/video.md: TSN, TSM, TRN and I3D trained on the generated clips for the
# same wall-clock budget each, one after the other (run nothing else meanwhile: the budget is
# time), then tested on 200 held-out clips with two views each.
# SPOOL=path overrides build/spool. Usage: bash bench/video_study.sh [OUT_DIR] [SECONDS_PER_MODEL] [extra train flags...]
# The table in docs/video.md came from: bash bench/video_study.sh video_study 360 --size 64 --width 32
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-video_study}
budget=${2:-600}
shift $(($# < 2 ? $# : 2))
mkdir -p "$out"
for m in tsn-r18 tsm-r18 trn-r18 i3d-r18; do
  "${SPOOL:-build/spool}" train --model "$m" --data synthetic --steps 1000000 --time-limit "$budget" \
    --test-clips 200 --log "$out/$m.jsonl" "$@" | tail -1 | cut -c1-200
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| model | steps | train s | top-1 | pair | direction within pair |")
print("|---|---|---|---|---|---|")
for m in ["tsn-r18", "tsm-r18", "trn-r18", "i3d-r18"]:
    f = [json.loads(l) for l in open(f"{out}/{m}.jsonl")][-1]
    print(f"| {m} | {f['steps']} | {f['train_seconds']:.0f} | {f['top1']:.3f} | {f['pair_acc']:.3f} | {f['direction_acc']:.3f} |")
PY
