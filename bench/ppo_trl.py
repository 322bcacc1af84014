#!/usr/bin/env python3
"""The library a user would run instead, as the peer of bench/ppo_iteration_bench.cpp: one PPO iteration of
TRL's legacy PPOTrainer (PyPI trl 0.11.4, the last release with the PPOTrainer.step(queries, responses,
scores) API that the RA-RLHF reference code and TRL v0.7 use; pinned with transformers 4.46.3, its
contemporary) on the same random-init GPT-2 shape with TRL's value head, the same batch, lengths and paper
hyperparameters (configs/imdb.json), dropout off on both sides, timed by stage:
  rollout   PPOTrainer.generate (transformers' generate: sampling, top_k 0 / top_p 1, min_new_tokens =
            max_new_tokens = new: fixed length), the whole batch at once
  score     decode the responses (GPT-2 byte-level BPE) and count " the" (the C++ bench's reward)
  forward   step()'s batched forward passes (policy logprobs + values, reference logprobs)
  advantage step()'s per-token rewards, GAE, statistics and KL controller (total - forward - optimize)
  optimize  step()'s ppo_epochs x minibatches (loss, backward, Adam)
Why the legacy API: the paper's code is TRL v0.7's PPOTrainer.step, and it takes responses and scores from
the caller, so rollout and scoring are timed the same way on both sides; trl >= 0.12's PPOTrainer (now
trl.experimental.ppo) is a whole-loop Trainer with no step to time. Not part of CI: needs a venv,
  python3 -m venv .venv-trl && .venv-trl/bin/pip install torch==2.13.0 trl==0.11.4 transformers==4.46.3 rich
scripts/bench_ppo.sh runs it beside the C++ bench (TRL_PYTHON=.venv-trl/bin/python). Prints one JSON object.
Usage: ppo_trl.py --tokenizer DIR [--threads N] [--iters 3] [--warmup 1] [--layers 2] [--embd 128] [--heads 4]
                  [--batch 16] [--mini-batch 8] [--prompt 16] [--new 16]
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ppo_eager import add_workload_args  # noqa: E402  (the same arguments as the eager twin)

V, EOS = 50257, 50256
TARGET = " the"


def main():
    ap = argparse.ArgumentParser()
    add_workload_args(ap, iters=3)
    a = ap.parse_args()
    if a.iters < 1 or a.warmup < 0 or a.batch % a.mini_batch:
        ap.error("need --iters >= 1, --warmup >= 0 and --mini-batch dividing --batch")
    for f in ("vocab.json", "merges.txt"):
        if not os.path.isfile(os.path.join(a.tokenizer, f)):
            ap.error(f"--tokenizer {a.tokenizer}: no {f}")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    warnings.filterwarnings("ignore")
    import transformers
    import trl
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
    from trl import AutoModelForCausalLMWithValueHead, PPOConfig, PPOTrainer, create_reference_model

    tok = GPT2TokenizerFast(vocab_file=os.path.join(a.tokenizer, "vocab.json"),
                            merges_file=os.path.join(a.tokenizer, "merges.txt"))
    tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    # Dropout off (model and value head): the C++ bench trains without it (rarlhf's ppo.dropout=false).
    cfg = GPT2Config(vocab_size=V, n_layer=a.layers, n_embd=a.embd, n_head=a.heads, bos_token_id=EOS,
                     eos_token_id=EOS, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    policy = AutoModelForCausalLMWithValueHead.from_pretrained(GPT2LMHeadModel(cfg), summary_dropout_prob=0.0)
    ref = create_reference_model(policy)  # a frozen copy, as TRL's examples make it
    config = PPOConfig(batch_size=a.batch, mini_batch_size=a.mini_batch, ppo_epochs=4, learning_rate=1.41e-5,
                       init_kl_coef=0.2, adap_kl_ctrl=True, target=6.0, horizon=10000.0, gamma=1.0, lam=0.95,
                       cliprange=0.2, cliprange_value=0.2, vf_coef=0.1, ratio_threshold=10.0, seed=0)
    trainer = PPOTrainer(config, policy, ref, tok)
    prompts = torch.randint(0, V - 1, (a.batch * 4, a.prompt))
    gen_kwargs = {"min_new_tokens": a.new, "max_new_tokens": a.new, "top_k": 0, "top_p": 1.0, "do_sample": True,
                  "pad_token_id": EOS}
    samples = {}
    for m in range(a.warmup + a.iters):
        t = {}
        t_start = time.perf_counter()
        queries = [prompts[(m * a.batch + j) % prompts.shape[0]] for j in range(a.batch)]
        t0 = time.perf_counter()
        responses = trainer.generate(queries, batch_size=a.batch, return_prompt=False, **gen_kwargs)
        t["rollout"] = time.perf_counter() - t0
        if any(r.shape[0] != a.new for r in responses):
            raise SystemExit(f"ppo_trl: iteration {m}: a response is not {a.new} tokens long")
        t0 = time.perf_counter()
        texts = tok.batch_decode(responses)
        scores = [torch.tensor(float(s.count(TARGET))) for s in texts]
        t["score"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats = trainer.step(queries, responses, scores)
        step_s = time.perf_counter() - t0
        t["forward"] = float(stats["time/ppo/forward_pass"])
        t["optimize"] = float(stats["time/ppo/optimize_step"])
        t["advantage"] = step_s - t["forward"] - t["optimize"]
        t["total"] = time.perf_counter() - t_start
        if m >= a.warmup:
            for k, v in t.items():
                samples.setdefault(k, []).append(v)
    print(json.dumps({"impl": f"TRL {trl.__version__} PPOTrainer.step (transformers {transformers.__version__})",
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "iters": a.iters,
                      "warmup": a.warmup, "n_layer": a.layers, "n_embd": a.embd, "n_head": a.heads, "vocab": V,
                      "batch": a.batch, "mini_batch": a.mini_batch, "prompt": a.prompt, "new_tokens": a.new,
                      "ppo_epochs": 4, "alpha": 1.0, "keep": a.batch, "attn": cfg._attn_implementation,
                      "median_s": {k: statistics.median(v) for k, v in samples.items()}, "samples_s": samples}))


if __name__ == "__main__":
    main()
