#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian: debootstraps a minimal root (Debian 13 trixie
# by default, or 12 bookworm), puts a clean clone of this checkout's HEAD at /src/main in it, the
# repo's ../shared read-only at /src/shared (tests read ../shared/data), and runs
# `scripts/setup.sh && scripts/test.sh` there as root. Prints each phase's time; exits with the tests'
# status. Needs root and deb.debian.org (and npm's registry for the demo assets).
#   nice -n 15 scripts/check_fresh_debian.sh [trixie|bookworm] [DIR]
# DIR (default /var/tmp/rarlhf-debian-<suite>) is reused if it was bootstrapped before: the apt
# packages stay, the clone and its build are made anew. Uncommitted changes are not tested.
set -euo pipefail
SUITE="${1:-trixie}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${2:-/var/tmp/rarlhf-debian-$SUITE}"
SHARED="${RARLHF_SHARED:-$REPO/../shared}"
MIRROR="${RARLHF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "check_fresh_debian: error: $*" >&2; exit 1; }
log() { echo "check_fresh_debian: $*"; }
case "$SUITE" in trixie|bookworm) ;; *) die "suite '$SUITE': expected trixie or bookworm" ;; esac
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"
[ -d "$SHARED/data" ] || die "$SHARED/data not found; set RARLHF_SHARED to the folder that holds data/"
SHARED="$(cd "$SHARED" && pwd)"

timings=()
phase_start=0
begin() { phase_start=$SECONDS; log "== $1"; }
end() { timings+=("$1: $((SECONDS - phase_start)) s"); log "== $1 took $((SECONDS - phase_start)) s"; }

mounted=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" ||
      echo "check_fresh_debian: warning: could not unmount ${mounted[$i]}" >&2
  done
  mounted=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# mount_at TARGET ARGS...: mount (if TARGET is not a mount point yet) and remember it for cleanup.
mount_at() {
  local target="$1"
  shift
  mkdir -p "$target"
  if mountpoint -q "$target"; then
    umount "$target" || die "$target is mounted already (a run still going?) and cannot be unmounted"
  fi
  mount "$@" "$target"
  mounted+=("$target")
}

begin debootstrap
if [ -f "$ROOT/.rarlhf-bootstrapped" ]; then
  log "reusing $ROOT ($(cat "$ROOT/etc/debian_version"))"
else
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  fi
  mkdir -p "$ROOT"
  debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
  touch "$ROOT/.rarlhf-bootstrapped"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# CAs this host added (a TLS-intercepting proxy's, a site's): without them npm and https downloads in
# the root fail (SELF_SIGNED_CERT_IN_CHAIN). The ca-certificates package, once setup.sh installs it,
# folds them into the root's bundle.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  if [ -x "$ROOT/usr/sbin/update-ca-certificates" ]; then
    chroot "$ROOT" /usr/sbin/update-ca-certificates >/dev/null
  fi
  log "copied this host's added CAs: $(cd /usr/local/share/ca-certificates && echo ./*.crt)"
fi
end debootstrap

begin clone
head="$(git -C "$REPO" rev-parse HEAD)"
[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no)" ] ||
  log "note: $REPO has uncommitted changes; testing the commit $head only"
for m in "$ROOT/src/main" "$ROOT/src/shared"; do
  ! mountpoint -q "$m" || umount "$m" || die "$m is still mounted"
done
rm -rf "$ROOT/src/main"
mkdir -p "$ROOT/src"
git clone -q --no-checkout "$REPO" "$ROOT/src/main"
git -C "$ROOT/src/main" checkout -q --detach "$head"
log "HEAD $(git -C "$ROOT/src/main" log -1 --format='%h %s' | cut -c1-100)"
end clone

mount_at "$ROOT/proc" -t proc proc
mount_at "$ROOT/sys" -t sysfs sys
mount_at "$ROOT/dev" --bind /dev
mount_at "$ROOT/dev/pts" --bind /dev/pts
mount_at "$ROOT/dev/shm" -t tmpfs -o mode=1777 shm
mount_at "$ROOT/src/shared" --bind "$SHARED"
mount -o remount,bind,ro "$ROOT/src/shared"

# A clean environment, as a new root shell would have (plus any proxy settings).
ENV=(HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -z "${!v:-}" ] || ENV+=("$v=${!v}")
done
in_root() { chroot "$ROOT" /usr/bin/env -i "${ENV[@]}" /bin/bash -c "cd /src/main && $1"; }

begin "scripts/setup.sh"
in_root scripts/setup.sh || die "scripts/setup.sh failed in $ROOT (after $((SECONDS - phase_start)) s)"
end "scripts/setup.sh"

begin "scripts/test.sh"
status=0
in_root scripts/test.sh 2>&1 | tee "$ROOT/src/test.log" || status=$?
end "scripts/test.sh"

log "Debian $(cat "$ROOT/etc/debian_version") ($SUITE), $(in_root 'g++ --version | head -1'), $(in_root 'build/rarlhf --version')"
log "tests: $(grep -E 'tests passed|tests failed' "$ROOT/src/test.log" | tail -1)," \
    "$(grep -c '(Skipped)' "$ROOT/src/test.log" || true) skipped (log: $ROOT/src/test.log)"
log "timings: $(IFS=';'; echo "${timings[*]}")"
exit "$status"
