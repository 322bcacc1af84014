#!/usr/bin/env bash
# Kernel benchmarks with ratios against the plain-LibTorch baseline measured in the same run.
#   scripts/bench_kernels.sh [BUILD_DIR]        (default: build)
# CPU: token_logprobs fwd and fwd+bwd (fused vs log_softmax + gather) at [16*16, 50257] and
# [8*48, 50257]; gae_scan (fused vs TRL's T-step loop). GPU (when built with the CUDA kernels and a
# device is present): kernels_gpu_bench prints bandwidth vs a device copy, times and peak memory.
# Threads: RARLHF_BENCH_THREADS (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bench="$build/kernels_bench"
[ -x "$bench" ] || { echo "bench_kernels.sh: $bench not found; build it: cmake --build $build --target kernels_bench" >&2; exit 1; }
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$bench" --benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_format=json --benchmark_out="$json" --benchmark_out_format=json > /dev/null
python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ctx = d["context"]
print(f"CPU: {ctx.get('num_cpus')} cores, torch threads {ctx.get('torch_threads')}; median of 3, wall time")
med = {b["run_name"]: b for b in d["benchmarks"] if b.get("aggregate_name") == "median"}
def t_ms(b):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
    return b["real_time"] * scale
rows = []
for name, b in sorted(med.items()):
    if "/fused/" not in name:
        continue
    plain = med.get(name.replace("/fused/", "/plain/"))
    if plain:
        rows.append((name.replace("/fused", ""), t_ms(b), t_ms(plain)))
print(f"{'benchmark':<36} {'fused ms':>10} {'plain ms':>10} {'plain/fused':>12}")
for name, f, p in rows:
    print(f"{name:<36} {f:>10.3f} {p:>10.3f} {p / f:>11.2f}x")
PY
if [ -x "$build/kernels_gpu_bench" ]; then
  echo
  "$build/kernels_gpu_bench"
fi
