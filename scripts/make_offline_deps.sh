#!/usr/bin/env bash
# Copies this machine's Debian headers of nlohmann-json, CLI11, spdlog and fmt, and the GoogleTest
# sources and ICU, into an ignored folder (default .deps/) so that a machine without network and without
# these packages (e.g. a GPU node with only a CUDA LibTorch) can build rarlhf:
#   cmake -S . -B build-gpu $(scripts/make_offline_deps.sh --cmake-args .deps)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--cmake-args" ]; then
  d=$(cd "${2:-.deps}" && pwd)
  for n in NLOHMANN_JSON CLI11 SPDLOG; do printf -- '-DFETCHCONTENT_SOURCE_DIR_%s=%s/include ' "$n" "$d"; done
  printf -- '-DFETCHCONTENT_SOURCE_DIR_GOOGLETEST=%s/googletest -DICU_ROOT=%s/icu ' "$d" "$d"
  printf -- '-DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON '
  printf -- '-DCMAKE_DISABLE_FIND_PACKAGE_spdlog=ON -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON\n'
  exit 0
fi
out=${1:-.deps}
rm -rf "$out" && mkdir -p "$out/include"
for h in nlohmann CLI spdlog fmt; do
  [ -d "/usr/include/$h" ] || { echo "make_offline_deps: /usr/include/$h missing; run scripts/setup.sh first" >&2; exit 1; }
  cp -r "/usr/include/$h" "$out/include/"
done
[ -d /usr/src/googletest ] || { echo "make_offline_deps: /usr/src/googletest missing (libgtest-dev)" >&2; exit 1; }
cp -r /usr/src/googletest "$out/googletest"
# ICU (Unicode categories for the tokenizers): headers + the shared libraries, found via ICU_ROOT.
mkdir -p "$out/icu/include" "$out/icu/lib"
cp -r /usr/include/unicode "$out/icu/include/"
for l in icuuc icudata icui18n; do cp -a /usr/lib/x86_64-linux-gnu/lib$l.so* "$out/icu/lib/"; done
echo "make_offline_deps: wrote $out ($(du -sh "$out" | cut -f1))"
