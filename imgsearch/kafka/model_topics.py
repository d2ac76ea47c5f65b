"""Versioned models on compacted one-partition topics, hot-reloaded by every worker that needs them:
the centroid model (embedding and query workers) and the local ranker's offline model (query
workers). Each worker reads the whole topic (no consumer group: each needs every version) and keeps
the newest value; a new version published while it runs is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from imgsearch.config import Settings
from imgsearch.connections import kafka_security
from imgsearch.domain.centroids import CentroidModel
from imgsearch.domain.cooccurrence import CooccurrenceModel

log = logging.getLogger(__name__)
M = TypeVar("M")


class LatestValueWatcher(Generic[M]):
    """Keeps the newest value of a one-partition compacted topic (read from the start, no group)."""

    def __init__(self, settings: Settings, topic_name: str, parse: Callable[[bytes], M], what: str) -> None:
        self._settings = settings
        self._topic = topic_name
        self._parse = parse
        self._what = what
        self.current: M | None = None
        self.ready = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        tp = TopicPartition(self._topic, 0)
        consumer = AIOKafkaConsumer(
            **kafka_security(self._settings), bootstrap_servers=self._settings.kafka_bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                self.ready.set()
            while not self._stopping:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for msg in batch.get(tp, []):
                    self._load(msg.value)
                if not self.ready.is_set() and await consumer.position(tp) >= end:
                    self.ready.set()
        finally:
            await consumer.stop()

    def _load(self, value: bytes | None) -> None:
        if not value:
            return
        try:
            model = self._parse(value)
        except (ValueError, KeyError) as exc:
            log.error("ignoring an unreadable %s: %s", self._what, exc)
            return
        log.info("%s loaded: %s", self._what, getattr(model, "version", getattr(model, "centroid_version", "")))
        self.current = model

    def stop(self) -> None:
        self._stopping = True


class CentroidWatcher(LatestValueWatcher[CentroidModel]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.topics.centroids().name, CentroidModel.from_json, "centroid model")


class RankerModelWatcher(LatestValueWatcher[CooccurrenceModel]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.topics.ranker_model().name, CooccurrenceModel.from_json, "ranker model")


async def current_model(settings: Settings, timeout_s: float = 30.0) -> CentroidModel | None:
    """The newest published centroid model (reads the compacted topic to its end)."""
    watcher = CentroidWatcher(settings)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.ready.wait(), timeout_s)
        return watcher.current
    finally:
        watcher.stop()
        await task


async def publish_latest(settings: Settings, topic_name: str, value: bytes) -> None:
    producer = AIOKafkaProducer(
        **kafka_security(settings),
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=16 * 2**20,
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic_name, key=b"current", value=value)
    finally:
        await producer.stop()


async def publish_centroids(settings: Settings, model: CentroidModel) -> None:
    await publish_latest(settings, settings.topics.centroids().name, model.to_json())
