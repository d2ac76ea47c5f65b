"""Search over Kafka request/reply, with a deadline.

Each client owns one reply topic (``imgsearch.search.replies.<client_id>``), created on start. A
request carries its correlation id (request id) and the reply topic; the client waits for the reply
with that id, never longer than the timeout (faust's ``ask`` has none): then ``SearchTimeout``.
Replies with a correlation id this client did not send are ignored. ``start()`` has a deadline too
(``start_timeout_s``, default 30 s: ``ClientStartTimeout``); a request topic the broker does not list
fails at once (``TopicMissing``), a request over the size limits with ``EventTooLarge``.

On a secured cluster the client id starts with the client's SASL principal
(``<principal>.<random>``), so one prefixed ACL per principal (``imgsearch.search.replies.<principal>.``)
lets it create and read its own reply topics and no one else's (docs/operations.md, Security).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from imgsearch.config import Settings, default_settings
from imgsearch.connections import kafka_security
from imgsearch.kafka.admin import ensure_topics
from imgsearch.kafka.deadlines import ClientStartTimeout, KnownTopics, too_large
from schemas.events import MetadataFilter, SearchRequest, SearchResponse
from schemas.limits import MAX_MESSAGE_BYTES
from schemas.reasons import Reason
from schemas.topics import Topics

log = logging.getLogger(__name__)


class SearchTimeout(TimeoutError):
    """No reply in time: no query worker running, or it is overloaded."""


class SearchError(RuntimeError):
    """The query worker answered with an error: ``code`` is the wire string, ``reason`` its
    :class:`~schemas.reasons.Reason` (None for a code this version does not know)."""

    def __init__(self, response: SearchResponse) -> None:
        assert response.error is not None
        super().__init__(f"{response.error.code}: {response.error.message}")
        self.response = response
        self.code = response.error.code
        self.reason = Reason.parse(self.code)

    @property
    def retriable(self) -> bool:
        """Whether the same search may succeed when sent again (an expired request, the index down)."""
        return self.reason is not None and self.reason.retriable


def default_client_id(kind: str = "", principal: str = "") -> str:
    """``<principal>.<kind><random>`` when authenticated by SASL (``principal``: the settings'
    ``kafka_sasl_username``), else ``<kind><random>``."""
    own = f"{kind}{uuid.uuid4().hex[:12]}"
    return f"{principal}.{own}" if principal else own


class SearchClient:
    def __init__(
        self,
        bootstrap: str,
        client_id: str | None = None,
        *,
        topics: Topics,
        principal: str = "",
        start_timeout_s: float = 30.0,
        settings: Settings | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic_names = topics  # this run's (settings.topics)
        # how to connect and the reply topic's replication (None: the built-in defaults, PLAINTEXT)
        self._settings = settings or default_settings()
        self.client_id = client_id or default_client_id(principal=principal or self._settings.kafka_sasl_username)
        self.reply_topic = topics.reply_topic(self.client_id).name
        self._start_timeout_s = start_timeout_s
        self._producer = AIOKafkaProducer(
            **kafka_security(self._settings),
            bootstrap_servers=bootstrap,
            acks="all",  # a request acked by a leader that dies before replicating it would be lost
            enable_idempotence=True,
            linger_ms=0,
            max_request_size=MAX_MESSAGE_BYTES,
            request_timeout_ms=int(start_timeout_s * 1000),
        )
        self._consumer = AIOKafkaConsumer(
            **kafka_security(self._settings),
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )
        self._topics = KnownTopics(self._producer.client)
        self._pending: dict[str, asyncio.Future[SearchResponse]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:  # e.g. not authorized to create its reply topic: fail, do not wait for it
            await asyncio.wait_for(self._start(), self._start_timeout_s)
        except TimeoutError:
            await self.stop()
            raise ClientStartTimeout(
                f"search client {self.client_id}: Kafka at {self.bootstrap} not ready within {self._start_timeout_s:g}s"
            ) from None
        except BaseException:
            await self.stop()
            raise
        self._reader = asyncio.create_task(self._read(), name=f"search-replies-{self.client_id}")

    async def _start(self) -> None:
        await ensure_topics(self.bootstrap, [self.topic_names.reply_topic(self.client_id)], 1, settings=self._settings)
        await self._producer.start()
        await self._consumer.start()
        tp = TopicPartition(self.reply_topic, 0)
        self._consumer.assign([tp])
        await self._consumer.seek_to_end(tp)
        await self._consumer.position(tp)  # fix the position before the first request goes out

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        for client in (self._consumer, self._producer):  # never a hang on the way out
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.stop(), self._start_timeout_s)

    async def __aenter__(self) -> SearchClient:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for msg in msgs:
                    try:
                        resp = SearchResponse.from_bytes(msg.value or b"")
                    except ValueError as exc:
                        log.error("unreadable reply on %s: %s", self.reply_topic, exc)
                        continue
                    fut = self._pending.pop(resp.request_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(resp)

    async def search(
        self,
        user_id: str,
        text: str | None = None,
        *,
        image_b64: str | None = None,
        k: int = 10,
        personalization_weight: float | None = None,
        max_per_cluster: int | None = None,
        mmr_lambda: float | None = None,
        timeout_s: float = 5.0,
        raise_on_error: bool = True,
        similar_to: str | None = None,
        filters: Sequence[MetadataFilter | Mapping[str, Any]] = (),
        page: int = 1,
        ranking_id: str | None = None,
        search_after: str | None = None,
    ) -> SearchResponse:
        """One search; ``similar_to`` (an indexed image id), ``filters`` (metadata conditions inside the
        k-NN), ``page`` and ``ranking_id`` (the previous page's, to keep its order) or ``search_after``
        (the previous response's ``cursor``: the hits after its last one) are issue 15's."""
        req = SearchRequest(
            user_id=user_id,
            text=text,
            image_b64=image_b64,
            k=k,
            personalization_weight=personalization_weight,
            max_per_cluster=max_per_cluster,
            mmr_lambda=mmr_lambda,
            similar_to=similar_to,
            filters=[f if isinstance(f, MetadataFilter) else MetadataFilter.model_validate(f) for f in filters],
            page=page,
            ranking_id=ranking_id,
            search_after=search_after,
            reply_topic=self.reply_topic,
            timeout_ms=int(timeout_s * 1000),
        )
        return await self.send(req, timeout_s=timeout_s, raise_on_error=raise_on_error)

    async def send(self, req: SearchRequest, *, timeout_s: float = 5.0, raise_on_error: bool = True) -> SearchResponse:
        if self._reader is None:
            raise RuntimeError("SearchClient.start() first (or use it as an async context manager)")
        if req.reply_topic != self.reply_topic:
            raise ValueError("the request's reply topic is not this client's")
        fut: asyncio.Future[SearchResponse] = asyncio.get_running_loop().create_future()
        self._pending[req.request_id] = fut
        name, value = self.topic_names.search_requests().name, req.to_bytes()
        deadline = time.monotonic() + timeout_s
        sent = False
        try:  # one deadline for the send and the reply
            await self._topics.require(name, timeout_s)  # TopicMissing at once, not at the deadline
            await asyncio.wait_for(
                self._producer.send_and_wait(name, key=req.user_id.encode(), value=value),
                max(0.01, deadline - time.monotonic()),
            )
            sent = True
            resp = await asyncio.wait_for(fut, max(0.01, deadline - time.monotonic()))
        except MessageSizeTooLargeError as exc:
            raise too_large(name, len(value), exc) from exc
        except TimeoutError:
            if not sent:
                raise SearchTimeout(
                    f"search {req.request_id} could not be sent to {name} within {timeout_s:.1f}s (is Kafka up?)"
                ) from None
            raise SearchTimeout(
                f"no reply to search {req.request_id} within {timeout_s:.1f}s: is a query worker running "
                f"(python -m consumers.query_worker)?"
            ) from None
        finally:
            self._pending.pop(req.request_id, None)
        if raise_on_error and resp.error is not None:
            raise SearchError(resp)
        return resp
