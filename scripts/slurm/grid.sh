#!/usr/bin/env bash
# Submits the paper's job grid. For each task (imdb, jigsaw), every submission an array over seeds 0-2:
#   SFT; RLHF and RA-RLHF (seed k starts from SFT seed k: --dependency=aftercorr); the evals of the
#   SFT, RLHF and RA-RLHF policies (each after its training seed); the evals of the two baselines,
#   base GPT-2 (gpt2.json) and GPT-2 with a prompt prefix (gpt2-prompted.json), at once.
# 16 sbatch submissions in all (8 per task), arrays of 3 seeds: 18 training runs + 30 evals. Each is
# named rarlhf-<task>-<method>[-eval] (squeue, slurm-<name>-<array job>_<seed>.out).
#   scripts/slurm/grid.sh                    submit
#   RARLHF_DRY_RUN=1 scripts/slurm/grid.sh   print the sbatch commands only
# It also writes a sweep manifest naming every eval.json and metrics.jsonl the jobs will write (relative
# to this checkout, recorded as the manifest's "base"), into
# ${RARLHF_GRID_DIR:-runs/grid-<first job id>}/sweep.json; once the jobs are done,
#   build/rarlhf sweep --aggregate runs/grid-<id>
# tabulates them as `rarlhf sweep` does (mean +- std over seeds, KL, Pareto plot).
# Cluster values (all optional): RARLHF_SLURM_PARTITION, RARLHF_SLURM_ACCOUNT,
# RARLHF_SLURM_GPUS_PER_NODE (default 1; also the tasks per node), RARLHF_SLURM_NODES (default 1),
# RARLHF_SLURM_TIME (default: each script's), RARLHF_TASKS (default "imdb jigsaw"), RARLHF_SEEDS (default 0-2).
# The jobs themselves read RARLHF_BIN and RARLHF_SLURM_SETUP (see lib.sh) from this environment.
set -euo pipefail
cd "$(dirname "$0")/../.."

gpus=${RARLHF_SLURM_GPUS_PER_NODE:-1}
common=(--parsable --array="${RARLHF_SEEDS:-0-2}")
[ -n "${RARLHF_SLURM_PARTITION:-}" ] && common+=(--partition="$RARLHF_SLURM_PARTITION")
[ -n "${RARLHF_SLURM_ACCOUNT:-}" ] && common+=(--account="$RARLHF_SLURM_ACCOUNT")
[ -n "${RARLHF_SLURM_TIME:-}" ] && common+=(--time="$RARLHF_SLURM_TIME")
# Training: data-parallel, one task per GPU. Eval: one task on one GPU.
opts=("${common[@]}" --nodes="${RARLHF_SLURM_NODES:-1}" --gpus-per-node="$gpus" --ntasks-per-node="$gpus")
eval_opts=("${common[@]}" --nodes=1 --gpus-per-node=1 --ntasks-per-node=1)

submit() {  # submit NAME SBATCH_ARGS... ; echoes the job id (a placeholder in a dry run)
  local name=$1
  shift
  set -- --job-name="rarlhf-$name" "$@"
  if [ "${RARLHF_DRY_RUN:-0}" = 1 ]; then
    printf '%q ' sbatch "$@" >&2
    printf '\n' >&2
    echo "JOB_$name"
    return 0
  fi
  local reply id
  if ! reply=$(sbatch "$@"); then
    echo "grid: sbatch failed for $name; stopping (the jobs listed above stay submitted)" >&2
    exit 1
  fi
  # --parsable prints "jobid" or, on a multi-cluster site, "jobid;cluster".
  id=${reply%%;*}
  if ! [[ $id =~ ^[0-9]+$ ]]; then
    echo "grid: sbatch for $name printed '$reply', not a job id; stopping (the jobs listed above stay submitted)" >&2
    exit 1
  fi
  echo "grid: $name -> $id" >&2
  echo "$id"
}

# The seeds of the arrays ("0-2", "0,3,7", "0-4%2": ranges and lists; a %throttle is dropped). Slurm's
# step syntax (0-10:2) and anything else are refused: the manifest must name the seeds that run.
seed_list() {
  local spec=${1%%%*} part v out=() parts
  IFS=, read -ra parts <<<"$spec"
  for part in "${parts[@]}"; do
    if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]] && ((BASH_REMATCH[1] <= BASH_REMATCH[2])); then
      for ((v = BASH_REMATCH[1]; v <= BASH_REMATCH[2]; v++)); do out+=("$v"); done
    elif [[ $part =~ ^[0-9]+$ ]]; then
      out+=("$part")
    else
      echo "grid: RARLHF_SEEDS='$1': '$part' is not a seed or a range like 0-2 (lists: 0,3,7; throttle: 0-4%2)" >&2
      return 1
    fi
  done
  [ ${#out[@]} -gt 0 ] || { echo "grid: RARLHF_SEEDS='$1' names no seed" >&2; return 1; }
  echo "${out[@]}"
}
seeds=$(seed_list "${RARLHF_SEEDS:-0-2}") || exit 2  # checked before anything is submitted
json_escape() { local s=${1//\\/\\\\}; printf '%s' "${s//\"/\\\"}"; }
cells=()  # the manifest's cells, one per task and seed
for task in ${RARLHF_TASKS:-imdb jigsaw}; do
  declare -A eval_of=() metrics_of=()
  sft=$(submit "$task-sft" "${opts[@]}" scripts/slurm/seeds.sbatch sft "configs/paper/$task/sft.json")
  for method in rlhf ra-rlhf; do
    tr=$(submit "$task-$method" "${opts[@]}" --dependency="aftercorr:$sft" scripts/slurm/seeds.sbatch train \
      "configs/paper/$task/$method.json" --set "model.path=runs/$task-sft/${sft}_{seed}/policy")
    ev=$(submit "$task-$method-eval" "${eval_opts[@]}" --dependency="aftercorr:$tr" \
      scripts/slurm/seeds.sbatch eval "configs/paper/$task/$method.json" \
      --model "runs/$task-$method/${tr}_{seed}/policy")
    eval_of[$method]="runs/$task-$method/${ev}_{seed}/eval-test/eval.json"
    metrics_of[$method]="runs/$task-$method/${tr}_{seed}/metrics.jsonl"
  done
  ev=$(submit "$task-sft-eval" "${eval_opts[@]}" --dependency="aftercorr:$sft" \
    scripts/slurm/seeds.sbatch eval "configs/paper/$task/sft.json" --model "runs/$task-sft/${sft}_{seed}/policy")
  eval_of[sft]="runs/$task-sft/${ev}_{seed}/eval-test/eval.json"
  # Baselines: eval only, of the config's own model.path (the base GPT-2); no dependency.
  for baseline in gpt2 gpt2-prompted; do
    ev=$(submit "$task-$baseline-eval" "${eval_opts[@]}" scripts/slurm/seeds.sbatch eval \
      "configs/paper/$task/$baseline.json")
    eval_of[$baseline]="runs/$task-$baseline/${ev}_{seed}/eval-test/eval.json"
  done
  [ -n "${grid_id:-}" ] || grid_id=$sft
  for seed in $seeds; do
    evals="" metrics=""
    for m in gpt2 gpt2-prompted sft rlhf ra-rlhf; do evals+="${evals:+, }\"$m\": \"${eval_of[$m]//\{seed\}/$seed}\""; done
    for m in rlhf ra-rlhf; do metrics+="${metrics:+, }\"$m\": \"${metrics_of[$m]//\{seed\}/$seed}\""; done
    cells+=("{\"point\": \"$task\", \"settings\": {\"task\": \"$task\"}, \"seed\": $seed, \"evals\": {$evals}, \"metrics\": {$metrics}}")
  done
  unset eval_of metrics_of
done
if [ "${RARLHF_DRY_RUN:-0}" != 1 ]; then
  grid_dir=${RARLHF_GRID_DIR:-runs/grid-$grid_id}
  mkdir -p "$grid_dir"
  {
    printf '{"grid": [{"key": "task", "values": ['
    first=1
    for task in ${RARLHF_TASKS:-imdb jigsaw}; do printf '%s"%s"' "$([ $first = 1 ] || echo ', ')" "$task"; first=0; done
    printf ']}],\n "trained": ["rlhf", "ra-rlhf"], "reference": "sft", "kl_last": 10,\n'
    # The jobs' paths are relative to this folder (their submit directory).
    printf ' "base": "%s",\n "cells": [\n' "$(json_escape "$PWD")"
    for i in "${!cells[@]}"; do printf '  %s%s\n' "${cells[$i]}" "$([ "$i" -lt $((${#cells[@]} - 1)) ] && echo ,)"; done
    printf ' ]}\n'
  } >"$grid_dir/sweep.json.tmp"
  mv "$grid_dir/sweep.json.tmp" "$grid_dir/sweep.json"
  echo "grid: manifest $grid_dir/sweep.json; when the jobs are done: build/rarlhf sweep --aggregate $grid_dir" >&2
fi
if [ "${RARLHF_DRY_RUN:-0}" = 1 ]; then
  echo "grid: dry run, nothing submitted" >&2
else
  echo "grid: submitted (squeue -u \$USER); outputs under runs/<task>-<method>/<array job>_<seed>" >&2
fi
