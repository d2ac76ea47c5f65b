"""Deadlines and clear errors for the Kafka clients (issue 14, item 8).

aiokafka waits for a topic it does not know up to its ``request_timeout_ms`` per send (and faust's
producer 1,200 s): a publisher once blocked for 9 minutes on a topic that did not exist. Here every
start and every send has a deadline, a topic the broker does not list is refused at once (without
asking the broker to auto-create it), and a record over a size limit is named as such.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiokafka.errors import MessageSizeTooLargeError

T = TypeVar("T")


class KafkaClientError(RuntimeError):
    """A Kafka client operation failed with a reason a caller can act on."""


class ClientStartTimeout(KafkaClientError, TimeoutError):
    """A client could not connect (or create its topic) within its deadline."""


class PublishTimeout(KafkaClientError, TimeoutError):
    """A record was not acknowledged within the deadline."""


class TopicMissing(KafkaClientError, LookupError):
    """The broker does not list the topic (auto-creation is off: create it with ``imgsearch topics``)."""


class EventTooLarge(KafkaClientError, ValueError):
    """A record over the producer's or the topic's size limit (schemas/limits.py)."""


async def within(aw: Awaitable[T], timeout_s: float, error: KafkaClientError) -> T:
    """``aw`` or ``error`` (a timeout) after ``timeout_s``."""
    try:
        return await asyncio.wait_for(aw, timeout_s)
    except TimeoutError:
        raise error from None


def too_large(topic: str, size: int, exc: MessageSizeTooLargeError) -> EventTooLarge:
    return EventTooLarge(
        f"a {size}-byte record was refused for {topic}: over the producer's max_request_size or the topic's "
        f"max.message.bytes (create topics with `imgsearch topics`; limits in schemas/limits.py): {exc}"
    )


class KnownTopics:
    """Which topics the broker lists, asked without auto-creating anything (a metadata request for
    every topic, as aiokafka's producer would otherwise ask for the one topic with auto-creation on).
    Present topics are remembered; absent ones are asked again after ``recheck_s`` at most."""

    def __init__(self, client: Any, recheck_s: float = 5.0) -> None:
        self._client = client  # an aiokafka AIOKafkaClient (e.g. a producer's .client)
        self._known: set[str] = set()
        self._missing: dict[str, float] = {}
        self._recheck_s = recheck_s

    async def exists(self, topic: str, timeout_s: float) -> bool:
        if topic in self._known:
            return True
        checked = self._missing.get(topic)
        if checked is not None and time.monotonic() - checked < self._recheck_s:
            return False
        cluster = await asyncio.wait_for(self._client.fetch_all_metadata(), timeout_s)
        listed = set(cluster.topics())
        self._known |= listed
        for name in listed:
            self._missing.pop(name, None)
        if topic in listed:
            return True
        if len(self._missing) > 10_000:  # bounded: names come from requests
            self._missing.clear()
        self._missing[topic] = time.monotonic()
        return False

    async def require(self, topic: str, timeout_s: float) -> None:
        try:
            present = await self.exists(topic, timeout_s)
        except TimeoutError:
            raise PublishTimeout(
                f"the broker did not answer a metadata request for {topic} within {timeout_s:g}s"
            ) from None
        if not present:
            raise TopicMissing(
                f"topic {topic} does not exist (or this principal may not describe it): create the topics with "
                "`imgsearch topics`"
            )
