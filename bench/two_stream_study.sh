#!/usr/bin/env bash
# The two-stream network on the order test: the generated clips written to disk (make-videos),
# their TV-L1 flow extracted (extract-flow, timed), TSN's spatial stream trained on the frames and
# its temporal stream on 5 flow fields a segment, each for the same wall-clock budget from the
# same 2-D start (--init-2d BACKBONE: the RGB stream takes it as it is, the flow stream's first
# conv the RGB kernels averaged over colour and repeated over its 10 channels, as TSN's
# cross-modality start), then the test scores fused 1 : 1.5 (spool fuse). Run nothing else
# meanwhile: the budget is time. SPOOL=path overrides build/spool. MOTION=1 runs on the motion
# set (make-videos --motion: the ten classes and four motion-only ones, 280 test clips, the
# motion-only classes scored apart).
# Usage: bash bench/two_stream_study.sh OUT_DIR BACKBONE [SECONDS] [CLIPS] [extra train flags...]
# docs/video.md's two-stream row came from:
#   bash bench/two_stream_study.sh /tmp/ts /tmp/vs_all/backbone.safetensors 360 1000 --size 64 --width 32
# and its motion-set row (the backbone: video_study_from_2d.sh's motion-set pretraining) from:
#   MOTION=1 bash bench/two_stream_study.sh /tmp/tsm BACKBONE 300 1000 --size 64 --width 32
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: two_stream_study.sh OUT_DIR BACKBONE [SECONDS] [CLIPS] [train flags...]}
backbone=${2:?usage: two_stream_study.sh OUT_DIR BACKBONE [SECONDS] [CLIPS] [train flags...]}
budget=${3:-360}
clips=${4:-1000}
shift $(($# < 4 ? $# : 4))
spool=${SPOOL:-build/spool}
size=64
for ((i = 1; i <= $#; i++)); do [ "${!i}" = "--size" ] && j=$((i + 1)) && size=${!j}; done
test_clips=200
set_flags=()
make_flags=()
if [ "${MOTION:-0}" = 1 ]; then
  test_clips=280
  set_flags=(--motion-only-from 10)
  make_flags=(--motion)
fi
mkdir -p "$out"
[ -f "$out/videos/train.txt" ] ||
  "$spool" make-videos --out "$out/videos" --clips "$clips" --test-clips "$test_clips" \
    --size "$size" "${make_flags[@]}"
for split in train val; do
  "$spool" extract-flow --data "$out/videos/$split.txt" --out "$out/flow" | tee "$out/flow_$split.json"
done
"$spool" train --model tsn-r18 --data "$out/videos/train.txt" --steps 1000000 \
  --time-limit "$budget" --test-clips "$test_clips" --init-2d "$backbone" --log "$out/rgb.jsonl" \
  --scores "$out/rgb.safetensors" "${set_flags[@]}" "$@" | tail -1 | cut -c1-200
"$spool" train --model tsn-r18 --modality flow --data "$out/flow/train.txt" --steps 1000000 \
  --time-limit "$budget" --test-clips "$test_clips" --init-2d "$backbone" --log "$out/flow.jsonl" \
  --scores "$out/flow.safetensors" "${set_flags[@]}" "$@" | tail -1 | cut -c1-200
"$spool" fuse --scores "$out/rgb.safetensors,$out/flow.safetensors" --weights 1,1.5 \
  "${set_flags[@]}" |
  tee "$out/fused.json"
