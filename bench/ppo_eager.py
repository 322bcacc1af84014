#!/usr/bin/env python3
"""Eager-PyTorch baseline for bench/ppo_iteration_bench.cpp: one PPO / RA-RLHF iteration written the way a
Python RLHF loop (TRL ~0.7, the RA-RLHF reference code's base) runs it, on the same random-init GPT-2 shape
(the Block/Gpt2 of bench/gpt2_eager.py) plus a Linear(n_embd, 1) value head:
  rollout   per-token sampling from a KV cache allocated once (softmax + torch.multinomial, top_k 0 /
            top_p 1, EOS suppressed until min_new_tokens = new tokens: fixed length)
  score     decode the responses (GPT-2 byte-level BPE, vocab.json) and count " the" (the C++ twin's reward)
  forward   policy + reference logits at the response positions in chunks of mini_batch, log_softmax +
            gather, values
  advantage per-token rewards -beta*(logp - ref) + score on the last token, GAE (TRL's reversed loop),
            soft-risk selection (keep the k lowest first-token returns, ties kept), whitening over the
            kept tokens, adaptive KL controller on the kept episodes' KL
  optimize  ppo_epochs x minibatches (rows with no kept token left out, as in C++), clipped policy +
            value loss, entropy (stats), ratio-threshold skip, Adam
Written as a careful user would for speed: logits at the response positions only and the entropy without
grad (the same work the C++ side does; TRL itself takes logits over every position, --full-logits does
that), no-grad stages under torch.inference_mode, gradients set to None, and on torch >= 2.0 the fused
scaled_dot_product_attention (causal kernel) and Adam's fused (>= 2.4) or foreach CPU update. By default
every episode is kept (--alpha 1.0, the same work as a plain PPO step). Prints one JSON object with the
median seconds per stage. Runs on Debian's /usr/bin/python3 (torch 1.13, CPU) or a newer torch (e.g. PyPI's
2.13 in a venv: PYTHON=... scripts/bench_ppo.sh).
Usage: ppo_eager.py --tokenizer DIR [--threads N] [--iters 5] [--warmup 1] [--layers 2] [--embd 128]
                    [--heads 4] [--batch 16] [--mini-batch 8] [--prompt 16] [--new 16] [--alpha 1.0]
                    [--full-logits] [--profile PREFIX]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_eager import Gpt2, StaticCache  # noqa: E402  (the same GPT-2 block as the generation baseline)

V, EOS = 50257, 50256
TARGET = b" the"
# Paper hyperparameters (configs/imdb.json), as in the C++ bench.
EPOCHS, LR, INIT_KL, KL_TARGET, KL_HORIZON = 4, 1.41e-5, 0.2, 6.0, 10000.0
GAMMA, LAM, CLIP, CLIP_V, VF_COEF, RATIO_THRESHOLD = 1.0, 0.95, 0.2, 0.2, 0.1, 10.0
M_TOTAL, RISK_N, RISK_RHO = 100, 0, 0.01  # keep ceil(alpha*B) from iteration 1 on, like the C++ bench


def bytes_to_unicode():
    """GPT-2's byte <-> printable-character table (byte-level BPE)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


def load_decoder(tok_dir):
    path = os.path.join(tok_dir, "vocab.json")
    with open(path, encoding="utf-8") as f:
        vocab = json.load(f)
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    return {i: bytes(byte_of[c] for c in tok) for tok, i in vocab.items()}


def ceil_tol(x):
    return math.ceil(x - 1e-9 * max(1.0, abs(x)))


def keep_count(m, B, alpha):
    """Soft-risk schedule, paper Eq. 8-10 (rl/soft_risk.cpp)."""
    if m <= RISK_N:
        return B
    k_min = min(B, ceil_tol(alpha * B))
    end = ceil_tol(RISK_RHO * M_TOTAL)
    if m >= end:
        return k_min
    frac = 1.0 - (1.0 - alpha) * (m - RISK_N) / (end - RISK_N)
    return min(B, max(k_min, ceil_tol(B * max(alpha, frac))))


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def masked_whiten(x, mask):
    mean = masked_mean(x, mask)
    var = ((x - mean) ** 2 * mask).sum() / (mask.sum() - 1)
    return (x - mean) * torch.rsqrt(var + 1e-8)


def add_workload_args(ap, iters):
    """The arguments every PPO-iteration bench takes (this one and bench/ppo_trl.py), defaults as the C++ bench."""
    ap.add_argument("--tokenizer", required=True, help="directory with GPT-2's vocab.json + merges.txt")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iters", type=int, default=iters)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embd", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--mini-batch", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=16)


def make_adam(params):
    """The fastest CPU Adam this torch has: fused (>= 2.4), else foreach (>= 1.12's multi-tensor), else plain."""
    for kind in ("fused", "foreach"):
        try:
            return torch.optim.Adam(params, lr=LR, **{kind: True}), kind
        except (TypeError, RuntimeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=LR), "for-loop"


class Bench:
    def __init__(self, a, decoder):
        self.a = a
        self.decoder = decoder
        torch.manual_seed(0)
        self.policy = Gpt2(n_layer=a.layers, n_head=a.heads, n_embd=a.embd, vocab=V)
        self.vhead = torch.nn.Linear(a.embd, 1)
        self.ref = Gpt2(n_layer=a.layers, n_head=a.heads, n_embd=a.embd, vocab=V)
        self.ref.load_state_dict(self.policy.state_dict())
        for p in self.ref.parameters():
            p.requires_grad_(False)
        self.opt, self.adam_impl = make_adam(list(self.policy.parameters()) + list(self.vhead.parameters()))
        self.prompts = torch.randint(0, V - 1, (a.batch * 4, a.prompt))
        self.gen = torch.Generator().manual_seed(1)
        self.beta = INIT_KL

    def generate(self, query):
        m, a = self.policy, self.a
        cache = StaticCache(a.layers, query.shape[0], a.heads, a.prompt + a.new, a.embd // a.heads)
        hidden, cache = m(query, None, cache)
        out = []
        for t in range(a.new):
            logits = m.logits(hidden[:, -1])
            logits[:, EOS] = -float("inf")  # min_new_tokens = new: EOS suppressed
            tok = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.gen)
            out.append(tok)
            if t + 1 < a.new:
                hidden, cache = m(tok, None, cache)
        return torch.cat(out, 1)

    def logprobs(self, model, ids, with_values):
        """Log-prob of each response token [n, R], its logits [n, R, V] and values [n, R] (or None)."""
        P = self.a.prompt
        hidden, _ = model(ids)
        if self.a.full_logits:  # TRL's batched_forward_pass: logits and log_softmax at every position
            logits = model.logits(hidden[:, :-1])
            lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)[:, P - 1:]
            values = self.vhead(hidden).squeeze(-1)[:, P - 1:-1] if with_values else None
            return lp, logits[:, P - 1:], values
        h = hidden[:, P - 1:-1]
        logits = model.logits(h)
        lp = torch.log_softmax(logits, -1).gather(-1, ids[:, P:, None]).squeeze(-1)
        return lp, logits, self.vhead(h).squeeze(-1) if with_values else None

    def step(self, m):
        a, t = self.a, {}
        B, mbs = a.batch, a.mini_batch
        t_start = time.perf_counter()
        # 1. Rollout.
        t0 = time.perf_counter()
        idx = [(m * B + j) % self.prompts.shape[0] for j in range(B)]
        query = self.prompts[idx]
        with torch.inference_mode():
            response = self.generate(query)
        t["rollout"] = time.perf_counter() - t0
        # 2. Score: decode, count the target.
        t0 = time.perf_counter()
        texts = [b"".join(self.decoder[i] for i in row) for row in response.tolist()]
        scores = torch.tensor([float(s.count(TARGET)) for s in texts])
        t["score"] = time.perf_counter() - t0
        # 3. Policy / reference logprobs and values.
        t0 = time.perf_counter()
        ids = torch.cat([query, response], 1)
        lps, vals, refs = [], [], []
        with torch.inference_mode():
            for s in range(0, B, mbs):
                lp, _, v = self.logprobs(self.policy, ids[s:s + mbs], True)
                lps.append(lp)
                vals.append(v)
                refs.append(self.logprobs(self.ref, ids[s:s + mbs], False)[0])
        old_lp, old_v, ref_lp = torch.cat(lps), torch.cat(vals), torch.cat(refs)
        mask = torch.ones_like(old_lp)  # fixed-length responses
        t["forward"] = time.perf_counter() - t0
        # 4-6. Rewards, GAE, soft-risk selection, whitening.
        t0 = time.perf_counter()
        kl = old_lp - ref_lp
        rewards = -self.beta * kl * mask
        rewards[:, -1] += scores
        values, rewards = old_v * mask, rewards * mask
        R = rewards.shape[1]
        last, adv_rev = 0.0, []
        for i in reversed(range(R)):
            nxt = values[:, i + 1] if i < R - 1 else 0.0
            delta = rewards[:, i] + GAMMA * nxt - values[:, i]
            last = delta + GAMMA * LAM * last
            adv_rev.append(last)
        adv = torch.stack(adv_rev[::-1], 1)
        returns = adv + values
        ep_ret = returns[:, 0]
        k = keep_count(m, B, a.alpha)
        thr = torch.sort(ep_ret).values[k - 1]
        keep = ep_ret <= thr
        train_mask = mask * keep[:, None].float()
        adv = masked_whiten(adv, train_mask)
        t["advantage"] = time.perf_counter() - t0
        # 7. PPO epochs x minibatches.
        t0 = time.perf_counter()
        has_tok = train_mask.sum(1) > 0
        stats = []
        for _ in range(EPOCHS):
            perm = torch.randperm(B)
            for s in range(0, B, mbs):
                rows = perm[s:s + mbs]
                rows = rows[has_tok[rows]]
                if rows.numel() == 0:
                    continue
                lp, logits, v = self.logprobs(self.policy, ids[rows], True)
                with torch.no_grad():
                    ld = logits.detach()
                    ent = torch.logsumexp(ld, -1) - (torch.softmax(ld, -1) * ld).sum(-1)
                mk, olp, ov = train_mask[rows], old_lp[rows], old_v[rows]
                A, G = adv[rows], returns[rows]
                v_clip = torch.max(torch.min(v, ov + CLIP_V), ov - CLIP_V)
                vf1, vf2 = (v - G) ** 2, (v_clip - G) ** 2
                vf_loss = 0.5 * masked_mean(torch.max(vf1, vf2), mk)
                ratio = torch.exp(lp - olp)
                pg1, pg2 = -A * ratio, -A * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)
                pg_loss = masked_mean(torch.max(pg1, pg2), mk)
                loss = pg_loss + VF_COEF * vf_loss
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                st = {"pg": pg_loss.item(), "vf": vf_loss.item(),
                      "clipfrac": masked_mean((pg2 > pg1).float(), mk).item(),
                      "vf_clipfrac": masked_mean((vf2 > vf1).float(), mk).item(),
                      "approxkl": 0.5 * masked_mean((lp.detach() - olp) ** 2, mk).item(),
                      "entropy": masked_mean(ent, mk).item(), "ratio": masked_mean(ratio.detach(), mk).item()}
                if st["ratio"] > RATIO_THRESHOLD:
                    continue
                if not math.isfinite(loss.item()):
                    raise SystemExit(f"ppo_eager: iteration {m}: loss is NaN/inf")
                self.opt.step()
                stats.append(st)
        t["optimize"] = time.perf_counter() - t0
        # 8. Adaptive KL controller on the kept episodes' KL (paper Eq. 12); counted with advantage.
        t0 = time.perf_counter()
        kl_ep = (kl * mask).sum(1)
        kl_kept = (kl_ep * keep).sum() / keep.sum().clamp(min=1)
        e = min(max(kl_kept.item() / KL_TARGET - 1.0, -0.2), 0.2)
        self.beta *= 1.0 + e * B / KL_HORIZON
        t["advantage"] += time.perf_counter() - t0
        t["total"] = time.perf_counter() - t_start
        return t, int(keep.sum().item()), len(stats)

    def optimizer_update_seconds(self):
        """One Adam step over a copy of the policy's parameters (gradients set to None between steps, as
        in the loop, so no zero_grad pass); median of 5."""
        params = [p.detach().clone().requires_grad_(True)
                  for p in list(self.policy.parameters()) + list(self.vhead.parameters())]
        opt, _ = make_adam(params)

        def fill():
            for p in params:
                p.grad = torch.randn_like(p) * 1e-3
        fill()
        opt.step()
        secs = []
        for _ in range(5):
            fill()
            t0 = time.perf_counter()
            opt.step()
            secs.append(time.perf_counter() - t0)
        return statistics.median(secs)


def main():
    ap = argparse.ArgumentParser()
    add_workload_args(ap, iters=5)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--full-logits", action="store_true", help="TRL's logits over every position")
    ap.add_argument("--profile", default="", help="PREFIX: one more iteration under the autograd profiler, "
                    "chrome trace to PREFIX.trace.json")
    a = ap.parse_args()
    if a.iters < 1 or a.warmup < 0 or a.batch % a.mini_batch:
        ap.error("need --iters >= 1, --warmup >= 0 and --mini-batch dividing --batch")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    bench = Bench(a, load_decoder(a.tokenizer))
    samples, keep, updates = {}, a.batch, 0
    for m in range(a.warmup + a.iters):
        t, keep, updates = bench.step(m)
        if m >= a.warmup:
            for k, v in t.items():
                samples.setdefault(k, []).append(v)
    res = {}
    if a.profile:
        path = a.profile + ".trace.json"
        with torch.autograd.profiler.profile() as prof:
            t, _, _ = bench.step(a.warmup + a.iters)
        prof.export_chrome_trace(path)
        res["profile"] = {"trace": path, "stages_s": t}
    print(json.dumps({**res, "impl": "eager PyTorch (Python)", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "iters": a.iters, "warmup": a.warmup, "n_layer": a.layers, "n_embd": a.embd,
                      "n_head": a.heads, "vocab": V, "batch": a.batch, "mini_batch": a.mini_batch,
                      "prompt": a.prompt, "new_tokens": a.new, "ppo_epochs": EPOCHS, "alpha": a.alpha,
                      "full_logits": a.full_logits, "keep": keep, "adam": bench.adam_impl,
                      "sdpa": hasattr(torch.nn.functional, "scaled_dot_product_attention"),
                      "updates": updates, "optimizer_update_s": bench.optimizer_update_seconds(),
                      "median_s": {k: statistics.median(v) for k, v in samples.items()},
                      "samples_s": samples}))


if __name__ == "__main__":
    main()
