"""A real pipeline of worker processes on the real Kafka and OpenSearch, configured by one
``Settings`` object (never by this process's environment): the workers get ``settings.child_env()``
on top of the test process's environment, plus any ``worker_env`` (faust's own variables)."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer

from consumers.runner import Workers
from imgsearch.config import Settings, process_environment
from imgsearch.index.opensearch import OpenSearchIndex
from imgsearch.kafka.admin import ensure_topics
from producers import EventPublisher, SearchClient, SearchTimeout
from schemas.events import EventType, Interaction, SearchResponse
from tests.support.images import synthetic_folder

ROLES = ("embedder", "interactions", "query")
T = TypeVar("T")


@dataclass
class Pipeline:
    settings: Settings
    env: dict[str, str]  # what the workers get on top of this process's environment
    workers: Workers
    image_dir: Path
    labels: dict[str, str]
    tmp: Path

    def index(self) -> OpenSearchIndex:
        return OpenSearchIndex(self.settings.opensearch_url, self.settings.index_name, settings=self.settings)

    def publisher(self, **kw: Any) -> EventPublisher:
        return EventPublisher(self.settings.kafka_bootstrap, topics=self.settings.topics, **kw, settings=self.settings)

    def client(self, **kw: Any) -> SearchClient:
        return SearchClient(self.settings.kafka_bootstrap, topics=self.settings.topics, settings=self.settings, **kw)


def isolated_settings(
    engines: Mapping[str, str],
    tmp: Path,
    image_dir: Path,
    *,
    embedder: str = "hash",
    style: str = "handcrafted",
    **changes: Any,
) -> Settings:
    """Settings of one isolated run on ``engines`` (their variables: KAFKA_BOOTSTRAP, OPENSEARCH_URL,
    and e.g. a cluster's replication settings): its own topic prefix, app prefix (consumer groups),
    index and data directory; the fast hash embedder and handcrafted style by default; ``changes``
    (fields by name) on top."""
    tag = f"t{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {
        "topic_prefix": tag,
        "app_prefix": tag,
        "index_name": f"{tag}-images",
        "data_dir": str(tmp / "data"),
        "embedder": embedder,
        "style": style,
        "allowed_uri_roots": str(image_dir),
        "unknown_image_wait_s": 2.0,
        "partitions": 2,
        "log_level": "INFO",
    }
    return Settings.from_env({**process_environment(), **engines}, **{**fields, **changes})


async def start_pipeline(
    engines: Mapping[str, str],
    tmp: Path,
    *,
    embedder: str = "hash",
    style: str = "handcrafted",
    k: int = 3,
    make_images: Callable[[Path], dict[str, str]] = synthetic_folder,
    worker_env: Mapping[str, str] | None = None,
    roles: tuple[str, ...] = ROLES,
    **changes: Any,
) -> Pipeline:
    """Images drawn by ``make_images`` into ``tmp/images``, the shared topics, style clusters (k)
    trained on them and published, and one worker per role started."""
    image_dir = tmp / "images"
    settings = isolated_settings(engines, tmp, image_dir, embedder=embedder, style=style, **changes)
    labels = make_images(image_dir)
    await ensure_topics(settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions, settings=settings)
    from jobs.clusters import train_from_folder

    await train_from_folder(settings, image_dir, k=k, vector_kind="style")
    env = {**engines, **settings.child_env(), **(worker_env or {})}
    workers = Workers(tmp / "logs", env)
    for role in roles:
        workers.start(role)
    return Pipeline(settings, env, workers, image_dir, labels, tmp)


async def stop_pipeline(p: Pipeline) -> None:
    p.workers.stop_all()
    idx = p.index()
    try:
        await idx.delete_index()
    finally:
        await idx.close()


async def wait_for(
    predicate: Callable[[], Awaitable[T]],
    timeout: float,
    what: str,
    interval: float = 0.3,
    workers: Workers | None = None,
) -> T:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if workers is not None:
            workers.check_alive()
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def read_topic(bootstrap: str, topic: str, *, min_count: int = 1, timeout: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < min_count:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


async def ingest_all(p: Pipeline) -> int:
    from jobs.ingest import cmd_ingest

    n = await cmd_ingest(p.settings, p.image_dir, inline=False)
    idx = p.index()
    try:

        async def count() -> bool:
            try:
                return await idx.searchable_count() >= n
            except Exception:
                return False

        await wait_for(count, 120, f"{n} images indexed", workers=p.workers)
    finally:
        await idx.close()
    return n


async def search_until_ready(client: SearchClient, **kw: Any) -> SearchResponse:
    """The first search waits for the query worker to join its group."""
    deadline = time.monotonic() + 90
    while True:
        try:
            return await client.search(timeout_s=5, **kw)
        except SearchTimeout:
            if time.monotonic() > deadline:
                raise


async def teach_user(
    pipeline: Pipeline, client: SearchClient, user: str, history: list[tuple[str, EventType]], marker: str
) -> None:
    """Publish `history` (image id, event type) for `user`, then a marker view; return when the query
    worker has applied the marker (a user's events are applied in order)."""
    async with pipeline.publisher() as pub:
        for n, (image_id, kind) in enumerate(history):
            await pub.publish_interaction(
                Interaction(user_id=user, image_id=image_id, event_type=kind, event_id=f"{user}-{n}")
            )
        await pub.publish_interaction(
            Interaction(user_id=user, image_id=marker, event_type=EventType.VIEW, event_id=f"{user}-marker")
        )
    marker_png = base64.b64encode((pipeline.image_dir / f"{marker}.png").read_bytes()).decode()

    async def applied() -> SearchResponse | None:
        r = await client.search(user, image_b64=marker_png, k=10, personalization_weight=0.1, timeout_s=10)
        return r if any(h.image_id == marker and f"view:{marker}" in h.drivers for h in r.hits) else None

    await wait_for(applied, 60, f"{user}'s interactions applied by the query worker")
