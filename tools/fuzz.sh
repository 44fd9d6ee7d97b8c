#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang, ASan and UBSan into build-fuzz/, replays
# every committed regression input and seed, then fuzzes each target for SECONDS (default 60),
# two at a time. Any crash, sanitizer report, leak, uncaught exception other than spool::Error,
# input slower than 10 s or allocation over 2 GB fails the run; what was found is left in
# build-fuzz/findings/<target>/ (docs/testing.md says how it becomes a regression input).
#   bash tools/fuzz.sh [SECONDS] [TARGET...]    e.g. bash tools/fuzz.sh 300 safetensors
# SPOOL_JOBS sets the build's parallel jobs and how many targets fuzz at once (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
  echo "usage: bash tools/fuzz.sh [SECONDS] [TARGET...] (SECONDS 0: replay only)" >&2
  exit 2
fi
jobs=${SPOOL_JOBS:-2}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.cpp; do
    f=${f##*/fuzz_}
    targets+=("${f%.cpp}")
  done
fi

rm -f build-fuzz/summary.log
bash tools/install_deps.sh fuzz
t0=$SECONDS
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DSPOOL_FUZZ=ON \
  -DSPOOL_CUDA=OFF -DSPOOL_TESTS=OFF -DSPOOL_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target "${targets[@]/#/fuzz_}"
echo "fuzz build: $((SECONDS - t0)) s"
say() { echo "$@" | tee -a build-fuzz/summary.log; }  # the verdicts, which .ci/run repeats

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
for s in /usr/lib/llvm-14/bin/llvm-symbolizer "$(command -v llvm-symbolizer || true)"; do
  if [ -x "$s" ]; then export ASAN_SYMBOLIZER_PATH=$s; break; fi
done
export OMP_NUM_THREADS=1  # the loaders are serial; one thread per target keeps two at once fair
limits=(-rss_limit_mb=2048 -timeout=10)

report() {  # the sanitizer's or libFuzzer's report in a log, from its first line
  awk '/==[0-9]+==ERROR|runtime error:|ERROR: libFuzzer|terminate called|Deadly signal/ {p = 1}
       p && !/^#[0-9]/' "$1" | cut -c1-300 | head -80  # (template names run to pages)
}

# Replay: each committed regression input on its own (so every failing one is named), then the
# seeds in one run. libFuzzer runs the files it is given and exits; a directory would start
# fuzzing, so files are listed.
replay() {  # replay TARGET LOG FILE...: 0 when every file passes
  local t=$1 log=$2
  shift 2
  build-fuzz/fuzz_$t "${limits[@]}" "$@" >"$log" 2>&1 && return 0
  say "fuzz replay: fuzz_$t fails on $(grep "^Running:" "$log" | tail -1 | cut -d' ' -f2-)"
  report "$log"
  return 1
}
t1=$SECONDS
failed=()
for t in "${targets[@]}"; do
  ok=1
  for f in tests/fuzz/regressions/$t/*; do
    [ -f "$f" ] && { replay "$t" "build-fuzz/replay_$t.log" "$f" || ok=0; }
  done
  seeds=(tests/fuzz/corpus/$t/*)
  [ -f "${seeds[0]}" ] && { replay "$t" "build-fuzz/replay_seeds_$t.log" "${seeds[@]}" || ok=0; }
  [ $ok = 1 ] || failed+=("$t (replay)")
done
echo "fuzz replay: ${#targets[@]} targets, $((SECONDS - t1)) s"

# Fuzz: new inputs go to build-fuzz/corpus/<target> (kept between local runs); the committed
# seeds are read, never written.
fuzz_one() {
  local t=$1 dict=() seeds=()
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/findings/$t"
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  [ -d "tests/fuzz/corpus/$t" ] && seeds=("tests/fuzz/corpus/$t")
  build-fuzz/fuzz_$t "${limits[@]}" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="build-fuzz/findings/$t/" "build-fuzz/corpus/$t" "${seeds[@]}" \
    >"build-fuzz/fuzz_$t.log" 2>&1
}
# (libFuzzer reads -max_total_time=0 as no limit, so 0 seconds means replay only.)
if [ "$seconds" -gt 0 ]; then
  t2=$SECONDS
  for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
    (rc=0; fuzz_one "$t" || rc=$?; echo $rc >"build-fuzz/fuzz_$t.rc") &
  done
  wait
  for t in "${targets[@]}"; do
    if [ "$(cat "build-fuzz/fuzz_$t.rc")" = 0 ]; then
      runs=$(grep -o "executed_units: *[0-9]*" "build-fuzz/fuzz_$t.log" | grep -o "[0-9]*$")
      cov=$(grep -E "^#[0-9]+" "build-fuzz/fuzz_$t.log" | tail -1 | grep -o "cov: [0-9]*" || true)
      say "fuzz_$t: ${runs:-?} runs in ${seconds} s, ${cov:-cov: ?}, nothing found"
    else
      say "fuzz_$t: FOUND a failure (build-fuzz/fuzz_$t.log; input in build-fuzz/findings/$t/)"
      report "build-fuzz/fuzz_$t.log"
      failed+=("$t")
    fi
  done
  echo "fuzz runs: ${#targets[@]} targets x ${seconds} s, $jobs at once, $((SECONDS - t2)) s"
fi
if [ ${#failed[@]} -gt 0 ]; then
  say "fuzzing FAILED: ${failed[*]}"
  exit 1
fi
say "fuzzing passed: ${targets[*]}"
