#!/usr/bin/env bash
# The demo: set up everything that is missing (Python env, servers, model artifacts, image set), then
# run the end-to-end demo on the real Kafka and OpenSearch. Extra arguments go to `imgsearch demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/engines.sh start
bash scripts/setup_models.sh
bash scripts/setup_data.sh
eval "$(bash scripts/engines.sh env)"
export KAFKA_BOOTSTRAP OPENSEARCH_URL
.venv/bin/imgsearch demo "$@"
