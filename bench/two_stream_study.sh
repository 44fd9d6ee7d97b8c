#!/usr/bin/env bash
# The two-stream network on the order test: the generated clips written to disk (make-videos),
# their TV-L1 flow extracted (extract-flow, timed), TSN's spatial stream trained on the frames and
# its temporal stream on 5 flow fields a segment, each for the same wall-clock budget from the
# same 2-D start (--init-2d BACKBONE: the RGB stream takes it as it is, the flow stream's first
# conv the RGB kernels averaged over colour and repeated over its 10 channels, as TSN's
# cross-modality start), then the test scores fused 1 : 1.5 (spool fuse). Run nothing else
# meanwhile: the budget is time. SPOOL=path overrides build/spool.
# Usage: bash bench/two_stream_study.sh OUT_DIR BACKBONE [SECONDS] [CLIPS] [extra train flags...]
# docs/video.md's two-stream row came from:
#   bash bench/two_stream_study.sh /tmp/ts /tmp/vs_all/backbone.safetensors 360 1000 --size 64 --width 32
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
mkdir -p "$out"
[ -f "$out/videos/train.txt" ] ||
  "$spool" make-videos --out "$out/videos" --clips "$clips" --test-clips 200 --size "$size"
for split in train val; do
  "$spool" extract-flow --data "$out/videos/$split.txt" --out "$out/flow" | tee "$out/flow_$split.json"
done
"$spool" train --model tsn-r18 --data "$out/videos/train.txt" --steps 1000000 \
  --time-limit "$budget" --test-clips 200 --init-2d "$backbone" --log "$out/rgb.jsonl" \
  --scores "$out/rgb.safetensors" "$@" | tail -1 | cut -c1-200
"$spool" train --model tsn-r18 --modality flow --data "$out/flow/train.txt" --steps 1000000 \
  --time-limit "$budget" --test-clips 200 --init-2d "$backbone" --log "$out/flow.jsonl" \
  --scores "$out/flow.safetensors" "$@" | tail -1 | cut -c1-200
"$spool" fuse --scores "$out/rgb.safetensors,$out/flow.safetensors" --weights 1,1.5 |
  tee "$out/fused.json"
