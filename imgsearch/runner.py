"""Start and stop worker processes (one per role) — used by the demo, the tests and the benchmarks.

Each worker is a real process (``python -m consumers.<role>_worker``) with its own log file, so a
test can kill one the way ops would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from imgsearch.config import REPO_ROOT

MODULES = {
    "embedder": "consumers.embedding_worker",
    "interactions": "consumers.interaction_worker",
    "query": "consumers.query_worker",
}


@dataclass
class WorkerProcess:
    role: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Workers:
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[WorkerProcess] = field(default_factory=list)

    def start(self, role: str, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = sum(1 for p in self.procs if p.role == role)
        log_path = self.log_dir / f"{role}-{n}.log"
        env = {**os.environ, **self.env, **(extra_env or {})}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", MODULES[role]],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wp = WorkerProcess(role, proc, log_path)
        self.procs.append(wp)
        return wp

    def stop(self, wp: WorkerProcess, *, kill: bool = False, timeout: float = 15.0) -> None:
        if not wp.alive():
            return
        wp.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            wp.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            wp.proc.kill()
            wp.proc.wait(5)

    def stop_all(self) -> None:
        for wp in self.procs:
            if wp.alive():
                wp.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for wp in self.procs:
            try:
                wp.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                wp.proc.kill()
                wp.proc.wait(5)
        self.procs = [p for p in self.procs if p.alive()]

    def check_alive(self) -> None:
        dead = [p for p in self.procs if not p.alive()]
        if dead:
            raise RuntimeError(
                "worker(s) exited: " + "; ".join(f"{p.role} (exit {p.proc.returncode}):\n{p.log_tail()}" for p in dead)
            )


def engines_env() -> dict[str, str]:
    """KAFKA_BOOTSTRAP / OPENSEARCH_URL as scripts/engines.sh reports them for this configuration."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "engines.sh"), "env"], capture_output=True, text=True, check=True
    ).stdout
    env = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key in ("KAFKA_BOOTSTRAP", "OPENSEARCH_URL"):
            env[key] = value.strip().strip("'\"")
    return env


def docker_daemon_answers() -> bool:
    """True only if a Docker daemon answers (the docker CLI alone is not enough)."""
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:
        return False


_containers: list[object] = []


def start_containers() -> dict[str, str]:
    """Kafka and OpenSearch through testcontainers (official images); they stop with the process."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.opensearch import OpenSearchContainer

    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    kafka.start()
    opensearch = OpenSearchContainer("opensearchproject/opensearch:2.19.1", security_enabled=False)
    opensearch.start()
    _containers.extend([kafka, opensearch])
    cfg = opensearch.get_config()
    return {
        "KAFKA_BOOTSTRAP": kafka.get_bootstrap_server(),
        "OPENSEARCH_URL": f"http://{cfg['host']}:{cfg['port']}",
    }


def ensure_engines() -> dict[str, str]:
    """Addresses of Kafka and OpenSearch, in this order: the ones configured in the environment if
    both are set; containers via testcontainers if IMGSEARCH_USE_TESTCONTAINERS=1 and a Docker daemon
    answers; else the local engines, started if they are not healthy (idempotent)."""
    if os.environ.get("KAFKA_BOOTSTRAP") and os.environ.get("OPENSEARCH_URL"):
        return {
            "KAFKA_BOOTSTRAP": os.environ["KAFKA_BOOTSTRAP"],
            "OPENSEARCH_URL": os.environ["OPENSEARCH_URL"],
        }
    status = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "engines.sh"), "status"], capture_output=True)
    if status.returncode != 0:
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "engines.sh"), "start"], check=True)
    return engines_env()
