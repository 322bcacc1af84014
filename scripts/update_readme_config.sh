#!/usr/bin/env bash
# Regenerates the configuration reference in README.md from `rarlhf config --doc`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/rarlhf}
doc=$("$bin" config --doc)
DOC="$doc" python3 - <<'PY'
import os
s = open("README.md").read()
b, e = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
i, j = s.index(b) + len(b), s.index(e)
open("README.md.tmp", "w").write(s[:i] + os.environ["DOC"] + "\n" + s[j:])
os.replace("README.md.tmp", "README.md")
PY
echo "README.md: configuration reference updated"
