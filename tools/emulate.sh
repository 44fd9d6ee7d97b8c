#!/usr/bin/env bash
# The CUDA backend's kernels on the emulated device (docs/cuda.md): the same cuda/*.cu sources
# compiled by the host compiler (-DSPOOL_CUDA=EMULATE) into build-emu/, then every CUDA test
# (kernels against the CPU backend, the emulator's own checks, gpt-tiny and resnet18 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
t0=$SECONDS
cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DSPOOL_CUDA=EMULATE -DSPOOL_BENCH=OFF >/dev/null
cmake --build build-emu -j2 --target spool_cuda_all_tests
echo "emulated build: $((SECONDS - t0)) s"
t1=$SECONDS
bash tools/run_each.sh build-emu/tests.log build-emu/spool_cuda_all_tests --gtest_filter='Cuda*'
echo "emulated CUDA tests: $((SECONDS - t1)) s"
