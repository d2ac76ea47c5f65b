#!/usr/bin/env bash
# The demo: set up everything that is missing (Python env, servers, model artifacts, image set), then
# run the end-to-end demo on the real Kafka and OpenSearch. Extra arguments go to `imgsearch demo`.
#
# The set-up phases run concurrently where they are independent (most of their time is downloads):
# the servers (engines.sh start: Maven Central) alongside the Python env (setup.sh: PyPI), then the
# model build (setup_models.sh) alongside the demo collection (setup_data.sh: Debian) once .venv is
# there. Each phase's lines are prefixed with its name; its whole log is in .demo-logs/<phase>.log,
# and if one fails the others are stopped and its last lines are shown.
set -euo pipefail
cd "$(dirname "$0")/.."

LOGS=.demo-logs
mkdir -p "$LOGS"
T0=$(date +%s)
declare -A PIDS=()
say() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

start_phase() {  # start_phase <name> <command...>: in the background, prefixed lines, log in $LOGS/<name>.log
  local name=$1; shift
  (
    set -o pipefail
    t=$(date +%s)
    "$@" 2>&1 | tee "$LOGS/$name.log" | sed -u "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    echo "$rc $(( $(date +%s) - t ))" > "$LOGS/$name.rc"
    exit "$rc"
  ) &
  PIDS[$name]=$!
  say "started $name (log: $LOGS/$name.log)"
}

stop_all() {
  local n
  for n in "${!PIDS[@]}"; do pkill -TERM -P "${PIDS[$n]}" 2>/dev/null || true; kill "${PIDS[$n]}" 2>/dev/null || true; done
}

wait_phase() {  # wait_phase <name>: its exit status; on failure stop the others and show its log's tail
  local name=$1 rc=0
  wait "${PIDS[$name]}" || rc=$?
  unset "PIDS[$name]"
  if [[ $rc -ne 0 ]]; then
    say "FAILED: $name (exit $rc); its last lines ($LOGS/$name.log):"
    tail -n 20 "$LOGS/$name.log" | sed 's/^/    /'
    stop_all
    exit "$rc"
  fi
  say "$name done in $(cut -d' ' -f2 "$LOGS/$name.rc")s"
}
trap 'stop_all' INT TERM

start_phase engines bash scripts/engines.sh start
start_phase python bash scripts/setup.sh
wait_phase python
start_phase models bash scripts/setup_models.sh
start_phase data bash scripts/setup_data.sh
wait_phase models
wait_phase data
wait_phase engines
say "set-up done in $(( $(date +%s) - T0 ))s; running the demo"
eval "$(bash scripts/engines.sh env)"
export KAFKA_BOOTSTRAP OPENSEARCH_URL
.venv/bin/imgsearch demo "$@"
