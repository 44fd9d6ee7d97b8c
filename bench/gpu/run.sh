#!/usr/bin/env bash
# The GPU check (issue 6), for the lent GPU machine. Builds nothing: tools/gpu_bundle.sh builds
# here and gathers gpu_bundle/, which the device call carries. From the repository root:
#   bash bench/gpu/run.sh [BUNDLE_DIR]
# Finds cuBLAS and cuDNN at run time (the CUDA toolkit's folders, or PyTorch's nvidia packages),
# runs the CUDA tests, compute-sanitizer memcheck on a subset, the kernel benchmarks, and the
# gpt2-124m train step beside PyTorch's on the same GPU. Logs go under $OUT (else /tmp/spool-gpu);
# a summary table is printed last. Each stage has its own time limit; the whole run stays under
# 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
src=${1:-gpu_bundle}
out=${OUT:-/tmp/spool-gpu}
mkdir -p "$out"
[ -f "$src/bundle.tar.xz" ] || { echo "run.sh: no $src/bundle.tar.xz (run tools/gpu_bundle.sh and carry $src)"; exit 2; }
bundle=/tmp/spool-bundle
rm -rf "$bundle" && mkdir -p "$bundle" && tar -C "$bundle" -xJf "$src/bundle.tar.xz"

# Library folders for spool's binaries only (PyTorch keeps its own environment).
dirs="$bundle/lib"
for lib in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
  found=$( (ls /usr/local/cuda/lib64/$lib /usr/local/cuda/targets/x86_64-linux/lib/$lib 2>/dev/null;
            python3 -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null |
              while read -r s; do find "$s" -name "$lib*" 2>/dev/null; done) | head -1)
  [ -n "$found" ] && dirs="$dirs:$(dirname "$found")"
  echo "library $lib: ${found:-not found}"
done
sp() { LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 | tee "$out/gpu.txt"
sp "$bundle/spool" info 2>&1 | tee "$out/info.txt"

echo "== CUDA tests"
SPOOL_CUDA_SYNC=1 sp timeout 180 "$bundle/spool_tests" --gtest_filter='Cuda*' 2>&1 | tee "$out/cuda_tests.log"
echo "== compute-sanitizer memcheck (subset)"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ]; then
  sp timeout 150 "$sanitizer" --tool memcheck --error-exitcode 9 "$bundle/spool_tests" \
    --gtest_filter='CudaKernels.FillCopy*:CudaKernels.Binary*:CudaKernels.Reductions*:CudaKernels.LayerNorm*:CudaKernels.Pooling*:CudaKernels.AdamStep*:CudaKernels.Convolution*' \
    >"$out/memcheck.log" 2>&1
  echo "memcheck exit $?" >>"$out/memcheck.log"
  tail -3 "$out/memcheck.log"
else
  echo "compute-sanitizer not found" | tee "$out/memcheck.log"
fi
echo "== kernel benchmarks"
sp timeout 150 "$bundle/bench_cuda_kernels" 2>&1 | tee "$out/kernels.txt"
echo "== gpt2-124m train step (f32, batch 8 x 1024)"
sp timeout 90 "$bundle/spool" bench --model gpt2-124m --device cuda --steps 5 --warmup 2 2>&1 |
  tee "$out/gpt2_spool.json"
timeout 90 python3 bench/gpt_pytorch.py --model gpt2-124m --device cuda --steps 5 --warmup 2 2>&1 |
  tail -1 | tee "$out/gpt2_torch.json"

echo
echo "== summary"
python3 - "$out" <<'PY'
import json, re, sys, pathlib
out = pathlib.Path(sys.argv[1])
def read(name):
    p = out / name
    return p.read_text(errors="replace") if p.exists() else ""
rows = []
t = read("cuda_tests.log")
passed = re.search(r"\[  PASSED  \] (\d+) test", t)
failed = re.findall(r"\[  FAILED  \] (\S+)", t)
skipped = re.search(r"\[  SKIPPED \] (\d+) test", t)
rows.append(("CUDA tests", f"{passed.group(1) if passed else 0} passed, "
             f"{len(set(f for f in failed if '.' in f))} failed, {skipped.group(1) if skipped else 0} skipped"))
for f in sorted(set(f for f in failed if "." in f)):
    rows.append(("  failed", f))
m = read("memcheck.log")
e = re.search(r"ERROR SUMMARY: (\d+) error", m)
rows.append(("memcheck", f"{e.group(1)} errors" if e else (m.strip().splitlines() or ["no output"])[-1]))
k = read("kernels.txt")
ceil = re.search(r"copy ceiling: (\d+) GB/s", k)
if ceil: rows.append(("copy ceiling", ceil.group(1) + " GB/s"))
for line in k.splitlines():
    mm = re.match(r"(BM_\S+)\s.*?((?:GB/s|TFLOP/s)=\S+)(.*)", line)
    if mm:
        extra = " ".join(re.findall(r"(of_\w+=\S+)", mm.group(3)))
        rows.append((mm.group(1), mm.group(2) + (" " + extra if extra else "")))
def j(name):
    for line in reversed(read(name).splitlines()):
        try: return json.loads(line)
        except Exception: pass
    return None
s, p = j("gpt2_spool.json"), j("gpt2_torch.json")
if s: rows.append(("gpt2-124m spool", f"{s['median_step_ms']:.1f} ms/step, {s['tokens_per_s']:.0f} tok/s"))
else: rows.append(("gpt2-124m spool", "no result"))
if p: rows.append(("gpt2-124m pytorch", f"{p['median_step_ms']:.1f} ms/step"))
else: rows.append(("gpt2-124m pytorch", "no result"))
if s and p: rows.append(("spool / pytorch", f"{s['median_step_ms'] / p['median_step_ms']:.2f}"))
w = max(len(r[0]) for r in rows)
for a, b in rows: print(f"{a:<{w}}  {b}")
PY
