# The imgsearch workers (for docker-compose.yml). Model artifacts are mounted, not baked in.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY imgsearch imgsearch
COPY streams streams
COPY producers producers
COPY consumers consumers
RUN pip install --no-cache-dir . && useradd --system --create-home imgsearch && mkdir /data && chown imgsearch /data
USER imgsearch
ENV PYTHONUNBUFFERED=1
CMD ["imgsearch", "--help"]
