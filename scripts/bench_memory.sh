#!/usr/bin/env bash
# Peak memory of one RA-RLHF iteration (B = mini-batch = 8, prompt 64 + 48 new tokens, 4 PPO epochs,
# the paper's GPT-J settings) for full fine-tuning (fp32; bf16 with fp32 masters) vs LoRA (r 16,
# alpha 16, q_proj + v_proj) on an fp32 / a bf16 base / a bf16 base with activation checkpointing, on
# one GPT-J-shaped model of GPT-2-small size (12 x 768, 12 heads, rotary_dim 64,
# vocab 50400; 125M parameters); each variant in its own `rarlhf train` process, read back from its
# metrics.jsonl (mem/*_peak_mib: the process's peak resident set per stage on the CPU, the CUDA
# allocator's peak on a GPU). Prints the per-stage peaks, bytes per parameter, and an extrapolation to
# GPT-J 6B (28 x 4096, 6.05e9 parameters) against an 80 GB GPU.
#   scripts/bench_memory.sh [BUILD_DIR]   env: DEVICE (cpu | cuda; default cpu), THREADS (default all cores)
# Not part of the test suite. Needs assets/ (scripts/fetch_assets.sh) for the tokenizer and prompts.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
DEVICE="${DEVICE:-cpu}"
THREADS="${THREADS:-$(nproc)}"
BIN="$BUILD/rarlhf"
die() { echo "bench_memory: error: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN not built; run scripts/setup.sh"
[ -f assets/gpt2/encoder.json ] || die "assets/ missing; run scripts/fetch_assets.sh"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/shape"
cat > "$TMP/shape/config.json" <<'JSON'
{"model_type": "gptj", "architectures": ["GPTJForCausalLM"], "n_layer": 12, "n_head": 12, "n_embd": 768,
 "rotary_dim": 64, "n_positions": 2048, "vocab_size": 50400, "activation_function": "gelu_new",
 "bos_token_id": 50256, "eos_token_id": 50256, "tie_word_embeddings": false}
JSON
COMMON=(--config configs/tiny.json --set run.threads="$THREADS" --set run.device="\"$DEVICE\""
        --set model.tokenizer='"assets/gpt2"' --set data.prompt_tokens=64 --set data.min_chars=200
        --set ppo.batch_size=8 --set ppo.mini_batch_size=8 --set ppo.ppo_epochs=4 --set ppo.total_iterations=1
        --set generate.max_new_tokens=48 --set generate.min_new_tokens=48 --set generate.batch_size=8
        --set reward.batch_size=8 --set logging.curves=false --set logging.tensorboard=false)
run() {  # run NAME ARGS...: one iteration; its last metrics line to $TMP/NAME.json
  local name="$1"
  shift
  "$BIN" train "${COMMON[@]}" --set run.out_dir="\"$TMP/$name\"" "$@" > "$TMP/$name.log" 2>&1 ||
    { tail -5 "$TMP/$name.log" >&2; die "$name failed"; }
  tail -1 "$TMP/$name/metrics.jsonl" > "$TMP/$name.json"
}
echo "bench_memory: one iteration each on $DEVICE, $THREADS threads ..."
# The process without a model worth the name (the demo's 2-layer policy): libraries, data, reward.
run baseline --set ppo.from_scratch=true
# Full fine-tuning from random weights (its policy/ is then the base the LoRA runs adapt).
run full --set ppo.from_scratch=true --set model.path="\"$TMP/shape\""
run lora --set model.path="\"$TMP/full/policy\"" --set ppo.from_scratch=false --set lora.r=16 --set lora.alpha=16
run lora-bf16 --set model.path="\"$TMP/full/policy\"" --set ppo.from_scratch=false --set lora.r=16 \
  --set lora.alpha=16 --set model.dtype='"bfloat16"'
run lora-bf16-ckpt --set model.path="\"$TMP/full/policy\"" --set ppo.from_scratch=false --set lora.r=16 \
  --set lora.alpha=16 --set model.dtype='"bfloat16"' --set model.gradient_checkpointing=true
run full-bf16 --set model.path="\"$TMP/full/policy\"" --set ppo.from_scratch=false --set model.dtype='"bfloat16"'
python3 - "$TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
P = 12 * (4 * 768 * 768 + 2 * 768 * 3072) + 2 * 50400 * 768  # weights of the shape (norms, biases aside)
runs = {n: json.load(open(f"{tmp}/{n}.json")) for n in ("full", "full-bf16", "lora", "lora-bf16", "lora-bf16-ckpt")}
base = json.load(open(f"{tmp}/baseline.json"))["mem/peak_mib"] * 2**20
stages = ["rollout", "score", "forward", "advantage", "optimize"]
print(f"baseline (2-layer demo policy, same workload): {base / 2**20:.0f} MiB")
print(f"{'variant':<15}" + "".join(f"{s:>11}" for s in stages) + f"{'peak MiB':>10}{'B/param':>9}")
for n, r in runs.items():
    peak = r["mem/peak_mib"]
    print(f"{n:<15}" + "".join(f"{r['mem/' + s + '_peak_mib']:>11.0f}" for s in stages) +
          f"{peak:>10.0f}{(peak * 2**20 - base) / P:>9.2f}")
print("(B/param: the peak less the baseline, over the shape's 125M parameters)")
# GPT-J 6B: weights and optimiser state scale with the parameters; activations (the optimize stage's
# peak less the baseline and the parameter state) with layers x hidden at the same tokens. Per variant: bytes of parameter state per
# parameter (policy + reference + gradients + Adam as the variant holds them), measured activation
# bytes per (layer x hidden) at this B and length, scaled to 28 x 4096.
PJ, LJ, CJ = 6.05e9, 28, 4096
state = {"full": 4 + 4 + 4 + 8,        # fp32 policy, fp32 reference copy, gradients, Adam moments
         "full-bf16": 2 + 2 + 4 + 4 + 8,  # bf16 policy + reference, fp32 masters, their gradients, Adam
         "lora": 4, "lora-bf16": 2, "lora-bf16-ckpt": 2}  # the base once (also the reference); adapters ~0.1 %
print("\nGPT-J 6B extrapolation (B=8, 64+48 tokens):")
for n, r in runs.items():
    opt = r["mem/optimize_peak_mib"] * 2**20
    act = opt - base - state[n] * P
    act_j = max(0.0, act) / (12 * 768) * (LJ * CJ)
    total = state[n] * PJ + act_j
    verdict = "fits" if total < 80e9 else "does not fit"
    acts = f"activations {act_j / 1e9:5.1f} GB" if act > 0 else "activations below this run's resolution"
    print(f"  {n:<14} parameter state {state[n] * PJ / 1e9:6.1f} GB + {acts} = {total / 1e9:6.1f} GB: "
          f"{verdict} in 80 GB")
print("(rough: CPU resident-set peaks carry the allocator's caching, +-10 % between runs; not checked on a GPU)")
PY
