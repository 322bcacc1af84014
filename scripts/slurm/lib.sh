# shellcheck shell=bash
# Shared body of the rarlhf Slurm scripts (sourced by *.sbatch): run ONE rarlhf command on ONE
# config with srun, output under runs/<name>/<job id>, and requeue on a time-limit signal until the
# run's DONE marker exists. The *.sbatch files only choose the command and the #SBATCH defaults.
#
# Environment (all optional):
#   RARLHF_BIN          rarlhf binary (default: build/rarlhf, relative to the submit directory)
#   RARLHF_RUN_NAME     runs/<name>/... (default: <config's folder>-<config's name>, e.g. imdb-ra-rlhf)
#   RARLHF_SLURM_SETUP  a bash script sourced in the batch shell before srun (module loads, a venv,
#                       NCCL_SOCKET_IFNAME=...): what it exports reaches every task. Relative to the
#                       submit directory. Missing, or returning non-zero: the job fails, nothing runs.
#   RARLHF_DRY_RUN=1    print the command instead of running it (and check the config if the binary exists)
# Array jobs: task k runs with run.seed=k, job id <array job>_<k>, and "{seed}" in any argument is
# replaced by k (e.g. --set model.path=runs/imdb-sft/123_{seed}/policy).

# Arrays that may be empty expand as ${a[@]+"${a[@]}"}: bash before 4.4 (CentOS/RHEL 7 clusters) calls
# a plain "${a[@]}" of an empty array unbound under set -u.

# rarlhf_setup_hook: sources $RARLHF_SLURM_SETUP when set; one error line and status 1 when it is
# missing or fails. With `check` as $1 it only checks that the file is there (dry run).
rarlhf_setup_hook() {
  local hook=${RARLHF_SLURM_SETUP:-}
  [ -n "$hook" ] || return 0
  if [ ! -f "$hook" ] || [ ! -r "$hook" ]; then
    echo "rarlhf_job: RARLHF_SLURM_SETUP='$hook' is not a readable file (relative to $PWD); not running" >&2
    return 1
  fi
  [ "${1:-}" = check ] && return 0
  # Site scripts (module init, venv activate) are rarely written for `set -u`.
  local had_u=0
  case $- in *u*) had_u=1 ;; esac
  set +u
  # shellcheck disable=SC1090  # the site's own script
  source "$hook"
  local rc=$?
  [ "$had_u" = 1 ] && set -u
  if [ "$rc" -ne 0 ]; then
    echo "rarlhf_job: RARLHF_SLURM_SETUP='$hook' failed with status $rc; not running" >&2
    return 1
  fi
  echo "rarlhf_job: sourced RARLHF_SLURM_SETUP=$hook"
}

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
  # What `scontrol requeue` must name: this job, or for an array task <array job>_<task>. (An array
  # task's own SLURM_JOB_ID would do too, except for the first task, whose SLURM_JOB_ID equals
  # SLURM_ARRAY_JOB_ID, and a bare array job id names the whole array.)
  local requeue_id=${SLURM_JOB_ID:-}
  local seed_sets=()
  local task=${SLURM_ARRAY_TASK_ID:-}
  if [ -n "$task" ]; then
    job=${SLURM_ARRAY_JOB_ID:-$job}_$task
    [ -n "${SLURM_ARRAY_JOB_ID:-}" ] && requeue_id=${SLURM_ARRAY_JOB_ID}_$task
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

  local argv=("$bin" "$cmd" --config "$config" ${seed_sets[@]+"${seed_sets[@]}"} --set "run.out_dir=$out")
  case $cmd in
    train | sft) argv+=(--resume) ;;  # resume from runs/<name>/<job>/checkpoint after a requeue
  esac
  argv+=(${extra[@]+"${extra[@]}"})
  # One task per GPU (#SBATCH --ntasks-per-node); rarlhf reads SLURM_PROCID/NTASKS/LOCALID itself.
  # Since Slurm 22.05 srun no longer inherits the batch job's --cpus-per-task: pass it on, or each
  # task gets one CPU.
  local launcher=(srun --kill-on-bad-exit=1)
  [ -n "${SLURM_CPUS_PER_TASK:-}" ] && launcher+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")

  if [ "${RARLHF_DRY_RUN:-0}" = 1 ]; then
    rarlhf_setup_hook check || return 1
    [ -n "${RARLHF_SLURM_SETUP:-}" ] && printf 'source %q\n' "$RARLHF_SLURM_SETUP"
    printf '%q ' "${launcher[@]}" "${argv[@]}"
    printf '\n'
    if [ -x "$bin" ]; then  # the config must resolve and validate as this job would see it
      "$bin" config --config "$config" ${seed_sets[@]+"${seed_sets[@]}"} --set "run.out_dir=$out" ${sets[@]+"${sets[@]}"} >/dev/null || return 1
    fi
    return 0
  fi

  rarlhf_setup_hook || return 1
  mkdir -p "$out"
  echo "rarlhf_job: $cmd $config -> $out (job ${SLURM_JOB_ID:-none}, restart ${SLURM_RESTART_COUNT:-0}, ${SLURM_NTASKS:-1} tasks x ${SLURM_CPUS_PER_TASK:-?} CPUs)"
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
        echo "rarlhf_job: stopped before the end (checkpointed); requeueing job ${requeue_id:-?}"
        if ! scontrol requeue "${requeue_id:?not running under Slurm}"; then
          # e.g. MaxBatchRequeue reached, or requeue not allowed on this partition
          echo "rarlhf_job: scontrol requeue $requeue_id failed; resubmit to resume from $out/checkpoint" >&2
          return 1
        fi
      fi
      ;;
  esac
  return 0
}
