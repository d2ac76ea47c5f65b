#!/bin/bash
# Entrypoint of the local Kafka image: KAFKA_* environment -> server.properties (the official image's
# convention: strip KAFKA_, lower case, ___ -> '-', __ -> '_', _ -> '.'), format on first start, run.
set -euo pipefail
conf=/opt/kafka/config/server.properties
skip=" KAFKA_HEAP_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_OPTS KAFKA_LOG4J_OPTS KAFKA_VERSION KAFKA_GC_LOG_OPTS "
: >"$conf"
have_log_dirs=0
while IFS='=' read -r name value; do
  [[ $name == KAFKA_* && $skip != *" $name "* ]] || continue
  key=${name#KAFKA_}; key=${key,,}; key=${key//___/-}; key=${key//__/@}; key=${key//_/.}; key=${key//@/_}
  [[ $key == log.dirs ]] && have_log_dirs=1
  printf '%s=%s\n' "$key" "$value" >>"$conf"
done < <(env)
(( have_log_dirs )) || echo "log.dirs=/var/lib/kafka/data" >>"$conf"
: "${CLUSTER_ID:?CLUSTER_ID is required (kafka-storage random-uuid)}"
java_opts=(${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} ${KAFKA_OPTS:-} -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties
  -Dkafka.logs.dir=/tmp/kafka-logs)
java "${java_opts[@]}" -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$conf" --ignore-formatted
exec java "${java_opts[@]}" -cp '/opt/kafka/libs/*' kafka.Kafka "$conf"
