"""The testcontainers path of the integration fixtures (issue 18): with IMGSEARCH_USE_TESTCONTAINERS=1,
consumers.runner.ensure_engines() starts Kafka and OpenSearch as containers (host network, the ports
below) instead of the local processes, and the pipeline smoke tests of tests/integration/test_pipeline.py
run against them, in a pytest of their own (a session's engines are chosen once per process). The
containers are removed when that process ends."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from imgsearch.config import REPO_ROOT
from tests.docker.conftest import docker_ports, run

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]  # a cold image build is minutes

PIPELINE_TESTS = "tests/integration/test_pipeline.py"
SMOKE = "searchable_with_cluster or search_reply_through_kafka or interaction_changes_that_users_ranking"


def test_pipeline_smoke_tests_on_testcontainers(docker_images: dict[str, str]):
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "OPENSEARCH_URL")}
    env.update(docker_images)
    env.update({k: v for k, v in docker_ports().items() if "METRICS" not in k and "GATEWAY" not in k})
    env["IMGSEARCH_USE_TESTCONTAINERS"] = "1"
    before = set(run(["docker", "ps", "-aq"]).split())
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", PIPELINE_TESTS, "-k", SMOKE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "3 passed" in r.stdout, r.stdout[-3000:]
    left = set(run(["docker", "ps", "-aq"]).split()) - before
    assert not left, f"containers left behind: {left}"
