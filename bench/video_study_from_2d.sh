#!/usr/bin/env bash
# The order test as the action-recognition papers run it: every model starts from the same
# pretrained 2-D backbone (ImageNet there; here a TSN trained for PRE seconds on the generated
# clips, saved once) and then trains for the same wall-clock budget. TSN continues from the
# backbone, TSM and TRN take it as it is, I3D inflates it to 3-D (--init-2d); every head starts
# fresh. Run nothing else meanwhile: the budget is time. SPOOL=path overrides build/spool;
# MODELS="tea-r18 tsm-r18" trains those instead of tsn-r18 tsm-r18 trn-r18 i3d-r18;
# DATA=synthetic-motion runs on the motion set (the ten classes and four motion-only ones). An
# OUT_DIR/backbone.safetensors already there is the start (the pretraining is not run again).
# TAG=-grid names the logs <model>-grid.jsonl, for a second run of a model with other flags on the
# same start (the extra flags go to the pretraining too, so run the tagged pass once the start
# exists).
# Usage: bash bench/video_study_from_2d.sh [OUT_DIR] [PRE_SECONDS] [SECONDS_PER_MODEL] [extra train flags...]
# docs/video.md's tables came from:
#   bash bench/video_study_from_2d.sh video_study_2d 360 360 --size 64 --width 32
#   DATA=synthetic-motion MODELS="tsn-r18 tsm-r18 trn-r18 tea-r18 stm-r18 eco-r18 tdn-r18 i3d-r18
#     gcn-r18" bash bench/video_study_from_2d.sh video_study_motion 300 300 --size 64 --width 32
#     --test-clips 280
# and its NL I3D + GCN regions comparison (seeds 0 and 1; TAG=-s1 and -grid-s1 with --seed 1):
#   DATA=synthetic-motion MODELS="gcn-r18 i3d-r18" bash bench/video_study_from_2d.sh gcn_regions \
#     300 300 --size 64 --width 32 --test-clips 280
#   DATA=synthetic-motion TAG=-grid MODELS=gcn-r18 bash bench/video_study_from_2d.sh gcn_regions \
#     300 300 --size 64 --width 32 --test-clips 280 --regions grid
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-video_study_2d}
pre=${2:-360}
budget=${3:-360}
shift $(($# < 3 ? $# : 3))
spool=${SPOOL:-build/spool}
data=${DATA:-synthetic}
tag=${TAG:-}
mkdir -p "$out"
if [ ! -f "$out/backbone.safetensors" ]; then
  "$spool" train --model tsn-r18 --data "$data" --steps 1000000 --time-limit "$pre" \
    --save "$out/backbone.safetensors" --log "$out/pretrain.jsonl" "$@" |
    tail -1 | cut -c1-200
fi
models=${MODELS:-tsn-r18 tsm-r18 trn-r18 i3d-r18}
for m in $models; do
  "$spool" train --model "$m" --data "$data" --steps 1000000 --time-limit "$budget" \
    --init-2d "$out/backbone.safetensors" --log "$out/$m$tag.jsonl" "$@" |
    tail -1 | cut -c1-200
done
python3 - "$out" "$tag" $models <<'PY'
import json, sys
out, tag = sys.argv[1], sys.argv[2]
print("| model | steps | train s | top-1 | pair | direction within pair | motion-only |")
print("|---|---|---|---|---|---|---|")
for m in ["pretrain"] + [m + tag for m in sys.argv[3:]]:
    f = [json.loads(l) for l in open(f"{out}/{m}.jsonl")][-1]
    motion = f"{f['motion_only_acc']:.3f}" if "motion_only_acc" in f else ""
    print(f"| {m} | {f['steps']} | {f['train_seconds']:.0f} | {f['top1']:.3f} | {f['pair_acc']:.3f} | {f['direction_acc']:.3f} | {motion} |")
PY
