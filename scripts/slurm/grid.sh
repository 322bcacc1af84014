#!/usr/bin/env bash
# Submits the paper's job grid: for each task (imdb, jigsaw), SFT over seeds 0-2, then RLHF and
# RA-RLHF over the same seeds (seed k starts from SFT seed k: --dependency=aftercorr), then the eval of
# each trained policy. 2 tasks x 3 seeds x (SFT, RLHF, RA-RLHF) = 18 training runs + 12 evals.
#   scripts/slurm/grid.sh                    submit
#   RARLHF_DRY_RUN=1 scripts/slurm/grid.sh   print the sbatch commands only
# Cluster values (all optional): RARLHF_SLURM_PARTITION, RARLHF_SLURM_ACCOUNT,
# RARLHF_SLURM_GPUS_PER_NODE (default 1; also the tasks per node), RARLHF_SLURM_NODES (default 1),
# RARLHF_SLURM_TIME (default: each script's), RARLHF_TASKS (default "imdb jigsaw"), RARLHF_SEEDS (default 0-2).
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
  if [ "${RARLHF_DRY_RUN:-0}" = 1 ]; then
    printf '%q ' sbatch "$@" >&2
    printf '\n' >&2
    echo "JOB_$name"
  else
    sbatch "$@"
  fi
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
done
if [ "${RARLHF_DRY_RUN:-0}" = 1 ]; then
  echo "grid: dry run, nothing submitted" >&2
else
  echo "grid: submitted (squeue -u \$USER); outputs under runs/<task>-<method>/<array job>_<seed>" >&2
fi
