#!/usr/bin/env bash
# The main job: install what is missing, build, train the digits MLP and print its test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
build/spool train --model mlp --data digits
