# A local equivalent of python:3.11-slim for machines that reach no image registry (issue 18):
# Debian bookworm's Python 3.11 in a virtual environment (/opt/venv, first on PATH), so `pip install`
# works as in the official image. Built by scripts/docker_images.sh from the debootstrapped base.
ARG BASE_IMAGE=local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
CMD ["python3"]
