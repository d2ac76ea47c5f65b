#!/usr/bin/env bash
# Sets up the Python environment (.venv): every dependency (main + dev extras, build tools, pip)
# from requirements.lock, hash-checked, then the project itself, editable. Idempotent.
# Python 3.11-3.13 (3.11 preferred; PYTHON=/path/to/python picks one). Refresh the lock with
# bash scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
supported='import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)'

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "$supported"; then
      PY=$(command -v "$cand"); break
    fi
  done
fi
[ -n "$PY" ] || { echo "[setup] Python 3.11, 3.12 or 3.13 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
"$PY" -c "$supported" || { echo "[setup] $PY is not Python 3.11-3.13" >&2; exit 1; }

stamp=.venv/.imgsearch-setup
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "python environment up to date (.venv)"
  exit 0
fi
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "$supported"; then
  say "removing .venv: its Python is not 3.11-3.13"; rm -rf .venv
fi
[ -x .venv/bin/python ] || { say "creating .venv with $PY ($("$PY" -V 2>&1))"; "$PY" -m venv .venv; }
say "installing the locked dependencies into .venv, hash-checked (requirements.lock; pip cache: ~/.cache/pip)"
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
say "installing the project (editable, no further dependencies)"
log=.venv/imgsearch-editable-install.log  # setuptools' generic editable-install notice goes here
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . >"$log" 2>&1 \
  || { cat "$log" >&2; exit 1; }
.venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check >&2; exit 1; }
echo "$want" > "$stamp"
say "done"
