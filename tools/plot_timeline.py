#!/usr/bin/env python3
"""Draws spool memstudy's memory timelines: for each model, live bytes over one step's primitives,
one panel per policy (the plain step first, then each policy at the smallest budget all of them
planned), measured and predicted overlaid, the budget as a line and recomputation shaded.
Usage: plot_timeline.py timeline.csv OUTDIR (writes OUTDIR/timeline_<model>.png)"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MB = 1e6


def main():
    src, out = sys.argv[1], sys.argv[2]
    rows = list(csv.DictReader(open(src)))
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        policies = list(dict.fromkeys(r["policy"] for r in mine))
        fig, axes = plt.subplots(len(policies), 1, figsize=(11, 2.6 * len(policies)),
                                 squeeze=False, sharey=True)
        for ax, policy in zip(axes[:, 0], policies):
            pts = [r for r in mine if r["policy"] == policy]
            x = [int(r["index"]) for r in pts]
            pl = [int(r["predicted_live_bytes"]) / MB for r in pts]
            ml = [int(r["measured_live_bytes"]) / MB for r in pts]
            pp = [int(r["predicted_peak_bytes"]) / MB for r in pts]
            mp = [int(r["measured_peak_bytes"]) / MB for r in pts]
            for i, r in zip(x, pts):
                if r["recompute"] == "1":
                    ax.axvspan(i - 0.5, i + 0.5, color="orange", alpha=0.25, lw=0)
            ax.step(x, ml, where="mid", color="C0", lw=2.5, label="measured live (after)")
            ax.step(x, pl, where="mid", color="k", lw=1, ls="--", label="predicted live (after)")
            ax.plot(x, mp, "o", color="C1", ms=5, label="measured peak (within)")
            ax.plot(x, pp, "x", color="k", ms=5, label="predicted peak (within)")
            budget = int(pts[0]["budget_bytes"])
            if budget > 0:
                ax.axhline(budget / MB, color="red", ls=":", lw=1.5, label="budget")
            same = sum(1 for r in pts
                       if r["predicted_live_bytes"] == r["measured_live_bytes"]
                       and r["predicted_peak_bytes"] == r["measured_peak_bytes"])
            recompute = sum(1 for r in pts if r["recompute"] == "1")
            title = "plain step" if policy == "none" else "%s at %.1f MB" % (policy, budget / MB)
            ax.set_title("%s: %d primitives, %d replays; predicted = measured at %d of %d"
                         % (title, len(pts), recompute, same, len(pts)), fontsize=9, loc="left")
            ax.set_ylabel("MB")
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=7, loc="upper left", ncol=2)
        axes[-1, 0].set_xlabel("primitive (forward, replay (shaded), backward, evict, release)")
        fig.suptitle("%s: live bytes over one training step's primitives" % model)
        fig.tight_layout()
        dst = os.path.join(out, "timeline_%s.png" % model)
        # As spool's own writers (engine/files.h): never replace a link, a folder or a device.
        if os.path.islink(dst) or (os.path.exists(dst) and not os.path.isfile(dst)):
            sys.exit("plot_timeline: %s is not a regular file; not replacing it" % dst)
        tmp = dst + ".tmp.png"
        fig.savefig(tmp, dpi=90)
        os.replace(tmp, dst)
        plt.close(fig)
        print("wrote", dst)


if __name__ == "__main__":
    main()
