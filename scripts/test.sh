#!/usr/bin/env bash
# The test command: sets up what is missing (Python env, servers, model artifacts), then runs lint,
# type checks and the whole test suite (unit + integration on the real Kafka and OpenSearch).
# The servers are left running for the next run; stop them with: bash scripts/engines.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/engines.sh start
bash scripts/setup_models.sh >/dev/null
bash scripts/setup_browser.sh

# the open_clip backend needs torch: its tests run in the (cached) model-build environment
BUILD_VENV="${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}/model-build-venv"
if [ ! -x "$BUILD_VENV/bin/python" ]; then
  echo "[test] $BUILD_VENV is missing: run bash scripts/setup_models.sh --force" >&2; exit 1
fi
if [ ! -f "$BUILD_VENV/.openclip-tests" ]; then
  echo "[test] installing open_clip_torch and pytest into $BUILD_VENV"
  "$BUILD_VENV/bin/pip" install -q "open_clip_torch==3.3.0" pytest
  touch "$BUILD_VENV/.openclip-tests"
fi

echo "[test] ruff"
.venv/bin/ruff check .
echo "[test] mypy"
.venv/bin/mypy
echo "[test] pytest: open_clip backend (model-build environment, random weights)"
PYTHONPATH="$PWD" "$BUILD_VENV/bin/python" -m pytest tests/torch -q -p no:cacheprovider -c /dev/null --rootdir "$PWD"
echo "[test] pytest: unit and integration"
.venv/bin/pytest "$@"
