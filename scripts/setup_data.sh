#!/usr/bin/env bash
# Build the image sets (see docs/datasets.md).
#
#   scripts/setup_data.sh            the demo's collection: the curated subjects of 8 icon themes
#                                    (imgsearch.datasets.curated.DEMO_STYLES, ~100 MB of .debs);
#                                    apt-get update if apt does not know the theme packages yet,
#                                    install rsvg-convert (librsvg2-bin) if missing, print its
#                                    directory on stdout (progress goes to stderr)
#   scripts/setup_data.sh --smoke    the smoke slice of the test families (papirus, suru, openmoji;
#                                    ~30 MB, needs npm): what tests/unit/test_shipped_heads.py checks
#   scripts/setup_data.sh --icons    the older 10-theme icon set icons-v1 (--sheet: its contact sheet)
#   scripts/setup_data.sh --styles   the whole styles-v2 set the heads are trained on (icons + emoji +
#                                    clip-art, needs npm, ~1 GB of downloads); extra arguments after --
#                                    go to its build command (e.g. -- --families tango,papirus --kinds icon)
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
STYLES=0
WHAT=demo
EXTRA=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --sheet) SHEET=1 ;;
    --styles) STYLES=1 ;;
    --smoke) WHAT=smoke ;;
    --icons) WHAT=icons ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
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
if [[ $STYLES -eq 1 ]]; then
  command -v npm >/dev/null || { log "styles-v2 fetches emoji packages with npm: install nodejs/npm"; exit 1; }
  DIR=$(nice -n 10 "$PYTHON" -m imgsearch.datasets.styles build "${EXTRA[@]}")
  if [[ $SHEET -eq 1 ]]; then
    "$PYTHON" -m imgsearch.datasets.styles sheet --dataset "$DIR" >&2
  fi
  echo "$DIR"
  exit 0
fi
if [[ $WHAT == demo ]]; then
  nice -n 10 "$PYTHON" -c 'from imgsearch.datasets.curated import demo_dataset; print(demo_dataset(quiet=False))'
  exit 0
fi
if [[ $WHAT == smoke ]]; then
  command -v npm >/dev/null || { log "the smoke slice fetches openmoji with npm: install nodejs/npm"; exit 1; }
  nice -n 10 "$PYTHON" -c 'from jobs.train_heads import smoke_dataset; print(smoke_dataset(quiet=False))'
  exit 0
fi
DIR=$("$PYTHON" -m imgsearch.datasets.icons build)
if [[ $SHEET -eq 1 ]]; then
  "$PYTHON" -m imgsearch.datasets.icons sheet --dataset "$DIR" >&2
fi
echo "$DIR"
