#!/usr/bin/env bash
# The GPU check (issues 6 and 19): one device call on the lent GPU machine. Builds nothing:
# tools/gpu_bundle.sh builds here and packs gpu_bundle/bundle.tar.xz, which the call carries.
# From the repository root:
#   bash bench/gpu/run.sh [BUNDLE_DIR]        (default gpu_bundle)
#   RUN_SH_DRY=1 bash bench/gpu/run.sh        prints the plan (stages, budgets, filters), runs nothing
# Stages, each under its own time limit (seconds; the sum is printed by the dry run):
#   driver check, CUDA tests, compute-sanitizer memcheck over every kernel family, racecheck and
#   synccheck over the shared-memory/warp kernels (flash attention apart from the rest), the
#   kernel benchmarks (copy ceiling, cuBLAS, spool's im2col conv beside its cuDNN path),
#   PyTorch's cuDNN convolution and fused attention at the benchmarks' shapes, gpt2-124m train
#   steps in spool and in PyTorch.
# An overall deadline (RUN_SH_DEADLINE, default 540 s from the start, under the 600 s a device call
# may run) caps each stage at min(its budget, time left - 15 s); a stage that cannot get its
# minimum is skipped ("skipped: out of time"). Each stage's row is printed, and appended to
# $OUT/summary.md, the moment it ends, so a killed call still shows what finished; the logs are
# re-packed into $OUT/logs.tgz after each stage (two files come back, well under the 8 allowed).
# The table is printed again at the end. Without a bundle, a driver or a GPU, the stages that
# need them are skipped with the reason and the summary still prints.
# Knobs: RUN_SH_ONLY=tests,memcheck,... runs only those stages; RUN_SH_BUDGET_<stage>=N sets
# one stage's budget; RUN_SH_LOGS sets the log folder (default /tmp/spool-gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
start=$SECONDS
src=${1:-gpu_bundle}
out=${OUT:-/tmp/spool-gpu}
logs=${RUN_SH_LOGS:-/tmp/spool-gpu-logs}
deadline=${RUN_SH_DEADLINE:-540}
reserve=15        # kept back at every stage: the kill grace (5 s), packing the logs, the table
dry=${RUN_SH_DRY:-0}
only=${RUN_SH_ONLY:-}
bundle=/tmp/spool-bundle
summary=$out/summary.md

# CUDA 13.x needs driver branch 580 or newer (NVIDIA, "CUDA Compatibility", minor version
# compatibility table: CUDA 13.x >= 580; CUDA 13.0 GA shipped with 580.65.06). The binaries link
# cudart statically, so the driver is all they need from the machine besides cuBLAS.
min_driver=580

# gtest filters. Every kernel family: elementwise (fill/copy/convert, random, unary, binary,
# where), reductions and argmax, softmax, layer norm, batch norm, matmul (cuBLAS and the tiled
# SGEMM), convolution, pooling, flash attention forward and backward, Adam and indexing
# (index_select/add, gather, scatter_add, embedding), RoIAlign (atomicAdd in its backward), and
# the two model steps that chain them.
f_tests='Cuda*'
f_memcheck='CudaRuntime.*:CudaKernels.*:CudaModels.*'
# Kernels with __shared__ memory, __syncthreads or warp shuffles (cuda/reduce.cu, norm.cu,
# batch_norm.cu, attention.cu, matmul.cu's tiled SGEMM); the rest touch no shared memory, where
# racecheck and synccheck have nothing to look at. Flash attention runs apart so that a slow run of
# the others cannot starve it.
f_shared_attn='CudaKernels.FlashAttention*'
f_shared_rest='CudaKernels.Reductions*:CudaKernels.Softmax*:CudaKernels.LayerNorm*:CudaKernels.BatchNorm*:CudaKernels.MatmulThroughTheTiledSgemm:CudaKernels.CrossEntropy*'

# stage id | budget s | minimum s | title
stages='tests|75|20|CUDA tests
memcheck|90|30|memcheck, every kernel family
racecheck_attn|45|20|racecheck, flash attention
racecheck_rest|40|20|racecheck, reduce/softmax/norms/SGEMM/cross-entropy
synccheck_attn|25|15|synccheck, flash attention
synccheck_rest|25|15|synccheck, reduce/softmax/norms/SGEMM/cross-entropy
kernels|50|20|kernel benchmarks
torch_ref|30|20|PyTorch cuDNN conv + fused attention
gpt2_spool|60|30|gpt2-124m spool
gpt2_torch|60|30|gpt2-124m PyTorch'
setup_allow=25   # unpacking, library search, nvidia-smi, spool info: measured against the deadline

field() { echo "$stages" | awk -F'|' -v id="$1" -v k="$2" '$1 == id { print $k }'; }
budget_of() {
  local v="RUN_SH_BUDGET_$1"
  echo "${!v:-$(field "$1" 2)}"
}

if [ "$dry" = 1 ]; then
  echo "plan: deadline ${deadline}s from the start, ${reserve}s kept back per stage, setup ~${setup_allow}s"
  total=0
  while IFS='|' read -r id _ min title; do
    b=$(budget_of "$id")
    total=$((total + b))
    printf '  %-15s %4ss (min %2ss)  %s\n' "$id" "$b" "$min" "$title"
  done <<<"$stages"
  echo "  sum of stage budgets ${total}s + setup ${setup_allow}s = $((total + setup_allow))s (deadline ${deadline}s, device call limit 600s)"
  echo "filters:"
  echo "  tests          $f_tests"
  echo "  memcheck       $f_memcheck"
  echo "  *check_attn    $f_shared_attn"
  echo "  *check_rest    $f_shared_rest"
  echo "driver minimum: $min_driver (CUDA 13.x)"
  exit 0
fi

mkdir -p "$out" || exit 2
rm -rf "$logs" && mkdir -p "$logs" || exit 2
names=() results=() secs=()
bad=0   # the exit status: 1 once a test fails or a sanitizer reports (2: no bundle)
esc() { printf '%s' "$1" | tr '|\n' '/ '; }
# row NAME RESULT [SECONDS]: printed now, appended to summary.md now, kept for the final table.
row() {
  names+=("$1") results+=("$2") secs+=("${3:-}")
  printf '>> %-40s %s%s\n' "$1" "$2" "${3:+  [${3}s]}"
  printf '| %s | %s | %s |\n' "$(esc "$1")" "$(esc "$2")" "${3:-}" >>"$summary"
}
pack() {
  tar -C "$logs" -czf "$out/logs.tgz.part" . 2>/dev/null && mv -f "$out/logs.tgz.part" "$out/logs.tgz"
}
elapsed() { echo $((SECONDS - start)); }
{
  echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname 2>/dev/null || echo '?')"
  echo
  echo "| stage | result | s |"
  echo "| --- | --- | --- |"
} >"$summary"

wanted() { [ -z "$only" ] || [[ ,$only, == *",$1,"* ]]; }
# stage_time ID: sets $stage_t to the seconds stage ID may run, or fails with why in $skip_why.
skip_why='' stage_t=0
stage_time() {
  local b min left
  b=$(budget_of "$1")
  min=$(field "$1" 3)
  [ "$b" -lt "$min" ] && min=$b   # a budget set below the minimum (RUN_SH_BUDGET_*) is taken as asked
  left=$((deadline - $(elapsed) - reserve))
  [ "$left" -lt "$b" ] && b=$left
  if [ "$b" -lt "$min" ]; then
    skip_why="skipped: out of time ($(( left > 0 ? left : 0 ))s left before the deadline, needs ${min}s)"
    return 1
  fi
  stage_t=$b
}
timed_out() { [ "$1" = 124 ] || [ "$1" = 137 ]; }

# ---- the bundle ----------------------------------------------------------------------------
have_bundle=0
if [ -f "$src/bundle.tar.xz" ]; then
  rm -rf "$bundle" && mkdir -p "$bundle"
  if timeout 60 tar -C "$bundle" -xJf "$src/bundle.tar.xz" 2>"$logs/unpack.log"; then
    have_bundle=1
    row "bundle" "$src/bundle.tar.xz unpacked ($(cd "$bundle" && echo *))" "$(elapsed)"
  else
    row "bundle" "could not unpack $src/bundle.tar.xz: $(tail -1 "$logs/unpack.log")" "$(elapsed)"
  fi
else
  row "bundle" "missing: no $src/bundle.tar.xz (run tools/gpu_bundle.sh here and carry $src)"
fi

# Library folders for spool's binaries only (PyTorch keeps its own environment).
dirs="$bundle/lib"
libs=''
# libcudnn.so.9: a bundle built where CMake found cuDNN links it (the cuDNN convolution path,
# docs/cuda.md); without it there, such a bundle's binaries do not start (build the bundle with
# -DSPOOL_CUDNN=OFF for a machine without cuDNN).
for lib in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
  found=$( (for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
              [ -e "$d/$lib" ] && echo "$d/$lib"
            done
            ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l { print $NF }'
            timeout 20 python3 -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null |
              while read -r s; do timeout 20 find "$s" -name "$lib*" 2>/dev/null; done) | head -1)
  [ -n "$found" ] && dirs="$dirs:$(dirname "$found")"
  libs="$libs$lib: ${found:-not found}; "
done
row "libraries" "${libs%; }"
sp() { LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

# ---- the driver ----------------------------------------------------------------------------
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }
drv='' gpu_name='' cuda_ver=''
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 20 nvidia-smi >"$logs/nvidia-smi.txt" 2>&1
  q=$(timeout 20 nvidia-smi --query-gpu=driver_version,name --format=csv,noheader 2>/dev/null | head -1)
  if [[ $q =~ ^([0-9]+(\.[0-9]+)*)[[:space:]]*,[[:space:]]*(.*)$ ]]; then
    drv=${BASH_REMATCH[1]} gpu_name=${BASH_REMATCH[3]}
  fi
  cuda_ver=$(grep -o 'CUDA Version: *[0-9.]*' "$logs/nvidia-smi.txt" | grep -o '[0-9.]*$' | head -1)
fi
if [ -z "$drv" ] && [ -r /proc/driver/nvidia/version ]; then
  cp /proc/driver/nvidia/version "$logs/driver_version.txt"
  drv=$(sed -n 's/.*Kernel Module[^0-9]*\([0-9][0-9.]*\).*/\1/p' /proc/driver/nvidia/version | head -1)
fi
driver_ok=0
if [ -z "$drv" ]; then
  driver_why="no NVIDIA driver (nvidia-smi gave no version, no /proc/driver/nvidia/version)"
  row "driver" "$driver_why"
elif ver_ge "$drv" "$min_driver"; then
  driver_ok=1
  row "driver" "OK: $drv${gpu_name:+ ($gpu_name)}${cuda_ver:+, driver CUDA $cuda_ver} >= $min_driver, as the static CUDA 13 runtime needs"
else
  driver_why="driver $drv is older than the $min_driver that CUDA 13 needs: every CUDA test will fail with cudaErrorInsufficientDriver"
  row "driver" "$driver_why"
fi

# What the static runtime itself says (spool info asks cudaGetDeviceCount).
gpu_ok=0 gpu_why="no bundle"
if [ "$have_bundle" = 1 ]; then
  sp timeout 30 "$bundle/spool" info >"$logs/info.txt" 2>&1
  g=$(grep -m1 '^gpu:' "$logs/info.txt")
  [ -z "$g" ] && g="spool info failed: $(tail -1 "$logs/info.txt")"
  row "spool info" "$g"
  if [[ $g =~ ^gpu:\ [1-9] ]]; then
    gpu_ok=1
  elif [ -z "$drv" ]; then
    gpu_why="no NVIDIA driver"
  elif [ "$driver_ok" = 0 ]; then
    gpu_why="driver $drv is older than $min_driver (see the driver row)"
  else
    gpu_why="no GPU for spool (${g#gpu: })"
  fi
fi
pack

# ---- helpers for gtest and compute-sanitizer logs ------------------------------------------
count() { grep -c "$@" 2>/dev/null || true; }
# gtest_counts LOG: "P passed, F failed, S skipped"
gtest_counts() {
  local p f s
  p=$(count '^\[       OK \] [A-Za-z]' "$1")
  f=$(grep -o '^\[  FAILED  \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]*' "$1" 2>/dev/null | sort -u | wc -l)
  s=$(grep -o '^\[  SKIPPED \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]*' "$1" 2>/dev/null | sort -u | wc -l)
  echo "$p passed, $f failed, $s skipped"
}
failed_tests() { grep -o '^\[  FAILED  \] [A-Za-z_0-9]*\.[A-Za-z_0-9/]*' "$1" 2>/dev/null | cut -c14- | sort -u; }
last_started() {
  local t
  t=$(grep -o '^\[ RUN      \] .*' "$1" 2>/dev/null | tail -1 | cut -c14-)
  echo "${t:-no test started}"
}
# A run that printed no gtest line at all did not start (a missing library, say).
gtest_ran() { grep -q '^\[==========\]\|^\[ RUN      \]' "$1" 2>/dev/null; }
gtest_finished() { grep -q '^\[==========\] [0-9]* tests\? from .* ran\.' "$1" 2>/dev/null; }

stage_tests() {
  local t rc log=$logs/tests.log t0=$SECONDS res why title
  title=$(field tests 4)
  if [ "$have_bundle" = 0 ]; then row "$title" "skipped: no bundle"; return; fi
  stage_time tests || { row "$title" "$skip_why"; return; }
  t=$stage_t
  SPOOL_CUDA_SYNC=1 sp timeout -k 5 "$t" "$bundle/spool_tests" --gtest_filter="$f_tests" >"$log" 2>&1
  rc=$?
  if ! gtest_ran "$log"; then
    res="did not run (exit $rc): $(tail -1 "$log")"
    bad=1
  else
    res=$(gtest_counts "$log")
    [[ $res == *", 0 failed,"* ]] || bad=1
    if timed_out $rc; then
      res="timed out after ${t}s in $(last_started "$log"); $res"
    elif ! gtest_finished "$log"; then
      res="$res; did not finish (exit $rc, last: $(last_started "$log"))"
      bad=1
    fi
    why=$(grep -m1 -o 'no GPU: .*' "$log")
    [[ $res == "0 passed, 0 failed"* && -n $why ]] && res="$res ($why)"
  fi
  row "$title" "$res" $((SECONDS - t0))
  while read -r n; do row "  failed" "$n"; done < <(failed_tests "$log" | head -20)
}

sanitizer=$(command -v compute-sanitizer)
for s in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [ -z "$sanitizer" ] && [ -x "$s" ] && sanitizer=$s
done
san_broken=''
# sanitize ID TOOL TITLE FILTER
sanitize() {
  local id=$1 tool=$2 title=$3 filter=$4 t rc log=$logs/$1.log t0=$SECONDS res n h r
  if [ "$have_bundle" = 0 ]; then row "$title" "skipped: no bundle"; return; fi
  if [ "$gpu_ok" = 0 ]; then row "$title" "skipped: $gpu_why"; return; fi
  if [ -z "$sanitizer" ]; then row "$title" "skipped: compute-sanitizer not found"; return; fi
  if [ -n "$san_broken" ]; then row "$title" "skipped: $san_broken"; return; fi
  stage_time "$id" || { row "$title" "$skip_why"; return; }
  t=$stage_t
  sp timeout -k 5 "$t" "$sanitizer" --tool "$tool" --print-limit 100 --error-exitcode 9 \
    "$bundle/spool_tests" --gtest_filter="$filter" >"$log" 2>&1
  rc=$?
  # memcheck and synccheck end with "ERROR SUMMARY: N errors", racecheck with
  # "RACECHECK SUMMARY: H hazards displayed (E errors, W warnings)".
  n=$(grep -o 'ERROR SUMMARY: [0-9]* error' "$log" | tail -1 | grep -o '[0-9][0-9]*')
  h=$(grep -o 'RACECHECK SUMMARY: .*' "$log" | tail -1 | cut -c20-)
  # Each report's headline with its first "at <kernel> in <file:line>" detail line, deduplicated
  # (a report repeats per thread and per launch); counted when no summary came.
  r=$(awk '/^========= [^ ]/ { h = substr($0, 11); at = 1; print h; next }
           at && /^=========[ ]+at / { l = $0; sub(/^=========[ ]+/, "", l); print "+" l; at = 0; next }
           { at = 0 }' "$log" |
      awk '/^\+/ { last = last " " substr($0, 2); next } { if (last != "") print last; last = $0 }
           END { if (last != "") print last }' |
      grep -v 'COMPUTE-SANITIZER\|ERROR SUMMARY\|RACECHECK SUMMARY\|LEAK SUMMARY\|Target application returned' |
      sort | uniq -c | sort -rn | sed 's/^ *\([0-9]*\) /\1x /')
  if timed_out $rc; then
    res="timed out after ${t}s in $(last_started "$log"); tests $(gtest_counts "$log"); $(printf '%s' "$r" | grep -c .) distinct reports so far"
  elif [ -n "$h" ]; then
    res="$h; tests $(gtest_counts "$log")"
    [[ $h == "0 hazard"* ]] || bad=1
  elif [ -n "$n" ]; then
    res="$n errors; tests $(gtest_counts "$log")"
    [ "$n" = 0 ] || bad=1
  else
    res="no summary from compute-sanitizer (exit $rc): $(tail -1 "$log")"
    bad=1
  fi
  # A summary of 0 says nothing of a run that crashed or never got to its tests.
  timed_out $rc || gtest_finished "$log" || res="$res; the tests did not finish (exit $rc, last: $(last_started "$log"))"
  row "$title" "$res" $((SECONDS - t0))
  while read -r line; do row "  report" "$line"; done < <(printf '%s\n' "$r" | grep . | head -5)
  while read -r line; do row "  failed" "$line"; done < <(failed_tests "$log" | head -5)
  if grep -qi '^=========.*not supported' "$log"; then
    san_broken="compute-sanitizer cannot use this device ($(grep -i -m1 '^=========.*not supported' "$log" | cut -c11-))"
  fi
}

# Google Benchmark prints counters with SI prefixes ("3.98k", "925.5m", "4.1G/s"); norm undoes them.
awk_norm='function norm(s,  m, c) { sub(/\/s$/, "", s); m = 1; c = substr(s, length(s))
  if (c == "k") m = 1e3; else if (c == "M") m = 1e6; else if (c == "G") m = 1e9; else if (c == "T") m = 1e12
  else if (c == "m") m = 1e-3; else if (c == "u") m = 1e-6; else if (c == "n") m = 1e-9
  if (m != 1) s = substr(s, 1, length(s) - 1)
  return sprintf("%.4g", s * m) }'
num() { awk -v s="$1" "$awk_norm"' BEGIN { print norm(s) }'; }
counter() {  # counter BENCH NAME LOG: counter NAME's value on benchmark BENCH's line of LOG
  grep "^$1[/ ]" "$3" 2>/dev/null | head -1 | grep -o "$2=[0-9.e+-]*[kMGTmun]\?" | head -1 | cut -d= -f2
}

stage_kernels() {
  local t rc log=$logs/kernels.log t0=$SECONDS res c title
  title=$(field kernels 4)
  if [ "$have_bundle" = 0 ]; then row "$title" "skipped: no bundle"; return; fi
  if [ "$gpu_ok" = 0 ]; then row "$title" "skipped: $gpu_why"; return; fi
  stage_time kernels || { row "$title" "$skip_why"; return; }
  t=$stage_t
  sp timeout -k 5 "$t" "$bundle/bench_cuda_kernels" --benchmark_out="$logs/kernels.json" \
    --benchmark_out_format=json >"$log" 2>&1
  rc=$?
  c=$(grep -o 'copy ceiling: [0-9]* GB/s' "$log" | grep -o '[0-9][0-9]*')
  res="$(count '^BM_' "$log") benchmarks${c:+, device-to-device copy ceiling $c GB/s}"
  timed_out $rc && res="timed out after ${t}s; $res"
  [ "$rc" != 0 ] && ! timed_out $rc && res="exit $rc: $(tail -1 "$log"); $res"
  row "$title" "$res" $((SECONDS - t0))
  while IFS='|' read -r name vals; do row "  $name" "${vals# }"; done < <(
    grep '^BM_' "$log" | awk "$awk_norm"'
      { s = ""; for (i = 2; i <= NF; i++) if ($i ~ /=/) { split($i, kv, "="); s = s " " kv[1] "=" norm(kv[2]) }
        sub(/\/iterations:[0-9]+/, "", $1); sub(/\/manual_time/, "", $1); print $1 "|" s }')
}

stage_torch_ref() {
  local t rc log=$logs/torch_ref.log t0=$SECONDS line title
  title=$(field torch_ref 4)
  if [ -z "$drv" ]; then row "$title" "skipped: no NVIDIA driver"; return; fi
  stage_time torch_ref || { row "$title" "$skip_why"; return; }
  t=$stage_t
  # The benchmarks' shapes: resnet layer1 conv (batch 32, 64 ch, 56x56, 3x3) and causal attention
  # 8 x 12 x 1024 x 64, f32 with TF32 off, as spool's f32 path.
  timeout -k 5 "$t" python3 - >"$log" 2>&1 <<'PY'
import torch, torch.nn.functional as F
print("torch", torch.__version__, flush=True)
assert torch.cuda.is_available(), "torch sees no GPU"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
def ms(f, reps=10):
    for _ in range(3): f()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(); a.record()
    for _ in range(reps): f()
    b.record(); torch.cuda.synchronize()
    return a.elapsed_time(b) / reps
dev = "cuda"
x = torch.randn(32, 64, 56, 56, device=dev); w = torch.randn(64, 64, 3, 3, device=dev)
t = ms(lambda: F.conv2d(x, w, padding=1))
print(f"conv3x3_cudnn TFLOP/s={2 * 32 * 64 * 56 * 56 * 64 * 9 / t / 1e9:.2f}", flush=True)
b, h, n, d = 8, 12, 1024, 64
q, k, v = (torch.randn(b, h, n, d, device=dev, requires_grad=True) for _ in range(3))
flops = 2.0 * b * h * n * n * d  # causal: half of QK^T and PV, as bench/cuda_kernels.cpp counts
t = ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
print(f"sdpa_forward TFLOP/s={flops / t / 1e9:.2f}", flush=True)
o = F.scaled_dot_product_attention(q, k, v, is_causal=True); go = torch.randn_like(o)
t = ms(lambda: torch.autograd.grad(o, (q, k, v), go, retain_graph=True))
print(f"sdpa_backward TFLOP/s={2.5 * flops / t / 1e9:.2f}", flush=True)
PY
  rc=$?
  if [ "$rc" = 0 ]; then
    row "$title" "ran ($(grep -m1 '^torch ' "$log"))" $((SECONDS - t0))
  elif timed_out $rc; then
    row "$title" "timed out after ${t}s" $((SECONDS - t0))
  else
    row "$title" "failed (exit $rc): $(tail -1 "$log")" $((SECONDS - t0))
  fi
  # Side by side with spool's own, where the benchmarks ran.
  local klog=$logs/kernels.log s p
  while read -r bench ref; do
    p=$(grep -o "^$ref TFLOP/s=[0-9.]*" "$log" | cut -d= -f2)
    [ -z "$p" ] && continue
    s=$(counter "$bench" TFLOP/s "$klog")
    if [ -n "$s" ]; then
      line="spool $(num "$s") vs PyTorch $p TFLOP/s = $(awk -v a="$(num "$s")" -v b="$p" 'BEGIN { printf "%.2f", a / b }')"
    else
      line="PyTorch $p TFLOP/s (no spool figure)"
    fi
    row "  $bench / $ref" "$line"
  done <<'PAIRS'
BM_conv3x3_im2col conv3x3_cudnn
BM_conv3x3_cudnn conv3x3_cudnn
BM_flash_attention_forward sdpa_forward
BM_flash_attention_backward sdpa_backward
PAIRS
}

json_num() { grep -o "\"$1\": *[0-9.eE+-]*" "$2" 2>/dev/null | tail -1 | sed 's/.*: *//'; }
spool_ms='' torch_ms=''
stage_gpt2() {  # stage_gpt2 ID
  local id=$1 t rc log=$logs/$1.log t0=$SECONDS title ms tps
  title=$(field "$id" 4)
  if [ "$id" = gpt2_spool ]; then
    if [ "$have_bundle" = 0 ]; then row "$title" "skipped: no bundle"; return; fi
    if [ "$gpu_ok" = 0 ]; then row "$title" "skipped: $gpu_why"; return; fi
  else
    if [ -z "$drv" ]; then row "$title" "skipped: no NVIDIA driver"; return; fi
  fi
  stage_time "$id" || { row "$title" "$skip_why"; return; }
  t=$stage_t
  if [ "$id" = gpt2_spool ]; then
    sp timeout -k 5 "$t" "$bundle/spool" bench --model gpt2-124m --device cuda --steps 5 --warmup 2 >"$log" 2>&1
  else
    timeout -k 5 "$t" python3 bench/gpt_pytorch.py --model gpt2-124m --device cuda --steps 5 --warmup 2 >"$log" 2>&1
  fi
  rc=$?
  ms=$(json_num median_step_ms "$log") tps=$(json_num tokens_per_s "$log")
  if [ -n "$ms" ]; then
    row "$title" "$ms ms/step, ${tps:-?} tokens/s (f32, batch 8 x 1024)" $((SECONDS - t0))
    if [ "$id" = gpt2_spool ]; then spool_ms=$ms; else torch_ms=$ms; fi
  elif timed_out $rc; then
    row "$title" "timed out after ${t}s" $((SECONDS - t0))
  else
    row "$title" "no result (exit $rc): $(tail -1 "$log")" $((SECONDS - t0))
  fi
}

# ---- the stages, in order ------------------------------------------------------------------
for id in tests memcheck racecheck_attn racecheck_rest synccheck_attn synccheck_rest kernels \
          torch_ref gpt2_spool gpt2_torch; do
  if ! wanted "$id"; then row "$(field "$id" 4)" "skipped: not in RUN_SH_ONLY"; continue; fi
  case $id in
    tests) stage_tests ;;
    memcheck) sanitize memcheck memcheck "$(field memcheck 4)" "$f_memcheck" ;;
    racecheck_attn) sanitize racecheck_attn racecheck "$(field racecheck_attn 4)" "$f_shared_attn" ;;
    racecheck_rest) sanitize racecheck_rest racecheck "$(field racecheck_rest 4)" "$f_shared_rest" ;;
    synccheck_attn) sanitize synccheck_attn synccheck "$(field synccheck_attn 4)" "$f_shared_attn" ;;
    synccheck_rest) sanitize synccheck_rest synccheck "$(field synccheck_rest 4)" "$f_shared_rest" ;;
    kernels) stage_kernels ;;
    torch_ref) stage_torch_ref ;;
    gpt2_spool | gpt2_torch) stage_gpt2 "$id" ;;
  esac
  pack
done
if [ -n "$spool_ms" ] && [ -n "$torch_ms" ]; then
  row "gpt2-124m spool / PyTorch" "$(awk -v a="$spool_ms" -v b="$torch_ms" 'BEGIN { printf "%.2fx the step time (tokens/s %.2fx)", a / b, b / a }')"
fi
row "total" "done in $(elapsed)s (deadline ${deadline}s)"
pack

echo
echo "== summary (also $summary; logs in $out/logs.tgz)"
w=0
for n in "${names[@]}"; do [ "${#n}" -gt "$w" ] && w=${#n}; done
for i in "${!names[@]}"; do
  printf "%-${w}s  %s%s\n" "${names[$i]}" "${results[$i]}" "${secs[$i]:+  [${secs[$i]}s]}"
done
[ "$have_bundle" = 1 ] || exit 2
exit "$bad"
