#!/usr/bin/env bash
# Installs the Debian packages spool needs, skipping apt when all are already present.
set -euo pipefail
packages=(build-essential cmake libopenblas-dev libopenblas-openmp-dev libgtest-dev libgmock-dev libbenchmark-dev
          libglpk-dev python3-matplotlib zlib1g-dev nlohmann-json3-dev python3-sklearn fortunes
          libjpeg62-turbo-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
          pkg-config ffmpeg)
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
