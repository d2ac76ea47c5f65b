"""Async publisher for image and interaction events (idempotent producer, acks=all).

Keys follow schemas.topics: new images by image id, interactions by user id.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from aiokafka import AIOKafkaProducer

from imgsearch.connections import kafka_security
from schemas import topics
from schemas.events import ForgetUser, Interaction, NewImage


class EventPublisher:
    def __init__(self, bootstrap: str, client_id: str = "imgsearch-publisher") -> None:
        self._producer = AIOKafkaProducer(
            **kafka_security(),
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=12 * 2**20,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> EventPublisher:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def publish_image(self, event: NewImage) -> None:
        await self._producer.send_and_wait(
            topics.new_images().name, key=event.image_id.encode(), value=event.to_bytes()
        )

    async def publish_images(self, events: Iterable[NewImage]) -> int:
        futures = [
            await self._producer.send(topics.new_images().name, key=e.image_id.encode(), value=e.to_bytes())
            for e in events
        ]
        for f in futures:
            await f
        return len(futures)

    async def publish_interaction(self, event: Interaction) -> None:
        await self._producer.send_and_wait(
            topics.interactions().name, key=event.user_id.encode(), value=event.to_bytes()
        )

    async def publish_forget(self, event: ForgetUser) -> None:
        """A right-to-be-forgotten request, on the interactions topic keyed by the user: it is
        handled after every interaction of that user published before it (issue 14 item 15)."""
        await self._producer.send_and_wait(
            topics.interactions().name, key=event.user_id.encode(), value=event.to_bytes()
        )

    async def publish_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (for tests and tools that replay dead letters)."""
        await self._producer.send_and_wait(topic, key=key, value=value)
