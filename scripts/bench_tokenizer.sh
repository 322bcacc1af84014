#!/usr/bin/env bash
# Tokenizer speed vs the JS reference: runs the JS GPT-2 encoder (npm gpt-3-encoder@1.1.4, node) and
# bench/tokenizer_bench.cpp on the same texts (UCI sentences + IMDB reviews from ../shared/data) in one
# run and prints MB/s of both (CPU time; first pass with an empty cache, and warm) and the ratios.
#   scripts/bench_tokenizer.sh [BUILD_DIR]    (default build; RARLHF_SHARED_DATA overrides ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
DATA="${RARLHF_SHARED_DATA:-../shared/data}"
BENCH="$BUILD/tokenizer_bench"
die() { echo "bench_tokenizer: error: $*" >&2; exit 1; }
[ -x "$BENCH" ] || die "$BENCH not built; run: cmake --build $BUILD --target tokenizer_bench"
command -v node >/dev/null || die "node not found; install nodejs + npm"
[ -d "$DATA/uci-sentiment-sentences" ] || die "$DATA/uci-sentiment-sentences missing; set RARLHF_SHARED_DATA"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# The JS reference: from the tarball fetch_assets.sh keeps (offline), else from the registry.
SRC="gpt-3-encoder@1.1.4"
TGZ="${RARLHF_ASSETS_DIR:-assets}/.tarballs/gpt-3-encoder-1.1.4.tgz"
[ -f "$TGZ" ] && SRC="$(cd "$(dirname "$TGZ")" && pwd)/$(basename "$TGZ")"
npm install --prefix "$TMP" --no-save --no-audit --no-fund --loglevel=error "$SRC" >/dev/null 2>"$TMP/npm.err" ||
  die "npm install $SRC failed (registry unreachable? run scripts/fetch_assets.sh first): $(grep -m1 -E 'Error|code' "$TMP/npm.err")"

node scripts/gpt2_encoder_ref.js corpus "$DATA" > "$TMP/corpus.json"
echo "bench_tokenizer: JS reference (gpt-3-encoder@1.1.4, node $(node --version)) ..."
NODE_PATH="$TMP/node_modules" node scripts/gpt2_encoder_ref.js bench "$TMP/corpus.json" 5 > "$TMP/js.json"
echo "bench_tokenizer: C++ BpeTokenizer ($BENCH) ..."
RARLHF_BENCH_CORPUS="$TMP/corpus.json" RARLHF_SHARED_DATA="$DATA" "$BENCH" \
  --benchmark_filter='BM_Encode(Warm|Cold)' --benchmark_min_time=2 --benchmark_format=json > "$TMP/cpp.json" 2>/dev/null

node - "$TMP/js.json" "$TMP/cpp.json" <<'JS'
const fs = require('fs');
const js = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
const cpp = JSON.parse(fs.readFileSync(process.argv[3], 'utf-8'));
const rate = name => {
  const b = cpp.benchmarks.find(x => x.name.startsWith(name));
  if (!b) throw new Error('no ' + name + ' in the C++ benchmark output');
  return b.bytes_per_second / 1e6;
};
const warm = rate('BM_EncodeWarm'), cold = rate('BM_EncodeCold');
const f = x => x.toFixed(2).padStart(9);
console.log(`corpus: ${js.texts} texts, ${(js.bytes / 1e6).toFixed(2)} MB, ${js.tokens} tokens (UCI sentences + IMDB reviews)`);
console.log('                         JS ref MB/s   C++ MB/s     ratio');
console.log(`encode, cold cache      ${f(js.cold_mb_s)}  ${f(cold)}  ${f(cold / js.cold_mb_s)}x`);
console.log(`encode, warm cache      ${f(js.warm_mb_s)}  ${f(warm)}  ${f(warm / js.warm_mb_s)}x`);
console.log(`goal >= 10x: ${Math.min(cold / js.cold_mb_s, warm / js.warm_mb_s) >= 10 ? 'met' : 'NOT met'} (CPU time, one thread each)`);
JS
