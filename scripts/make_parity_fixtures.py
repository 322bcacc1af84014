#!/usr/bin/env python3
"""Parity fixtures: tiny random Hugging Face models + inputs + the logits (and greedy generations)
that transformers computes for them, for rarlhf's C++ parity tests (tests/model/*parity*).

Needs torch, transformers and safetensors (any machine; runs on CPU, float32, no TF32, fixed seeds).
Writes, under --out (default: tests/fixtures/parity next to this script's repo):
  gpt2_tiny/model/      GPT2LMHeadModel (2 layers, n_embd 32, 4 heads, vocab 1000) via save_pretrained
  gpt2_tiny/expected.safetensors
      single_{0,1}.input_ids [T] I64, single_{0,1}.logits [T, V] F32   (unpadded forward)
      batch.input_ids / batch.attention_mask [B, P] I64 (LEFT-padded with eos), batch.position_ids [B, P]
      batch.logits [B, P, V] F32 (rows at padded positions are not meaningful)
      greedy.output_ids [B, N] I64: generate(batch, do_sample=False, max_new_tokens=N, min_new_tokens=N)
  {distilbert,bert,roberta}_tiny/model/   *ForSequenceClassification (+ tiny vocab files)
  {distilbert,bert,roberta}_tiny/expected.safetensors
      input_ids / attention_mask [B, T] I64 (RIGHT-padded) [, token_type_ids], logits [B, num_labels] F32
  versions.json           torch / transformers versions and the settings used
Prints every file written. Total well under 2 MB.
"""
import argparse
import json
import os
import sys

import torch

try:
    import transformers
    from safetensors.torch import save_file
except ImportError as e:  # pragma: no cover
    sys.exit(f"make_parity_fixtures: {e}; pip install transformers safetensors")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GREEDY_NEW = 10
MIN_MARGIN = 1e-3  # greedy steps whose top-2 logit gap is smaller would be flaky across float orders


def save_model(model, d):
    os.makedirs(d, exist_ok=True)
    try:
        model.save_pretrained(d, safe_serialization=True)
    except TypeError:  # newer transformers: safetensors is the only format
        model.save_pretrained(d)
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        sys.exit(f"make_parity_fixtures: {d}: save_pretrained wrote no model.safetensors")


def eager(cls, config):
    try:
        return cls(config, attn_implementation="eager")
    except TypeError:
        return cls(config)


def gpt2_tiny(out, seed):
    cfg = transformers.GPT2Config(
        vocab_size=1000, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=999, eos_token_id=999,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        initializer_range=0.1)  # wider than GPT-2's 0.02 so greedy argmax gaps are well above float noise
    for attempt in range(20):
        torch.manual_seed(seed + attempt)
        model = eager(transformers.GPT2LMHeadModel, cfg).eval()
        with torch.no_grad():  # non-trivial LayerNorm/bias values so every parameter matters
            for name, p in model.named_parameters():
                if "ln_" in name or name.endswith(".bias"):
                    p.add_(torch.randn_like(p) * 0.1)
        g = torch.Generator().manual_seed(seed + attempt)
        single = [torch.randint(0, 999, (n,), generator=g) for n in (7, 12)]
        lens = [12, 5, 9]
        P = max(lens)
        ids = torch.full((len(lens), P), 999, dtype=torch.long)
        mask = torch.zeros((len(lens), P), dtype=torch.long)
        for b, n in enumerate(lens):
            ids[b, P - n:] = torch.randint(0, 999, (n,), generator=g)
            mask[b, P - n:] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            tensors = {}
            for i, s in enumerate(single):
                tensors[f"single_{i}.input_ids"] = s
                tensors[f"single_{i}.logits"] = model(s.unsqueeze(0)).logits[0].float().contiguous()
            tensors["batch.input_ids"] = ids
            tensors["batch.attention_mask"] = mask
            tensors["batch.position_ids"] = pos
            tensors["batch.logits"] = model(ids, attention_mask=mask, position_ids=pos).logits.float().contiguous()
            gen = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=GREEDY_NEW,
                                 min_new_tokens=GREEDY_NEW, pad_token_id=999, eos_token_id=999,
                                 output_scores=True, return_dict_in_generate=True)
        margins = [s.topk(2, dim=-1).values for s in gen.scores]
        margin = min(float((m[:, 0] - m[:, 1]).min()) for m in margins)
        if margin >= MIN_MARGIN:
            break
        print(f"gpt2_tiny: seed {seed + attempt}: greedy top-2 margin {margin:.2e} too small, retrying")
    else:
        sys.exit("make_parity_fixtures: no seed gave a safe greedy margin")
    tensors["greedy.output_ids"] = gen.sequences[:, P:].contiguous()
    d = os.path.join(out, "gpt2_tiny")
    save_model(model, os.path.join(d, "model"))
    save_file(tensors, os.path.join(d, "expected.safetensors"), metadata={"format": "pt"})
    print(f"gpt2_tiny: seed {seed + attempt}, greedy min top-2 margin {margin:.3e}")
    return d


def bert_vocab(d, n):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        for t in specials + [f"w{i}" for i in range(len(specials), n)]:
            f.write(t + "\n")


def roberta_vocab(d):
    # Byte-level BPE alphabet (GPT-2's bytes_to_unicode) after the 5 specials; no merges.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    k = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for c in sorted(cs):
        vocab[chr(c)] = len(vocab)
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")


def classifier(out, name, seed):
    V, L = 1000, 64
    common = dict(vocab_size=V, max_position_embeddings=L)
    if name == "distilbert":
        cfg = transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, num_labels=2, dropout=0.0,
                                            attention_dropout=0.0, seq_classif_dropout=0.0, pad_token_id=0, **common)
        cls, cls_id, sep_id, pad_id = transformers.DistilBertForSequenceClassification, 2, 3, 0
    elif name == "bert":
        cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                      type_vocab_size=2, num_labels=6, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0, pad_token_id=0, **common)
        cls, cls_id, sep_id, pad_id = transformers.BertForSequenceClassification, 2, 3, 0
    else:
        common["max_position_embeddings"] = L + 2  # RoBERTa positions start after padding_idx
        cfg = transformers.RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=64, type_vocab_size=1, num_labels=2,
                                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=1,
                                         bos_token_id=0, eos_token_id=2, **common)
        cls, cls_id, sep_id, pad_id = transformers.RobertaForSequenceClassification, 0, 2, 1
    torch.manual_seed(seed)
    model = eager(cls, cfg).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "LayerNorm" in pname or "layer_norm" in pname or pname.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)
    g = torch.Generator().manual_seed(seed)
    lens = [16, 6, 11]
    T = max(lens)
    ids = torch.full((len(lens), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(lens), T), dtype=torch.long)
    for b, n in enumerate(lens):  # [CLS] body [SEP], right-padded as tokenizers do
        ids[b, :n] = torch.randint(5, V, (n,), generator=g)
        ids[b, 0], ids[b, n - 1] = cls_id, sep_id
        mask[b, :n] = 1
    kw = dict(input_ids=ids, attention_mask=mask)
    tensors = {"input_ids": ids, "attention_mask": mask}
    if name == "bert":
        tt = torch.zeros_like(ids)
        for b, n in enumerate(lens):  # a second segment in the back half, as for sentence pairs
            tt[b, n // 2:n] = 1
        kw["token_type_ids"] = tt
        tensors["token_type_ids"] = tt
    with torch.no_grad():
        tensors["logits"] = model(**kw).logits.float().contiguous()
    d = os.path.join(out, f"{name}_tiny")
    save_model(model, os.path.join(d, "model"))
    if name == "roberta":
        roberta_vocab(os.path.join(d, "model"))
    else:
        bert_vocab(os.path.join(d, "model"), V)
    save_file(tensors, os.path.join(d, "expected.safetensors"), metadata={"format": "pt"})
    print(f"{name}_tiny: num_labels {cfg.num_labels}, logits {list(tensors['logits'].shape)}")
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "parity"))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)
    dirs = [gpt2_tiny(args.out, args.seed)]
    for i, name in enumerate(["distilbert", "bert", "roberta"]):
        dirs.append(classifier(args.out, name, args.seed + 100 * (i + 1)))
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "device": "cpu",
                "dtype": "float32", "seed": args.seed, "greedy_new_tokens": GREEDY_NEW}
    with open(os.path.join(args.out, "versions.json"), "w") as f:
        json.dump(versions, f, indent=2)
    total = 0
    for root, _, files in sorted(os.walk(args.out)):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
            print(f"wrote {os.path.relpath(p, REPO)} ({os.path.getsize(p)} bytes)")
    print(f"total {total} bytes")
    if total > 2 * 1024 * 1024:
        sys.exit("make_parity_fixtures: fixtures exceed 2 MB")


if __name__ == "__main__":
    main()
