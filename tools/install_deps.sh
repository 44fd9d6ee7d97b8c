#!/usr/bin/env bash
# Installs the Debian packages spool needs, skipping apt when all are already present.
#   bash tools/install_deps.sh          what building, running and testing spool needs
#   bash tools/install_deps.sh fuzz     that and the fuzzing tools (tools/fuzz.sh): clang, its
#                                       libFuzzer and sanitizer runtimes, its OpenMP, and
#                                       llvm-symbolizer for the reports' stack traces
set -euo pipefail
packages=(build-essential cmake libopenblas-dev libopenblas-openmp-dev libgtest-dev libgmock-dev libbenchmark-dev
          libglpk-dev python3-matplotlib zlib1g-dev nlohmann-json3-dev libcli11-dev python3-sklearn fortunes libdnnl-dev
          libjpeg62-turbo-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
          pkg-config ffmpeg libopenmpi-dev openmpi-bin libopencv-dev libopencv-contrib-dev libcairo2-dev libfontconfig-dev fonts-dejavu-core)
case "${1:-}" in
  "") ;;
  fuzz) packages+=(clang libclang-rt-14-dev libomp-14-dev llvm-14) ;;
  *) echo "install_deps.sh: unknown group '$1' (known: fuzz)" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
