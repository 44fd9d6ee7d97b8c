#!/usr/bin/env bash
# tools/run_each.sh LOG BINARY [GTEST ARGS...]: runs each test of a googletest BINARY that ARGS
# select (--gtest_filter) in a process of its own, SPOOL_JOBS (default 2) at a time, as ctest
# does for the main suite. The emulated device runs a block's CUDA threads as fibers on one host
# thread, so one test binary uses one core: two processes halve the emulated phases' wall time.
# Each test's output goes to LOG in the order of the list; the last line counts the passed,
# skipped and failed tests and names the failed ones. Exits non-zero when any test failed (a
# sanitizer's report fails its test: its process exits non-zero).
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: tools/run_each.sh LOG BINARY [GTEST ARGS...]" >&2
  exit 2
fi
log=$1 bin=$2
shift 2
filter=()
rest=()
for a in "$@"; do
  case "$a" in
    --gtest_filter=*) filter=("$a") ;;
    --gtest_brief=*) ;;  # each test's whole output is kept
    *) rest+=("$a") ;;
  esac
done
mapfile -t tests < <("$bin" --gtest_list_tests "${filter[@]}" |
  awk '/^[^ ]/ {suite = $1; next} /^  / {print suite $1}')
if [ ${#tests[@]} -eq 0 ]; then
  echo "run_each: $bin lists no test for ${filter[*]:-its whole list}" | tee "$log" >&2
  exit 1
fi
# One OpenMP (and OpenBLAS) thread a process unless asked otherwise: the processes share the cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# One test: its output in $dir/N.out, its exit status in $dir/N.rc.
run_one() {
  local i=$1 name=$2
  "$bin" --gtest_filter="$name" "${rest[@]}" >"$dir/$i.out" 2>&1
  echo $? >"$dir/$i.rc"
}
export -f run_one
export bin dir
export SPOOL_RUN_EACH_REST="${rest[*]:-}"
for i in "${!tests[@]}"; do printf '%s %s\n' "$i" "${tests[$i]}"; done |
  xargs -P "${SPOOL_JOBS:-2}" -L 1 bash -c 'set -f; rest=($SPOOL_RUN_EACH_REST); run_one "$@"' _
passed=0 skipped=0 failed=()
: >"$log"
for i in "${!tests[@]}"; do
  name=${tests[$i]}
  rc=$(cat "$dir/$i.rc" 2>/dev/null || echo "none")
  cat "$dir/$i.out" >>"$log" 2>/dev/null
  # Passed: exit 0 and googletest's own count of one passed test (a filter that matched nothing
  # also exits 0); skipped: its count of one skipped test.
  if [ "$rc" = 0 ] && grep -q '^\[  PASSED  \] 1 test\.' "$dir/$i.out"; then
    passed=$((passed + 1))
  elif [ "$rc" = 0 ] && grep -q '^\[  SKIPPED \] 1 test' "$dir/$i.out"; then
    skipped=$((skipped + 1))
  else
    [ "$rc" = 0 ] && rc="0, but no test passed or skipped"
    failed+=("$name (exit $rc)")
    echo "==== FAILED: $name (exit $rc)"
    cat "$dir/$i.out" 2>/dev/null
  fi
done
summary="run_each: ${#tests[@]} tests, one process each: $passed passed, $skipped skipped, ${#failed[@]} failed"
[ ${#failed[@]} -gt 0 ] && summary+=": ${failed[*]}"
echo "$summary" | tee -a "$log"
[ ${#failed[@]} -eq 0 ]
