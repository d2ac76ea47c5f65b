#!/usr/bin/env bash
# Build local equivalents of the images docker-compose.yml uses, for machines that reach no image
# registry (issue 18; docs/operations.md "Issue 18: Docker"). Everything comes from what the project
# already fetches: a Debian bookworm base made with debootstrap from the Debian mirror apt uses, the
# Kafka jars and the OpenSearch + k-NN distribution that scripts/engines.sh puts in the cache (read
# only here), the project's wheels from PyPI (requirements.lock, hash-checked).
#
#   scripts/docker_images.sh build    build what is missing or whose inputs changed (default)
#   scripts/docker_images.sh env      print the compose variables naming the images (eval-able)
#   scripts/docker_images.sh sizes    the images and their sizes
#
# Each image carries a label org.imgsearch.input-hash (sha256 of its Dockerfile, staged files, build
# arguments and base image id); a build is skipped when the tagged image has the same hash, so the
# images are cached between runs on the same machine and rebuilt when their inputs change.
# Environment: IMGSEARCH_CACHE (~/.cache/imgsearch), DEBIAN_MIRROR (the first URI of apt's sources),
# DOCKER_IMAGES_TMP (/var/tmp: staging of build contexts and the debootstrap root), DOCKER_WHEELS_PORT
# (23081: the loopback port the locked wheels are served on during the worker image's build).
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$SCRIPT_DIR")
CACHE=${IMGSEARCH_CACHE:-$HOME/.cache/imgsearch}
TMP_ROOT=${DOCKER_IMAGES_TMP:-/var/tmp}
WHEELS_PORT=${DOCKER_WHEELS_PORT:-23081}
export DOCKER_BUILDKIT=0   # the daemon here is Debian's 20.10 without buildx: the classic builder
LABEL=org.imgsearch.input-hash

log() { printf '[docker-images] %s\n' "$*" >&2; }
die() { printf '[docker-images] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

pom_prop() { sed -n "s:.*<$2>\(.*\)</$2>.*:\1:p" "$1" | head -n1; }
KAFKA_VERSION=$(pom_prop "$REPO/ops/kafka/pom.xml" kafka.version)
OS_VERSION=$(pom_prop "$REPO/ops/opensearch/pom.xml" opensearch.version)
KNN_VERSION=$(pom_prop "$REPO/ops/opensearch/pom.xml" knn.version)
PROJECT_VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -n1)

BASE_TAG=local/debian:bookworm
PYTHON_TAG=local/python:3.11-bookworm
KAFKA_TAG=local/kafka:$KAFKA_VERSION
OS_TAG=local/opensearch-knn:$OS_VERSION
APP_TAG=local/imgsearch:$PROJECT_VERSION

mirror() {
  [[ -n ${DEBIAN_MIRROR:-} ]] && { echo "$DEBIAN_MIRROR"; return; }
  local m
  m=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
  [[ -n $m ]] || m=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

label_of() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
image_id() { docker image inspect -f '{{.Id}}' "$1"; }
size_mb() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}'; }

hash_files() { # dir...: sha256 over relative names and contents of every file under the dirs
  local d
  for d in "$@"; do (cd "$d" && find . -type f ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); done \
    | sha256sum | cut -c1-64
}

build_base() {
  local want m t0
  m=$(mirror); want=$(printf 'debootstrap minbase bookworm %s' "$m" | sha256sum | cut -c1-64)
  if [[ $(label_of "$BASE_TAG") == "$want" ]]; then log "$BASE_TAG: up to date"; return; fi
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  [[ $EUID -eq 0 ]] || die "debootstrap needs root"
  t0=$(now); local root; root=$(mktemp -d "$TMP_ROOT/imgsearch-rootfs.XXXXXX")
  log "$BASE_TAG: debootstrap --variant=minbase bookworm from $m ..."
  debootstrap --variant=minbase bookworm "$root" "$m" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; die "debootstrap failed"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' -c "LABEL $LABEL=$want" - "$BASE_TAG" >/dev/null
  rm -rf "$root" "$root.log"
  log "$BASE_TAG: imported ($(size_mb "$BASE_TAG"), $(( $(now) - t0 ))s)"
}

build() { # tag context_dir dockerfile hash [--build-arg ...]: docker build unless the tag has this hash
  local tag=$1 ctx=$2 file=$3 want=$4; shift 4
  if [[ $(label_of "$tag") == "$want" ]]; then log "$tag: up to date ($(size_mb "$tag"))"; return 0; fi
  local t0; t0=$(now)
  log "$tag: building ..."
  local blog; blog=$(mktemp "$TMP_ROOT/imgsearch-build.XXXXXX.log")
  docker build --network host --pull=false -q -f "$file" -t "$tag" --label "$LABEL=$want" \
      --label org.imgsearch.component=1 "$@" "$ctx" >"$blog" 2>&1 \
    || { tail -40 "$blog" >&2; rm -f "$blog"; die "docker build of $tag failed"; }
  rm -f "$blog"
  docker image prune -f --filter "label=org.imgsearch.component=1" >/dev/null  # the replaced versions
  log "$tag: built ($(size_mb "$tag"), $(( $(now) - t0 ))s)"
}

stage() { # dest src...: a build context copied from the (read-only) cache and the repo
  local dest=$1; shift; rm -rf "$dest"; mkdir -p "$dest"; cp -a "$@" "$dest/"
}

build_python() {
  local base_id; base_id=$(image_id "$BASE_TAG")
  local want; want=$(printf '%s %s' "$(sha256sum <"$REPO/ops/docker/base/python.Dockerfile")" "$base_id" | sha256sum | cut -c1-64)
  build "$PYTHON_TAG" "$REPO/ops/docker/base" "$REPO/ops/docker/base/python.Dockerfile" "$want" --build-arg "BASE_IMAGE=$BASE_TAG"
}

build_kafka() {
  local lib=$CACHE/engines/kafka-$KAFKA_VERSION/lib
  [[ -f $lib/kafka_2.13-$KAFKA_VERSION.jar ]] || die "no Kafka jars in $lib: run bash scripts/engines.sh install"
  local want; want=$(printf '%s %s %s %s' "$(hash_files "$REPO/ops/docker/kafka")" "$(hash_files "$lib")" "$KAFKA_VERSION" \
    "$(image_id "$BASE_TAG")" | sha256sum | cut -c1-64)
  [[ $(label_of "$KAFKA_TAG") == "$want" ]] && { log "$KAFKA_TAG: up to date ($(size_mb "$KAFKA_TAG"))"; return 0; }
  local ctx=$TMP_ROOT/imgsearch-ctx-kafka.$$
  stage "$ctx" "$REPO"/ops/docker/kafka/* "$lib"
  build "$KAFKA_TAG" "$ctx" "$ctx/Dockerfile" "$want" --build-arg "BASE_IMAGE=$BASE_TAG" --build-arg "KAFKA_VERSION=$KAFKA_VERSION"
  rm -rf "$ctx"
}

build_opensearch() {
  local dist=$CACHE/engines/opensearch-$OS_VERSION/dist
  [[ -x $dist/bin/opensearch && -d $dist/plugins/opensearch-knn ]] || die "no OpenSearch + k-NN in $dist: run bash scripts/engines.sh install"
  local want; want=$(printf '%s %s %s %s %s' "$(hash_files "$REPO/ops/docker/opensearch")" "$(hash_files "$dist")" "$OS_VERSION" \
    "$KNN_VERSION" "$(image_id "$BASE_TAG")" | sha256sum | cut -c1-64)
  [[ $(label_of "$OS_TAG") == "$want" ]] && { log "$OS_TAG: up to date ($(size_mb "$OS_TAG"))"; return 0; }
  local ctx=$TMP_ROOT/imgsearch-ctx-opensearch.$$
  stage "$ctx" "$REPO"/ops/docker/opensearch/* "$dist"
  rm -rf "$ctx/dist/logs" "$ctx/dist/data"   # nothing of a local run
  build "$OS_TAG" "$ctx" "$ctx/Dockerfile" "$want" --build-arg "BASE_IMAGE=$BASE_TAG" \
    --build-arg "OPENSEARCH_VERSION=$OS_VERSION" --build-arg "KNN_VERSION=$KNN_VERSION"
  rm -rf "$ctx"
}

host_python() { if [[ -x $REPO/.venv/bin/python ]]; then echo "$REPO/.venv/bin/python"; else command -v python3; fi; }

build_app() { # the workers and the gateway: the repo's Dockerfile on the local Python base
  local want
  want=$(printf '%s %s %s' "$(cd "$REPO" && sha256sum Dockerfile .dockerignore requirements.lock pyproject.toml README.md)" \
    "$(hash_files "$REPO/schemas" "$REPO/imgsearch" "$REPO/streams" "$REPO/producers" "$REPO/consumers" "$REPO/jobs" "$REPO/apps")" \
    "$(image_id "$PYTHON_TAG")" | sha256sum | cut -c1-64)
  [[ $(label_of "$APP_TAG") == "$want" ]] && { log "$APP_TAG: up to date ($(size_mb "$APP_TAG"))"; return 0; }
  # The build's pip gets the locked wheels from the host: the host's pip downloads them (its cache, its
  # trust store: this machine reaches PyPI through a TLS proxy whose CA the image must not carry), a
  # loopback HTTP server serves them, the Dockerfile installs them with --no-index, still hash-checked.
  local py wh port srv t0; py=$(host_python); wh=$TMP_ROOT/imgsearch-docker-wheels; t0=$(now)
  mkdir -p "$wh"
  log "$APP_TAG: the locked wheels (pip download into $wh) ..."
  "$py" -m pip download -q --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: \
      -r "$REPO/requirements.lock" -d "$wh" >"$wh.log" 2>&1 || { tail -20 "$wh.log" >&2; die "pip download failed"; }
  log "$APP_TAG: $(ls "$wh" | wc -l) wheels, $(du -sh "$wh" | cut -f1) ($(( $(now) - t0 ))s)"
  port=$WHEELS_PORT  # fixed: the build argument is part of the pip layer's cache key
  "$py" -m http.server --bind 127.0.0.1 --directory "$wh" "$port" >"$wh.http.log" 2>&1 &
  srv=$!
  trap 'kill "$srv" 2>/dev/null || true' RETURN
  build "$APP_TAG" "$REPO" "$REPO/Dockerfile" "$want" --build-arg "BASE_IMAGE=$PYTHON_TAG" \
    --build-arg "PIP_INSTALL_OPTS=--no-index --find-links http://127.0.0.1:$port/"
}

print_env() {
  echo "IMGSEARCH_KAFKA_IMAGE=$KAFKA_TAG"
  echo "IMGSEARCH_OPENSEARCH_IMAGE=$OS_TAG"
  echo "IMGSEARCH_IMAGE=$APP_TAG"
  echo "IMGSEARCH_BASE_IMAGE=$PYTHON_TAG"
}

sizes() {
  local t
  for t in "$BASE_TAG" "$PYTHON_TAG" "$KAFKA_TAG" "$OS_TAG" "$APP_TAG"; do
    printf '%-32s %s\n' "$t" "$(size_mb "$t" 2>/dev/null || echo missing)"
  done
}

case ${1:-build} in
  build)
    docker info >/dev/null 2>&1 || die "no Docker daemon answers (bash scripts/docker_engine.sh start)"
    t0=$(now)
    build_base; build_python; build_kafka; build_opensearch; build_app
    log "images ready ($(( $(now) - t0 ))s)"; sizes >&2 ;;
  env) print_env ;;
  sizes) sizes ;;
  *) die "usage: $0 build|env|sizes" ;;
esac
