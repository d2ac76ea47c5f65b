"""Start and stop worker processes (one per role) — used by the demo, the tests and the benchmarks.

Each worker is a real process (``python -m consumers.<role>_worker``) with its own log file, so a
test can kill one the way ops would.
"""

from __future__ import annotations

import atexit
import base64
import resource
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consumers.roles import ROLES
from imgsearch.config import REPO_ROOT, Settings, process_environment
from schemas.limits import MAX_MESSAGE_BYTES

if TYPE_CHECKING:  # the docker SDK is a test tool (requirements-dev.lock): the demo runs without it
    from docker.types import Ulimit


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
    """Worker processes of one run: each gets this process's environment with ``env`` on top
    (``settings.child_env()``: the run's configuration) and its ``extra_env``."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[WorkerProcess] = field(default_factory=list)

    def start(self, role: str, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = sum(1 for p in self.procs if p.role == role)
        log_path = self.log_dir / f"{role}-{n}.log"
        env = {**process_environment(), **self.env, **(extra_env or {})}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", ROLES[role]],
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


_containers: list[Any] = []


def _wait_until(check: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1.0)
    raise RuntimeError(f"{what} not healthy after {timeout:.0f}s; its log ends:\n{logs()[-3000:]}")


def start_containers(settings: Settings, timeout: float = 240.0) -> dict[str, str]:
    """Kafka and OpenSearch as containers through testcontainers (issue 18), on the host network with
    every listener on 127.0.0.1 and the ports of scripts/engines.sh (KAFKA_PORT, OPENSEARCH_PORT, ...),
    configured by environment as docker-compose.yml configures them, so the official images and the
    local equivalents of scripts/docker_images.sh (IMGSEARCH_KAFKA_IMAGE, IMGSEARCH_OPENSEARCH_IMAGE)
    both work. Ryuk (testcontainers' reaper image) is not used: no registry to pull it from here; the
    containers are removed by stop_containers(), which ensure_engines() registers at exit."""
    from testcontainers.core.config import testcontainers_config

    s = settings
    testcontainers_config.ryuk_disabled = True
    kp, cp, op, tp = (
        s.engine_kafka_port,
        s.engine_kafka_controller_port,
        s.engine_opensearch_port,
        s.engine_opensearch_transport_port,
    )
    # the environment docker-compose.yml gives the same images, with this machine's ports on 127.0.0.1
    kafka = _container(
        s.kafka_image,
        {
            "CLUSTER_ID": uuid_for_kraft(),
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{cp}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENERS": f"PLAINTEXT://127.0.0.1:{kp},CONTROLLER://127.0.0.1:{cp}",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{kp}",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_MESSAGE_MAX_BYTES": str(MAX_MESSAGE_BYTES),
            "KAFKA_REPLICA_FETCH_MAX_BYTES": str(MAX_MESSAGE_BYTES),
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
            "KAFKA_HEAP_OPTS": "-Xms512m -Xmx512m",
        },
        network_mode="host",
    )
    opensearch = _container(
        s.opensearch_image,
        {
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": str(op),
            "transport.port": str(tp),
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "DISABLE_SECURITY_PLUGIN": "true",
            "DISABLE_INSTALL_DEMO_CONFIG": "true",
            "OPENSEARCH_JAVA_OPTS": "-Xms512m -Xmx1g",
        },
        network_mode="host",
        ulimits=_rlimits(),
    )
    if not _containers:
        atexit.register(stop_containers)
    for c in (kafka, opensearch):
        c.start()
        _containers.append(c)

    def kafka_ok() -> bool:
        c = kafka.get_wrapped_container()
        c.reload()
        if c.status != "running":
            raise RuntimeError(
                f"the Kafka container exited ({c.attrs['State']}); its log ends:\n{logs(kafka)()[-3000:]}"
            )
        cmd = f"/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server 127.0.0.1:{kp}"
        return bool(c.exec_run(["bash", "-c", cmd]).exit_code == 0)

    def opensearch_ok() -> bool:
        url = f"http://127.0.0.1:{op}/_cluster/health?wait_for_status=yellow&timeout=2s"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def logs(c: Any) -> Callable[[], str]:
        return lambda: c.get_wrapped_container().logs().decode(errors="replace")

    _wait_until(kafka_ok, timeout, f"Kafka container ({s.kafka_image})", logs(kafka))
    _wait_until(opensearch_ok, timeout, f"OpenSearch container ({s.opensearch_image})", logs(opensearch))
    return {"KAFKA_BOOTSTRAP": f"127.0.0.1:{kp}", "OPENSEARCH_URL": f"http://127.0.0.1:{op}"}


def _container(image: str, env: dict[str, str], **kwargs: Any) -> Any:
    """A testcontainers container of ``image`` with this environment and docker-py run arguments."""
    from testcontainers.core.container import DockerContainer

    c = DockerContainer(image).with_kwargs(**kwargs)
    for key, value in env.items():
        c = c.with_env(key, value)
    return c


def _rlimits() -> list[Ulimit]:
    """memlock unlimited and 65536 open files as docker-compose.yml asks, capped at this process's own
    hard limits (a sandboxed daemon cannot give a container more: runc refuses to start it)."""
    from docker.types import Ulimit

    out = []
    for name, limit, want in (("memlock", resource.RLIMIT_MEMLOCK, -1), ("nofile", resource.RLIMIT_NOFILE, 65536)):
        hard = resource.getrlimit(limit)[1]
        if hard != resource.RLIM_INFINITY and (want == -1 or hard < want):
            want = hard
        out.append(Ulimit(name=name, soft=want, hard=want))
    return out


def stop_containers() -> None:
    """Remove the containers start_containers() started, with their anonymous volumes."""
    while _containers:
        _containers.pop().stop(force=True, delete_volume=True)


def uuid_for_kraft() -> str:
    """A KRaft cluster id (kafka-storage random-uuid: 16 random bytes, base64url without padding).

    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``: the image formats its storage
    with ``kafka-storage format --cluster-id $CLUSTER_ID``, whose argument parser takes such an id for
    an option and exits (one start in 64 failed so)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def ensure_engines() -> dict[str, str]:
    """Addresses of Kafka and OpenSearch, in this order: the ones configured in the environment if
    both are set; containers via testcontainers if IMGSEARCH_USE_TESTCONTAINERS=1 (an error if no
    Docker daemon answers then); else the local engines, started if they are not healthy (idempotent)."""
    env = process_environment()
    if env.get("KAFKA_BOOTSTRAP") and env.get("OPENSEARCH_URL"):
        return {"KAFKA_BOOTSTRAP": env["KAFKA_BOOTSTRAP"], "OPENSEARCH_URL": env["OPENSEARCH_URL"]}
    settings = Settings.from_env(env)
    if settings.use_testcontainers:
        if not docker_daemon_answers():
            raise RuntimeError(
                "IMGSEARCH_USE_TESTCONTAINERS=1 but no Docker daemon answers (bash scripts/docker_engine.sh start)"
            )
        return start_containers(settings)
    status = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "engines.sh"), "status"], capture_output=True)
    if status.returncode != 0:
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "engines.sh"), "start"], check=True)
    return engines_env()
