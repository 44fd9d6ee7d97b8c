#!/usr/bin/env bash
# Builds the CUDA backend here (sm_90) and gathers what bench/gpu/run.sh needs on the GPU machine
# into gpu_bundle/bundle.tar.xz (git-ignored): the stripped binaries and the shared libraries they need that a
# CUDA image may lack (OpenBLAS, GLPK, Google Benchmark, ...). cuBLAS, cuDNN, the C++ runtime and
# the driver are found there at run time, not carried.
#   bash tools/gpu_bundle.sh        then carry gpu_bundle and run:  bash bench/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SPOOL_GPU_BUILD:-build-gpu}  # an existing CUDA build folder may be named instead
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPOOL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  >/dev/null
cmake --build "$build" -j2 --target spool spool_tests bench_cuda_kernels
rm -rf gpu_bundle
mkdir -p gpu_bundle/lib
for b in spool spool_tests bench_cuda_kernels; do
  cp "$build/$b" gpu_bundle/
  strip gpu_bundle/$b
done
# Shared libraries outside the C runtime, the C++ runtime and CUDA's own.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread|libdl\.|librt\.|libstdc\+\+|libgcc_s|libcuda|libcublas|libcudnn|libcudart)'
for b in gpu_bundle/spool gpu_bundle/spool_tests gpu_bundle/bench_cuda_kernels; do
  ldd "$b" | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
  if ! [[ $name =~ $skip ]]; then cp -L "$path" gpu_bundle/lib/; fi
done
# Packed: OpenBLAS alone is 37 MB, over what a device call carries; xz brings it all to ~12 MB.
tar -C gpu_bundle -cJf bundle.tar.xz spool spool_tests bench_cuda_kernels lib
rm -rf gpu_bundle/spool gpu_bundle/spool_tests gpu_bundle/bench_cuda_kernels gpu_bundle/lib
mv bundle.tar.xz gpu_bundle/
ls -la gpu_bundle
