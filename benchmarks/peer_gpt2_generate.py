#!/usr/bin/env python3
"""PyTorch peer of bench_gpt2_generate: greedy generation with a GPT-2 124M-shaped model.

The same work as grad's benchmark: vocab 50257, 12 layers, 12 heads, 768 dims, random weights, a
16-token prompt, then 64 new tokens, batch 1, float32. The model is a minimal GPT-2 written here (the
same math as transformers' GPT2LMHeadModel: pre-LayerNorm blocks, tanh GELU, tied LM head) with its
own KV cache as transformers keeps it (past keys and values concatenated each step), run under
torch.no_grad with torch.set_num_threads(--threads). Weights are random: speed does not depend on them.

    python3 benchmarks/peer_gpt2_generate.py [--threads 1] [--repeats 3]

Prints a markdown line per thread count; with --machine only `tokens_per_s <best>` (read by
bench_gpt2_generate, which reports the ratio in the same run). Set OPENBLAS_CORETYPE=SkylakeX on
AVX-512 machines (Debian's OpenBLAS does not detect them): PyTorch's products go through OpenBLAS.
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, c, nh):
        super().__init__()
        self.nh = nh
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def forward(self, x, past):
        b, t, c = x.shape
        hs = c // self.nh
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q = q.view(b, t, self.nh, hs).transpose(1, 2)  # (B, NH, T, HS)
        k = k.view(b, t, self.nh, hs).transpose(1, 2)
        v = v.view(b, t, self.nh, hs).transpose(1, 2)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, NH, T, past + T)
        if t > 1:  # the prompt: causal mask; a single new token sees everything
            n = k.shape[2]
            mask = torch.ones(t, n, dtype=torch.bool).tril(diagonal=n - t)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.c_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, (k, v)


class GPT2(nn.Module):
    def __init__(self, vocab=50257, n_positions=1024, c=768, n_layer=12, nh=12):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(n_positions, c)
        self.h = nn.ModuleList(Block(c, nh) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(c, eps=1e-5)
        for p in self.parameters():
            nn.init.normal_(p, std=0.02)

    def forward(self, ids, past=None):
        start = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(start, start + ids.shape[1])
        x = self.wte(ids) + self.wpe(pos)
        presents = []
        for i, block in enumerate(self.h):
            x, kv = block(x, None if past is None else past[i])
            presents.append(kv)
        x = self.ln_f(x[:, -1, :])
        return x @ self.wte.weight.t(), presents  # tied LM head, last position only: (B, V)


@torch.no_grad()
def generate(model, prompt, new_tokens):
    logits, past = model(prompt)
    out = [prompt]
    for i in range(new_tokens):
        nxt = logits.argmax(dim=-1, keepdim=True)  # greedy
        out.append(nxt)
        if i + 1 < new_tokens:
            logits, past = model(nxt, past)
    return torch.cat(out, dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--machine", action="store_true", help="print only 'tokens_per_s <best>'")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT2().eval()
    prompt = torch.randint(0, 50257, (1, a.prompt_len))
    generate(model, prompt, 4)  # warm-up: allocator, thread pool
    best = 0.0
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        out = generate(model, prompt, a.new_tokens)
        dt = time.perf_counter() - t0
        assert out.shape[1] == a.prompt_len + a.new_tokens
        best = max(best, a.new_tokens / dt)
    if a.machine:
        print(f"tokens_per_s {best:.3f}")
    else:
        print(f"| PyTorch {torch.__version__} | threads {a.threads} | {best:.1f} tokens/s (best of {a.repeats}) |")


if __name__ == "__main__":
    main()
