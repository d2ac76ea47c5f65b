#!/usr/bin/env bash
# The Docker engine for the Docker path's tests (issue 18; docs/operations.md "Issue 18: Docker").
#
#   scripts/docker_engine.sh start    install Debian's docker.io + docker-compose (v1) if missing, start
#                                     dockerd if no daemon answers, wait until `docker info` answers
#   scripts/docker_engine.sh status   exit 0 only if a Docker daemon answers
#   scripts/docker_engine.sh stop     stop the dockerd this script started (its pid file), nothing else
#
# Any daemon that already answers (DOCKER_HOST, /var/run/docker.sock) is used as it is. Starting one needs
# root (apt-get, dockerd); without root, or if dockerd cannot start, `start` fails loudly with the
# daemon's log. Environment: DOCKERD_LOG (/var/log/imgsearch-dockerd.log), DOCKERD_PIDFILE
# (/var/run/imgsearch-dockerd.pid), DOCKER_START_TIMEOUT (60s).
set -euo pipefail
LOG=${DOCKERD_LOG:-/var/log/imgsearch-dockerd.log}
PIDFILE=${DOCKERD_PIDFILE:-/var/run/imgsearch-dockerd.pid}
TIMEOUT=${DOCKER_START_TIMEOUT:-60}
log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { printf '[docker-engine] ERROR: %s\n' "$*" >&2; exit 1; }
answers() { docker info >/dev/null 2>&1; }

install() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  (( ${#missing[@]} )) || return 0
  [[ $EUID -eq 0 ]] || die "missing ${missing[*]} and not root: apt-get install ${missing[*]} (as root)"
  log "apt-get install ${missing[*]} ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
}

start() {
  install
  if answers; then log "a Docker daemon answers ($(docker info -f '{{.ServerVersion}}'))"; return 0; fi
  [[ $EUID -eq 0 ]] || die "no Docker daemon answers and starting dockerd needs root"
  log "starting dockerd (log: $LOG) ..."
  # setsid: the daemon outlives this shell and the CI job's process group
  setsid nohup dockerd --pidfile "$PIDFILE" >>"$LOG" 2>&1 </dev/null &
  local t0=$SECONDS
  until answers; do
    (( SECONDS - t0 < TIMEOUT )) || { tail -n 30 "$LOG" >&2; die "dockerd did not answer within ${TIMEOUT}s (log above: $LOG)"; }
    sleep 1
  done
  log "dockerd $(docker info -f '{{.ServerVersion}}') answers ($(( SECONDS - t0 ))s; storage $(docker info -f '{{.Driver}}'), cgroup v$(docker info -f '{{.CgroupVersion}}'))"
}

stop() {
  local pid; pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || { log "no dockerd started by this script is running"; return 0; }
  kill -TERM "$pid"; local t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do (( SECONDS - t0 < 30 )) || { kill -KILL "$pid"; break; }; sleep 1; done
  log "dockerd stopped"
}

case ${1:-start} in
  start) start ;;
  status) answers ;;
  stop) stop ;;
  *) die "usage: $0 start|status|stop" ;;
esac
