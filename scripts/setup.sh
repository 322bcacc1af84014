#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for rarlhf and build it (Release) into build/.
# Idempotent: re-running only installs what is missing and rebuilds what changed.
#   scripts/setup.sh                 install deps + demo assets, configure, build
#   RARLHF_SKIP_APT=1 scripts/setup.sh    skip apt (deps already installed)
#   RARLHF_CMAKE_ARGS="-DCMAKE_PREFIX_PATH=/path/to/libtorch" scripts/setup.sh   (CUDA LibTorch)
set -euo pipefail
cd "$(dirname "$0")/.."
# Relative paths in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="$PWD"

PKGS=(build-essential cmake ninja-build ccache git pkg-config
      libtorch-dev libopenblas0-pthread nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev libgloo-dev libicu-dev
      libsentencepiece-dev sentencepiece shellcheck
      python3 python3-torch python3-matplotlib python3-numpy)

if [ -z "${RARLHF_SKIP_APT:-}" ]; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm fetches the demo assets. A machine whose Node.js comes from elsewhere (e.g. NodeSource,
  # which bundles npm and conflicts with Debian's npm package) already has it: keep that one.
  command -v npm >/dev/null || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

if [ -x scripts/fetch_assets.sh ]; then
  scripts/fetch_assets.sh
fi

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  # shellcheck disable=SC2086
  cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release ${RARLHF_CMAKE_ARGS:-}
fi
cmake --build build -j "$(nproc)"
echo "setup: built build/rarlhf ($(build/rarlhf --version))"
