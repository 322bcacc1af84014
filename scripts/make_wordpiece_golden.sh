#!/usr/bin/env bash
# Regenerates tests/text/golden/wordpiece_{vocab.txt,golden.json} with transformers.js
# (npm @xenova/transformers@2.17.2, installed into a temp dir with --ignore-scripts, never committed).
# Usage: scripts/make_wordpiece_golden.sh [shared-data-dir]   (default: ../shared/data)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-$repo/../shared/data}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --silent --ignore-scripts --no-audit --no-fund @xenova/transformers@2.17.2 >/dev/null)
cp "$repo/scripts/make_wordpiece_golden.mjs" "$tmp/"
(cd "$tmp" && node make_wordpiece_golden.mjs "$data" "$repo/tests/text/golden")
