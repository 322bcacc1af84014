#!/usr/bin/env bash
# Regenerates tests/text/golden/gpt2_golden.json: the JS reference GPT-2 tokenizer (npm
# gpt-3-encoder@1.1.4, installed into a temp dir) encodes edge cases and a sample of the review texts
# in ../shared/data. The C++ BpeTokenizer must reproduce every id (tests/text/bpe_tokenizer_test.cpp).
#   scripts/make_tokenizer_golden.sh            (RARLHF_SHARED_DATA=/path/to/shared/data to override)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${RARLHF_SHARED_DATA:-../shared/data}"
OUT=tests/text/golden/gpt2_golden.json
command -v npm >/dev/null || { echo "make_tokenizer_golden: npm not found; install nodejs + npm (apt-get install nodejs npm)" >&2; exit 1; }
[ -d "$DATA/uci-sentiment-sentences" ] || { echo "make_tokenizer_golden: $DATA/uci-sentiment-sentences missing; set RARLHF_SHARED_DATA" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
npm install --prefix "$TMP" --no-save --no-audit --no-fund --silent gpt-3-encoder@1.1.4 >/dev/null 2>"$TMP/npm.err" ||
  { echo "make_tokenizer_golden: npm install gpt-3-encoder@1.1.4 failed (registry unreachable?): $(tail -1 "$TMP/npm.err")" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
NODE_PATH="$TMP/node_modules" node scripts/gpt2_encoder_ref.js golden "$DATA" > "$TMP/golden.json"
mv "$TMP/golden.json" "$OUT"
echo "make_tokenizer_golden: wrote $OUT ($(wc -c < "$OUT") bytes, $(grep -c '"ids"' "$OUT") cases)"
