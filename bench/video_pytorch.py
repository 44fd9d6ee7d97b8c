#!/usr/bin/python3
"""Video-model train steps in PyTorch, the reference `spool bench --model tsn-r18|tsm-r18|trn-r18|
i3d-r18` is compared with.

The same modules as the PyTorch fixtures (tests/fixtures/make_video_fixture.py, whose classes are
reused) at the CONFIGS.md sizes: ResNet-18 width 64, 10 classes, 8 segments of 112 x 112 frames
(I3D: clips [2, 3, 8, 112, 112], no non-local block), batch 2, dropout 0.5; TRN's relation features
256 wide with a 256 bottleneck and 3 subsets per smaller scale. AdamW as CONFIGS.md says (lr 1e-3,
betas 0.9/0.999, eps 1e-8, weight decay 0.01 on matrices only). A step is zero_grad, forward, backward, step. Prints one JSON line
like spool bench.
Run with Debian's python3-torch:  /usr/bin/python3 bench/video_pytorch.py --model tsm-r18 --steps 5
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "fixtures"))
import make_video_fixture as v  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tsn-r18",
                    choices=["tsn-r18", "tsm-r18", "trn-r18", "i3d-r18"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    v.WIDTH, v.K, v.CLASSES, v.REL_DIM, v.REL_BOTTLENECK = 64, 8, 10, 256, 256
    v.SUBSAMPLE, v.NON_LOCAL = 3, False
    torch.manual_seed(0)
    if a.model == "i3d-r18":
        model = v.I3d()
        x = torch.randn(2, 3, 8, 112, 112)
    else:
        model = v.SegmentNet(shift_=a.model == "tsm-r18", relations=a.model == "trn-r18")
        x = torch.randn(2, 8, 3, 112, 112)
    labels = torch.tensor([3, 7])
    dropout = torch.nn.Dropout(0.5)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    # The fixture head has no dropout (it is compared with dropout off); the benchmark applies
    # it to the pooled features as spool's head does.
    head_in = model.cls_head.fc_cls
    model.cls_head.fc_cls = torch.nn.Sequential(dropout, head_in)
    model.train()
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        opt.step()
        if s >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"model": a.model, "framework": f"pytorch {torch.__version__}",
                      "threads": a.threads, "steps": a.steps,
                      "median_step_ms": statistics.median(times),
                      "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
