#!/usr/bin/env bash
# The test command: sets up what is missing (Python env, servers, model artifacts), then runs lint,
# type checks and the whole test suite (unit + integration on the real Kafka and OpenSearch).
# The servers are left running for the next run; stop them with: bash scripts/engines.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --dev
bash scripts/engines.sh start
bash scripts/setup_models.sh --reference-data >/dev/null  # + the Tux Paint stamps and oxygen (bench smoke, regeneration test)
bash scripts/setup_data.sh --smoke >/dev/null  # the shipped heads' check and the cross-style pipeline test
bash scripts/setup_browser.sh
bash scripts/docker_engine.sh start  # tests/docker (issue 18): Debian's docker.io, installed and started as root when missing

echo "[test] ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] mypy"
.venv/bin/mypy
echo "[test] pytest: unit and integration"
.venv/bin/pytest "$@"
