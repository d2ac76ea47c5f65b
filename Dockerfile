# The imgsearch workers and the gateway (for docker-compose.yml). Model artifacts are mounted, not baked in
# (IMGSEARCH_CACHE=/cache, read only). The base image is a build argument (issue 18: where no registry is
# reachable, scripts/docker_images.sh builds an equivalent local/python:3.11-bookworm and passes it).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
# extra pip options for the dependencies, e.g. "--no-index --find-links http://127.0.0.1:PORT/" (what
# scripts/docker_images.sh passes: the same locked wheels, downloaded by the host's pip and served on loopback)
ARG PIP_INSTALL_OPTS=""
WORKDIR /app
# the locked, hash-checked dependencies first (the same lock as scripts/setup.sh), then the project alone
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes ${PIP_INSTALL_OPTS} -r requirements.lock
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY imgsearch imgsearch
COPY streams streams
COPY producers producers
COPY consumers consumers
COPY jobs jobs
COPY apps apps
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && rm -rf build *.egg-info \
 && useradd --system --create-home --uid 10001 imgsearch && mkdir /data && chown imgsearch /data
USER imgsearch
ENV PYTHONUNBUFFERED=1
# a worker is healthy when its /healthz (on IMGSEARCH_METRICS_PORT) answers 200, the gateway when its
# own /healthz does (IMGSEARCH_GATEWAY_PORT); one-shot commands (topics, ingest) have neither and pass
HEALTHCHECK --interval=5s --timeout=5s --start-period=20s --retries=30 CMD python -c "import os, urllib.request as u; \
m = int(os.environ.get('IMGSEARCH_METRICS_PORT') or 0); g = os.environ.get('IMGSEARCH_GATEWAY_PORT'); \
p = m or (int(g) if g else 0); p and u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4)"
CMD ["imgsearch", "--help"]
