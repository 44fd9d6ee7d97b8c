#!/usr/bin/env bash
# Builds spool and its test suite with AddressSanitizer + UndefinedBehaviorSanitizer into
# build-asan/ (CUDA and benchmarks off, any report fatal) and runs the fast part of the suite:
# every test not labelled slow (docs/testing.md). Arguments go to ctest (e.g. -R Safetensors).
# SPOOL_JOBS sets the build's parallel jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
t0=$SECONDS
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSPOOL_SANITIZE=ON -DSPOOL_CUDA=OFF \
  -DSPOOL_BENCH=OFF >/dev/null
cmake --build build-asan -j"${SPOOL_JOBS:-2}"
echo "sanitizer build: $((SECONDS - t0)) s"
# The first report ends the test with a failure (-fno-sanitize-recover, halt_on_error); leaks
# are reported at exit. Nothing is suppressed: OpenMP (libgomp) and OpenBLAS report no leaks.
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:halt_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
t1=$SECONDS
status=0
rm -f build-asan/ctest.log
(cd build-asan && ctest --output-on-failure -j2 -LE slow --timeout 900 "$@") 2>&1 |
  tee build-asan/ctest.log || status=$?
echo "sanitizer suite: $((SECONDS - t1)) s"
exit $status
