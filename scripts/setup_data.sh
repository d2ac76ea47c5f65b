#!/usr/bin/env bash
# Build the "subject x style" icon dataset from Debian icon themes (see docs/datasets.md).
#
#   scripts/setup_data.sh            apt-get update if apt does not know the theme packages yet,
#                                    install rsvg-convert (librsvg2-bin) if missing, build the dataset,
#                                    print its directory on stdout (progress goes to stderr)
#   scripts/setup_data.sh --sheet    also (re)write docs/img/icons-dataset.png
#
# Idempotent: the .debs are fetched once into $IMGSEARCH_CACHE/debian/<pkg>/ (apt-get download +
# dpkg -x, nothing installed system-wide except librsvg2-bin), and the build is a no-op while
# $IMGSEARCH_CACHE/datasets/icons-v1/manifest.json matches the builder version.
#
# Environment: IMGSEARCH_CACHE (~/.cache/imgsearch), PYTHON (<repo>/.venv/bin/python, else python3)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$SCRIPT_DIR")
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x $REPO/.venv/bin/python ]]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi

SHEET=0
for arg in "$@"; do
  case $arg in
    --sheet) SHEET=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { echo "setup_data: $*" >&2; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=(sudo); else log "not root and no sudo: apt steps may fail"; fi
fi

command -v apt-get >/dev/null || { log "needs a Debian/Ubuntu system (apt-get, dpkg-deb)"; exit 1; }

# apt lists: update only when apt does not know a package we need (or has no lists at all)
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
c=$(candidate papirus-icon-theme)
if [[ -z $c || $c == "(none)" ]]; then
  log "apt-get update"
  "${SUDO[@]}" apt-get update -q >&2
fi

# SVG rasterizer (the themes papirus, breeze, elementary, faenza, tango ship SVG only / mostly)
if ! command -v rsvg-convert >/dev/null; then
  log "installing librsvg2-bin (rsvg-convert)"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends librsvg2-bin >&2
fi

cd "$REPO"
DIR=$("$PYTHON" -m imgsearch.datasets.icons build)
if [[ $SHEET -eq 1 ]]; then
  "$PYTHON" -m imgsearch.datasets.icons sheet --dataset "$DIR" >&2
fi
echo "$DIR"
