#!/usr/bin/env python3
"""transformers' generate on a random-weight model built from a config.json: B prompts of P random
tokens, N new tokens sampled with the paper's settings (top_k 0, top_p 1, min_new_tokens = N), KV cache,
float32, torch.inference_mode, the given thread count. One JSON line per repeat: {"tokens_per_s": ...}.
The peer of bench/family_generate_bench.cpp (scripts/bench_families.sh runs both, alternating).
Needs torch + transformers (e.g. the .venv-ref of scripts/make_parity_fixtures.py)."""
import argparse
import json
import time

import torch
import transformers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa is transformers' default)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = transformers.AutoConfig.from_pretrained(a.config)
    cfg._attn_implementation = a.attn
    model = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.prompt))
    mask = torch.ones_like(ids)
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else 0
    kw = dict(attention_mask=mask, do_sample=True, top_k=0, top_p=1.0, max_new_tokens=a.new, min_new_tokens=a.new,
              pad_token_id=eos, eos_token_id=eos)
    with torch.inference_mode():
        model.generate(ids, **kw)  # warm-up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            out = model.generate(ids, **kw)
            s = time.perf_counter() - t0
            assert out.shape[1] == a.prompt + a.new
            print(json.dumps({"tokens_per_s": a.batch * a.new / s, "seconds": s, "threads": a.threads}), flush=True)


if __name__ == "__main__":
    main()
