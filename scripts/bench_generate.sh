#!/usr/bin/env bash
# Generation speed: bench/generate_bench.cpp (rarlhf, C++) and bench/gpt2_eager.py (the same GPT-2-small
# model and KV-cache sampling in eager PyTorch) with the same thread count, in one run; prints tokens/s
# and the ratios KV-cache vs full recompute (goal >= 5x at 48 new tokens) and C++ vs Python (goal >= 1.5x).
#   scripts/bench_generate.sh [BUILD_DIR]     env: THREADS (default: all cores), DEVICE (cpu | cuda),
#                                             PYTHON (default /usr/bin/python3: Debian's torch), LAYERS (12)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
THREADS="${THREADS:-$(nproc)}"
DEVICE="${DEVICE:-cpu}"
PY="${PYTHON:-/usr/bin/python3}"
LAYERS="${LAYERS:-12}"
BENCH="$BUILD/generate_bench"
die() { echo "bench_generate: error: $*" >&2; exit 1; }
[ -x "$BENCH" ] || die "$BENCH not built; run: cmake --build $BUILD --target generate_bench"
"$PY" -c 'import torch' 2>/dev/null || die "$PY has no torch; set PYTHON to a Python with torch"

# Same threading for both: OpenBLAS and OpenMP sized to THREADS, idle OpenMP threads not spinning.
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "bench_generate: C++ ($BENCH, $THREADS threads, $DEVICE, $LAYERS layers) ..."
RARLHF_BENCH_THREADS="$THREADS" RARLHF_BENCH_DEVICE="$DEVICE" RARLHF_BENCH_LAYERS="$LAYERS" "$BENCH" \
  --benchmark_repetitions=3 --benchmark_format=json > "$TMP/cpp.json" 2>/dev/null
echo "bench_generate: Python eager ($PY) ..."
"$PY" bench/gpt2_eager.py --threads "$THREADS" --layers "$LAYERS" --device "$DEVICE" --repeats 3 > "$TMP/py.json"

"$PY" - "$TMP/cpp.json" "$TMP/py.json" <<'PY'
import json, sys
cpp = json.load(open(sys.argv[1]))
py = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
def best(prefix):  # best of the repetitions (aggregates skipped), like the Python side's min time
    runs = [b for b in cpp["benchmarks"] if b["name"].startswith(prefix) and b.get("run_type") != "aggregate"]
    if not runs:
        sys.exit(f"bench_generate: no {prefix} in the C++ output")
    return max(b["tokens_per_s"] for b in runs)
fwd, kv, rec = best("BM_Forward"), best("BM_GenerateKvCache"), best("BM_GenerateRecompute")
print(f"workload: B=8, prompt 64, 48 new tokens, GPT-2 small shape ({py['threads']} threads, {py.get('device', 'cpu')})")
print(f"  C++ forward          {fwd:10.1f} tokens/s   Python eager {py['forward_tokens_per_s']:10.1f}   ratio {fwd / py['forward_tokens_per_s']:.2f}x")
print(f"  C++ generate (KV)    {kv:10.1f} tokens/s   Python eager {py['generate_tokens_per_s']:10.1f}   ratio {kv / py['generate_tokens_per_s']:.2f}x  (goal >= 1.5x)")
print(f"  C++ generate (no KV) {rec:10.1f} tokens/s   KV cache speed-up {kv / rec:.2f}x  (goal >= 5x)")
PY
