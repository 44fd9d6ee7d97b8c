#!/usr/bin/python3
"""gpt-tiny train steps in PyTorch, the reference `spool bench --model gpt-tiny` is compared with.

The CONFIGS.md configuration: GPT-2 block (pre-LN, fused QKV, causal softmax attention, GELU tanh
MLP), vocab 256, context 256, d 256, 4 layers, 4 heads, tied head; batch 8 x 256 random bytes;
AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on matrices only. A step is
zero_grad, forward, backward, step. Prints one JSON line like spool bench.
Run with Debian's python3-torch:  /usr/bin/python3 bench/gpt_pytorch.py --steps 10 --threads 2
--model dpo-gpt-tiny: the CONFIGS.md DPO step (policy and a live frozen reference, gpt-tiny at
context 128; 8 pairs of 128 random tokens, the first 32 the prompt, chosen and rejected as one
[16, 128] batch; sigmoid loss, beta 0.1; the reference's log-probabilities under no_grad in the
step), as `spool bench --model dpo-gpt-tiny`.
Attention is F.scaled_dot_product_attention (causal) where the PyTorch has it (2.x), else the
naive softmax(QK^T)V.
On a GPU (bench/gpu/run.sh): --model gpt2-124m --device cuda, f32 with TF32 off (as spool's f32
path), attention through F.scaled_dot_product_attention (PyTorch's fused kernels) on CUDA.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, layers):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)
        for lin in (self.c_attn, self.c_fc):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)
        for lin in (self.c_proj, self.mlp_proj):
            nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * layers))
            nn.init.zeros_(lin.bias)
        self.register_buffer("mask", None, persistent=False)

    def attention(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2) for y in (q, k, v))
        if x.is_cuda or hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(b, t, d))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        if self.mask is None or self.mask.shape[-1] != t:
            self.mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        y = F.softmax(scores.masked_fill(self.mask, float("-inf")), dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(x)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab=256, context=256, d=256, layers=4, heads=4):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.01)
        self.h = nn.ModuleList(Block(d, heads, layers) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()


def sequence_logps(logits, tokens, mask):
    """Sum of log p(token) over the masked (completion) tokens of each row."""
    lp = -F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                          tokens[:, 1:].reshape(-1), reduction="none")
    return (lp.view(tokens.shape[0], -1) * mask[:, 1:]).sum(1)


def dpo(args):
    pairs, t, prompt, beta = 8, 128, 32, 0.1
    policy = Gpt(256, t)
    ref = Gpt(256, t)
    ref.load_state_dict(policy.state_dict())
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    decay = [p for p in policy.parameters() if p.dim() >= 2]
    rest = [p for p in policy.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    tokens = torch.randint(0, 256, (2 * pairs, t))
    mask = torch.zeros(2 * pairs, t)
    mask[:, prompt:] = 1
    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            r = sequence_logps(ref(tokens), tokens, mask)
        p = sequence_logps(policy(tokens), tokens, mask)
        margin = (p[:pairs] - r[:pairs]) - (p[pairs:] - r[pairs:])
        (-F.logsigmoid(beta * margin)).mean().backward()
        opt.step()
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    total = sum(times) / 1e3
    print(json.dumps({"engine": "pytorch " + torch.__version__, "model": "dpo-gpt-tiny",
                      "device": "cpu", "steps": args.steps, "threads": args.threads,
                      "median_step_ms": round(statistics.median(times), 3),
                      "pairs_per_s": round(pairs * len(times) / total, 1)}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", choices=["gpt-tiny", "gpt2-124m", "dpo-gpt-tiny"],
                   default="gpt-tiny")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.model == "gpt2-124m":
        vocab, context, batch = 50257, 1024, 8
        model = Gpt(vocab, context, 768, 12, 12)
    else:
        vocab, context, batch = 256, 256, 8
        model = Gpt()
    if args.model == "dpo-gpt-tiny":
        return dpo(args)
    model = model.to(args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    times = []
    for step in range(args.warmup + args.steps):
        ids = torch.randint(0, vocab, (batch, context + 1), device=args.device)
        idx, targets = ids[:, :-1], ids[:, 1:]
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(idx)
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        loss.backward()
        opt.step()
        sync()
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    median = statistics.median(times)
    print(json.dumps({"engine": "pytorch " + torch.__version__, "model": args.model,
                      "device": args.device,
                      "steps": args.steps, "threads": args.threads,
                      "median_step_ms": round(median, 3),
                      "tokens_per_s": round(batch * context * len(times) / (sum(times) / 1e3), 1)}))


if __name__ == "__main__":
    main()
