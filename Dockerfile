# The imgsearch workers (for docker-compose.yml). Model artifacts are mounted, not baked in.
# The base image is a build argument (issue 18: a locally built equivalent where no registry is reachable).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /app
# the locked, hash-checked dependencies first (the same lock as scripts/setup.sh), then the project alone
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY imgsearch imgsearch
COPY streams streams
COPY producers producers
COPY consumers consumers
RUN pip install --no-cache-dir --no-deps . && useradd --system --create-home imgsearch && mkdir /data && chown imgsearch /data
USER imgsearch
ENV PYTHONUNBUFFERED=1
CMD ["imgsearch", "--help"]
