"""Helpers for the fault-injection and fuzz tests: engine control through scripts/engines.sh,
worker environment for fast fail-over, image payloads, publishing with offsets and reading topics
to their end.

The engines are stopped and started with the environment the test session started with (ports,
IMGSEARCH_DATA of the engines): the pipeline fixtures later point IMGSEARCH_DATA at a per-module
directory for the workers, which is not where the engines keep their pid files.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
import time
import zlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from PIL import Image

from consumers.runner import WorkerProcess, Workers
from imgsearch.config import REPO_ROOT, Settings, process_environment
from imgsearch.connections import kafka_security
from imgsearch.index.opensearch import OpenSearchIndex

ENGINES_SH = REPO_ROOT / "scripts" / "engines.sh"
# snapshot at import (collection time), before any module fixture changes the environment
ENGINE_ENV = process_environment()

# a worker killed with SIGKILL leaves its consumer group after the session timeout (Settings'
# default 10 s; the broker's minimum group.min.session.timeout.ms is 6 s), so its partitions move to
# the restarted/other workers in seconds; a rebalance waits at most 20 s for the live members
FAST_FAILOVER = {
    "IMGSEARCH_KAFKA_SESSION_TIMEOUT_S": "6",
    "IMGSEARCH_KAFKA_HEARTBEAT_INTERVAL_S": "1",
    "IMGSEARCH_KAFKA_REBALANCE_TIMEOUT_S": "20",
}


# ---------------------------------------------------------------- engines


def engines_sh(*args: str, timeout: float = 300) -> str:
    out = subprocess.run(
        ["bash", str(ENGINES_SH), *args],
        env=ENGINE_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"engines.sh {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout + out.stderr


def why_not_controllable(engines: dict[str, str]) -> str | None:
    """None if the engines under test are the ones scripts/engines.sh started (so it can stop and
    start them); else why not (e.g. testcontainers or servers started elsewhere)."""
    try:
        env_out = engines_sh("env", timeout=30)
        status = subprocess.run(
            ["bash", str(ENGINES_SH), "status"], env=ENGINE_ENV, capture_output=True, text=True, timeout=60
        )
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/engines.sh does not answer: {exc}"
    reported = dict(line.split("=", 1) for line in env_out.split() if "=" in line)
    if reported.get("KAFKA_BOOTSTRAP") != engines["KAFKA_BOOTSTRAP"] or reported.get("OPENSEARCH_URL") != engines[
        "OPENSEARCH_URL"
    ].rstrip("/"):
        return f"the servers under test {engines} are not the ones scripts/engines.sh manages ({reported})"
    if status.returncode != 0 or "not started by this script" in status.stdout or "pid=-" in status.stdout:
        return f"scripts/engines.sh did not start these servers:\n{status.stdout}"
    return None


def ensure_engines_up() -> None:
    """Start whatever engine is down (idempotent); used in teardown so later modules find them healthy."""
    status = subprocess.run(["bash", str(ENGINES_SH), "status"], env=ENGINE_ENV, capture_output=True, timeout=60)
    if status.returncode != 0:
        engines_sh("start")


# ---------------------------------------------------------------- workers


def only(workers: Workers, role: str) -> WorkerProcess:
    alive = [p for p in workers.procs if p.role == role and p.alive()]
    assert len(alive) == 1, f"expected one live {role} worker, found {len(alive)}"
    return alive[0]


def kill9(workers: Workers, wp: WorkerProcess) -> None:
    """SIGKILL a worker (no shutdown, no last commit) and forget it (``check_alive`` watches the rest)."""
    workers.stop(wp, kill=True)
    assert wp.proc.returncode == -9, wp.proc.returncode
    workers.procs.remove(wp)


def retire(workers: Workers, wp: WorkerProcess) -> None:
    """Stop a worker the way ops scale down (SIGTERM: it commits, leaves its group) and forget it."""
    workers.stop(wp)
    assert wp.proc.returncode == 0, f"{wp.role} exited {wp.proc.returncode}:\n{wp.log_tail()}"
    workers.procs.remove(wp)


def log_text(wp: WorkerProcess) -> str:
    try:
        return wp.log_path.read_text(errors="replace")
    except OSError:
        return ""


def assert_no_agent_crash(workers: Workers) -> None:
    """Every worker process is up and none of its agents crashed. faust restarts a crashed agent in
    the same process, but acks the events the agent held: a crash loses them even if the process
    lives (and the restarted agent may stall)."""
    workers.check_alive()
    for wp in workers.procs:
        assert "Crashed reason" not in log_text(wp), f"an agent of the {wp.role} worker crashed:\n{wp.log_tail(60)}"


# ---------------------------------------------------------------- images


def styled_png(i: int) -> bytes:
    """The i-th of the 36 drawings of the integration fixtures (3 styles × 4 subjects × 3 variants),
    so images spread over the style clusters the pipeline fixture trains on those drawings."""
    from tests.support.images import STYLES, SUBJECTS, draw

    styles = sorted(STYLES)
    return draw(styles[i % 3], SUBJECTS[(i // 3) % 4], (i // 12) % 3)


def noise_png(n_bytes_at_least: int, seed: int = 7) -> bytes:
    """An incompressible PNG of at least ``n_bytes_at_least`` bytes (random pixels)."""
    side = int((n_bytes_at_least / 3) ** 0.5) + 8
    im = Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A decompression bomb: a 1-bit greyscale PNG of width×height zero pixels, tiny on disk
    (written chunk by chunk, never held as an image in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ---------------------------------------------------------------- kafka


async def publish(
    bootstrap: str, items: Sequence[tuple[str, bytes | None, bytes]], *, max_request_size: int = 2 * 2**20
) -> list[tuple[int, int]]:
    """Publish (topic, key, value) in order (idempotent producer, acks=all); returns (partition, offset)
    of each, so a test can find each message's fate by its position."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=max_request_size,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for topic, key, value in items]
        metas = [await f for f in futures]
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metas]


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic and om.offset >= 0}


async def read_to_end(bootstrap: str, topic: str, timeout: float = 30.0, settings: Settings | None = None) -> list[Any]:
    """Every message of ``topic`` up to its end offsets at the time of the call (connecting as
    ``settings`` say, e.g. as a SASL principal; default: plaintext)."""
    security = kafka_security(settings) if settings is not None else {}
    consumer = AIOKafkaConsumer(**security, bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[Any] = []
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout}s")
            batch = await consumer.getmany(*tps, timeout_ms=300)
            for msgs in batch.values():
                out.extend(m for m in msgs if m.offset < ends[TopicPartition(m.topic, m.partition)])
    finally:
        await consumer.stop()
    return out


# ---------------------------------------------------------------- opensearch


async def count_ids(index: OpenSearchIndex, ids: Sequence[str]) -> int:
    """How many of ``ids`` are documents of the index (after a refresh)."""
    await index.refresh()
    total = 0
    for i in range(0, len(ids), 1000):
        total += await index.count_where({"ids": {"values": list(ids[i : i + 1000])}})
    return total


async def present_ids(index: OpenSearchIndex, ids: Sequence[str]) -> set[str]:
    await index.refresh()
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        resp = await index.client.search(
            index=index.index,
            body={"query": {"ids": {"values": list(ids[i : i + 500])}}, "_source": False, "size": 500},
        )
        found.update(h["_id"] for h in resp["hits"]["hits"])
    return found
