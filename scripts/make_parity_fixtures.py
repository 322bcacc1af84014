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
  versions.json           torch / transformers versions and the settings used (top-level keys: the four
                          fixtures above; "fixtures": {name: {class, seed, torch, transformers, config_keys,
                          shapes, greedy pad/eos ids, ...}} for every fixture below)

Decoder families (issue #13), all vocab 128, 2 layers, max positions 64, initializer_range 0.1, norm weights and
every bias perturbed by 0.1*randn, float32, eager attention, no dropout; same layout as gpt2_tiny (batch LEFT-padded
with the pad id below; content tokens never use a special id; greedy eos is suppressed by min_new_tokens=N, as in
gpt2_tiny; pad/eos ids used by generate are also in the expected.safetensors metadata greedy.{pad,eos}_token_id):
  gptj_tiny           GPTJForCausalLM  hidden 32, 4 heads (head_dim 8), rotary_dim 4, n_inner null (=128), gelu_new,
                      untied lm_head with bias; pad/eos 127
  gptj_fullrot        same, rotary_dim 8 = head_dim (rotary_dim null does not run in transformers 5.24 when
                      head_dim < hidden: its sin/cos table is hidden_size wide)
  neox_parallel       GPTNeoXForCausalLM hidden 32, 4 heads, intermediate 64, gelu, use_parallel_residual true,
                      partial_rotary_factor (rotary_pct) 0.5, theta 10000, untied embed_out; pad 1, eos 0
  neox_sequential     same, use_parallel_residual false, partial_rotary_factor 0.25, theta 5000
  llama_gqa           LlamaForCausalLM hidden 32, 4 heads / 2 KV heads, intermediate 64, untied, theta 1e4,
                      rms_norm_eps 1e-5; pad 0, bos 1, eos 2. Also batch.logits_bf16 [B,P,V] F32: the same batch
                      through the model cast to bfloat16 (versions.json: bf16_max_abs_diff_vs_fp32)
  llama_tied_headdim  4 KV heads (MHA), head_dim 16 (!= 32/4), tied, attention_bias + mlp_bias true
  llama_rope_llama3   GQA 2, theta 5e5, rope_type llama3 factor 8, low/high_freq_factor 1/4,
                      original_max_position_embeddings 32 (the 4 frequency bands of head_dim 8 then fall in all
                      three llama3 branches: kept / smoothed / divided)
  llama_rope_linear   GQA 2, rope_type linear factor 2
  mistral_tiny        MistralForCausalLM GQA 2, sliding_window null
  qwen2_tiny          Qwen2ForCausalLM (q/k/v bias, no o bias) GQA 2, tied, theta 1e6, use_sliding_window false;
                      pad 125, bos 126, eos 127
  smollm2_like        LlamaForCausalLM hidden 36, 9 heads / 3 KV heads (head_dim 4), tied, theta 1e5
  <name>/config_v4.json  the same config as transformers 4.x and most Hub checkpoints spell it (rope_theta and
                      rope_scaling at top level for the Llama family; rotary_pct + rotary_emb_base for GPT-NeoX;
                      torch_dtype); checked here to load in transformers 5 to bit-identical logits. (Not for GPT-J.)

Decoder sequence classifiers (reward models; num_labels 2, pad_token_id set, lengths 16/6/11):
  llama_cls (LlamaForSequenceClassification, GQA 2, pad 0), gpt2_cls (GPT2ForSequenceClassification, n_inner 64,
  pad = eos = 127, as GPT-2 reward models do), neox_cls (GPTNeoXForSequenceClassification, pad 1)
  expected.safetensors: input_ids / attention_mask [B,T] I64 RIGHT-padded, logits [B,2] F32 (model(ids, mask));
      left.input_ids / left.attention_mask LEFT-padded (same rows), left.logits = model(ids, mask) i.e. with
      transformers' default position_ids 0..T-1 counted over the pads too (equal to logits for RoPE models up to
      float noise, since RoPE is shift-invariant; different for GPT-2's learned positions),
      left.position_ids = cumsum(mask)-1 (clamped at 0) and left.logits_pos = model(ids, mask, position_ids=that),
      which equals logits.
  Pooling rule (transformers 5.24, modeling_layers.GenericForSequenceClassification used by Llama/Mistral/Qwen2,
  and the copies in GPT2/GPTNeoXForSequenceClassification): score head on every position, then for each row take
  the RIGHTMOST position whose input id != config.pad_token_id:
      last = argmax_t(t * (input_ids[b,t] != pad_token_id))   (0 if the row is all pad; -1 if pad_token_id is None,
                                                               which is only allowed for batch size 1)
  The attention mask is NOT used. So left padding picks T-1 and right padding picks len-1; a row whose real text
  ends in the pad id (e.g. GPT-2 with pad = eos and a trailing eos) is scored at the last token that is not pad.
  The fixtures' content never contains the pad id; the script asserts the rule reproduces the logits.

Config keys transformers 5.24 writes (model/config.json, sorted; also in versions.json "config_keys"):
  gptj (gptj_tiny):
    activation_function architectures attn_pdrop bos_token_id dtype embd_pdrop eos_token_id initializer_range
    layer_norm_epsilon model_type n_embd n_head n_inner n_layer n_positions pad_token_id resid_pdrop
    rotary_dim tie_word_embeddings transformers_version use_cache vocab_size
    => no RoPE theta key (GPT-J's base is fixed at 10000), no rope_parameters
  gpt_neox (neox_parallel):
    architectures attention_bias attention_dropout bos_token_id classifier_dropout dtype eos_token_id
    hidden_act hidden_dropout hidden_size initializer_range intermediate_size is_decoder layer_norm_eps
    max_position_embeddings model_type num_attention_heads num_hidden_layers pad_token_id rope_parameters
    tie_word_embeddings transformers_version use_cache use_parallel_residual vocab_size
    => rope_parameters {"partial_rotary_factor": 0.5, "rope_theta": 10000.0, "rope_type": "default"};
       rotary_pct / rotary_emb_base are not written
  llama (llama_gqa):
    architectures attention_bias attention_dropout bos_token_id dtype eos_token_id head_dim hidden_act
    hidden_size initializer_range intermediate_size max_position_embeddings mlp_bias model_type
    num_attention_heads num_hidden_layers num_key_value_heads pad_token_id pretraining_tp rms_norm_eps
    rope_parameters tie_word_embeddings transformers_version use_cache vocab_size
    => rope_parameters {"rope_theta": 10000.0, "rope_type": "default"}; llama3: {"factor": 8.0,
       "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 32, "rope_theta":
       500000.0, "rope_type": "llama3"}; linear: {"factor": 2.0, "rope_theta": 10000.0, "rope_type":
       "linear"}; head_dim always written; no top-level rope_theta / rope_scaling
  mistral (mistral_tiny):
    architectures attention_dropout bos_token_id dtype eos_token_id head_dim hidden_act hidden_size
    initializer_range intermediate_size max_position_embeddings model_type num_attention_heads
    num_hidden_layers num_key_value_heads pad_token_id rms_norm_eps rope_parameters sliding_window
    tie_word_embeddings transformers_version use_cache vocab_size
    => sliding_window null here; head_dim written
  qwen2 (qwen2_tiny):
    architectures attention_dropout bos_token_id dtype eos_token_id hidden_act hidden_size initializer_range
    intermediate_size layer_types max_position_embeddings max_window_layers model_type num_attention_heads
    num_hidden_layers num_key_value_heads pad_token_id rms_norm_eps rope_parameters sliding_window
    tie_word_embeddings transformers_version use_cache use_sliding_window vocab_size
    => no head_dim key (hidden/heads); layer_types all full_attention; max_window_layers 28
  gpt2 (cls) (gpt2_cls):
    activation_function add_cross_attention architectures attn_pdrop bos_token_id dtype embd_pdrop
    eos_token_id initializer_range layer_norm_epsilon model_type n_embd n_head n_inner n_layer n_positions
    pad_token_id reorder_and_upcast_attn resid_pdrop scale_attn_by_inverse_layer_idx scale_attn_weights
    summary_activation summary_first_dropout summary_proj_to_labels summary_type summary_use_proj
    tie_word_embeddings transformers_version use_cache vocab_size
  Tied models (tie_word_embeddings true) have no lm_head.weight in model.safetensors. Qwen2's q/k/v biases are
  implied by model_type (no key); Mistral/Qwen2 write no attention_bias / mlp_bias.
  dtype replaces torch_dtype. generation_config.json (bos/eos/pad ids) is written beside config.json.
  *ForSequenceClassification with num_labels 2 (the default) writes no num_labels / id2label: read the
  label count from score.weight's shape [num_labels, hidden].

Export round trip:  make_parity_fixtures.py --check-export DIR --against NAME
  loads DIR (config.json + model.safetensors, e.g. a policy/ directory rarlhf wrote; value_head.safetensors is
  ignored) with AutoModelForCausalLM, runs fixture NAME's single_* and batch inputs and its greedy generation, prints
  max |d logits| (over non-pad positions) and whether the greedy tokens match; exit 1 if d > 1e-4, a token differs,
  or transformers reports a missing / mismatched weight.
LoRA adapters (issue #14; needs peft too): a PEFT adapter with random NON-ZERO lora_A/lora_B (normal, std 0.2) on
an existing base fixture above, saved by PeftModel.save_pretrained (README.md dropped), its
base_model_name_or_path rewritten to the base fixture's model/ relative to the adapter directory:
  lora_gpt2    gpt2_tiny base, target_modules [c_attn, c_proj] (Conv1D: fan_in_fan_out true; c_proj matches both
               attn.c_proj and mlp.c_proj), r 4, lora_alpha 8
  lora_llama   llama_gqa base, target_modules "all-linear", r 4, lora_alpha 16, use_rslora (scaling 16/sqrt(4))
  lora_neox    neox_sequential base, [query_key_value, dense_h_to_4h], r 2, lora_alpha 4
  lora_gptj    gptj_tiny base, [q_proj, v_proj, out_proj, fc_in, fc_out], r 8, lora_alpha 16
  lora_qwen2   qwen2_tiny base (q/k/v bias), target_modules as one regex ".*\.(q_proj|v_proj)", r 4, lora_alpha 8
  <name>/adapter/             adapter_config.json + adapter_model.safetensors
  <name>/expected.safetensors the base fixture's single_* / batch.* inputs and, through the PeftModel (eval,
      float32): single_{0,1}.logits, batch.logits, greedy.output_ids (KV cache, N new tokens as above);
      versions.json records merged_vs_unmerged_max_abs_diff (merge_and_unload()'s plain model on the batch vs
      batch.logits: float rounding, ~1e-6), the bound a merged model is held to

LoRA round trip:  make_parity_fixtures.py --check-lora DIR --against NAME
  DIR: an adapter directory rarlhf wrote (train/sft policy/, or rarlhf export). Loads it with
  PeftModel.from_pretrained(base of NAME, DIR) and with AutoPeftModelForCausalLM.from_pretrained(DIR) (which finds
  the base through base_model_name_or_path), runs fixture NAME's inputs; exit 1 if |d logits| > 1e-4 or a greedy
  token differs.
--only NAME[,NAME]  regenerate just those fixtures (the others, and the top-level versions.json keys, are kept).
Prints every file written. Total kept under LIMIT_BYTES (3 MiB).
"""
import argparse
import copy
import json
import os
import shutil
import sys
import tempfile

import torch

try:
    import transformers
    from safetensors.torch import save_file
except ImportError as e:  # pragma: no cover
    sys.exit(f"make_parity_fixtures: {e}; pip install transformers safetensors")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GREEDY_NEW = 10
LIMIT_BYTES = 4 * 1024 * 1024  # all of tests/fixtures/parity
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


# ---------------------------------------------------------------------------------------------------------------
# Decoder-only families beyond GPT-2 (issue #13): GPT-J, GPT-NeoX, Llama / Mistral / Qwen2 / SmolLM2-like.

def with_eager(cfg):
    """transformers 5 models take no attn_implementation= argument (eager() above then silently falls back to
    sdpa); set it on the config instead, where it is a runtime-only field (not written to config.json)."""
    cfg._attn_implementation = "eager"
    return cfg


def perturb(model):
    """Non-trivial norm weights and biases (every norm is initialised to 1/0 and every bias to 0), so that a
    loader which drops one of them, or a bias/weight mix-up, changes the logits."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            low = name.lower()
            if "norm" in low or "ln_" in low or name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)


V_SMALL, P_SMALL = 128, 64  # vocab and max positions of every new fixture
LM_COMMON = dict(initializer_range=0.1)


def llama_kw(hidden=32, heads=4, kv=4, inter=64, **kw):
    d = dict(vocab_size=V_SMALL, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=heads,
             num_key_value_heads=kv, intermediate_size=inter, max_position_embeddings=P_SMALL,
             rms_norm_eps=1e-5, attention_dropout=0.0, bos_token_id=1, eos_token_id=2, pad_token_id=0,
             hidden_act="silu", **LM_COMMON)
    d.update(kw)
    return d


def rope(theta, rope_type="default", **kw):
    d = {"rope_type": rope_type, "rope_theta": float(theta)}
    d.update(kw)
    return d


# name -> (model class name, config class name, config kwargs, pad id used in the batch/generate, eos id for
# generate, lowest token id drawn for real tokens (ids below it are specials and never appear as content))
CAUSAL = {
    "gptj_tiny": ("GPTJForCausalLM", "GPTJConfig", dict(
        vocab_size=V_SMALL, n_positions=P_SMALL, n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_inner=None,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        tie_word_embeddings=False, bos_token_id=127, eos_token_id=127, pad_token_id=None, **LM_COMMON), 127, 127, 0),
    # rotary_dim null is not usable in transformers 5.24 for head_dim < hidden (GPTJRotaryEmbedding builds a
    # hidden_size-wide table, which does not broadcast against a head): full rotation is rotary_dim == head_dim.
    "gptj_fullrot": ("GPTJForCausalLM", "GPTJConfig", dict(
        vocab_size=V_SMALL, n_positions=P_SMALL, n_embd=32, n_layer=2, n_head=4, rotary_dim=8, n_inner=None,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        tie_word_embeddings=False, bos_token_id=127, eos_token_id=127, pad_token_id=None, **LM_COMMON), 127, 127, 0),
    "neox_parallel": ("GPTNeoXForCausalLM", "GPTNeoXConfig", dict(
        vocab_size=V_SMALL, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=P_SMALL, hidden_act="gelu", use_parallel_residual=True,
        rope_parameters=rope(10000, partial_rotary_factor=0.5), attention_dropout=0.0, hidden_dropout=0.0,
        classifier_dropout=0.0, layer_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
        pad_token_id=1, **LM_COMMON), 1, 0, 2),
    "neox_sequential": ("GPTNeoXForCausalLM", "GPTNeoXConfig", dict(
        vocab_size=V_SMALL, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=P_SMALL, hidden_act="gelu", use_parallel_residual=False,
        rope_parameters=rope(5000, partial_rotary_factor=0.25), attention_dropout=0.0, hidden_dropout=0.0,
        classifier_dropout=0.0, layer_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
        pad_token_id=1, **LM_COMMON), 1, 0, 2),
    "llama_gqa": ("LlamaForCausalLM", "LlamaConfig", llama_kw(
        kv=2, tie_word_embeddings=False, rope_parameters=rope(10000)), 0, 2, 3),
    "llama_tied_headdim": ("LlamaForCausalLM", "LlamaConfig", llama_kw(
        kv=4, head_dim=16, tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
        rope_parameters=rope(10000)), 0, 2, 3),
    # original_max_position_embeddings 32 (not 16): with head_dim 8 and theta 5e5 the wavelengths are
    # 2*pi*[1, 26.6, 707, 18803]; high_freq_wavelen = 32/4 = 8, low_freq_wavelen = 32/1 = 32, so the four bands
    # fall in all three llama3 branches (kept, smoothed, divided by factor). With 16 none stays unscaled.
    "llama_rope_llama3": ("LlamaForCausalLM", "LlamaConfig", llama_kw(
        kv=2, tie_word_embeddings=False, rope_parameters=rope(
            500000, "llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
            original_max_position_embeddings=32)), 0, 2, 3),
    "llama_rope_linear": ("LlamaForCausalLM", "LlamaConfig", llama_kw(
        kv=2, tie_word_embeddings=False, rope_parameters=rope(10000, "linear", factor=2.0)), 0, 2, 3),
    "mistral_tiny": ("MistralForCausalLM", "MistralConfig", llama_kw(
        kv=2, tie_word_embeddings=False, sliding_window=None, rope_parameters=rope(10000)), 0, 2, 3),
    "qwen2_tiny": ("Qwen2ForCausalLM", "Qwen2Config", llama_kw(
        kv=2, tie_word_embeddings=True, use_sliding_window=False, rope_parameters=rope(1000000),
        bos_token_id=126, eos_token_id=127, pad_token_id=125), 125, 127, 0),
    # SmolLM2-135M in miniature: 9 heads / 3 KV heads (head_dim 4 here, 64 there), tied, theta 1e5.
    "smollm2_like": ("LlamaForCausalLM", "LlamaConfig", llama_kw(
        hidden=36, heads=9, kv=3, tie_word_embeddings=True, rope_parameters=rope(100000)), 0, 2, 3),
}
BF16 = {"llama_gqa"}  # also batch.logits_bf16: the same batch through the model cast to bfloat16

# name -> (model class, config class, config kwargs, pad id, lowest content token id)
DECODER_CLS = {
    "llama_cls": ("LlamaForSequenceClassification", "LlamaConfig", llama_kw(
        kv=2, tie_word_embeddings=False, rope_parameters=rope(10000), num_labels=2), 0, 3),
    "gpt2_cls": ("GPT2ForSequenceClassification", "GPT2Config", dict(
        vocab_size=V_SMALL, n_positions=P_SMALL, n_embd=32, n_layer=2, n_head=4, n_inner=64, bos_token_id=127,
        eos_token_id=127, pad_token_id=127, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        summary_first_dropout=0.0, num_labels=2, **LM_COMMON), 127, 0),
    "neox_cls": ("GPTNeoXForSequenceClassification", "GPTNeoXConfig", dict(
        vocab_size=V_SMALL, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=P_SMALL, hidden_act="gelu", use_parallel_residual=True,
        rope_parameters=rope(10000, partial_rotary_factor=0.25), attention_dropout=0.0, hidden_dropout=0.0,
        classifier_dropout=0.0, layer_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
        pad_token_id=1, num_labels=2, **LM_COMMON), 1, 2),
}


def make_config(cfg_cls, kw):
    return with_eager(getattr(transformers, cfg_cls)(**copy.deepcopy(kw)))


def greedy_margin(gen):
    margins = [s.topk(2, dim=-1).values for s in gen.scores]
    return min(float((m[:, 0] - m[:, 1]).min()) for m in margins)


def legacy_config(cfg):
    """config.json as transformers 4.x (and most checkpoints on the Hub) spell it: rope_theta / rope_scaling at
    the top level (Llama family), rotary_pct / rotary_emb_base (GPT-NeoX). None for families without RoPE keys."""
    cfg = copy.deepcopy(cfg)
    rp = cfg.pop("rope_parameters", None)
    if rp is None:
        return None
    rp = dict(rp)
    cfg.pop("transformers_version", None)
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    if cfg["model_type"] == "gpt_neox":
        cfg["rotary_emb_base"] = rp.pop("rope_theta")
        cfg["rotary_pct"] = rp.pop("partial_rotary_factor", 1.0)
        cfg["rope_scaling"] = None
    else:
        cfg["rope_theta"] = rp.pop("rope_theta")
        cfg["rope_scaling"] = None if rp.get("rope_type", "default") == "default" else rp
    return cfg


def check_legacy(model_dir, legacy, cls_name, forward):
    """The 4.x-style config.json must load (in transformers 5) to a model giving bit-identical outputs."""
    with tempfile.TemporaryDirectory() as td:
        for fn in os.listdir(model_dir):
            if fn != "config.json":
                shutil.copy(os.path.join(model_dir, fn), td)
        with open(os.path.join(td, "config.json"), "w") as f:
            json.dump(legacy, f, indent=2)
        m = getattr(transformers, cls_name).from_pretrained(td, attn_implementation="eager",
                                                            dtype=torch.float32).eval()
        return forward(m)


def record(name, d, cls_name, seed, extra):
    with open(os.path.join(d, "model", "config.json")) as f:
        cfg = json.load(f)
    entry = {"class": cls_name, "model_type": cfg["model_type"], "seed": seed,
             "torch": torch.__version__, "transformers": transformers.__version__,
             "config_keys": sorted(cfg)}
    entry.update(extra)
    legacy = legacy_config(cfg)
    if legacy is not None:
        with open(os.path.join(d, "config_v4.json"), "w") as f:
            json.dump(legacy, f, indent=2, sort_keys=True)
    return entry, legacy


def causal_fixture(out, name, seed):
    cls_name, cfg_name, kw, pad_id, eos_id, lo = CAUSAL[name]
    cls = getattr(transformers, cls_name)
    V = kw["vocab_size"]
    for attempt in range(20):
        s = seed + attempt
        torch.manual_seed(s)
        model = cls(make_config(cfg_name, kw)).eval()
        perturb(model)
        g = torch.Generator().manual_seed(s)
        single = [torch.randint(lo, V - 3 if lo == 0 else V, (n,), generator=g) for n in (7, 12)]
        lens = [12, 5, 9]
        P = max(lens)
        ids = torch.full((len(lens), P), pad_id, dtype=torch.long)
        mask = torch.zeros((len(lens), P), dtype=torch.long)
        for b, n in enumerate(lens):  # content never uses the special ids (pad/bos/eos)
            ids[b, P - n:] = torch.randint(lo, V - 3 if lo == 0 else V, (n,), generator=g)
            mask[b, P - n:] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            tensors = {}
            for i, x in enumerate(single):
                tensors[f"single_{i}.input_ids"] = x
                tensors[f"single_{i}.logits"] = model(x.unsqueeze(0)).logits[0].float().contiguous()
            tensors["batch.input_ids"] = ids
            tensors["batch.attention_mask"] = mask
            tensors["batch.position_ids"] = pos
            tensors["batch.logits"] = model(ids, attention_mask=mask, position_ids=pos).logits.float().contiguous()
            gen = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=GREEDY_NEW,
                                 min_new_tokens=GREEDY_NEW, pad_token_id=pad_id, eos_token_id=eos_id,
                                 output_scores=True, return_dict_in_generate=True)
        margin = greedy_margin(gen)
        if margin >= MIN_MARGIN:
            break
        print(f"{name}: seed {s}: greedy top-2 margin {margin:.2e} too small, retrying")
    else:
        sys.exit(f"make_parity_fixtures: {name}: no seed gave a safe greedy margin")
    tensors["greedy.output_ids"] = gen.sequences[:, P:].contiguous()
    extra = {"greedy_pad_token_id": pad_id, "greedy_eos_token_id": eos_id, "greedy_min_top2_margin": margin,
             "content_token_ids": [lo, V - 3 if lo == 0 else V]}
    if name in BF16:
        with torch.no_grad():
            mb = copy.deepcopy(model).to(torch.bfloat16)
            lb = mb(ids, attention_mask=mask, position_ids=pos).logits.float().contiguous()
        tensors["batch.logits_bf16"] = lb
        m3 = mask.bool().unsqueeze(-1).expand_as(lb)
        extra["bf16_max_abs_diff_vs_fp32"] = float((lb - tensors["batch.logits"])[m3].abs().max())
        extra["fp32_logit_abs_max"] = float(tensors["batch.logits"][m3].abs().max())
    extra["shapes"] = {k: list(v.shape) for k, v in sorted(tensors.items())}
    d = os.path.join(out, name)
    save_model(model, os.path.join(d, "model"))
    meta = {"format": "pt", "greedy.pad_token_id": str(pad_id), "greedy.eos_token_id": str(eos_id),
            "greedy.new_tokens": str(GREEDY_NEW)}
    save_file(tensors, os.path.join(d, "expected.safetensors"), metadata=meta)
    entry, legacy = record(name, d, cls_name, s, extra)
    if legacy is not None:
        def fwd(m):
            with torch.no_grad():
                return m(ids, attention_mask=mask, position_ids=pos).logits
        diff = float((check_legacy(os.path.join(d, "model"), legacy, cls_name, fwd) - tensors["batch.logits"])
                     .abs().max())
        if diff != 0.0:
            sys.exit(f"make_parity_fixtures: {name}: config_v4.json loads to different logits (max {diff:.3e})")
        entry["config_v4_same_logits"] = True
    print(f"{name}: seed {s}, greedy min top-2 margin {margin:.3e}")
    return d, entry


def decoder_cls_fixture(out, name, seed):
    """Reward-model shaped: *ForSequenceClassification, right-padded batch (as tokenizers pad) and a
    left-padded one (as generation batches are)."""
    cls_name, cfg_name, kw, pad_id, lo = DECODER_CLS[name]
    V = kw["vocab_size"]
    hi = V - 1 if pad_id == V - 1 else V  # content ids in [lo, hi): never the pad id
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(make_config(cfg_name, kw)).eval()
    perturb(model)
    g = torch.Generator().manual_seed(seed)
    lens = [16, 6, 11]
    T = max(lens)
    rows = [torch.randint(lo, hi, (n,), generator=g) for n in lens]
    assert all(bool((r != pad_id).all()) for r in rows)
    ids = torch.full((len(lens), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(lens), T), dtype=torch.long)
    lids, lmask = ids.clone(), mask.clone()
    for b, (n, r) in enumerate(zip(lens, rows)):
        ids[b, :n], mask[b, :n] = r, 1
        lids[b, T - n:], lmask[b, T - n:] = r, 1
    lpos = (lmask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float().contiguous()
        left = model(input_ids=lids, attention_mask=lmask).logits.float().contiguous()
        left_pos = model(input_ids=lids, attention_mask=lmask, position_ids=lpos).logits.float().contiguous()
        # what the rule picks, reproduced here: rightmost index whose id != pad_token_id
        idx = torch.arange(T)
        last_r = (idx * (ids != pad_id)).argmax(-1)
        last_l = (idx * (lids != pad_id)).argmax(-1)
        assert last_r.tolist() == [n - 1 for n in lens] and last_l.tolist() == [T - 1] * len(lens)
        hs = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        manual = model.score(hs)[torch.arange(len(lens)), last_r]
        assert torch.allclose(manual, logits, atol=1e-6), "classifier pooling rule is not what the docstring says"
    tensors = {"input_ids": ids, "attention_mask": mask, "logits": logits,
               "left.input_ids": lids, "left.attention_mask": lmask, "left.logits": left,
               "left.position_ids": lpos, "left.logits_pos": left_pos}
    d = os.path.join(out, name)
    save_model(model, os.path.join(d, "model"))
    save_file(tensors, os.path.join(d, "expected.safetensors"), metadata={"format": "pt", "pad_token_id": str(pad_id)})
    entry, legacy = record(name, d, cls_name, seed, {"num_labels": kw["num_labels"], "pad_token_id": pad_id,
                                                     "content_token_ids": [lo, hi], "lengths": lens,
                                                     "shapes": {k: list(v.shape) for k, v in sorted(tensors.items())}})
    if legacy is not None:
        def fwd(m):
            with torch.no_grad():
                return m(input_ids=ids, attention_mask=mask).logits
        diff = float((check_legacy(os.path.join(d, "model"), legacy, cls_name, fwd) - logits).abs().max())
        if diff != 0.0:
            sys.exit(f"make_parity_fixtures: {name}: config_v4.json loads to different logits (max {diff:.3e})")
        entry["config_v4_same_logits"] = True
    print(f"{name}: logits {list(logits.shape)}, left-padded logits max |right - left| "
          f"{float((logits - left).abs().max()):.3e} (positions 0..T-1), "
          f"{float((logits - left_pos).abs().max()):.3e} (mask-derived positions)")
    return d, entry


def check_export(export_dir, against, fixtures_dir, tol=1e-4):
    """--check-export: a policy directory rarlhf wrote must load in transformers and reproduce fixture NAME."""
    from safetensors import safe_open
    path = os.path.join(fixtures_dir, against, "expected.safetensors")
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
        exp = {k: f.get_tensor(k) for k in f.keys()}
    if "batch.input_ids" not in exp or "greedy.output_ids" not in exp:
        print(f"check-export: fixture {against} is not a causal-LM fixture (no batch.* / greedy.* tensors)")
        return 1
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        export_dir, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    model.eval()
    if info.get("unexpected_keys"):
        print(f"check-export: note: transformers ignored {sorted(info['unexpected_keys'])}")
    if info.get("missing_keys") or info.get("mismatched_keys"):  # transformers would have initialised them randomly
        print(f"check-export: FAIL: missing {sorted(info.get('missing_keys') or [])}, "
              f"mismatched {list(info.get('mismatched_keys') or [])}")
        return 1
    ids, mask, pos = exp["batch.input_ids"], exp["batch.attention_mask"], exp["batch.position_ids"]
    with torch.no_grad():
        logits = model(ids, attention_mask=mask, position_ids=pos).logits.float()
    if logits.shape != exp["batch.logits"].shape:
        print(f"check-export: logits shape {list(logits.shape)} != fixture {list(exp['batch.logits'].shape)}")
        return 1
    m3 = mask.bool().unsqueeze(-1).expand_as(logits)  # padded rows are not meaningful
    delta = float((logits - exp["batch.logits"])[m3].abs().max())
    single = []
    for i in range(2):
        x = exp[f"single_{i}.input_ids"]
        with torch.no_grad():
            single.append(float((model(x.unsqueeze(0)).logits[0] - exp[f"single_{i}.logits"]).abs().max()))
    n_new = int(meta.get("greedy.new_tokens", GREEDY_NEW))
    pad_id = int(meta.get("greedy.pad_token_id", model.config.pad_token_id or 0))
    eos_id = int(meta.get("greedy.eos_token_id", model.config.eos_token_id or 0))
    gc = transformers.GenerationConfig(do_sample=False, max_new_tokens=n_new, min_new_tokens=n_new,
                                       pad_token_id=pad_id, eos_token_id=eos_id)
    with torch.no_grad():
        gen = model.generate(ids, attention_mask=mask, generation_config=gc)
    got = gen[:, ids.shape[1]:]
    want = exp["greedy.output_ids"]
    same = got.shape == want.shape and bool((got == want).all())
    print(f"check-export {export_dir} against {against}: max |d logits| batch {delta:.3e}, "
          f"single {max(single):.3e} (tol {tol:g}); greedy tokens {'match' if same else 'DIFFER'}")
    if not same:
        print(f"  got  {got.tolist()}\n  want {want.tolist()}")
    ok = delta <= tol and max(single) <= tol and same
    print("check-export: PASS" if ok else "check-export: FAIL")
    return 0 if ok else 1


# name -> (base fixture, LoraConfig kwargs, pad id, eos id for generate)
LORA = {
    "lora_gpt2": ("gpt2_tiny", dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True),
                  999, 999),
    "lora_llama": ("llama_gqa", dict(r=4, lora_alpha=16, target_modules="all-linear", use_rslora=True), 0, 2),
    "lora_neox": ("neox_sequential", dict(r=2, lora_alpha=4, target_modules=["query_key_value", "dense_h_to_4h"]),
                  1, 0),
    "lora_gptj": ("gptj_tiny", dict(r=8, lora_alpha=16,
                                    target_modules=["q_proj", "v_proj", "out_proj", "fc_in", "fc_out"]), 127, 127),
    "lora_qwen2": ("qwen2_tiny", dict(r=4, lora_alpha=8, target_modules=r".*\.(q_proj|v_proj)"), 125, 127),
}


def peft_forward(model, exp, pad_id, eos_id):
    ids, mask, pos = exp["batch.input_ids"], exp["batch.attention_mask"], exp["batch.position_ids"]
    out = {}
    with torch.no_grad():
        for i in range(2):
            x = exp[f"single_{i}.input_ids"]
            out[f"single_{i}.logits"] = model(input_ids=x.unsqueeze(0)).logits[0].float().contiguous()
        out["batch.logits"] = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float().contiguous()
        gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=GREEDY_NEW,
                             min_new_tokens=GREEDY_NEW, pad_token_id=pad_id, eos_token_id=eos_id,
                             output_scores=True, return_dict_in_generate=True)
    out["greedy.output_ids"] = gen.sequences[:, ids.shape[1]:].contiguous()
    return out, greedy_margin(gen)


def read_expected(path):
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})


def lora_fixture(out, name, seed):
    import peft
    base_name, kw, pad_id, eos_id = LORA[name]
    base_dir = os.path.join(out, base_name, "model")
    exp, _ = read_expected(os.path.join(out, base_name, "expected.safetensors"))
    for attempt in range(20):
        s = seed + attempt
        base = transformers.AutoModelForCausalLM.from_pretrained(base_dir, attn_implementation="eager",
                                                                 dtype=torch.float32).eval()
        model = peft.get_peft_model(base, peft.LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, **kw)).eval()
        torch.manual_seed(s)
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "lora_A" in pname or "lora_B" in pname:
                    p.copy_(torch.randn_like(p) * 0.2)
        got, margin = peft_forward(model, exp, pad_id, eos_id)
        if margin >= MIN_MARGIN:
            break
        print(f"{name}: seed {s}: greedy top-2 margin {margin:.2e} too small, retrying")
    else:
        sys.exit(f"make_parity_fixtures: {name}: no seed gave a safe greedy margin")
    d = os.path.join(out, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    adapter = os.path.join(d, "adapter")
    model.save_pretrained(adapter)
    readme = os.path.join(adapter, "README.md")  # peft's model-card template: not ours to commit
    if os.path.exists(readme):
        os.remove(readme)
    cpath = os.path.join(adapter, "adapter_config.json")
    with open(cpath) as f:
        acfg = json.load(f)
    acfg["base_model_name_or_path"] = os.path.relpath(base_dir, adapter)
    with open(cpath, "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)
    tensors = {k: exp[k] for k in ("single_0.input_ids", "single_1.input_ids", "batch.input_ids",
                                   "batch.attention_mask", "batch.position_ids")}
    tensors.update(got)
    merged = model.merge_and_unload().eval()
    with torch.no_grad():
        merged_logits = merged(exp["batch.input_ids"], attention_mask=exp["batch.attention_mask"],
                               position_ids=exp["batch.position_ids"]).logits.float()
    meta = {"format": "pt", "greedy.pad_token_id": str(pad_id), "greedy.eos_token_id": str(eos_id),
            "greedy.new_tokens": str(GREEDY_NEW), "base": base_name}
    save_file(tensors, os.path.join(d, "expected.safetensors"), metadata=meta)
    m3 = exp["batch.attention_mask"].bool().unsqueeze(-1).expand_as(tensors["batch.logits"])
    entry = {"base": base_name, "peft": peft.__version__, "torch": torch.__version__,
             "transformers": transformers.__version__, "seed": s, "lora": {k: v for k, v in kw.items()},
             "greedy_min_top2_margin": margin,
             "max_abs_logit_change_vs_base": float((tensors["batch.logits"] - exp["batch.logits"])[m3].abs().max()),
             "merged_vs_unmerged_max_abs_diff": float((merged_logits - tensors["batch.logits"])[m3].abs().max()),
             "adapter_keys": sorted(read_expected(os.path.join(adapter, "adapter_model.safetensors"))[0])}
    print(f"{name}: seed {s}, greedy margin {margin:.3e}, logits moved {entry['max_abs_logit_change_vs_base']:.3f} "
          f"from the base")
    return d, entry


def check_lora(adapter_dir, against, fixtures_dir, tol=1e-4):
    """--check-lora: an adapter rarlhf wrote must load in peft (both ways) and reproduce fixture NAME."""
    import peft
    exp, meta = read_expected(os.path.join(fixtures_dir, against, "expected.safetensors"))
    base_name = meta.get("base") or LORA[against][0]
    pad_id, eos_id = int(meta["greedy.pad_token_id"]), int(meta["greedy.eos_token_id"])
    base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(fixtures_dir, base_name, "model"),
                                                             attn_implementation="eager", dtype=torch.float32)
    ok = True
    loaders = [("PeftModel.from_pretrained", lambda: peft.PeftModel.from_pretrained(base, adapter_dir)),
               ("AutoPeftModelForCausalLM", lambda: peft.AutoPeftModelForCausalLM.from_pretrained(
                   adapter_dir, attn_implementation="eager", dtype=torch.float32))]
    for label, load in loaders:
        model = load().eval()
        got, _ = peft_forward(model, exp, pad_id, eos_id)
        m3 = exp["batch.attention_mask"].bool().unsqueeze(-1).expand_as(got["batch.logits"])
        d = float((got["batch.logits"] - exp["batch.logits"])[m3].abs().max())
        ds = max(float((got[f"single_{i}.logits"] - exp[f"single_{i}.logits"]).abs().max()) for i in range(2))
        same = bool((got["greedy.output_ids"] == exp["greedy.output_ids"]).all())
        print(f"check-lora {adapter_dir} ({label}) against {against}: max |d logits| batch {d:.3e}, single {ds:.3e} "
              f"(tol {tol:g}); greedy tokens {'match' if same else 'DIFFER'}")
        ok = ok and d <= tol and ds <= tol and same
    print("check-lora: PASS" if ok else "check-lora: FAIL")
    return 0 if ok else 1


LEGACY = ["gpt2_tiny", "distilbert_tiny", "bert_tiny", "roberta_tiny"]
ALL = LEGACY + list(CAUSAL) + list(DECODER_CLS) + list(LORA)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "parity"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", default="", help="comma-separated fixture names to (re)generate; default all: "
                    + ",".join(ALL))
    ap.add_argument("--check-export", metavar="DIR", help="a policy directory written by rarlhf: load it with "
                    "AutoModelForCausalLM and compare with fixture --against; exit 1 on a mismatch")
    ap.add_argument("--against", metavar="NAME", help="fixture name for --check-export (e.g. llama_gqa) or "
                    "--check-lora (e.g. lora_llama)")
    ap.add_argument("--check-lora", metavar="DIR", help="a LoRA adapter directory written by rarlhf: load it with "
                    "peft and compare with fixture --against; exit 1 on a mismatch")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_default_dtype(torch.float32)
    transformers.utils.logging.disable_progress_bar()
    if args.check_export:
        if not args.against:
            sys.exit("make_parity_fixtures: --check-export needs --against NAME")
        sys.exit(check_export(args.check_export, args.against, args.out))
    if args.check_lora:
        if not args.against:
            sys.exit("make_parity_fixtures: --check-lora needs --against NAME")
        sys.exit(check_lora(args.check_lora, args.against, args.out))
    only = [n for n in args.only.split(",") if n] or ALL
    bad = [n for n in only if n not in ALL]
    if bad:
        sys.exit(f"make_parity_fixtures: unknown fixture(s) {','.join(bad)}; known: {','.join(ALL)}")
    os.makedirs(args.out, exist_ok=True)
    vpath = os.path.join(args.out, "versions.json")
    versions = {}
    if os.path.exists(vpath):
        with open(vpath) as f:
            versions = json.load(f)
    if "gpt2_tiny" in only:
        gpt2_tiny(args.out, args.seed)
    for i, name in enumerate(["distilbert", "bert", "roberta"]):
        if f"{name}_tiny" in only:
            classifier(args.out, name, args.seed + 100 * (i + 1))
    if any(n in only for n in LEGACY):  # the top-level keys describe the four original fixtures
        versions.update({"torch": torch.__version__, "transformers": transformers.__version__, "device": "cpu",
                         "dtype": "float32", "seed": args.seed, "greedy_new_tokens": GREEDY_NEW})
    fixtures = versions.setdefault("fixtures", {})
    versions["fixtures_note"] = ("top-level torch/transformers/seed: gpt2_tiny and the BERT-family fixtures; "
                                 "'fixtures': one entry per newer fixture (its own versions, seed, config)")
    for i, name in enumerate(CAUSAL):
        if name in only:
            _, fixtures[name] = causal_fixture(args.out, name, args.seed + 1000 + 100 * i)
    for i, name in enumerate(DECODER_CLS):
        if name in only:
            _, fixtures[name] = decoder_cls_fixture(args.out, name, args.seed + 5000 + 100 * i)
    for i, name in enumerate(LORA):
        if name in only:
            _, fixtures[name] = lora_fixture(args.out, name, args.seed + 7000 + 100 * i)
    versions["fixtures"] = {k: fixtures[k] for k in sorted(fixtures)}
    with open(vpath, "w") as f:
        json.dump(versions, f, indent=2)
    total = 0
    for root, _, files in sorted(os.walk(args.out)):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
            if any(os.path.relpath(p, args.out).startswith(n + os.sep) for n in only) or fn == "versions.json":
                print(f"wrote {os.path.relpath(p, REPO)} ({os.path.getsize(p)} bytes)")
    print(f"total {total} bytes under {os.path.relpath(args.out, REPO)}")
    if total > LIMIT_BYTES:
        sys.exit(f"make_parity_fixtures: fixtures exceed {LIMIT_BYTES / 2**20:g} MB")


if __name__ == "__main__":
    main()
