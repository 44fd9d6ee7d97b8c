#!/usr/bin/env bash
# The CUDA kernels on the emulated device under a sanitizer (docs/cuda.md, docs/testing.md):
#   bash tools/emulate_check.sh tsan [ARGS]   ThreadSanitizer, build-emu-tsan/: data races
#                                              between the CUDA threads of a block
#   bash tools/emulate_check.sh asan [ARGS]   AddressSanitizer + UBSan, build-emu-asan/
# Builds only spool_cuda_tests (the library with the emulated device, the kernel and emulator
# tests; not the rest of the suite, not the CLI), then runs its tests; ARGS go to the test binary
# (e.g. --gtest_filter='CudaKernels.Reductions*'). Under ThreadSanitizer the model steps
# (CudaModels.*) are left out unless a filter is given: docs/testing.md has their times.
# SPOOL_JOBS sets the build's parallel jobs (default 2); SPOOL_BUILD_LOCK names a file the build
# commands take with flock(1), for machines where several people build at once.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true
case "$kind" in
  tsan) dir=build-emu-tsan flag=-DSPOOL_TSAN=ON filter='Cuda*:-CudaModels.*' ;;
  asan) dir=build-emu-asan flag=-DSPOOL_SANITIZE=ON filter='Cuda*:-CudaModels.GptTiny*' ;;
  *)
    echo "usage: tools/emulate_check.sh tsan|asan [test binary arguments]" >&2
    exit 2
    ;;
esac
locked() {
  if [ -n "${SPOOL_BUILD_LOCK:-}" ]; then flock "$SPOOL_BUILD_LOCK" "$@"; else "$@"; fi
}
bash tools/install_deps.sh
t0=$SECONDS
# oneDNN off: these builds check the emulated device's kernels, and the sanitizers cannot see into
# oneDNN's generated code (the CPU convolutions they compare with take the im2col path here; the
# ASan + UBSan suite of tools/sanitize.sh runs the oneDNN path).
locked cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSPOOL_CUDA=EMULATE -DSPOOL_BENCH=OFF \
  -DSPOOL_ONEDNN=OFF "$flag" >/dev/null
locked cmake --build "$dir" -j"${SPOOL_JOBS:-2}" --target spool_cuda_tests
echo "emulated $kind build: $((SECONDS - t0)) s"
for a in "$@"; do
  case "$a" in --gtest_filter=*) filter="" ;; esac
done
args=(--gtest_brief=1 "$@")
[ -n "$filter" ] && args=(--gtest_filter="$filter" "${args[@]}")
# ThreadSanitizer: a report made while a kernel runs is also the launch's error, so the test that
# launched it fails and names it; halt_on_error=0 lets the run show every race, and any report
# makes the exit status 66. One OpenMP thread: libgomp is not instrumented, so its barriers are
# invisible to ThreadSanitizer and the CPU reference code would report false races.
# AddressSanitizer + UBSan: as tools/sanitize.sh, any report fatal, leaks reported at exit.
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:halt_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
[ "$kind" = tsan ] && export OMP_NUM_THREADS=1
t1=$SECONDS
status=0
bash tools/run_each.sh "$dir/tests.log" "$dir/spool_cuda_tests" "${args[@]}" || status=$?
echo "emulated CUDA tests under $kind: $((SECONDS - t1)) s"
exit $status
