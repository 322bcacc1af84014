# shellcheck shell=bash
# Shared body of the rarlhf Slurm scripts (sourced by *.sbatch): run ONE rarlhf command on ONE
# config with srun, output under runs/<name>/<job id>, and requeue on a time-limit signal until the
# run's DONE marker exists. The *.sbatch files only choose the command and the #SBATCH defaults.
#
# Environment (all optional):
#   RARLHF_BIN       rarlhf binary (default: build/rarlhf, relative to the submit directory)
#   RARLHF_RUN_NAME  runs/<name>/... (default: <config's folder>-<config's name>, e.g. imdb-ra-rlhf)
#   RARLHF_DRY_RUN=1 print the command instead of running it (and check the config if the binary exists)
# Array jobs: task k runs with run.seed=k, job id <array job>_<k>, and "{seed}" in any argument is
# replaced by k (e.g. --set model.path=runs/imdb-sft/123_{seed}/policy).

# rarlhf_job COMMAND CONFIG [ARGS...]
rarlhf_job() {
  if [ $# -lt 2 ]; then
    echo "usage: sbatch $0 CONFIG [rarlhf options...]" >&2
    return 2
  fi
  local cmd=$1 config=$2
  shift 2
  cd "${SLURM_SUBMIT_DIR:-$PWD}" || return 1
  local bin=${RARLHF_BIN:-build/rarlhf}
  if [ ! -f "$config" ]; then
    echo "rarlhf_job: config '$config' not found (relative to $PWD)" >&2
    return 2
  fi
  local folder base
  folder=$(basename "$(dirname "$config")")
  base=$(basename "$config" .json)
  local name=${RARLHF_RUN_NAME:-$folder-$base}
  local job=${SLURM_JOB_ID:-local}
  local seed_sets=()
  local task=${SLURM_ARRAY_TASK_ID:-}
  if [ -n "$task" ]; then
    job=${SLURM_ARRAY_JOB_ID:-$job}_$task
    seed_sets=(--set "run.seed=$task")
  fi
  local out=runs/$name/$job

  # Caller's arguments with {seed} substituted; the --set pairs among them are kept for the check.
  local extra=() sets=() prev=""
  local a
  for a in "$@"; do
    a=${a//\{seed\}/${task:-0}}
    extra+=("$a")
    [ "$prev" = "--set" ] && sets+=(--set "$a")
    prev=$a
  done

  local argv=("$bin" "$cmd" --config "$config" "${seed_sets[@]}" --set "run.out_dir=$out")
  case $cmd in
    train | sft) argv+=(--resume) ;;  # resume from runs/<name>/<job>/checkpoint after a requeue
  esac
  argv+=("${extra[@]}")
  # One task per GPU (#SBATCH --ntasks-per-node); rarlhf reads SLURM_PROCID/NTASKS/LOCALID itself.
  local launcher=(srun --kill-on-bad-exit=1)

  if [ "${RARLHF_DRY_RUN:-0}" = 1 ]; then
    printf '%q ' "${launcher[@]}" "${argv[@]}"
    printf '\n'
    if [ -x "$bin" ]; then  # the config must resolve and validate as this job would see it
      "$bin" config --config "$config" "${seed_sets[@]}" --set "run.out_dir=$out" "${sets[@]}" >/dev/null || return 1
    fi
    return 0
  fi

  mkdir -p "$out"
  echo "rarlhf_job: $cmd $config -> $out (job ${SLURM_JOB_ID:-none}, ${SLURM_NTASKS:-1} tasks)"
  # --signal=USR1@120 goes to the job step (rarlhf checkpoints and exits 0); the batch shell itself
  # must survive a stray USR1 to requeue.
  trap 'echo "rarlhf_job: USR1 received by the batch shell"' USR1
  "${launcher[@]}" "${argv[@]}"
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "rarlhf_job: rarlhf $cmd failed with status $rc; not requeueing" >&2
    return "$rc"
  fi
  case $cmd in
    train | sft)
      if [ ! -f "$out/DONE" ]; then
        echo "rarlhf_job: stopped before the end (checkpointed); requeueing job ${SLURM_JOB_ID:-?}"
        scontrol requeue "${SLURM_JOB_ID:?not running under Slurm}"
      fi
      ;;
  esac
  return 0
}
