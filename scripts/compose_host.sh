#!/usr/bin/env bash
# docker-compose on the host network (issue 18): docker-compose.yml + docker-compose.host.yml, rendered
# once by `docker-compose config` into one file without the published ports (Docker refuses port
# bindings on the host network, and an override file can add keys but not remove them), then
# docker-compose with that file. Arguments go to docker-compose:
#   eval "$(bash scripts/docker_images.sh env)"; export KAFKA_PORT=23092 ...   # images, ports
#   bash scripts/compose_host.sh -p imgsearch up -d
#   bash scripts/compose_host.sh -p imgsearch down --volumes
# The rendered file: $COMPOSE_HOST_FILE (default <repo>/.compose-host.yml, rewritten on every call).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${COMPOSE_HOST_FILE:-$REPO/.compose-host.yml}
PY=$REPO/.venv/bin/python; [[ -x $PY ]] || PY=python3
docker-compose -f "$REPO/docker-compose.yml" -f "$REPO/docker-compose.host.yml" config \
  | "$PY" -c '
import sys, yaml
doc = yaml.safe_load(sys.stdin)
for svc in doc["services"].values():
    if svc.get("network_mode") == "host":
        svc.pop("ports", None)
        svc.pop("hostname", None)
yaml.safe_dump(doc, open(sys.argv[1], "w"), sort_keys=False)
' "$OUT"
project=()
# the project name defaults to the repo directory's name, as with docker-compose.yml itself
[[ " $* " == *" -p "* || -n ${COMPOSE_PROJECT_NAME:-} ]] || project=(-p "$(basename "$REPO" | tr -cd 'a-z0-9_-')")
exec docker-compose "${project[@]}" --project-directory "$REPO" -f "$OUT" "$@"
