#!/usr/bin/env bash
# Cold first-run measurement of imgsearch (issue 17): a fresh clone, an empty HOME (so ~/.cache/imgsearch,
# ~/.cache/uv, ~/.cache/pip, ~/.m2 and .venv are all cold), engine ports of its own; wall time, exit code,
# bytes received on the network interface (machine-wide: other traffic at the same time is counted too),
# load averages before/during/after, per-phase times (demo.sh's .demo-logs/*.rc), what is left on disk.
#
#   bash scripts/first_run_measure.sh [--test] [--branch main] [--repo .] [--dir /tmp/frcold]
#
#   --test    measure the test command (scripts/test.sh) instead of the demo (scripts/demo.sh)
#   --branch  the branch to clone (default: main)   --repo   where to clone it from (this repository)
#   --dir     working directory, wiped first (default /tmp/frcold-<demo|test>)
# Ports: the plain pair 24092/24093/24200/24300, the secured pair 24094/24095/24201/24301 (override with
# KAFKA_PORT etc. in the environment). The engines it started are stopped at the end. With --test, the
# fault tests also start the cluster mode on CLUSTER_KAFKA_PORT/CLUSTER_KAFKA_CONTROLLER_PORT/
# CLUSTER_OPENSEARCH_PORT/CLUSTER_OPENSEARCH_TRANSPORT_PORT (engines.sh's defaults 19092/19093/19200/19300
# unless exported): export free ones first on a shared machine.
set -uo pipefail
WHAT=demo BRANCH=main SRC=$(cd "$(dirname "$0")/.." && pwd) DIR=
while [[ $# -gt 0 ]]; do
  case $1 in
    --test) WHAT=test ;;
    --branch) BRANCH=$2; shift ;;
    --repo) SRC=$2; shift ;;
    --dir) DIR=$2; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
DIR=${DIR:-/tmp/frcold-$WHAT}
# the interface of the default route (eth0 here); IFACE=... overrides
IFACE=${IFACE:-$(ip route show default 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')}
IFACE=${IFACE:-eth0}
rx() { awk -v i="$IFACE:" '$1==i {print $2}' /proc/net/dev; }

rm -rf "$DIR"; mkdir -p "$DIR/home"
git clone -q --branch "$BRANCH" "$SRC" "$DIR/repo" || exit 1
export HOME=$DIR/home XDG_CACHE_HOME=$DIR/home/.cache
export PIP_CACHE_DIR=$HOME/.cache/pip UV_CACHE_DIR=$HOME/.cache/uv IMGSEARCH_CACHE=$HOME/.cache/imgsearch
export IMGSEARCH_DATA=$DIR/repo/.engines
unset PIP_FIND_LINKS UV_FIND_LINKS PIP_NO_CACHE_DIR
export KAFKA_PORT=${KAFKA_PORT:-24092} KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-24093}
export OPENSEARCH_PORT=${OPENSEARCH_PORT:-24200} OPENSEARCH_TRANSPORT_PORT=${OPENSEARCH_TRANSPORT_PORT:-24300}
export SECURE_KAFKA_PORT=${SECURE_KAFKA_PORT:-24094} SECURE_KAFKA_CONTROLLER_PORT=${SECURE_KAFKA_CONTROLLER_PORT:-24095}
export SECURE_OPENSEARCH_PORT=${SECURE_OPENSEARCH_PORT:-24201}
export SECURE_OPENSEARCH_TRANSPORT_PORT=${SECURE_OPENSEARCH_TRANSPORT_PORT:-24301}
unset KAFKA_BOOTSTRAP OPENSEARCH_URL
cd "$DIR/repo" || exit 1
OUT=$DIR/measure.txt
{
  echo "# $WHAT, branch $BRANCH ($(git rev-parse --short HEAD)), $(date -u +%Y-%m-%dT%H:%M:%SZ), iface $IFACE"
  echo "uptime before: $(uptime)"
} > "$OUT"
( while true; do echo "$(date +%s) $(rx) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 5; done ) > "$DIR/samples.log" &
SAMPLER=$!
RX0=$(rx); T0=$(date +%s.%N)
if [[ $WHAT == demo ]]; then CMD=(bash scripts/demo.sh); else CMD=(bash scripts/test.sh -q -p no:cacheprovider); fi
"${CMD[@]}" 2>&1 | while IFS= read -r l; do printf '%s %s\n' "$(date +%H:%M:%S)" "$l"; done > "$DIR/$WHAT.log"
RC=${PIPESTATUS[0]}
T1=$(date +%s.%N); RX1=$(rx)
kill "$SAMPLER" 2>/dev/null
bash scripts/engines.sh stop >/dev/null 2>&1
IMGSEARCH_SECURE=1 IMGSEARCH_DATA=$DIR/repo/.engines-secure bash scripts/engines.sh stop >/dev/null 2>&1
{
  echo "uptime after: $(uptime)"
  echo "exit $RC; wall $(awk -v a="$T0" -v b="$T1" 'BEGIN {s=b-a; printf "%d min %d s (%.0f s)", s/60, s%60, s}')"
  echo "received on $IFACE: $(( (RX1 - RX0) / 1000000 )) MB (machine-wide)"
  echo "load average (1 min) during the run: $(awk '{s+=$3; n++; if ($3>m) m=$3} END {printf "mean %.2f, max %.2f over %d samples", s/n, m, n}' "$DIR/samples.log")"
  for f in .demo-logs/*.rc; do [[ -f $f ]] && echo "phase $(basename "$f" .rc): exit/seconds $(cat "$f")"; done
  grep -h "demo .*set-up done\|^\S* \[python\] \[setup\]   \|Prepared\|done in" "$DIR/$WHAT.log" | tail -n 12
  debs=0; for d in "$IMGSEARCH_CACHE"/debian/*/ "$IMGSEARCH_CACHE"/debs/*.deb; do
    [[ -e $d ]] || continue; p=$(basename "$d"); p=${p%%_*}
    debs=$(( debs + $(apt-cache show "$p" 2>/dev/null | awk '/^Size:/ {print $2; exit}') ))
  done
  echo "by source (from what is cached): Debian .debs $(( debs / 1000000 )) MB (apt's sizes)," \
    "weight wheels $(du -sm "$IMGSEARCH_CACHE/wheels" 2>/dev/null | cut -f1) MB," \
    "Maven repository $(du -sm "$IMGSEARCH_CACHE/m2" 2>/dev/null | cut -f1) MB + engine artifacts $(du -sm "$IMGSEARCH_CACHE/engines" 2>/dev/null | cut -f1) MB (on disk)"
  echo "on disk:"; du -sh "$HOME/.cache"/* .venv .engines* 2>/dev/null | sed 's/^/  /'
  du -sh "$IMGSEARCH_CACHE"/* 2>/dev/null | sed 's/^/  imgsearch: /'
  tail -n 5 "$DIR/$WHAT.log" | sed 's/^/  log: /'
} >> "$OUT"
cat "$OUT"
exit "$RC"
