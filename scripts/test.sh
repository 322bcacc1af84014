#!/usr/bin/env bash
# Build (incrementally) and run the whole test suite with CTest. Extra args go to ctest,
# e.g. scripts/test.sh -R Tokenizer   or   scripts/test.sh -L cuda (GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
# Relative paths in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="$PWD"
if [ ! -f build/CMakeCache.txt ]; then
  echo "test: no build/ yet; run scripts/setup.sh first" >&2
  exit 2
fi
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
