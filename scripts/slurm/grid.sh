#!/usr/bin/env bash
# Submits the paper's job grid. For each task (imdb, jigsaw), every submission an array over seeds 0-2:
#   SFT; RLHF and RA-RLHF (seed k starts from SFT seed k: --dependency=aftercorr); the evals of the
#   SFT, RLHF and RA-RLHF policies (each after its training seed); the evals of the two baselines,
#   base GPT-2 (gpt2.json) and GPT-2 with a prompt prefix (gpt2-prompted.json), at once.
# 16 sbatch submissions in all (8 per task), arrays of 3 seeds: 18 training runs + 30 evals. Each is
# named rarlhf-<task>-<method>[-eval] (squeue, slurm-<name>-<array job>_<seed>.out).
#   scripts/slurm/grid.sh                    submit
#   RARLHF_DRY_RUN=1 scripts/slurm/grid.sh   print the sbatch commands only
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

for task in ${RARLHF_TASKS:-imdb jigsaw}; do
  sft=$(submit "$task-sft" "${opts[@]}" scripts/slurm/seeds.sbatch sft "configs/paper/$task/sft.json")
  for method in rlhf ra-rlhf; do
    tr=$(submit "$task-$method" "${opts[@]}" --dependency="aftercorr:$sft" scripts/slurm/seeds.sbatch train \
      "configs/paper/$task/$method.json" --set "model.path=runs/$task-sft/${sft}_{seed}/policy")
    submit "$task-$method-eval" "${eval_opts[@]}" --dependency="aftercorr:$tr" \
      scripts/slurm/seeds.sbatch eval "configs/paper/$task/$method.json" \
      --model "runs/$task-$method/${tr}_{seed}/policy" >/dev/null
  done
  submit "$task-sft-eval" "${eval_opts[@]}" --dependency="aftercorr:$sft" \
    scripts/slurm/seeds.sbatch eval "configs/paper/$task/sft.json" --model "runs/$task-sft/${sft}_{seed}/policy" >/dev/null
  # Baselines: eval only, of the config's own model.path (the base GPT-2); no dependency.
  for baseline in gpt2 gpt2-prompted; do
    submit "$task-$baseline-eval" "${eval_opts[@]}" scripts/slurm/seeds.sbatch eval \
      "configs/paper/$task/$baseline.json" >/dev/null
  done
done
if [ "${RARLHF_DRY_RUN:-0}" = 1 ]; then
  echo "grid: dry run, nothing submitted" >&2
else
  echo "grid: submitted (squeue -u \$USER); outputs under runs/<task>-<method>/<array job>_<seed>" >&2
fi
