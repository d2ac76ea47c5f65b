#!/usr/bin/env bash
# Sets up the Python environment (.venv) from a hash-checked lock, then the project itself, editable.
#   bash scripts/setup.sh          the runtime (requirements.lock): what the demo and serving need
#   bash scripts/setup.sh --dev    the runtime + the test tools (requirements-dev.lock): the test command
# The installer is uv (pinned and hash-checked in the lock: the interpreter's pip installs it first into
# ~/.cache/imgsearch/tools, ~20 MB), which
# downloads in parallel and keeps its wheel cache in ~/.cache/uv (UV_CACHE_DIR), so a second clone
# installs without downloading. Idempotent; a .venv set up with --dev stays so (a plain run keeps it).
# Python 3.11-3.13 (3.11 preferred; PYTHON=/path/to/python picks one). Refresh both locks with
# bash scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
LOCK=requirements.lock
stamp=.venv/.imgsearch-setup
case "${1:-}" in
  --dev) LOCK=requirements-dev.lock ;;
  "") [ -f "$stamp" ] && grep -q ' requirements-dev.lock$' "$stamp" && LOCK=requirements-dev.lock ;;
  *) echo "[setup] unknown argument: $1 (--dev or nothing)" >&2; exit 2 ;;
esac
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

want="$(cat pyproject.toml "$LOCK" | sha256sum | cut -c1-16) $LOCK"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "python environment up to date (.venv)"
  exit 0
fi
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "$supported"; then
  say "removing .venv: its Python is not 3.11-3.13"; rm -rf .venv
fi
# uv first: its own pinned, hash-checked lines of the lock, installed with the interpreter's pip into
# ~/.cache/imgsearch/tools/uv-<version> (once per machine); the venv is then made without pip (ensurepip
# took a minute on a loaded machine) and uv installs everything, pip included (it is in the lock)
uvreq=$(mktemp --suffix=.req); trap 'rm -f "$uvreq"' EXIT
awk '/^uv==/ {on=1; print; next} on && /^[[:space:]]/ {if ($1 !~ /^#/) print; next} {on=0}' requirements.lock > "$uvreq"
grep -q -- '--hash=sha256:' "$uvreq" || { echo "[setup] requirements.lock has no hashed uv pin" >&2; exit 1; }
UVV=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$uvreq")
TOOLS=${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}/tools/uv-$UVV
UV=$TOOLS/bin/uv
if [ -x .venv/bin/uv ] && .venv/bin/uv --version 2>/dev/null | grep -q "^uv $UVV\b"; then
  UV=.venv/bin/uv
elif ! "$UV" --version >/dev/null 2>&1; then
  if "$PY" -m pip --version >/dev/null 2>&1; then
    say "installing uv $UVV (pinned, hash-checked) with $PY's pip into $TOOLS"
    rm -rf "$TOOLS.tmp"
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps --require-hashes --target "$TOOLS.tmp" -r "$uvreq"
    rm -rf "$TOOLS"; mv "$TOOLS.tmp" "$TOOLS"
  else  # an interpreter without pip: a venv with ensurepip's pip installs uv into .venv
    [ -x .venv/bin/python ] || { say "creating .venv with $PY ($("$PY" -V 2>&1))"; "$PY" -m venv .venv; }
    say "installing uv $UVV (pinned, hash-checked) with pip into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r "$uvreq"
    UV=.venv/bin/uv
  fi
fi
[ -x .venv/bin/python ] || { say "creating .venv with $PY ($("$PY" -V 2>&1)), uv installs pip"; "$PY" -m venv --without-pip .venv; }
say "installing $LOCK into .venv with uv, hash-checked (cache: ${UV_CACHE_DIR:-~/.cache/uv})"
synclog=.venv/imgsearch-uv-sync.log
VIRTUAL_ENV=$PWD/.venv "$UV" pip sync --require-hashes --python .venv/bin/python "$LOCK" >"$synclog" 2>&1 \
  || { cat "$synclog" >&2; echo "[setup] uv pip sync $LOCK failed (log: $synclog)" >&2; exit 1; }
say "  $(grep -E '^(Prepared|Installed|Uninstalled) ' "$synclog" | tr '\n' ' ')"
say "installing the project (editable, no further dependencies)"
log=.venv/imgsearch-editable-install.log  # setuptools' generic editable-install notice goes here
VIRTUAL_ENV=$PWD/.venv "$UV" pip install --python .venv/bin/python --no-deps --no-build-isolation -e . \
  >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
.venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check >&2; exit 1; }
echo "$want" > "$stamp"
say "done"
