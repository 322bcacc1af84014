#!/usr/bin/env bash
# Start N ranks of a data-parallel command on this machine, torchrun-style:
#   scripts/launch_local.sh N CMD [ARGS...]     e.g. scripts/launch_local.sh 2 build/rarlhf train --config c.json
# Each rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR (127.0.0.1 unless set)
# and MASTER_PORT (a free port unless set). SIGTERM/SIGINT/SIGUSR1 are forwarded to every rank (so
# `rarlhf train` checkpoints and exits). When a rank fails, the others are stopped (TERM, then KILL
# after LAUNCH_GRACE_S seconds, default 10) and its exit code is returned; 0 when all succeed.
# On a cluster, use srun instead: rarlhf reads SLURM_PROCID / SLURM_NTASKS itself.
set -uo pipefail

if [ $# -lt 2 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 N CMD [ARGS...]   (N >= 1 local ranks)" >&2
  exit 2
fi
N=$1
shift
GRACE=${LAUNCH_GRACE_S:-10}

free_port() {
  # Ask the kernel for an unused port; fall back to a random high port.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

export MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
export MASTER_PORT=${MASTER_PORT:-$(free_port)}
export WORLD_SIZE=$N LOCAL_WORLD_SIZE=$N

pids=()
for ((r = 0; r < N; r++)); do
  RANK=$r LOCAL_RANK=$r "$@" &
  pids+=($!)
done

forward() {
  local sig=$1
  for p in "${pids[@]}"; do kill -s "$sig" "$p" 2>/dev/null; done
}
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward USR1' USR1

stop_all() {
  forward TERM
  local waited=0
  while [ "$waited" -lt "$GRACE" ]; do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return
    sleep 1
    waited=$((waited + 1))
  done
  forward KILL
}

# Poll each rank (portable to bash 4): a rank that is gone is reaped with `wait PID` for its status.
done_count=0
declare -A reaped=()
while [ "$done_count" -lt "$N" ]; do
  for p in "${pids[@]}"; do
    [ -n "${reaped[$p]:-}" ] && continue
    kill -0 "$p" 2>/dev/null && continue
    wait "$p"
    rc=$?
    reaped[$p]=1
    done_count=$((done_count + 1))
    if [ "$rc" -ne 0 ]; then
      echo "launch_local: rank with pid $p exited with status $rc; stopping the others" >&2
      stop_all
      wait
      exit "$rc"
    fi
  done
  sleep 0.2
done
exit 0
