"""What every role's faust app shares: app construction (with the faust workarounds of
``streams.faust_compat``), dead letters, the parse-or-dead-letter ``valid()``, thread offload."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import faust

from imgsearch import metrics
from imgsearch.config import Settings
from imgsearch.connections import faust_credentials
from schemas import topics
from schemas.events import DeadLetter, Event, InvalidEvent, parse_event
from schemas.limits import DEAD_LETTER_MAX_BYTES, MAX_MESSAGE_BYTES
from schemas.reasons import Reason
from streams import faust_compat
from streams.ports import EventSink

log = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound=Event)


def make_app(role: str, settings: Settings) -> faust.App:
    faust_compat.install(settings.allow_untested_faust)  # once per process: version gate + patches
    datadir = Path(settings.data_dir) / "faust" / settings.app_id(role)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id(role),
        # faust would read its own variables (BROKER_SESSION_TIMEOUT, ...) and let them override what
        # is passed here: the one configuration is Settings, so faust sees an empty environment
        env={},
        broker_credentials=faust_credentials(settings),
        broker=f"kafka://{settings.kafka_bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        store="memory://",
        datadir=str(datadir),
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        # faust binds web_bind (its default: 0.0.0.0), web_host only names the URL: both loopback
        # unless IMGSEARCH_WORKER_WEB_HOST says otherwise; no table views (/table/profiles/<user>/
        # would show anyone a user's recent images) and no router views
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_tables_enabled=False,
        web_router_enabled=False,
        producer_acks=-1,  # + idempotence: faust_compat.idempotent_producers()
        # the size-limit chain (schemas/limits.py): one event of the largest allowed size fits
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        # Before it commits on shutdown (SIGTERM) or gives up partitions in a rebalance, a worker
        # waits until the events its agents hold are done. Without this, faust cancels an agent in
        # the middle of an event and its stream iterator acks that event as it closes, so the final
        # commit skips it: a search request taken just before SIGTERM was never answered by anyone.
        stream_wait_empty=True,
        # how soon a crashed worker's partitions move (Settings.kafka_session_timeout_s)
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_s,
        broker_rebalance_timeout=settings.kafka_rebalance_timeout_s,
        broker_commit_every=100,
        broker_commit_interval=1.0,
    )
    faust_compat.prepare_app(app)
    metrics.instrument_faust_app(  # no-op unless IMGSEARCH_METRICS_PORT > 0
        app,
        role,
        faust_compat.consumer_lags,
        settings.metrics_port,
        host=settings.metrics_host,
        tries=settings.metrics_port_tries,
    )
    return app


def topic(app: faust.App, spec: topics.TopicSpec, settings: Settings) -> faust.TopicT:
    return app.topic(
        spec.name,
        partitions=spec.partitions or settings.partitions,
        key_type=bytes,
        value_type=bytes,
        internal=False,
    )


def changelog_topics(app: faust.App) -> list[topics.TopicSpec]:
    """The changelog topics of the app's tables, as faust names and partitions them (compacted)."""
    return [
        topics.TopicSpec(
            name=table.changelog_topic.get_topic_name(),
            key="the table's key",
            doc=f"changelog of the {table.name} table",
            compacted=True,
            partitions=table.partitions or app.conf.topic_partitions,
            max_compaction_lag_ms=topics.CHANGELOG_MAX_COMPACTION_LAG_MS,
        )
        for table in app.tables.values()
    ]


def json_schema() -> faust.Schema:
    """Tables keep JSON keys and values (the app's topics carry raw bytes)."""
    return faust.Schema(key_serializer="json", value_serializer="json")


class DeadLetters:
    """Sends invalid events to the dead-letter topic (``sink``), with a machine-readable reason."""

    def __init__(self, sink: EventSink, consumer: str) -> None:
        self._sink = sink
        self._consumer = consumer

    async def send(
        self,
        payload: bytes | None,
        code: Reason,
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
            original_key_b64=None if key is None else base64.b64encode(key[:1024]).decode(),
            # a copy only up to DEAD_LETTER_MAX_ORIGINAL_BYTES, with the size and sha256: a dead letter
            # of a big event must still fit in a message (it used to crash the agent, which then
            # committed past the event: lost without a trace)
            **DeadLetter.original_fields(payload),
        )
        value = letter.to_bytes()
        assert len(value) <= DEAD_LETTER_MAX_BYTES, len(value)  # the payload copy and the reason are bounded
        await self._sink.send(key=source_topic.encode(), value=value)
        metrics.dead_letter(self._consumer, source_topic, code)
        log.warning("dead letter from %s[%s]@%s: %s: %s", source_topic, partition, offset, code, reason[:300])

    async def from_event(self, event: Any, code: Reason, reason: str) -> None:
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

    async def failed(self, event: Any, exc: BaseException) -> str:
        """Dead-letter an event whose processing raised something nobody foresaw, as
        ``processing_failed`` with the error; returns that reason (e.g. for an error reply)."""
        why = f"{type(exc).__name__}: {exc}"
        await self.from_event(event, Reason.PROCESSING_FAILED, why)
        return why


async def valid(
    event: Any,
    model: type[E],
    dlq: DeadLetters,
    on_invalid: Callable[[InvalidEvent], Awaitable[None]] | None = None,
) -> E | None:
    """The event's value parsed as ``model``, or None after dead-lettering it with the reason (and
    ``on_invalid(error)``, e.g. an error reply) when it is not a valid event of that kind."""
    try:
        return parse_event(model, event.message.value)
    except InvalidEvent as exc:
        await dlq.from_event(event, exc.code, exc.message)
        if on_invalid is not None:
            await on_invalid(exc)
        return None


class Offload:
    """Runs CPU-bound work (embedding) off the event loop, so heartbeats and I/O keep flowing."""

    def __init__(self, threads: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imgsearch-cpu")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


class TextBatcher:
    """Issue 16: query texts embedded together when requests overlap. The first text starts a batch at
    the next turn of the event loop; texts that arrive while a batch is being embedded wait for the
    next one, which takes all of them (up to ``max_batch``). No window is waited for: alone, a text is
    embedded at once, as before; under load one encoder call serves several requests (a batch of 4
    costs about half as much per text as 4 calls on this machine)."""

    def __init__(self, embed_texts: Callable[[list[str]], Any], offload: Offload, max_batch: int = 16) -> None:
        self._embed_texts = embed_texts
        self._offload = offload
        self._max = max_batch
        self._pending: list[tuple[str, asyncio.Future[Any]]] = []
        self._task: asyncio.Future[None] | None = None  # the drain running, if any
        self.batches: deque[int] = deque(maxlen=1000)  # the sizes of the last batches embedded

    async def embed(self, text: str) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((text, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())
        return await fut

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # the texts of this turn of the loop join the first batch
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            self.batches.append(len(batch))
            try:
                vectors = await self._offload.run(self._embed_texts, [t for t, _ in batch])
            except Exception as exc:  # every request of the batch gets the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), vec in zip(batch, vectors, strict=True):
                if not fut.done():
                    fut.set_result(vec)
