#!/usr/bin/env bash
# Regenerates tests/reward/golden/vader_golden.json with the reference JS VADER
# (npm vader-sentiment@1.1.3, installed into a temp dir, never committed).
# Usage: scripts/make_vader_golden.sh [shared-data-dir]   (default: ../shared/data)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-$repo/../shared/data}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund vader-sentiment@1.1.3 >/dev/null)
cp "$repo/scripts/make_vader_golden.js" "$tmp/"
(cd "$tmp" && node make_vader_golden.js "$data" "$repo/tests/reward/golden/vader_golden.json")
