"""Keeps the current centroid model, hot-reloaded from the compacted centroids topic.

Every embedding worker reads the whole topic (no consumer group: each needs every version) and
keeps the newest model; a new version published while it runs is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from imgsearch.domain.centroids import CentroidModel
from schemas import topics

log = logging.getLogger(__name__)


class CentroidWatcher:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self.current: CentroidModel | None = None
        self.ready = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        spec = topics.centroids()
        tp = TopicPartition(spec.name, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
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
            model = CentroidModel.from_json(value)
        except (ValueError, KeyError) as exc:
            log.error("ignoring an unreadable centroid model: %s", exc)
            return
        if self.current is None or self.current.version != model.version:
            log.info("centroid model %s loaded (k=%d, on %s vectors)", model.version, model.k, model.vector_kind)
        self.current = model

    def stop(self) -> None:
        self._stopping = True


async def current_model(bootstrap: str, timeout_s: float = 30.0) -> CentroidModel | None:
    """The newest published centroid model (reads the compacted topic to its end)."""
    watcher = CentroidWatcher(bootstrap)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.ready.wait(), timeout_s)
        return watcher.current
    finally:
        watcher.stop()
        await task


async def publish_centroids(bootstrap: str, model: CentroidModel) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=16 * 2**20)
    await producer.start()
    try:
        await producer.send_and_wait(topics.centroids().name, key=b"current", value=model.to_json())
    finally:
        await producer.stop()
