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

# the open_clip backend needs torch, which set-up no longer installs: its tests run only in a torch
# environment named by IMGSEARCH_TORCH_PYTHON (with open_clip_torch and pytest); the ONNX CLIP backend
# replaces them (issue 17)
if [ -n "${IMGSEARCH_TORCH_PYTHON:-}" ]; then
  echo "[test] pytest: open_clip backend ($IMGSEARCH_TORCH_PYTHON, random weights)"
  PYTHONPATH="$PWD" "$IMGSEARCH_TORCH_PYTHON" -m pytest tests/torch -q -p no:cacheprovider -c /dev/null --rootdir "$PWD"
else
  echo "[test] tests/torch (open_clip backend) NOT run: no torch environment (set IMGSEARCH_TORCH_PYTHON)"
fi

echo "[test] ruff"
.venv/bin/ruff check .
echo "[test] mypy"
.venv/bin/mypy
echo "[test] pytest: unit and integration"
.venv/bin/pytest "$@"
