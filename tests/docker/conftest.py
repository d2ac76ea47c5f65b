"""Fixtures of the Docker path's tests (issue 18): a Docker daemon (scripts/docker_engine.sh starts one
where it can; these tests fail, they do not skip, when none answers: deselect them with -m "not docker"),
the images (scripts/docker_images.sh: local equivalents built from the cached artifacts, reused while
their inputs are unchanged) and the host ports of the containers.

The ports default to 23092/23093 (Kafka, controller), 23200/23300 (OpenSearch http, transport), 23080
(gateway), 23464-23466 (worker metrics), apart from the CI's own engines on 9092/9200 which run at the
same time; DOCKER_TEST_<NAME>_PORT overrides one (e.g. DOCKER_TEST_KAFKA_PORT)."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from imgsearch.config import REPO_ROOT

PORT_DEFAULTS = {
    "KAFKA_PORT": 23092,
    "KAFKA_CONTROLLER_PORT": 23093,
    "OPENSEARCH_PORT": 23200,
    "OPENSEARCH_TRANSPORT_PORT": 23300,
    "GATEWAY_PORT": 23080,
    "METRICS_PORT_EMBEDDER": 23464,
    "METRICS_PORT_INTERACTIONS": 23465,
    "METRICS_PORT_QUERY": 23466,
}


def docker_ports() -> dict[str, str]:
    return {k: os.environ.get(f"DOCKER_TEST_{k}", str(v)) for k, v in PORT_DEFAULTS.items()}


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600, check: bool = True) -> str:
    r = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r.stdout


@pytest.fixture(scope="session")
def docker_images() -> dict[str, str]:
    """The image variables (IMGSEARCH_KAFKA_IMAGE, ...) of locally built images, built if needed."""
    status = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "docker_engine.sh"), "status"], capture_output=True)
    if status.returncode != 0:
        pytest.fail(
            "no Docker daemon answers: start one with `bash scripts/docker_engine.sh start` (root; .ci/run does), "
            'or deselect the Docker tests with -m "not docker"'
        )
    run(["bash", str(REPO_ROOT / "scripts" / "docker_images.sh"), "build"], timeout=1800)
    out = run(["bash", str(REPO_ROOT / "scripts" / "docker_images.sh"), "env"])
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def container_rlimits() -> dict[str, str]:
    """OPENSEARCH_MEMLOCK / OPENSEARCH_NOFILE for docker-compose.yml: no more than this process may have
    (a sandboxed daemon cannot raise a container's limits above its own: runc fails to start it)."""
    out = {}
    for name, limit, want in (
        ("OPENSEARCH_MEMLOCK", resource.RLIMIT_MEMLOCK, -1),
        ("OPENSEARCH_NOFILE", resource.RLIMIT_NOFILE, 65536),
    ):
        hard = resource.getrlimit(limit)[1]
        if hard != resource.RLIM_INFINITY and (want == -1 or hard < want):
            out[name] = str(hard)
    return out


def world_readable(path: Path) -> Path:
    """Containers run as non-root users: a bind-mounted test folder must be readable by others."""
    for p in [path, *path.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return path
