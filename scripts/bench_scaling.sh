#!/usr/bin/env bash
# Data-parallel scaling of PPO on CPU: time per iteration of a tiny RA-RLHF run (random 2-layer
# GPT-2 over the toy vocabulary in ../shared/data) with 1 process and with 2 processes
# (scripts/launch_local.sh), same global batch, measured in the same invocation; prints the ratio.
#   [MINI_BATCH=8] scripts/bench_scaling.sh [BUILD_DIR] [ITERATIONS]     (default build, 6)
# Reads time/total of each metrics.jsonl record (rank 0), skipping the first iteration (warm-up).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ITERS=${2:-6}
BIN=$BUILD/rarlhf
DATA=../shared/data
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "bench_scaling: $BIN not built" >&2; exit 1; }
[ -f "$DATA/tiny-gpt2-vocab21/vocab.json" ] || { echo "bench_scaling: needs $DATA/tiny-gpt2-vocab21" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A wider random policy than the unit tests' (so compute, not overhead, dominates), saved in HF layout.
"$PY" - "$WORK" "$DATA" <<'PY'
import json, os, shutil, sys
import torch
work, data = sys.argv[1], sys.argv[2]
tok = os.path.join(data, "tiny-gpt2-vocab21")
pol = os.path.join(work, "policy0")
os.makedirs(pol)
for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
    if os.path.exists(os.path.join(tok, f)):
        shutil.copy(os.path.join(tok, f), pol)
L, C, V, P = 4, 128, 21, 64
cfg = {"model_type": "gpt2", "n_layer": L, "n_head": 4, "n_embd": C, "n_positions": P, "vocab_size": V,
       "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "bos_token_id": 20, "eos_token_id": 20}
json.dump(cfg, open(os.path.join(pol, "config.json"), "w"))
g = torch.Generator().manual_seed(0)
w = {"wte.weight": torch.randn(V, C, generator=g) * 0.02, "wpe.weight": torch.randn(P, C, generator=g) * 0.01,
     "ln_f.weight": torch.ones(C), "ln_f.bias": torch.zeros(C)}
for i in range(L):
    p = f"h.{i}."
    w[p + "ln_1.weight"], w[p + "ln_1.bias"] = torch.ones(C), torch.zeros(C)
    w[p + "ln_2.weight"], w[p + "ln_2.bias"] = torch.ones(C), torch.zeros(C)
    w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"] = torch.randn(C, 3 * C, generator=g) * 0.02, torch.zeros(3 * C)
    w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"] = torch.randn(C, C, generator=g) * 0.02, torch.zeros(C)
    w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"] = torch.randn(C, 4 * C, generator=g) * 0.02, torch.zeros(4 * C)
    w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"] = torch.randn(4 * C, C, generator=g) * 0.02, torch.zeros(C)
# safetensors by hand (format: 8-byte header length, JSON header, raw little-endian data).
header, blobs, off = {}, [], 0
for k, t in w.items():
    b = t.contiguous().numpy().tobytes()
    header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(pol, "model.safetensors"), "wb") as f:
    f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
words = ["low", "newer", "wider", "lower", "new", "wide", "lowest"]
with open(os.path.join(work, "prompts.txt"), "w") as f:
    for a in words:
        for b in words:
            f.write(f"{a} {b} {a}\n")
PY

cat >"$WORK/bench.json" <<JSON
{
  "run": {"seed": 1, "device": "cpu", "threads": 1},
  "model": {"path": "$WORK/policy0", "dtype": "float32"},
  "data": {"format": "lines", "train_path": "$WORK/prompts.txt", "min_chars": 0, "prompt_tokens": 8},
  "reward": {"type": "vader", "lexicon": "$DATA/sentiment-lexicons/vader_lexicon.txt", "input": "response"},
  "ppo": {"batch_size": 32, "mini_batch_size": ${MINI_BATCH:-8}, "ppo_epochs": 4, "total_iterations": $ITERS},
  "risk": {"enabled": true, "n": 1, "alpha": 0.4},
  "generate": {"max_new_tokens": 24, "min_new_tokens": 24},
  "logging": {"progress": false, "level": "warn"}
}
JSON

mean_time() {  # mean time/KEY (default total) over iterations 1.. of a metrics.jsonl
  "$PY" -c 'import json,sys; t=[json.loads(l)["time/"+sys.argv[2]] for l in open(sys.argv[1])][1:]; print(f"{sum(t)/len(t):.4f}")' "$1" "${2:-total}"
}
"$BIN" train --config "$WORK/bench.json" --set "run.out_dir=$WORK/one" >/dev/null 2>&1
scripts/launch_local.sh 2 "$BIN" train --config "$WORK/bench.json" --set "run.out_dir=$WORK/two" >/dev/null 2>&1
t1=$(mean_time "$WORK/one/metrics.jsonl")
t2=$(mean_time "$WORK/two/metrics.jsonl")
echo "PPO iteration on CPU (4-layer C=128 GPT-2, global batch 32, minibatch ${MINI_BATCH:-8}, 24 new tokens, 1 thread per process, $(nproc) cores)"
echo "  1 process:   ${t1} s/iteration"
echo "  2 processes: ${t2} s/iteration"
for stage in rollout score forward optimize; do
  echo "    $stage: $(mean_time "$WORK/one/metrics.jsonl" "$stage") s -> $(mean_time "$WORK/two/metrics.jsonl" "$stage") s"
done
"$PY" -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'  speed-up 1->2: {a/b:.2f}x (parallel efficiency {a/b/2*100:.0f}%)')" "$t1" "$t2"
