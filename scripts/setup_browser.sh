#!/usr/bin/env bash
# Sets up what the browser tests (tests/e2e) need, idempotently: Debian's chromium and chromedriver
# (apt; no browser download by a tool), and the Python packages of the gateway and the tests
# (selenium, prometheus_client) in .venv if they are not there yet.
#
#   bash scripts/setup_browser.sh
#   .venv/bin/pytest tests/e2e -q -p no:cacheprovider
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup-browser] %s\n' "$*"; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  say "chromium and chromedriver already installed ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "[setup-browser] need root (or sudo) for apt-get" >&2; exit 1; }
    SUDO=sudo
  fi
  command -v apt-get >/dev/null 2>&1 || { echo "[setup-browser] apt-get not found: install chromium + chromedriver yourself" >&2; exit 1; }
  say "installing chromium and chromedriver from Debian (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >/dev/null
  say "installed $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
fi

[ -x .venv/bin/python ] || bash scripts/setup.sh
if .venv/bin/python -c 'import selenium, prometheus_client' 2>/dev/null; then
  say "selenium and prometheus_client present in .venv"
else
  say "installing selenium and prometheus_client into .venv"
  .venv/bin/python -m pip install -q "selenium>=4.20" "prometheus_client>=0.20"
fi
say "done"
