#!/usr/bin/env python3
"""Eager-PyTorch baseline for bench/generate_bench.cpp: the same GPT-2 (HF layout: Conv1D weights
[in, out], tied LM head, gelu_new, left-padding-aware attention) and the same workload, written the way
a Python RLHF loop runs it (module calls, a per-token KV-cache loop, torch.multinomial sampling), with
torch's fused scaled_dot_product_attention where torch has it (>= 2.0) and an optional preallocated KV
cache (StaticCache; bench/ppo_eager.py samples with it). Prints JSON {"forward_tokens_per_s",
"generate_tokens_per_s", ...}. Runs on Debian's /usr/bin/python3 (torch 1.13, CPU) or a newer torch.  Usage: gpt2_eager.py [--threads N] [--layers 12] [--repeats 3] [--device cpu|cuda]
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

B, P, NEW = 8, 64, 48
# torch >= 2.0: fused attention (flash / memory-efficient kernels on the CPU); torch 1.13 has none.
SDPA = getattr(F, "scaled_dot_product_attention", None)


class Block(torch.nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = torch.nn.LayerNorm(C, eps=1e-5)
        self.ln_2 = torch.nn.LayerNorm(C, eps=1e-5)
        self.c_attn_w = torch.nn.Parameter(torch.randn(C, 3 * C) * 0.02)
        self.c_attn_b = torch.nn.Parameter(torch.zeros(3 * C))
        self.c_proj_w = torch.nn.Parameter(torch.randn(C, C) * 0.02)
        self.c_proj_b = torch.nn.Parameter(torch.zeros(C))
        self.fc_w = torch.nn.Parameter(torch.randn(C, 4 * C) * 0.02)
        self.fc_b = torch.nn.Parameter(torch.zeros(4 * C))
        self.mlp_proj_w = torch.nn.Parameter(torch.randn(4 * C, C) * 0.02)
        self.mlp_proj_b = torch.nn.Parameter(torch.zeros(C))

    def forward(self, x, allowed, past, causal=False):
        """past: None, a (k, v) pair to extend with torch.cat, or a StaticCache layer view (written in
        place). causal: no padding and no past, so SDPA's is_causal kernel applies where torch has it."""
        Bq, T, C = x.shape
        H, D = self.H, C // self.H
        qkv = torch.addmm(self.c_attn_b, self.ln_1(x).view(-1, C), self.c_attn_w).view(Bq, T, 3, H, D)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        if isinstance(past, StaticLayer):
            k, v = past.append(k, v)
        elif past is not None:
            k = torch.cat([past[0], k], 2)
            v = torch.cat([past[1], v], 2)
        if SDPA is not None:
            a = SDPA(q, k, v, is_causal=True) if causal else SDPA(q, k, v, attn_mask=allowed)
        else:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
            if allowed is not None:
                s = s.masked_fill(~allowed, torch.finfo(s.dtype).min)
            a = torch.softmax(s, -1) @ v
        a = a.transpose(1, 2).reshape(Bq * T, C)
        x = x + torch.addmm(self.c_proj_b, a, self.c_proj_w).view(Bq, T, C)
        h = torch.addmm(self.fc_b, self.ln_2(x).view(-1, C), self.fc_w)
        h = F.gelu(h, approximate="tanh")  # gelu_new
        x = x + torch.addmm(self.mlp_proj_b, h, self.mlp_proj_w).view(Bq, T, C)
        return x, (k, v)


class StaticLayer:
    """One layer's preallocated K/V [B, H, S_max, D]; append writes the new rows in place."""

    def __init__(self, owner, k, v):
        self.owner, self.k, self.v = owner, k, v

    def append(self, k, v):
        s, t = self.owner.length, k.shape[2]
        self.k[:, :, s:s + t].copy_(k)
        self.v[:, :, s:s + t].copy_(v)
        return self.k[:, :, :s + t], self.v[:, :, :s + t]


class StaticCache:
    """A KV cache allocated once for prompt + new tokens (no per-step torch.cat of the whole cache)."""

    def __init__(self, n_layer, batch, n_head, max_len, head_dim, dtype=torch.float32, device="cpu"):
        shape = (batch, n_head, max_len, head_dim)
        self.length = 0
        self.layers = [StaticLayer(self, torch.empty(shape, dtype=dtype, device=device),
                                   torch.empty(shape, dtype=dtype, device=device)) for _ in range(n_layer)]


class Gpt2(torch.nn.Module):
    def __init__(self, n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab=50257):
        super().__init__()
        self.wte = torch.nn.Parameter(torch.randn(vocab, n_embd) * 0.02)
        self.wpe = torch.nn.Parameter(torch.randn(n_positions, n_embd) * 0.01)
        self.h = torch.nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = torch.nn.LayerNorm(n_embd, eps=1e-5)

    def load_hf(self, sd):
        """sd: HF GPT-2 names (with or without 'transformer.') -> tensors."""
        sd = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in sd.items()}
        with torch.no_grad():
            self.wte.copy_(sd["wte.weight"])
            self.wpe.copy_(sd["wpe.weight"])
            self.ln_f.weight.copy_(sd["ln_f.weight"])
            self.ln_f.bias.copy_(sd["ln_f.bias"])
            for i, b in enumerate(self.h):
                p = f"h.{i}."
                for dst, src in [(b.ln_1.weight, "ln_1.weight"), (b.ln_1.bias, "ln_1.bias"),
                                 (b.ln_2.weight, "ln_2.weight"), (b.ln_2.bias, "ln_2.bias"),
                                 (b.c_attn_w, "attn.c_attn.weight"), (b.c_attn_b, "attn.c_attn.bias"),
                                 (b.c_proj_w, "attn.c_proj.weight"), (b.c_proj_b, "attn.c_proj.bias"),
                                 (b.fc_w, "mlp.c_fc.weight"), (b.fc_b, "mlp.c_fc.bias"),
                                 (b.mlp_proj_w, "mlp.c_proj.weight"), (b.mlp_proj_b, "mlp.c_proj.bias")]:
                    dst.copy_(sd[p + src])

    def forward(self, ids, mask=None, cache=None):
        """ids [B, T]; mask [B, past + T] (1 = token) or None; cache: list of (k, v), a StaticCache
        (advanced in place; returned as is) or None."""
        Bq, T = ids.shape
        static = isinstance(cache, StaticCache)
        past = 0 if cache is None else cache.length if static else cache[0][0].shape[2]
        S = past + T
        if mask is None:
            pos = torch.arange(past, S, device=ids.device).unsqueeze(0).expand(Bq, T)
        else:
            pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
        allowed = None
        causal = mask is None and past == 0 and T > 1
        if (mask is not None or T > 1) and not (causal and SDPA is not None):
            ar = torch.arange(S, device=ids.device)
            allowed = (ar[None, :] <= (ar[:T] + past)[:, None])[None, None]
            if mask is not None:
                allowed = allowed & mask.bool()[:, None, None, :]
        x = self.wte[ids] + self.wpe[pos]
        new_cache = []
        for i, blk in enumerate(self.h):
            layer_past = None if cache is None else cache.layers[i] if static else cache[i]
            x, kv = blk(x, allowed, layer_past, causal)
            new_cache.append(kv)
        if static:
            cache.length = S
            new_cache = cache
        return self.ln_f(x), new_cache

    def logits(self, hidden):
        return hidden @ self.wte.t()


def generate(model, ids, mask, new, gen):
    hidden, cache = model(ids, mask)
    out = []
    for t in range(new):
        probs = torch.softmax(model.logits(hidden[:, -1]), -1)
        tok = torch.multinomial(probs, 1, generator=gen)
        out.append(tok)
        if t + 1 < new:
            mask = torch.cat([mask, torch.ones_like(tok)], 1)
            hidden, cache = model(tok, mask, cache)
    return torch.cat(out, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = Gpt2(n_layer=a.layers).eval().to(dev)
    ids = torch.randint(0, 50256, (B, P)).to(dev)
    mask = torch.ones(B, P, dtype=torch.long, device=dev)
    gen = torch.Generator(device=dev).manual_seed(1)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()
    res = {"threads": torch.get_num_threads(), "torch": torch.__version__, "device": a.device, "batch": B, "prompt": P, "new": NEW}
    with torch.no_grad():
        model.logits(model(ids)[0])  # warm-up
        fwd = []
        for _ in range(max(3, a.repeats)):
            t0 = time.perf_counter()
            model.logits(model(ids)[0])
            sync()
            fwd.append(time.perf_counter() - t0)
        gen_times = []
        generate(model, ids, mask, 4, gen)  # warm-up
        for _ in range(a.repeats):
            sync()
            t0 = time.perf_counter()
            generate(model, ids, mask, NEW, gen)
            sync()
            gen_times.append(time.perf_counter() - t0)
    res["forward_tokens_per_s"] = B * P / min(fwd)
    res["generate_tokens_per_s"] = B * NEW / min(gen_times)
    res["generate_s"] = min(gen_times)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
