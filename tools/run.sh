#!/usr/bin/env bash
# The main job: install what is missing, build, and run the memory-versus-recompute study on the
# standard models (mlp, resnet18, gpt-tiny, dpo-gpt-tiny): a table on stdout, memstudy/memstudy.csv and
# memstudy/memstudy.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
build/spool memstudy --out memstudy
