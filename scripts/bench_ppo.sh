#!/usr/bin/env bash
# One PPO / RA-RLHF iteration on CPU by stage: bench/ppo_iteration_bench.cpp (rarlhf's PPOTrainer::step,
# custom kernels on and off), bench/ppo_eager.py (the same iteration in eager PyTorch, written for speed)
# and optionally bench/ppo_trl.py (TRL's PPOTrainer.step) with the same thread count, shape and work (every
# episode kept unless ALPHA < 1), in one run. ROUNDS rounds alternate the columns so that load drift on a
# shared machine hits all; the medians are over all rounds' iterations. Prints the median seconds per stage,
# each column's ratio to rarlhf (custom kernels) and the goal lines.
#   scripts/bench_ppo.sh [BUILD_DIR]
#   env: THREADS (default: all cores), ITERS (3 per round), ROUNDS (3), WARMUP (1),
#        shape LAYERS (2), EMBD (128), HEADS (4), BATCH (16), MINI_BATCH (8), PROMPT (16), NEW (16),
#        ALPHA (1.0: every episode kept; 0.4 = RA-RLHF's risk-selected 40%),
#        MODES (both | custom: C++ with ppo.custom_kernels on and off, or on only),
#        PYTHON (the eager twin's Python; default /usr/bin/python3: Debian's torch, the LibTorch rarlhf
#        links), PYTHON2 (a second eager column, e.g. a venv with PyPI's torch 2.13: SDPA, fused Adam),
#        TRL_PYTHON (a venv with trl 0.11.4: adds TRL's PPOTrainer.step; see bench/ppo_trl.py),
#        FULL_LOGITS=1 (adds the eager twin with TRL's logits over every position, --full-logits),
#        TOKENIZER (GPT-2 vocab.json + merges.txt; default ../shared/data/fake-gpt2-hf),
#        MALLOC_TUNE=1 (glibc malloc keeps freed [B,R,V]-sized blocks: fewer page faults; both sides),
#        PROFILE=1 (also profile one iteration of C++ and the eager twin; top ATen ops per stage)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
THREADS="${THREADS:-$(nproc)}"
ITERS="${ITERS:-3}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-1}"
PROFILE="${PROFILE:-0}"
FULL_LOGITS="${FULL_LOGITS:-0}"
MODES="${MODES:-both}"
PY="${PYTHON:-/usr/bin/python3}"
PY2="${PYTHON2:-}"
TRL_PY="${TRL_PYTHON:-}"
TOKENIZER="${TOKENIZER:-../shared/data/fake-gpt2-hf}"
BENCH="$BUILD/ppo_iteration_bench"
die() { echo "bench_ppo: error: $*" >&2; exit 1; }
[ -x "$BENCH" ] || die "$BENCH not built; run: cmake --build $BUILD --target ppo_iteration_bench"
"$PY" -c 'import torch' 2>/dev/null || die "$PY has no torch; set PYTHON to a Python with torch"
[ -z "$PY2" ] || "$PY2" -c 'import torch' 2>/dev/null || die "PYTHON2=$PY2 has no torch"
[ -z "$TRL_PY" ] || "$TRL_PY" -c 'import trl' 2>/dev/null ||
  die "TRL_PYTHON=$TRL_PY has no trl; see bench/ppo_trl.py for the venv"
case "$MODES" in both | custom) ;; *) die "MODES is '$MODES'; use both or custom" ;; esac
if [ ! -f "$TOKENIZER/vocab.json" ] || [ ! -f "$TOKENIZER/merges.txt" ]; then
  die "$TOKENIZER has no vocab.json + merges.txt; set TOKENIZER to a GPT-2 tokenizer directory"
fi
SHAPE=(--layers "${LAYERS:-2}" --embd "${EMBD:-128}" --heads "${HEADS:-4}" --batch "${BATCH:-16}"
       --mini-batch "${MINI_BATCH:-8}" --prompt "${PROMPT:-16}" --new "${NEW:-16}")
export RARLHF_BENCH_LAYERS="${LAYERS:-2}" RARLHF_BENCH_EMBD="${EMBD:-128}" RARLHF_BENCH_HEADS="${HEADS:-4}" \
  RARLHF_BENCH_BATCH="${BATCH:-16}" RARLHF_BENCH_MINI_BATCH="${MINI_BATCH:-8}" RARLHF_BENCH_PROMPT="${PROMPT:-16}" \
  RARLHF_BENCH_NEW="${NEW:-16}" RARLHF_BENCH_ALPHA="${ALPHA:-1.0}" RARLHF_BENCH_MODES="$MODES"

# Same threading for all: OpenBLAS and OpenMP sized to THREADS, idle OpenMP threads not spinning.
export OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4
if [ "${MALLOC_TUNE:-0}" = 1 ]; then
  export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296  # 32 MiB: the most glibc accepts
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "bench_ppo: $ROUNDS rounds of C++ ($BENCH, modes $MODES), eager ($PY${PY2:+, $PY2})${TRL_PY:+, TRL ($TRL_PY)}," \
  "$ITERS iterations each after $WARMUP warm-up, $THREADS threads, alpha ${ALPHA:-1.0}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
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
    "${SHAPE[@]}" --alpha "${ALPHA:-1.0}" "${prof_py[@]}" > "$TMP/py.$r.json"
  if [ -n "$PY2" ]; then
    echo "bench_ppo: round $r/$ROUNDS: Python eager ($PY2) ..."
    "$PY2" bench/ppo_eager.py --tokenizer "$TOKENIZER" --threads "$THREADS" --iters "$ITERS" --warmup "$WARMUP" \
      "${SHAPE[@]}" --alpha "${ALPHA:-1.0}" > "$TMP/py2.$r.json"
  fi
  if [ "$FULL_LOGITS" = 1 ]; then
    echo "bench_ppo: round $r/$ROUNDS: Python eager, TRL-style full-sequence logits ..."
    "$PY" bench/ppo_eager.py --tokenizer "$TOKENIZER" --threads "$THREADS" --iters "$ITERS" --warmup "$WARMUP" \
      "${SHAPE[@]}" --alpha "${ALPHA:-1.0}" --full-logits > "$TMP/full.$r.json"
  fi
  if [ -n "$TRL_PY" ]; then
    [ "${ALPHA:-1.0}" = 1.0 ] || [ "${ALPHA:-1.0}" = 1 ] || die "TRL_PYTHON needs ALPHA=1.0 (TRL keeps every episode)"
    echo "bench_ppo: round $r/$ROUNDS: TRL ..."
    "$TRL_PY" bench/ppo_trl.py --tokenizer "$TOKENIZER" --threads "$THREADS" --iters "$ITERS" --warmup "$WARMUP" \
      "${SHAPE[@]}" > "$TMP/trl.$r.json" 2> "$TMP/trl.$r.err" || { cat "$TMP/trl.$r.err" >&2; die "bench/ppo_trl.py failed"; }
  fi
done

"$PY" - "$TMP" "$ROUNDS" "$MODES" "$PY2" "$FULL_LOGITS" "$TRL_PY" <<'PY'
import collections, json, os, statistics, sys
tmp, rounds, modes, py2, full, trl = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1", sys.argv[6]
def last_json(path):
    return json.loads(open(path).read().strip().splitlines()[-1])
def runs(prefix):
    return [last_json(f"{tmp}/{prefix}.{r}.json") for r in range(1, rounds + 1)]
cpps, pys = runs("cpp"), runs("py")
cols = [("rarlhf C++", cpps, lambda r: r["custom"])]  # (label, runs, stage getter); the first is the reference
if modes == "both":
    cols.append(("C++ no kernels", cpps, lambda r: r["plain"]))
cols.append((f"eager {pys[0]['torch']}", pys, lambda r: r))
if py2:
    cols.append((f"eager {runs('py2')[0]['torch']}", runs("py2"), lambda r: r))
if full:
    cols.append(("eager full-lgt", runs("full"), lambda r: r))
if trl:
    cols.append((f"TRL {runs('trl')[0]['impl'].split()[1]}", runs("trl"), lambda r: r))
cpp = cpps[0]
for label, rs, _ in cols[1:]:
    for key in ("n_layer", "n_embd", "n_head", "batch", "mini_batch", "prompt", "new_tokens", "ppo_epochs", "threads", "keep"):
        if rs[0][key] != cpp[key]:
            sys.exit(f"bench_ppo: {label} ran a different workload: {key} = {rs[0][key]} vs {cpp[key]} (C++)")
def pooled(rs, get):  # stage -> median over every round's iterations
    out = collections.defaultdict(list)
    for run in rs:
        for k, v in get(run)["samples_s"].items():
            out[k] += v
    return {k: statistics.median(v) for k, v in out.items()}, len(out["total"])
med = [pooled(rs, get)[0] for _, rs, get in cols]
n = pooled(cpps, cols[0][2])[1]
print(f"workload: GPT-2 n_layer {cpp['n_layer']}, n_embd {cpp['n_embd']}, n_head {cpp['n_head']}, vocab {cpp['vocab']} "
      f"(random init); B={cpp['batch']}, {cpp['prompt']}-token prompts + {cpp['new_tokens']} new tokens, "
      f"{cpp['ppo_epochs']} PPO epochs x mini-batch {cpp['mini_batch']}, keep {cpp['keep']} of "
      f"{cpp['batch']} episodes (alpha {cpp['alpha']}); {cpp['threads']} threads; median of {n} iterations per column")
names = [("rollout", "rollout (generate)"), ("score", "score (decode + reward)"),
         ("forward", "forward (logprobs, ref, values)"), ("advantage", "rewards+GAE+risk+whiten+KL"),
         ("optimize", "optimize (PPO epochs)"), ("total", "whole iteration")]
def ratio(a, b):
    return f"{b / a:.2f}x" if a > 0 else "n/a"
w = max(12, max(len(c[0]) for c in cols) + 2)
print(f"{'stage':32s}" + "".join(f"{c[0]:>{w}s}" for c in cols) + "   " + "".join(f"{c[0] + ' / C++':>{w + 6}s}" for c in cols[1:]))
for key, label in names:
    print(f"{label:32s}" + "".join(f"{m[key]:{w - 1}.4f}s" for m in med) + "   "
          + "".join(f"{ratio(med[0][key], m[key]):>{w + 6}s}" for m in med[1:]))
cu = statistics.median(r["optimizer_update_s"] for r in cpps)
pu = statistics.median(r["optimizer_update_s"] for r in pys)
lu = statistics.median(r["optimizer_update_libtorch_s"] for r in cpps)
print(f"optimiser update (Adam step, {cpp['updates']} per iteration): C++ fused {cu:.4f}s "
      f"(LibTorch's Adam {lu:.4f}s), eager ({pys[0]['adam']}) {pu:.4f}s -> {cpp['updates'] * cu / med[0]['optimize']:.0%} of the C++ optimize stage")
for (label, _, _), m in zip(cols[1:], med[1:]):
    if label.startswith("eager"):
        print(f"whole iteration: {label} / rarlhf = {m['total'] / med[0]['total']:.2f}x (goal >= 1.5x); "
              f"PPO epochs {m['optimize'] / med[0]['optimize']:.2f}x (goal >= 1x)")
    elif label.startswith("TRL"):
        print(f"whole iteration: {label} / rarlhf = {m['total'] / med[0]['total']:.2f}x (goal >= 2x)")

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
    profs = [(f"C++ {k}", cpps[-1]["profile"][k]) for k in ("custom", "plain") if k in cpps[-1]["profile"]]
    for label, prof in profs + [("Python eager", pys[-1]["profile"])]:
        print(f"profile, {label} (one iteration under the profiler: its overhead inflates small ops):")
        top_ops(prof["trace"], prof["stages_s"])
PY
