#!/usr/bin/env bash
# Downloads the models and datasets of the RA-RLHF paper for real (non-demo) runs, on a machine
# with a network. The offline demo does not need this (see scripts/fetch_assets.sh).
#
#   scripts/download_assets.sh [--dry-run] [--only LIST] [DEST]      (DEST default: ./assets-full)
#     --dry-run   print what would be fetched and where; download nothing
#     --only      comma-separated subset of: gpt2,distilbert-imdb,toxic-bert,imdb,jigsaw,rtp,gpt-j,smollm2
#                 (gpt-j, 12 GB, and smollm2 are fetched only when named)
#   env: HF_TOKEN (optional Hugging Face token), HF_ENDPOINT (default https://huggingface.co),
#        RARLHF_GPTJ_REPO (default ybelkada/gpt-j-6b-sharded-bf16, the repo the paper's GPT-J run loads)
#
# Layout written under DEST (each step is skipped when its files are already there):
#   models/gpt2/              policy: config.json, model.safetensors, vocab.json, merges.txt, tokenizer*.json
#   models/distilbert-imdb/   IMDB reward (lvwerra/distilbert-imdb; reward = logit 1)
#   models/toxic-bert/        Jigsaw/RTP reward (unitary/toxic-bert; reward = -logit 0)
#   models/gpt-j-6b/          the paper's GPT-J policy (ybelkada/gpt-j-6b-sharded-bf16, bf16 shards +
#                             model.safetensors.index.json; configs/paper/imdb-gptj/)
#   models/smollm2-135m/      HuggingFaceTB/SmolLM2-135M, unquantized (the demo's policy without the
#                             GGUF's Q4_1 rounding: --set model.path=assets-full/models/smollm2-135m)
#   data/aclImdb/{train,test}/{pos,neg}/*.txt     data.format=imdb_dir   (Maas et al. 2011)
#   data/jigsaw/{train,test,test_labels}.csv      data.format=jigsaw_csv (Kaggle; needs a login)
#   data/rtp/prompts.jsonl                        data.format=rtp_jsonl  (allenai/real-toxicity-prompts)
#   data/rtp/{train,test}.jsonl                   a fixed split of it: every 8th line is test (the paper's
#                                                 split is not published; its sizes after resampling,
#                                                 57,983 / 8,698, are 87 % / 13 %)
#
# Models are fetched with `hf download` / `huggingface-cli download` when installed, else with curl
# from $HF_ENDPOINT/<repo>/resolve/<revision>/<file>. rarlhf reads safetensors only: where a repo
# has no model.safetensors on main (lvwerra/distilbert-imdb), the Hub's automatic conversion on
# refs/pr/5 is used, and failing that pytorch_model.bin is converted locally (python3 + torch +
# safetensors).
#
# Parquet users (Hugging Face datasets, e.g. stanfordnlp/imdb plain_text/train-00000-of-00001.parquet):
# no Parquet reader exists in Debian, so convert to JSONL once (needs pandas + pyarrow) and use
# data.format=jsonl, data.text_field=text, data.label_field=label:
#   python3 -c "import sys,pandas as pd; pd.read_parquet(sys.argv[1]).to_json(sys.argv[2], orient='records', lines=True, force_ascii=False)" train.parquet train.jsonl
set -euo pipefail

HF_ENDPOINT="${HF_ENDPOINT:-https://huggingface.co}"
IMDB_URL="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5="7c2ac02c03563afcf9b574c7e56c153a"  # aclImdb_v1.tar.gz as published (also pinned by torchtext/paddle)
JIGSAW_COMPETITION="jigsaw-toxic-comment-classification-challenge"
ALL_ASSETS="gpt2,distilbert-imdb,toxic-bert,imdb,jigsaw,rtp"
KNOWN_ASSETS="$ALL_ASSETS,gpt-j,smollm2"

DRY_RUN=0
ONLY="$ALL_ASSETS"
DEST=""
MANUAL=()   # steps the user must finish by hand (reported at the end)
FAILED=()   # steps that failed (exit status 1 at the end)

die() { echo "download_assets: error: $*" >&2; exit 1; }
say() { echo "download_assets: $*"; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --only) [ $# -ge 2 ] || die "--only needs a list ($KNOWN_ASSETS)"; ONLY="$2"; shift ;;
    --only=*) ONLY="${1#--only=}" ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1'; see --help" ;;
    *) [ -z "$DEST" ] || die "one destination folder only (got '$DEST' and '$1')"; DEST="$1" ;;
  esac
  shift
done
DEST="${DEST:-./assets-full}"

IFS=',' read -r -a WANTED <<< "$ONLY"
for w in "${WANTED[@]}"; do
  case ",$KNOWN_ASSETS," in
    *",$w,"*) ;;
    *) die "--only: unknown asset '$w'; choose from $KNOWN_ASSETS" ;;
  esac
done
wanted() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; install it (apt-get install $2) and re-run"; }
if [ "$DRY_RUN" -eq 0 ]; then
  need curl curl
  need tar tar
  need md5sum coreutils
  mkdir -p "$DEST" || die "cannot create $DEST"
fi

HF_CLI=""
if command -v hf >/dev/null 2>&1; then
  HF_CLI="hf"
elif command -v huggingface-cli >/dev/null 2>&1; then
  HF_CLI="huggingface-cli"
fi

# curl with retries, auth when HF_TOKEN is set; writes to a temp file, then renames (atomic).
fetch_url() {  # fetch_url URL OUT
  local url="$1" out="$2" tmp
  tmp="$out.part.$$"
  mkdir -p "$(dirname "$out")"
  local auth=()
  if [ -n "${HF_TOKEN:-}" ] && [[ "$url" == "$HF_ENDPOINT"/* ]]; then
    auth=(-H "Authorization: Bearer $HF_TOKEN")
  fi
  if curl -fL --retry 3 --retry-delay 2 --progress-bar "${auth[@]}" -o "$tmp" "$url"; then
    mv -f "$tmp" "$out"
    return 0
  fi
  rm -f "$tmp"
  return 1
}

# One file of a Hugging Face model repo. Returns 1 (without exiting) when it cannot be fetched.
hf_file() {  # hf_file REPO REVISION FILE DIR
  local repo="$1" rev="$2" file="$3" dir="$4"
  local out="$dir/$file"
  local rev_url="${rev//\//%2F}"
  if [ -s "$out" ]; then
    say "have $out"
    return 0
  fi
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "  fetch $HF_ENDPOINT/$repo/resolve/$rev_url/$file -> $out"
    return 0
  fi
  mkdir -p "$dir"
  if [ -n "$HF_CLI" ]; then
    if "$HF_CLI" download "$repo" "$file" --revision "$rev" --local-dir "$dir" >/dev/null 2>&1 && [ -s "$out" ]; then
      say "got $out ($HF_CLI)"
      return 0
    fi
  fi
  if fetch_url "$HF_ENDPOINT/$repo/resolve/$rev_url/$file" "$out"; then
    say "got $out"
    return 0
  fi
  return 1
}

# A model: required files, optional files, and the safetensors weights (with fallbacks).
get_model() {  # get_model NAME REPO "REQUIRED FILES" "OPTIONAL FILES" "SAFETENSORS REVISIONS"
  local name="$1" repo="$2" required="$3" optional="$4" revisions="$5"
  local dir="$DEST/models/$name" f rev ok
  say "model $repo -> $dir"
  for f in $required; do
    hf_file "$repo" main "$f" "$dir" || { FAILED+=("$repo: $f"); return 0; }
  done
  for f in $optional; do
    hf_file "$repo" main "$f" "$dir" || say "($repo has no $f; fine)"
  done
  if [ "$DRY_RUN" -eq 1 ]; then
    hf_file "$repo" "${revisions%% *}" model.safetensors "$dir"
    echo "    (if missing: model.safetensors from revisions '$revisions', else model.safetensors.index.json + the shards it names, else pytorch_model.bin or its .bin shards converted locally)"
    return 0
  fi
  ok=0
  for rev in $revisions; do
    if hf_file "$repo" "$rev" model.safetensors "$dir"; then ok=1; break; fi
    if get_shards "$repo" "$rev" "$dir"; then ok=1; break; fi
  done
  if [ "$ok" -eq 0 ] && get_bin_shards "$repo" "$dir"; then ok=1; fi
  if [ "$ok" -eq 0 ]; then
    say "$repo: no model.safetensors; converting pytorch_model.bin locally"
    if hf_file "$repo" main pytorch_model.bin "$dir" && convert_bin "$dir"; then
      ok=1
    fi
  fi
  [ "$ok" -eq 1 ] || FAILED+=("$repo: model.safetensors")
}

# The shard names an index's weight_map lists, one per line.
index_shards() {  # index_shards INDEX.json
  grep -o '"[^"]*\.\(safetensors\|bin\)"' "$1" | tr -d '"' | sort -u
}

# A sharded safetensors checkpoint: model.safetensors.index.json and every shard it names.
get_shards() {  # get_shards REPO REVISION DIR
  local repo="$1" rev="$2" dir="$3" shard
  hf_file "$repo" "$rev" model.safetensors.index.json "$dir" || return 1
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "    (then every shard model.safetensors.index.json names)"
    return 0
  fi
  for shard in $(index_shards "$dir/model.safetensors.index.json"); do
    hf_file "$repo" "$rev" "$shard" "$dir" || { FAILED+=("$repo: $shard"); return 0; }
  done
}

# Sharded pytorch_model-*.bin: fetched, each converted to safetensors, and an index written for them.
get_bin_shards() {  # get_bin_shards REPO DIR
  local repo="$1" dir="$2" shard
  [ "$DRY_RUN" -eq 1 ] && return 1
  hf_file "$repo" main pytorch_model.bin.index.json "$dir" || return 1
  if ! python3 -c 'import torch, safetensors' >/dev/null 2>&1; then
    MANUAL+=("convert the pytorch_model-*.bin shards in $dir: pip install torch safetensors, then re-run")
    return 0
  fi
  for shard in $(index_shards "$dir/pytorch_model.bin.index.json"); do
    hf_file "$repo" main "$shard" "$dir" || { FAILED+=("$repo: $shard"); return 0; }
  done
  python3 - "$dir" <<'PY' || { FAILED+=("$repo: converting the .bin shards"); return 0; }
import json, os, sys, torch
from safetensors.torch import save_file
d = sys.argv[1]
index = json.load(open(os.path.join(d, "pytorch_model.bin.index.json")))
renamed = {}
for shard in sorted(set(index["weight_map"].values())):
    out = shard.replace("pytorch_model", "model").replace(".bin", ".safetensors")
    state = torch.load(os.path.join(d, shard), map_location="cpu", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(d, out + ".part"), metadata={"format": "pt"})
    os.replace(os.path.join(d, out + ".part"), os.path.join(d, out))
    renamed[shard] = out
index["weight_map"] = {k: renamed[v] for k, v in index["weight_map"].items()}
with open(os.path.join(d, "model.safetensors.index.json.part"), "w") as f:
    json.dump(index, f, indent=2)
os.replace(os.path.join(d, "model.safetensors.index.json.part"), os.path.join(d, "model.safetensors.index.json"))
PY
  say "converted the .bin shards in $dir to safetensors"
}

# pytorch_model.bin -> model.safetensors (weights_only load: no pickle code runs).
convert_bin() {  # convert_bin DIR
  local dir="$1"
  if ! python3 -c 'import torch, safetensors' >/dev/null 2>&1; then
    MANUAL+=("convert $dir/pytorch_model.bin to model.safetensors: pip install torch safetensors, then re-run")
    return 1
  fi
  python3 - "$dir/pytorch_model.bin" "$dir/model.safetensors" <<'PY'
import sys, torch
from safetensors.torch import save_file
state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
save_file({k: v.contiguous() for k, v in state.items()}, sys.argv[2] + ".part", metadata={"format": "pt"})
import os; os.replace(sys.argv[2] + ".part", sys.argv[2])
PY
}

get_imdb() {
  local dir="$DEST/data" tarball="$DEST/data/aclImdb_v1.tar.gz"
  if [ -d "$dir/aclImdb/train/pos" ] && [ -d "$dir/aclImdb/test/neg" ]; then
    say "have $dir/aclImdb"
    return 0
  fi
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "  fetch $IMDB_URL (md5 $IMDB_MD5, 84 MB) -> $tarball, extract to $dir/aclImdb"
    return 0
  fi
  if [ ! -s "$tarball" ] || [ "$(md5sum "$tarball" | cut -d' ' -f1)" != "$IMDB_MD5" ]; then
    fetch_url "$IMDB_URL" "$tarball" || { FAILED+=("IMDB: $IMDB_URL"); return 0; }
  fi
  if [ "$(md5sum "$tarball" | cut -d' ' -f1)" != "$IMDB_MD5" ]; then
    rm -f "$tarball"
    FAILED+=("IMDB: $tarball has the wrong md5 (expected $IMDB_MD5); removed, re-run")
    return 0
  fi
  tar -xzf "$tarball" -C "$dir" || { FAILED+=("IMDB: extracting $tarball"); return 0; }
  say "extracted $dir/aclImdb"
}

get_jigsaw() {
  local dir="$DEST/data/jigsaw"
  if [ -s "$dir/train.csv" ] && [ -s "$dir/test.csv" ] && [ -s "$dir/test_labels.csv" ]; then
    say "have $dir"
    return 0
  fi
  local how="Kaggle needs an account: accept the rules at https://www.kaggle.com/c/$JIGSAW_COMPETITION/rules,
    create an API token (kaggle.com -> Settings -> API -> Create New Token -> ~/.kaggle/kaggle.json, chmod 600),
    pip install kaggle, and re-run; or download the competition data in a browser and unzip
    train.csv, test.csv and test_labels.csv into $dir"
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "  kaggle competitions download -c $JIGSAW_COMPETITION -p $dir (needs a Kaggle login), unzip train.csv, test.csv, test_labels.csv"
    return 0
  fi
  if ! command -v kaggle >/dev/null 2>&1 ||
     { [ ! -f "$HOME/.kaggle/kaggle.json" ] && [ -z "${KAGGLE_USERNAME:-}" ]; }; then
    MANUAL+=("Jigsaw: $how")
    return 0
  fi
  need unzip unzip
  mkdir -p "$dir"
  if ! kaggle competitions download -c "$JIGSAW_COMPETITION" -p "$dir"; then
    MANUAL+=("Jigsaw: the Kaggle download failed (rules not accepted?). $how")
    return 0
  fi
  unzip -o -q "$dir/$JIGSAW_COMPETITION.zip" -d "$dir"
  local z
  for z in train.csv test.csv test_labels.csv; do
    if [ -f "$dir/$z.zip" ]; then unzip -o -q "$dir/$z.zip" -d "$dir"; fi
    [ -s "$dir/$z" ] || FAILED+=("Jigsaw: $z not found in the Kaggle archive")
  done
  say "unpacked $dir"
}

get_rtp() {
  local out="$DEST/data/rtp/prompts.jsonl"
  local url="$HF_ENDPOINT/datasets/allenai/real-toxicity-prompts/resolve/main/prompts.jsonl"
  if [ -s "$out" ]; then
    say "have $out"
    split_rtp
    return 0
  fi
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "  fetch $url (68 MB) -> $out, then split it into train.jsonl / test.jsonl"
    return 0
  fi
  fetch_url "$url" "$out" && say "got $out" || FAILED+=("RTP: $url")
  split_rtp
}

# prompts.jsonl -> train.jsonl (lines 1-7 of every 8) + test.jsonl (every 8th line), each written to a
# temp file and renamed, so a half-written split is never left behind.
split_rtp() {
  local dir="$DEST/data/rtp"
  [ -s "$dir/prompts.jsonl" ] || return 0
  [ -s "$dir/train.jsonl" ] && [ -s "$dir/test.jsonl" ] && return 0
  awk 'NR % 8 != 0' "$dir/prompts.jsonl" > "$dir/train.jsonl.tmp" &&
    awk 'NR % 8 == 0' "$dir/prompts.jsonl" > "$dir/test.jsonl.tmp" &&
    mv "$dir/train.jsonl.tmp" "$dir/train.jsonl" && mv "$dir/test.jsonl.tmp" "$dir/test.jsonl" &&
    say "split $dir/prompts.jsonl into train.jsonl and test.jsonl (every 8th line)" ||
    FAILED+=("RTP: splitting $dir/prompts.jsonl")
}

[ "$DRY_RUN" -eq 1 ] && say "dry run: nothing is downloaded (destination $DEST)"
GPT2_TOK="vocab.json merges.txt tokenizer.json tokenizer_config.json generation_config.json"
BERT_TOK="vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json"
if wanted gpt2; then get_model gpt2 gpt2 "config.json" "$GPT2_TOK" "main"; fi
if wanted distilbert-imdb; then
  get_model distilbert-imdb lvwerra/distilbert-imdb "config.json" "$BERT_TOK" "main refs/pr/5"
fi
if wanted toxic-bert; then get_model toxic-bert unitary/toxic-bert "config.json" "$BERT_TOK" "main"; fi
if wanted gpt-j; then get_model gpt-j-6b "${RARLHF_GPTJ_REPO:-ybelkada/gpt-j-6b-sharded-bf16}" "config.json" "$GPT2_TOK" "main"; fi
if wanted smollm2; then get_model smollm2-135m HuggingFaceTB/SmolLM2-135M "config.json" "$GPT2_TOK" "main"; fi
if wanted imdb; then get_imdb; fi
if wanted jigsaw; then get_jigsaw; fi
if wanted rtp; then get_rtp; fi

if [ ${#MANUAL[@]} -gt 0 ]; then
  echo
  say "to finish by hand:"
  for m in "${MANUAL[@]}"; do echo "  - $m"; done
fi
if [ ${#FAILED[@]} -gt 0 ]; then
  echo
  for f in "${FAILED[@]}"; do echo "download_assets: error: $f" >&2; done
  exit 1
fi
if [ "$DRY_RUN" -eq 0 ]; then
  echo
  say "done. Example: rarlhf train --config configs/imdb.json --set model.path=$DEST/models/gpt2 \\"
  echo "    --set reward.path=$DEST/models/distilbert-imdb --set data.format=imdb_dir \\"
  echo "    --set data.train_path=$DEST/data/aclImdb/train --set data.test_path=$DEST/data/aclImdb/test"
fi
