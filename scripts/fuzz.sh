#!/usr/bin/env bash
# Runs the libFuzzer harnesses (fuzz/fuzz_<reader>.cpp) for a while each and reports executions
# and findings (issue #19; docs/fuzzing.md has the last results).
#   scripts/fuzz.sh [seconds per harness, default 600] [harness ...]   e.g. scripts/fuzz.sh 60 config
# Builds build-asan/ (clang, ASan + UBSan + libFuzzer coverage; the same build scripts/sanitize.sh
# tests) and runs up to nproc harnesses at once, each from its committed seeds fuzz/corpus/<name>
# plus what earlier runs on this machine kept (build-asan/fuzz/<name>/corpus). A finding (crash,
# sanitizer report, leak, timeout, non-rarlhf exception, multi-line error, broken round trip) is
# saved as build-asan/fuzz/<name>/crash-* and the script exits 1; reproduce one with
#   build-asan/fuzz_<name> build-asan/fuzz/<name>/crash-...
# RARLHF_FUZZ_UPDATE=1 afterwards replaces fuzz/corpus/<name> with the merged, minimised corpus
# (seed-* and regress-* files kept) for committing.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-600}"
shift || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(safetensors config tokenizer dataset gguf)
BUILD="${RARLHF_ASAN_BUILD:-build-asan}"
export RARLHF_ASAN_BUILD="$BUILD"

# Build (and clang) through sanitize.sh's set-up, without running the tests.
RARLHF_SANITIZE_BUILD_ONLY=1 scripts/sanitize.sh
cmake --build "$BUILD" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${HARNESSES[@]}")

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

run_one() {
  local name="$1" out="$BUILD/fuzz/$1"
  mkdir -p "$out/corpus"
  local dict=()
  [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
  "$BUILD/fuzz_$name" "$out/corpus" "fuzz/corpus/$name" "${dict[@]}" -max_total_time="$SECS" \
    -timeout=20 -rss_limit_mb=2560 -max_len=16384 -print_final_stats=1 -artifact_prefix="$out/" \
    > "$out/log.txt" 2>&1
}

pids=()
running=0
for name in "${HARNESSES[@]}"; do
  [ -x "$BUILD/fuzz_$name" ] || { echo "fuzz: no harness fuzz/fuzz_$name.cpp" >&2; exit 2; }
  run_one "$name" &
  pids+=($!)
  running=$((running + 1))
  if [ "$running" -ge "$(nproc)" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

status=0
printf '%-12s %8s %12s %10s %8s %s\n' harness seconds executions exec/s corpus findings
for name in "${HARNESSES[@]}"; do
  out="$BUILD/fuzz/$name"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log.txt" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/log.txt" | tail -1)
  corpus=$(find "$out/corpus" -type f | wc -l)
  findings=$(find "$out" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  printf '%-12s %8s %12s %10s %8s %s\n' "$name" "$SECS" "${execs:-?}" "${rate:-?}" "$corpus" "$findings"
  if [ "$findings" -gt 0 ] || [ -z "$execs" ]; then
    status=1
    echo "fuzz: $name: see $out/log.txt" >&2
    grep -m1 -E 'FINDING|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$out/log.txt" >&2 || true
  fi
done

if [ "${RARLHF_FUZZ_UPDATE:-0}" = 1 ] && [ "$status" = 0 ]; then
  for name in "${HARNESSES[@]}"; do
    out="$BUILD/fuzz/$name" merged="$BUILD/fuzz/$name/merged"
    rm -rf "$merged" && mkdir -p "$merged"
    # Greedy set cover over edges (not hit counts): a few hundred files per harness rather than
    # thousands, every edge the run reached still covered.
    "$BUILD/fuzz_$name" -set_cover_merge=1 -use_counters=0 "$merged" "fuzz/corpus/$name" "$out/corpus" \
      > "$out/merge.txt" 2>&1
    find "fuzz/corpus/$name" -type f ! -name 'seed-*' ! -name 'regress-*' -delete
    # libFuzzer names corpus files by the SHA-1 of their bytes: skip the ones kept by name already.
    seeds=$(for f in "fuzz/corpus/$name"/seed-* "fuzz/corpus/$name"/regress-*; do
      [ -f "$f" ] && sha1sum < "$f" | cut -d' ' -f1
    done)
    for f in "$merged"/*; do
      grep -qx "$(basename "$f")" <<< "$seeds" || cp "$f" "fuzz/corpus/$name/"
    done
    echo "fuzz: fuzz/corpus/$name: $(find "fuzz/corpus/$name" -type f | wc -l) files, $(du -sh "fuzz/corpus/$name" | cut -f1)"
  done
fi
exit "$status"
