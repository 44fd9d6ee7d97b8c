#!/usr/bin/env bash
# The video models on real footage, through the annotation-list loaders and FFmpeg: the example
# videos of Debian's opencv-doc (vtest.avi, people crossing a square seen from a fixed camera;
# tree.avi, a tree; box.mp4 and cup.mp4, a hand moving a box and a cup; Megamind.avi, a clip of an
# animated film) cut into clips of 16 frames
# (the short side scaled to 128 pixels, H.264), each written forwards (label 0) and reversed
# (label 1): the arrow of time, a two-class order test on real video (no single frame tells the
# two apart, since the reversed clip holds the same frames). The first three quarters of each
# source video's clips train, the last quarter tests, so no test clip shares frames with a
# training clip. Then the TV-L1 flow of every clip (spool extract-flow, --size 112, and once at
# the sources' own resolution on their first 48 frames, for the cost), every model trained for
# SECONDS from BACKBONE (--init-2d, as video_study_from_2d.sh), TSN on the flow, and the two
# streams fused 1 : 1.5. Run nothing else meanwhile: the budget is time. SPOOL=path overrides
# build/spool; VIDEOS=DIR reads the videos from DIR instead of opencv-doc (fetched with apt-get
# download and unpacked under OUT_DIR when it is not installed). FORMAT=jpg writes each clip as a
# folder of the same JPEG frames in both directions (the reversed folder holds the forward one's
# files in reverse order), so that no encoder sees the two directions; MODELS="..." trains those
# models only; FLOW=0 leaves out the flow, the temporal stream and the fusion.
# Usage: bash bench/real_video_study.sh OUT_DIR BACKBONE [SECONDS] [extra train flags...]
# docs/video.md's real-video table came from:
#   bash bench/real_video_study.sh /tmp/real /tmp/study/gcn_regions/backbone.safetensors 90 \
#     --size 64 --width 32
#   FORMAT=jpg FLOW=0 bash bench/real_video_study.sh /tmp/real_jpg \
#     /tmp/study/gcn_regions/backbone.safetensors 90 --size 64 --width 32
# (BACKBONE: video_study_from_2d.sh's motion-set pretraining, 300 s, seed 0).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: real_video_study.sh OUT_DIR BACKBONE [SECONDS] [train flags...]}
backbone=${2:?usage: real_video_study.sh OUT_DIR BACKBONE [SECONDS] [train flags...]}
budget=${3:-90}
shift $(($# < 3 ? $# : 3))
spool=$(realpath "${SPOOL:-build/spool}")
mkdir -p "$out"
out=$(realpath "$out")
src=${VIDEOS:-/usr/share/doc/opencv-doc/examples/data}
if [ -z "${VIDEOS:-}" ] && [ ! -f "$src/vtest.avi" ]; then
  src="$out/opencv-doc/usr/share/doc/opencv-doc/examples/data"
  if [ ! -f "$src/vtest.avi" ]; then
    (cd "$out" && apt-get download opencv-doc >/dev/null)
    dpkg -x "$out"/opencv-doc_*.deb "$out/opencv-doc"
    html="$out/opencv-doc/usr/share/doc/opencv-doc/opencv4/html"
    for v in box cup; do gunzip -c "$html/$v.mp4.gz" >"$src/$v.mp4"; done
  fi
fi
videos=(vtest.avi tree.avi box.mp4 cup.mp4 Megamind.avi)
format=${FORMAT:-mp4}
flow=${FLOW:-1}
models=${MODELS:-tsn-r18 tsm-r18 trn-r18 tea-r18 stm-r18 eco-r18 tdn-r18 i3d-r18 gcn-r18}
clips="$out/clips"
if [ ! -f "$clips/val.txt" ]; then
  rm -rf "$clips"
  mkdir -p "$clips"
  : >"$clips/train.txt.part"
  : >"$clips/val.txt.part"
  for v in "${videos[@]}"; do
    name=${v%.*}
    frames="$out/frames/$name"
    mkdir -p "$frames"
    ffmpeg -loglevel error -y -i "$src/$v" -vf "scale=-2:128" -q:v 2 "$frames/%05d.jpg"
    n=$(find "$frames" -name '*.jpg' | wc -l)
    chunks=$((n / 16))
    train_chunks=$((chunks * 3 / 4))
    for ((k = 0; k < chunks; k++)); do
      list=train
      [ $k -ge $train_chunks ] && list=val
      for dir in 0 1; do
        if [ "$format" = jpg ]; then
          clip="${name}_$(printf %03d $k)_$dir"
          mkdir -p "$clips/$clip"
          for ((i = 0; i < 16; i++)); do
            j=$((dir == 0 ? i : 15 - i))
            cp "$frames/$(printf %05d $((16 * k + 1 + j))).jpg" \
              "$clips/$clip/img_$(printf %05d $((i + 1))).jpg"
          done
        else
          filter="null"
          [ $dir = 1 ] && filter="reverse"
          clip="${name}_$(printf %03d $k)_$dir.mp4"
          ffmpeg -loglevel error -y -start_number $((16 * k + 1)) -i "$frames/%05d.jpg" \
            -frames:v 16 -vf "$filter" -c:v libx264 -crf 18 -pix_fmt yuv420p "$clips/$clip"
        fi
        echo "$clip 16 $dir" >>"$clips/$list.txt.part"
      done
    done
    echo "$v: $n frames, $chunks clips of 16 ($train_chunks train)"
  done | tee "$out/clips.log"
  mv "$clips/train.txt.part" "$clips/train.txt"
  mv "$clips/val.txt.part" "$clips/val.txt"
fi

# The flow: every clip at --size 112, and the sources' first 48 frames at their own size.
[ "$flow" = 1 ] && for split in train val; do
  "$spool" extract-flow --data "$clips/$split.txt" --out "$out/flow" --size 112 |
    tail -1 | tee "$out/flow_$split.json"
done
native="$out/native"
if [ "$flow" = 1 ] && [ ! -f "$native/list.txt" ]; then
  mkdir -p "$native"
  for v in "${videos[@]}"; do
    ffmpeg -loglevel error -y -i "$src/$v" -frames:v 48 -c:v libx264 -crf 18 -pix_fmt yuv420p \
      "$native/${v%.*}.mp4"
    echo "${v%.*}.mp4 48 0" >>"$native/list.txt"
  done
fi
if [ "$flow" = 1 ]; then
  "$spool" extract-flow --data "$native/list.txt" --out "$out/native_flow" | tail -1 |
    tee "$out/flow_native.json"
  for v in "${videos[@]}"; do
    ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0 \
      "$src/$v" | sed "s|^|$v |"
  done | tee "$out/sizes.txt"
fi

common=(--data "$clips/train.txt" --test-list "$clips/val.txt" --flip --steps 1000000
  --time-limit "$budget" --init-2d "$backbone" --test-clips 100000)
for m in $models; do
  extra=()
  [ $m = tsn-r18 ] && extra=(--scores "$out/rgb_scores.safetensors")
  "$spool" train --model $m "${common[@]}" --log "$out/$m.jsonl" "${extra[@]}" "$@" |
    tail -1 | cut -c1-200
done
[ "$flow" = 1 ] && "$spool" train --model tsn-r18 --modality flow --data "$out/flow/train.txt" \
  --test-list "$out/flow/val.txt" --flip --steps 1000000 --time-limit "$budget" \
  --init-2d "$backbone" --test-clips 100000 --log "$out/tsn-r18-flow.jsonl" \
  --scores "$out/flow_scores.safetensors" "$@" | tail -1 | cut -c1-200
[ "$flow" = 1 ] && "$spool" fuse \
  --scores "$out/rgb_scores.safetensors,$out/flow_scores.safetensors" --weights 1,1.5 |
  tee "$out/fuse.txt"
python3 - "$out" $models <<'PY'
import json, os, sys
out = sys.argv[1]
print("| model | steps | train s | test clips | top-1 (direction of time) |")
print("|---|---|---|---|---|")
for m in sys.argv[2:] + ["tsn-r18-flow"]:
    if not os.path.exists(f"{out}/{m}.jsonl"):
        continue
    f = [json.loads(l) for l in open(f"{out}/{m}.jsonl")][-1]
    print(f"| {m} | {f['steps']} | {f['train_seconds']:.0f} | {f['test_clips']} | {f['top1']:.3f} |")
PY
