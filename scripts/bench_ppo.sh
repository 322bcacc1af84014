#!/usr/bin/env bash
# One PPO / RA-RLHF iteration on CPU by stage: bench/ppo_iteration_bench.cpp (rarlhf's PPOTrainer::step,
# custom kernels on and off) and bench/ppo_eager.py (the same iteration in eager PyTorch) with the same
# thread count, in one run. ROUNDS rounds alternate C++ and Python so that load drift on a shared
# machine hits both; the medians are over all rounds' iterations. Prints the median seconds per stage,
# the ratios, and the goal line "whole iteration: C++ / Python = X.XXx (goal >= 2x)".
#   scripts/bench_ppo.sh [BUILD_DIR]   env: THREADS (default: all cores), ITERS (3 per round), ROUNDS (3),
#                                      WARMUP (1), PYTHON (default /usr/bin/python3: Debian's torch),
#                                      TOKENIZER (GPT-2 vocab.json + merges.txt; default ../shared/data/fake-gpt2-hf),
#                                      TRL=0: skip the third column (the Python twin with TRL's logits over
#                                      every position, --full-logits, as TRL's batched_forward_pass does),
#                                      MALLOC_TUNE=1: glibc malloc keeps freed [B,R,V]-sized blocks instead of
#                                      returning them to the kernel (fewer page faults; applied to both sides),
#                                      PROFILE=1: also profile one iteration per side and print the top
#                                      ATen ops (self time) per stage
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
THREADS="${THREADS:-$(nproc)}"
ITERS="${ITERS:-3}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-1}"
PROFILE="${PROFILE:-0}"
TRL="${TRL:-1}"
PY="${PYTHON:-/usr/bin/python3}"
TOKENIZER="${TOKENIZER:-../shared/data/fake-gpt2-hf}"
BENCH="$BUILD/ppo_iteration_bench"
die() { echo "bench_ppo: error: $*" >&2; exit 1; }
[ -x "$BENCH" ] || die "$BENCH not built; run: cmake --build $BUILD --target ppo_iteration_bench"
"$PY" -c 'import torch' 2>/dev/null || die "$PY has no torch; set PYTHON to a Python with torch"
if [ ! -f "$TOKENIZER/vocab.json" ] || [ ! -f "$TOKENIZER/merges.txt" ]; then
  die "$TOKENIZER has no vocab.json + merges.txt; set TOKENIZER to a GPT-2 tokenizer directory"
fi

# Same threading for both: OpenBLAS and OpenMP sized to THREADS, idle OpenMP threads not spinning.
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4
if [ "${MALLOC_TUNE:-0}" = 1 ]; then
  export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296  # 32 MiB: the most glibc accepts
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "bench_ppo: $ROUNDS rounds of C++ ($BENCH) then Python eager ($PY), $ITERS iterations each after $WARMUP warm-up," \
  "$THREADS threads, malloc tuning ${MALLOC_TUNE:-0}"
for r in $(seq 1 "$ROUNDS"); do
  prof_cpp="" prof_py=()
  if [ "$PROFILE" = 1 ] && [ "$r" = "$ROUNDS" ]; then
    prof_cpp="$TMP/prof_cpp" prof_py=(--profile "$TMP/prof_py")
  fi
  echo "bench_ppo: round $r/$ROUNDS: C++ ..."
  RARLHF_BENCH_THREADS="$THREADS" RARLHF_BENCH_PROFILE="$prof_cpp" \
    "$BENCH" --tokenizer "$TOKENIZER" --iters "$ITERS" --warmup "$WARMUP" > "$TMP/cpp.$r.json"
  echo "bench_ppo: round $r/$ROUNDS: Python eager ..."
  "$PY" bench/ppo_eager.py --tokenizer "$TOKENIZER" --threads "$THREADS" --iters "$ITERS" --warmup "$WARMUP" \
    "${prof_py[@]}" > "$TMP/py.$r.json"
  if [ "$TRL" = 1 ]; then
    echo "bench_ppo: round $r/$ROUNDS: Python eager, TRL-style full-sequence logits ..."
    "$PY" bench/ppo_eager.py --tokenizer "$TOKENIZER" --threads "$THREADS" --iters "$ITERS" --warmup "$WARMUP" \
      --full-logits > "$TMP/trl.$r.json"
  fi
done

"$PY" - "$TMP" "$ROUNDS" "$TRL" <<'PY'
import collections, json, statistics, sys
tmp, rounds, trl = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
def last_json(path):
    return json.loads(open(path).read().strip().splitlines()[-1])
cpps = [last_json(f"{tmp}/cpp.{r}.json") for r in range(1, rounds + 1)]
pys = [last_json(f"{tmp}/py.{r}.json") for r in range(1, rounds + 1)]
cpp, py = cpps[0], pys[0]
for key in ("n_layer", "n_embd", "n_head", "batch", "mini_batch", "prompt", "new_tokens", "ppo_epochs", "threads", "keep"):
    if cpp[key] != py[key]:
        sys.exit(f"bench_ppo: the two sides ran different workloads: {key} = {cpp[key]} (C++) vs {py[key]} (Python)")
def pooled(runs, get):  # stage -> median over every round's iterations
    out = collections.defaultdict(list)
    for run in runs:
        for k, v in get(run)["samples_s"].items():
            out[k] += v
    return {k: statistics.median(v) for k, v in out.items()}, len(out["total"])
c, n = pooled(cpps, lambda r: r["custom"])
p, _ = pooled(cpps, lambda r: r["plain"])
e, _ = pooled(pys, lambda r: r)
f = pooled([last_json(f"{tmp}/trl.{r}.json") for r in range(1, rounds + 1)], lambda r: r)[0] if trl else None
print(f"workload: GPT-2 n_layer {cpp['n_layer']}, n_embd {cpp['n_embd']}, n_head {cpp['n_head']}, vocab {cpp['vocab']} "
      f"(random init); B={cpp['batch']}, {cpp['prompt']}-token prompts + {cpp['new_tokens']} new tokens, "
      f"{cpp['ppo_epochs']} PPO epochs x mini-batch {cpp['mini_batch']}, risk on: keep {cpp['keep']} of "
      f"{cpp['batch']} (alpha {cpp['alpha']}); {cpp['threads']} threads; median of {n} iterations per column")
names = [("rollout", "rollout (generate)"), ("score", "score (decode + reward)"),
         ("forward", "forward (logprobs, ref, values)"), ("advantage", "rewards+GAE+risk+whiten+KL"),
         ("optimize", "optimize (PPO epochs)"), ("total", "whole iteration")]
def ratio(a, b):
    return f"{b / a:7.2f}x" if a > 0 else "    n/a"
print(f"{'stage':32s} {'C++ custom':>11s} {'C++ plain':>11s} {'Py eager':>11s}" + (f" {'Py TRL-lgt':>11s}" if trl else "")
      + f"  {'Py/custom':>9s} {'Py/plain':>9s} {'plain/custom':>12s}" + (f" {'TRL/custom':>10s}" if trl else ""))
for key, label in names:
    print(f"{label:32s} {c[key]:10.4f}s {p[key]:10.4f}s {e[key]:10.4f}s" + (f" {f[key]:10.4f}s" if trl else "")
          + f"  {ratio(c[key], e[key]):>9s} {ratio(p[key], e[key]):>9s} {ratio(c[key], p[key]):>12s}"
          + (f" {ratio(c[key], f[key]):>10s}" if trl else ""))
cu = statistics.median(r["optimizer_update_s"] for r in cpps)
pu = statistics.median(r["optimizer_update_s"] for r in pys)
lu = statistics.median(r["optimizer_update_libtorch_s"] for r in cpps)
print(f"optimiser update (zero_grad + Adam step, {cpp['updates']} per iteration): C++ fused {cu:.4f}s "
      f"(LibTorch's Adam {lu:.4f}s), Python {pu:.4f}s -> {cpp['updates'] * cu / c['optimize']:.0%} of the C++ custom optimize stage")
if trl:
    print(f"whole iteration vs the TRL-style twin (logits over all {cpp['prompt'] + cpp['new_tokens']} positions): "
          f"{f['total'] / c['total']:.2f}x")
print(f"whole iteration: C++ / Python = {e['total'] / c['total']:.2f}x (goal >= 2x)")

def top_ops(trace, stages, k=6):
    """Self time of each ATen op, bucketed into the stage its start falls in (stages run in order)."""
    ev = json.load(open(trace))
    ev = ev.get("traceEvents", []) if isinstance(ev, dict) else ev
    ev = [x for x in ev if x.get("ph") == "X" and "dur" in x]
    by_thread = collections.defaultdict(list)
    for x in ev:
        by_thread[(x.get("pid"), x.get("tid"))].append(x)
    recs = []
    for xs in by_thread.values():  # self = own duration minus directly nested events
        xs.sort(key=lambda x: (float(x["ts"]), -float(x["dur"])))
        stack = []
        for x in xs:
            ts, d = float(x["ts"]), float(x["dur"])
            while stack and ts >= stack[-1][0]:
                stack.pop()
            rec = [x["name"], ts, d]
            if stack:
                stack[-1][1][2] -= d
            stack.append((ts + d, rec))
            recs.append(rec)
    t0 = min(r[1] for r in recs)
    bounds, acc = [], 0.0
    for key in ("rollout", "score", "forward", "advantage", "optimize"):
        acc += stages[key] * 1e6
        bounds.append((key, acc))
    agg = collections.defaultdict(collections.Counter)
    for name, ts, s in recs:
        agg[next((key for key, b in bounds if ts - t0 < b), "optimize")][name] += s
    for key in ("rollout", "forward", "optimize"):
        total = stages[key]
        traced = sum(agg[key].values()) / 1e6
        ops = ", ".join(f"{nm.replace('aten::', '')} {v / 1e3:.0f}" for nm, v in agg[key].most_common(k))
        print(f"  {key:9s} {total:7.3f}s (ms: {ops}; not in ATen ops: {max(0.0, total - traced) * 1e3:.0f})")
if "profile" in cpps[-1]:
    for label, prof in (("C++ custom", cpps[-1]["profile"]["custom"]), ("C++ plain", cpps[-1]["profile"]["plain"]),
                        ("Python eager", pys[-1]["profile"])):
        print(f"profile, {label} (one iteration under the profiler: its overhead inflates small ops):")
        top_ops(prof["trace"], prof["stages_s"])
PY
