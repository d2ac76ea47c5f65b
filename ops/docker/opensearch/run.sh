#!/bin/bash
# Entrypoint of the local OpenSearch image: every environment variable with a dot in its name is an
# OpenSearch setting (-Ekey=value), as in the official image; DISABLE_SECURITY_PLUGIN and
# DISABLE_INSTALL_DEMO_CONFIG are accepted and mean nothing here (this distribution has no security plugin).
set -euo pipefail
args=()
while IFS= read -r -d '' kv; do
  name=${kv%%=*}
  [[ $name == *.* ]] && args+=("-E$kv")
done < <(env -0)
[[ " ${args[*]:-} " == *" -Ehttp.port="* ]] || args+=("-Ehttp.port=${OPENSEARCH_HTTP_PORT:-9200}")
[[ " ${args[*]:-} " == *" -Enetwork.host="* ]] || args+=("-Enetwork.host=0.0.0.0")
exec /usr/share/opensearch/bin/opensearch -Epath.data=/usr/share/opensearch/data -Epath.logs=/usr/share/opensearch/logs "${args[@]}" "$@"
