"""Async publisher for image and interaction events (idempotent producer, acks=all).

Keys follow schemas.topics: new images by image id, interactions by user id.

Every start and every publish has a deadline (``timeout_s``, default 30 s): then a clear error
instead of a wait (``ClientStartTimeout``, ``PublishTimeout``); a topic the broker does not list is
refused at once (``TopicMissing``: create the topics with ``imgsearch topics``), a record over the
size limits with ``EventTooLarge`` (schemas/limits.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from imgsearch.config import Settings, default_settings
from imgsearch.connections import kafka_security
from imgsearch.kafka.deadlines import ClientStartTimeout, KnownTopics, PublishTimeout, too_large, within
from schemas.events import ForgetUser, Interaction, NewImage
from schemas.limits import MAX_MESSAGE_BYTES
from schemas.topics import Topics

DEFAULT_TIMEOUT_S = 30.0


class EventPublisher:
    def __init__(
        self,
        bootstrap: str,
        client_id: str = "imgsearch-publisher",
        *,
        topics: Topics,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        settings: Settings | None = None,
    ) -> None:
        """``settings``: how to connect (SASL, TLS; default: the built-in PLAINTEXT, ``default_settings()``)."""
        self.bootstrap = bootstrap
        self.topic_names = topics  # this run's (settings.topics)
        self.timeout_s = timeout_s
        self._producer = AIOKafkaProducer(
            **kafka_security(settings or default_settings()),
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=MAX_MESSAGE_BYTES,
            request_timeout_ms=int(timeout_s * 1000),
        )
        self._topics = KnownTopics(self._producer.client)

    async def start(self) -> None:
        try:
            await within(
                self._producer.start(),
                self.timeout_s,
                ClientStartTimeout(f"could not connect to Kafka at {self.bootstrap} within {self.timeout_s:g}s"),
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):  # records still unsent at the deadline go with the producer
            await asyncio.wait_for(self._producer.stop(), self.timeout_s)

    async def __aenter__(self) -> EventPublisher:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _send(self, topic: str, key: bytes | None, value: bytes, deadline: float) -> asyncio.Future[object]:
        """Queue one record (the returned future resolves when it is acknowledged)."""
        await self._topics.require(topic, max(0.1, deadline - time.monotonic()))
        try:
            return await within(
                self._producer.send(topic, key=key, value=value),
                max(0.1, deadline - time.monotonic()),
                PublishTimeout(f"could not queue a record for {topic} within {self.timeout_s:g}s"),
            )
        except MessageSizeTooLargeError as exc:
            raise too_large(topic, len(value), exc) from exc

    async def _acked(self, topic: str, size: int, fut: asyncio.Future[object], deadline: float) -> None:
        try:
            await within(
                fut,
                max(0.1, deadline - time.monotonic()),
                PublishTimeout(f"a record for {topic} was not acknowledged within {self.timeout_s:g}s"),
            )
        except MessageSizeTooLargeError as exc:  # the broker's (topic's) limit
            raise too_large(topic, size, exc) from exc

    async def _publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        deadline = time.monotonic() + self.timeout_s
        fut = await self._send(topic, key, value, deadline)
        await self._acked(topic, len(value), fut, deadline)

    async def publish_image(self, event: NewImage) -> None:
        await self._publish(self.topic_names.new_images().name, event.image_id.encode(), event.to_bytes())

    async def publish_images(self, events: Iterable[NewImage]) -> int:
        """Publish many: queueing each record may take ``timeout_s``, and all are acknowledged within
        ``timeout_s`` of the last one queued (a long ingest is not cut short by one overall deadline)."""
        name = self.topic_names.new_images().name
        pending: list[tuple[int, asyncio.Future[object]]] = []
        for e in events:
            value = e.to_bytes()
            fut = await self._send(name, e.image_id.encode(), value, time.monotonic() + self.timeout_s)
            pending.append((len(value), fut))
        deadline = time.monotonic() + self.timeout_s
        for size, fut in pending:
            await self._acked(name, size, fut, deadline)
        return len(pending)

    async def publish_interaction(self, event: Interaction) -> None:
        await self._publish(self.topic_names.interactions().name, event.user_id.encode(), event.to_bytes())

    async def publish_forget(self, event: ForgetUser) -> None:
        """A right-to-be-forgotten request, on the interactions topic keyed by the user: it is
        handled after every interaction of that user published before it (issue 14 item 15)."""
        await self._publish(self.topic_names.interactions().name, event.user_id.encode(), event.to_bytes())

    async def publish_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (for tests and tools that replay dead letters)."""
        await self._publish(topic, key, value)
