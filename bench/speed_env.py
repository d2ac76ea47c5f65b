"""The speed benchmark's isolated run on the real engines: its settings (passed explicitly, in
process) and its workers' environment (given to the child processes), raw access to the physical
index, waiting for the pipeline, and the clean-up of everything the run created."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine_facts, say
from bench.speed_config import Config
from consumers.runner import Workers, ensure_engines
from imgsearch.config import Settings


def isolated_settings(
    engines: dict[str, str], tag: str, tmp: Path, partitions: int, image_root: Path | None = None
) -> Settings:
    """The settings of a run whose topics, consumer groups, index and faust data are its own (image
    URIs allowed under ``image_root`` only; none without one)."""
    return Settings(
        kafka_bootstrap=engines["KAFKA_BOOTSTRAP"],
        opensearch_url=engines["OPENSEARCH_URL"],
        app_prefix=tag,
        topic_prefix=tag,
        log_level="WARNING",
        index_name=f"{tag}-images",
        data_dir=str(tmp / "data"),  # faust data dirs (not the engines')
        allowed_uri_roots=str(image_root) if image_root is not None else "",
        partitions=partitions,
        unknown_image_wait_s=5.0,
    )


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of the run's worker processes."""
    return settings.child_env()


class PhysicalIndex:
    """Raw access to the query worker's physical index (count, bulk, knn, exact, stats)."""

    def __init__(self, settings: Settings, name: str) -> None:
        from opensearchpy import AsyncOpenSearch

        from imgsearch.connections import opensearch_kwargs

        self.name = name
        self.client = AsyncOpenSearch(hosts=[settings.opensearch_url], timeout=120, **opensearch_kwargs(settings))

    async def close(self) -> None:
        await self.client.close()

    async def count(self, refresh: bool = True) -> int:
        try:
            if not await self.client.indices.exists(index=self.name):  # HEAD: a 404 is not logged
                return 0
            if refresh:
                await self.client.indices.refresh(index=self.name)
            return int((await self.client.count(index=self.name))["count"])
        except Exception:
            return 0


@dataclass
class Run:
    """One benchmark run: what the stages share, and ``res``, the report they fill in."""

    cfg: Config
    tag: str
    tmp: Path
    images_root: Path
    settings: Settings
    workers: Workers
    os_client: Any  # AsyncOpenSearch, for bulk loads, k-NN / exact queries and index stats
    res: dict[str, Any]
    created_indices: list[str] = field(default_factory=list)
    # filled in by the ingest stage, used by the later ones
    rows: list[dict] = field(default_factory=list)
    embedder: Any = None
    style: Any = None
    search_vecs: np.ndarray | None = None
    centroids: Any = None
    index_name: str = ""
    idx: PhysicalIndex | None = None
    # filled in by the padding stage
    queries: list[str] = field(default_factory=list)
    real_docs: int = 0
    pad: int = 0
    docs: int = 0
    merge_wait_s: float = 0.0  # background merges waited for after the padding

    @property
    def index(self) -> PhysicalIndex:
        if self.idx is None:
            raise RuntimeError("the ingest stage has not opened the pipeline's index")
        return self.idx


def open_run(cfg: Config) -> Run:
    """Engines up (started if needed), a unique tag, its settings and (not yet started) workers."""
    from dataclasses import asdict

    from opensearchpy import AsyncOpenSearch

    from imgsearch.connections import opensearch_kwargs
    from imgsearch.datasets.icons import dataset_dir

    engines = ensure_engines()
    facts = machine_facts(engines["OPENSEARCH_URL"])
    say(f"engines {engines}; {facts['nproc']} CPUs, {facts['ram_gb']} GB RAM, load {facts['loadavg_at_start']}")
    images_root = cfg.dataset or dataset_dir()
    if not (images_root / "labels.json").exists():
        raise SystemExit(f"no image set at {images_root}: bash scripts/setup_data.sh --icons (or pass --dataset)")
    tag = f"bench{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    settings = isolated_settings(engines, tag, tmp, cfg.partitions, images_root)
    res: dict[str, Any] = {"mode": "quick" if cfg.quick else "full", "machine": facts, "config": asdict(cfg)}
    res["run"] = {"tag": tag, "worker_logs": str(tmp / "logs")}
    os_client = AsyncOpenSearch(hosts=[settings.opensearch_url], timeout=300, **opensearch_kwargs(settings))
    workers = Workers(tmp / "logs", worker_env(settings))
    return Run(cfg, tag, tmp, images_root, settings, workers, os_client, res)


async def close_run(run: Run) -> None:
    """Stop the workers; delete the run's indices, topics and faust data."""
    say("cleaning up: workers, indices, topics ...")
    run.workers.stop_all()
    if run.idx is not None:
        with contextlib.suppress(Exception):
            await run.idx.close()
    with contextlib.suppress(Exception):
        from imgsearch.index.opensearch import OpenSearchIndex

        alias = OpenSearchIndex(run.settings.opensearch_url, run.settings.index_name, settings=run.settings)
        await alias.delete_index()
        await alias.close()
    for name in run.created_indices:
        with contextlib.suppress(Exception):
            await run.os_client.indices.delete(index=name)
    await run.os_client.close()
    with contextlib.suppress(Exception):
        await delete_prefixed_topics(run.settings, run.tag)
    shutil.rmtree(run.tmp / "data", ignore_errors=True)
    run.res["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run.res["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]


async def delete_prefixed_topics(settings: Settings, tag: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from imgsearch.connections import kafka_security
    from imgsearch.kafka.admin import delete_topics

    admin = AIOKafkaAdminClient(**kafka_security(settings), bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tag)]
    finally:
        await admin.close()
    await delete_topics(settings.kafka_bootstrap, names, settings)


# ---------------------------------------------------------------------------- waiting for the pipeline
async def wait_count(idx: PhysicalIndex, target: int, timeout: float, workers: Workers, poll: float = 0.2) -> float:
    """Seconds (monotonic clock) when at least ``target`` documents are searchable."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers.check_alive()
        if await idx.count() >= target:
            return time.perf_counter()
        await asyncio.sleep(poll)
    raise TimeoutError(f"index {idx.name} did not reach {target} documents in {timeout:.0f}s")


async def group_members(settings: Settings, group: str) -> tuple[str, int]:
    """(state, members with a partition assignment) of a consumer group."""
    from aiokafka.admin import AIOKafkaAdminClient

    from imgsearch.connections import kafka_security

    admin = AIOKafkaAdminClient(**kafka_security(settings), bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        resp = await admin.describe_consumer_groups([group])
        for r in resp:
            for g in r.groups:
                # (error_code, group_id, state, protocol_type, protocol, members[...])
                state, members = g[2], g[5]
                assigned = sum(1 for m in members if m[-1])
                return str(state), assigned
    finally:
        await admin.close()
    return "unknown", 0


async def wait_group(settings: Settings, group: str, members: int, timeout: float, workers: Workers) -> None:
    deadline = time.monotonic() + timeout
    last: tuple[str, int] = ("unknown", 0)
    while time.monotonic() < deadline:
        workers.check_alive()
        with contextlib.suppress(Exception):
            last = await group_members(settings, group)
            if last[0] == "Stable" and last[1] >= members:
                return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"consumer group {group} not stable with {members} members in {timeout:.0f}s (last {last})")
