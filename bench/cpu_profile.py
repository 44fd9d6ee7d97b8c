#!/usr/bin/python3
"""Where a CPU train step's time goes: `spool bench --model M` under `perf record` (the cpu-clock
software event, which works where hardware counters do not), oneDNN's generated kernels named
through its perf map (DNNL_JIT_PROFILE=2), each sampled function put in one category.

    python3 bench/cpu_profile.py [--models gpt-tiny,tsn-r18,...] [--steps 10]

Prints, per model, the share of the samples and the milliseconds per step of each category (the
share times the median step that the same run measured). Samples in weight initialisation (before
the timed steps) are counted apart as setup and left out of the shares. Needs Debian's linux-perf.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# (category, pattern over "dso symbol"), first match wins.
CATEGORIES = [
    ("setup (weight init, not in the step)", r"normal_block|uniform_block|__sincos|__ieee754_log"),
    ("convolution (oneDNN kernels)", r"\[JIT\].*conv"),
    ("GEMM", r"gemm|libopenblas"),
    ("layout reorders (oneDNN)", r"reorder|single_blk|\[JIT\]|libdnnl"),
    ("im2col / col2im copies", r"im2col|col2im|gather_samples"),
    ("batch norm", r"batch_norm"),
    ("pooling", r"max_pool|avg_pool"),
    ("attention", r"attention|flash"),
    ("layer norm", r"layer_norm"),
    ("loss", r"cross_entropy|nll|loss"),
    ("optimizer", r"adam|sgd"),
    ("embedding / index", r"index_select|gather|scatter|embedding"),
    ("reductions", r"reduce|sum_|::sum"),
    ("elementwise", r"binary|unary|map1|map2|map3|for_each_run|gelu|relu|fill|copy|where|"
                    r"temporal_shift|dropout|CpuBackend::"),
    ("memory (page faults, memset / memcpy, malloc)", r"\[kernel|mem(set|move|cpy)|malloc|free|"
                                                      r"_int_|sysmalloc"),
    ("threading (OpenMP runtime)", r"libgomp"),
]


def classify(dso, symbol):
    text = dso + " " + symbol
    for name, pattern in CATEGORIES:
        if re.search(pattern, text):
            return name
    return "other"


def profile(spool, model, steps):
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "perf.data")
        env = dict(os.environ, DNNL_JIT_PROFILE="2", OMP_NUM_THREADS=str(os.cpu_count()))
        out = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", data, spool,
                              "bench", "--model", model, "--steps", str(steps)],
                             env=env, capture_output=True, text=True, check=True).stdout
        bench = json.loads(out.strip().splitlines()[-1])
        report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                                 "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0"],
                                capture_output=True, text=True, check=True).stdout
    shares = {}
    line = re.compile(r"^\s*([\d.]+)%\s+(\S+(?: tid \d+)?)\s+\[[.k]\]\s+(.*)$")
    for row in report.splitlines():
        m = line.match(row)
        if m:
            c = classify(m.group(2), m.group(3))
            shares[c] = shares.get(c, 0.0) + float(m.group(1))
    return bench, shares


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="gpt-tiny,tsn-r18,tsm-r18,i3d-r18,dpo-gpt-tiny")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--spool", default=os.environ.get("SPOOL", "build/spool"))
    a = ap.parse_args()
    for model in a.models.split(","):
        bench, shares = profile(a.spool, model, a.steps)
        setup = shares.pop(CATEGORIES[0][0], 0.0)
        total = sum(shares.values())
        step = bench["median_step_ms"]
        print(f"\n{model}: median step {step:.0f} ms ({a.steps} steps; setup {setup:.1f} % of "
              f"the samples, left out)")
        print("| where | share of the step | ms per step |")
        print("|---|---|---|")
        for name, pct in sorted(shares.items(), key=lambda kv: -kv[1]):
            share = pct / total
            print(f"| {name} | {100 * share:.1f} % | {share * step:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
