#!/usr/bin/env bash
# Generation speed per family: rarlhf (bench/family_generate_bench.cpp) vs transformers' generate
# (bench/hf_generate.py) on the same random-weight config, threads and workload (B=8, prompt 64, 48
# new tokens, fp32, KV cache), ROUNDS rounds alternating the two; prints medians and the ratio.
#   scripts/bench_families.sh [BUILD_DIR]   env: THREADS (default: all cores), ROUNDS (3),
#                                           PYTHON (default .venv-ref/bin/python: torch + transformers)
# Shapes: GPT-2 small (12 x 768, vocab 50257) and SmolLM2-135M (Llama: 30 x 576, 9 heads / 3 KV heads,
# vocab 49152, tied). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
THREADS="${THREADS:-$(nproc)}"
ROUNDS="${ROUNDS:-3}"
PY="${PYTHON:-.venv-ref/bin/python}"
BENCH="$BUILD/family_generate_bench"
die() { echo "bench_families: error: $*" >&2; exit 1; }
[ -x "$BENCH" ] || die "$BENCH not built; run: cmake --build $BUILD --target family_generate_bench"
"$PY" -c 'import torch, transformers' 2>/dev/null || die "$PY lacks torch/transformers; set PYTHON"
# OpenMP's default wait policy on both sides, as `rarlhf generate/eval` run (src/cli/main.cpp); PASSIVE
# slowed both (transformers 70 vs 93 tokens/s, rarlhf 123 vs 170 on the SmolLM2 shape).
unset OMP_WAIT_POLICY
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" OPENBLAS_THREAD_TIMEOUT=4
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/gpt2-small" "$TMP/smollm2-135m"
cat > "$TMP/gpt2-small/config.json" <<'JSON'
{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 12, "n_head": 12, "n_embd": 768,
 "n_positions": 1024, "vocab_size": 50257, "activation_function": "gelu_new", "bos_token_id": 50256,
 "eos_token_id": 50256}
JSON
cat > "$TMP/smollm2-135m/config.json" <<'JSON'
{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536,
 "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 2048,
 "vocab_size": 49152, "hidden_act": "silu", "rms_norm_eps": 1e-05, "rope_theta": 100000.0,
 "tie_word_embeddings": true, "bos_token_id": 0, "eos_token_id": 0}
JSON
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
tps() { sed -n 's/.*"tokens_per_s": \([0-9.]*\).*/\1/p'; }
echo "bench_families: $THREADS threads, $ROUNDS rounds, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in gpt2-small smollm2-135m; do
  : > "$TMP/$shape.cpp"; : > "$TMP/$shape.py"
  for _ in $(seq "$ROUNDS"); do
    "$BENCH" "$TMP/$shape/config.json" --threads "$THREADS" --repeats 1 | tps >> "$TMP/$shape.cpp"
    "$PY" bench/hf_generate.py "$TMP/$shape/config.json" --threads "$THREADS" --repeats 1 | tps >> "$TMP/$shape.py"
  done
  c=$(median < "$TMP/$shape.cpp"); p=$(median < "$TMP/$shape.py")
  printf '  %-13s rarlhf %8.1f tokens/s   transformers %8.1f tokens/s   ratio %.2fx  (goal >= 2x)\n' \
    "$shape" "$c" "$p" "$(awk -v a="$c" -v b="$p" 'BEGIN {print a / b}')"
done
