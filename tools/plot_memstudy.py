#!/usr/bin/env python3
"""Plots spool memstudy's CSV: measured peak against step time, one curve per policy, one
panel per model. Usage: plot_memstudy.py memstudy.csv memstudy.png"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = list(csv.DictReader(open(src)))
    models = list(dict.fromkeys(r["model"] for r in rows))
    # One colour per policy across panels (a model may lack a policy's rows: refused budgets).
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    colour = {p: "C%d" % (i % 10) for i, p in enumerate(policies)}
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = [r for r in rows if r["model"] == model]
        for policy in dict.fromkeys(r["policy"] for r in mine):
            pts = sorted((float(r["step_ms"]), int(r["measured_peak_bytes"]) / 2**20)
                         for r in mine if r["policy"] == policy)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=policy,
                    color=colour[policy])
        ax.set_title(model)
        ax.set_xlabel("step time (ms)")
        ax.set_ylabel("measured peak (MiB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    # As spool's own writers (engine/files.h): never replace a link, a folder or a device.
    if os.path.islink(dst) or (os.path.exists(dst) and not os.path.isfile(dst)):
        sys.exit("plot_memstudy: %s is not a regular file; not replacing it" % dst)
    tmp = dst + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, dst)
    print("wrote", dst)


if __name__ == "__main__":
    main()
