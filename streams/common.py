"""What every role's faust app shares: app construction, the dead-letter sink, thread offload."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import faust

from imgsearch import metrics
from imgsearch.config import Settings
from imgsearch.connections import faust_credentials
from schemas import topics
from schemas.events import DeadLetter

log = logging.getLogger(__name__)
T = TypeVar("T")


def make_app(role: str, settings: Settings) -> faust.App:
    datadir = Path(settings.data_dir) / "faust" / settings.app_id(role)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id(role),
        broker_credentials=faust_credentials(),
        broker=f"kafka://{settings.kafka_bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        store="memory://",
        datadir=str(datadir),
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
        producer_acks=-1,
        stream_wait_empty=False,
        broker_commit_every=100,
        broker_commit_interval=1.0,
    )
    metrics.instrument_faust_app(app, role)  # no-op unless IMGSEARCH_METRICS_PORT > 0
    return app


def topic(app: faust.App, spec: topics.TopicSpec, settings: Settings) -> faust.TopicT:
    return app.topic(
        spec.name,
        partitions=spec.partitions or settings.partitions,
        key_type=bytes,
        value_type=bytes,
        internal=False,
    )


def json_schema() -> faust.Schema:
    """Tables keep JSON keys and values (the app's topics carry raw bytes)."""
    return faust.Schema(key_serializer="json", value_serializer="json")


class DeadLetters:
    """Sends invalid events to the dead-letter topic, with a machine-readable reason."""

    def __init__(self, app: faust.App, settings: Settings, consumer: str) -> None:
        self._topic = topic(app, topics.dead_letters(), settings)
        self._consumer = consumer
        self.count = 0

    async def send(
        self,
        payload: bytes | None,
        code: str,
        reason: str,
        *,
        source_topic: str,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
    ) -> None:
        letter = DeadLetter(
            reason_code=code,
            reason=reason[:2000],
            source_topic=source_topic,
            source_partition=partition,
            source_offset=offset,
            consumer=self._consumer,
            original_key_b64=None if key is None else base64.b64encode(key).decode(),
            original_b64=base64.b64encode(payload or b"").decode(),
        )
        await self._topic.send(key=source_topic.encode(), value=letter.to_bytes())
        self.count += 1
        metrics.dead_letter(self._consumer, source_topic, code)
        log.warning("dead letter from %s[%s]@%s: %s: %s", source_topic, partition, offset, code, reason[:300])

    async def from_event(self, event: Any, code: str, reason: str) -> None:
        msg = event.message
        await self.send(
            msg.value,
            code,
            reason,
            source_topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
        )


class Offload:
    """Runs CPU-bound work (embedding) off the event loop, so heartbeats and I/O keep flowing."""

    def __init__(self, threads: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imgsearch-cpu")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
