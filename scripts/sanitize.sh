#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer (issue #19): builds
# build-asan/ with clang (-fsanitize=address,undefined, UBSan findings fatal, libFuzzer coverage so
# scripts/fuzz.sh reuses the same build) and runs ctest there. Extra args go to ctest, e.g.
#   scripts/sanitize.sh -R Safetensors
# Needs clang and its runtimes: apt-get install clang libclang-rt-dev (scripts/fuzz.sh installs them
# the same way). LibTorch, ICU and GoogleTest are not instrumented; LeakSanitizer is on.
# Takes ~3x the time of scripts/test.sh on 2 cores, so it is not part of CI; docs/fuzzing.md has the
# last run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD"
BUILD="${RARLHF_ASAN_BUILD:-build-asan}"

ensure_clang() {
  if command -v clang++ > /dev/null && clang++ -fsanitize=fuzzer -x c++ -o /dev/null - <<< \
       'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' 2> /dev/null; then
    return
  fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang libclang-rt-dev
  else
    echo "sanitize: clang with libFuzzer and the sanitizer runtimes is needed: apt-get install clang libclang-rt-dev (as root)" >&2
    exit 2
  fi
}
ensure_clang

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  GEN=()
  command -v ninja > /dev/null && GEN=(-G Ninja)
  read -r -a EXTRA <<< "${RARLHF_CMAKE_ARGS:-}"
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRARLHF_SANITIZE=address,undefined -DRARLHF_FUZZ=ON -DRARLHF_BUILD_BENCH=OFF "${EXTRA[@]}"
fi
[ "${RARLHF_SANITIZE_BUILD_ONLY:-0}" = 1 ] && exit 0  # scripts/fuzz.sh: configured, clang present
cmake --build "$BUILD" -j "$(nproc)"

# halt_on_error: the first report fails the test that caused it. The tests spawn the instrumented
# rarlhf binary, which inherits these.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
# clang's OpenMP runtime is libomp, LibTorch's libgomp: CMake finds no OpenMP for clang here, so this
# build compiles our CPU kernels serially and the one test that checks they run in parallel is left
# out (scripts/test.sh runs it).
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" -LE cuda -E '^CpuKernels.ParallelForUsesTheThreadsSet$' "$@"
