"""What every role's faust app shares: app construction, the dead-letter sink, thread offload."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import faust

from imgsearch import metrics
from imgsearch.config import Settings
from imgsearch.connections import faust_credentials
from schemas import topics
from schemas.events import DeadLetter
from schemas.limits import DEAD_LETTER_MAX_BYTES, MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)
T = TypeVar("T")

# The versions the patches below (and metrics.consumer_lags' read of consumer._committed_offset) were
# tested against: they reach into private internals of faust's aiokafka driver and of mode's
# FlowControlEvent, which a new release may change without notice. pyproject.toml pins the same
# versions; a different faust-streaming or mode-streaming stops the worker at start-up (unless
# IMGSEARCH_ALLOW_UNTESTED_FAUST=1), a different aiokafka only warns (ActivePartitions relies on
# its Fetcher reading an empty partition set as "all", but touches no private name of it).
TESTED_VERSIONS = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1"}
TESTED_WARN_ONLY = {"aiokafka": "0.14.0"}


class UntestedVersions(RuntimeError):
    """faust-streaming or mode-streaming is not the version the patches were tested against."""


def check_patched_versions(allow_untested: bool = False) -> list[str]:
    """Compare the installed faust-streaming, mode-streaming and aiokafka with the tested versions.
    Returns the differences (each logged as a warning); raises UntestedVersions for faust/mode
    differences unless `allow_untested`."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    hard = [f"{d} {installed(d)} (tested: {v})" for d, v in TESTED_VERSIONS.items() if installed(d) != v]
    soft = [f"{d} {installed(d)} (tested: {v})" for d, v in TESTED_WARN_ONLY.items() if installed(d) != v]
    if hard and not allow_untested:
        raise UntestedVersions(
            "imgsearch patches private internals of faust-streaming and mode-streaming (streams/common.py) "
            f"and was tested only with {', '.join(f'{d} {v}' for d, v in TESTED_VERSIONS.items())}; "
            f"installed: {'; '.join(hard)}. Install the locked versions (bash scripts/setup.sh), or set "
            "IMGSEARCH_ALLOW_UNTESTED_FAUST=1 to run anyway (re-run the integration tests first)"
        )
    for diff in hard + soft:
        log.warning("untested version: %s; the faust patches in streams/common.py may not hold", diff)
    return hard + soft


class ActivePartitions:
    """A live view of the consumer's set of active (not paused) partitions that is never "empty" to
    aiokafka.

    faust hands aiokafka's ``Fetcher.fetched_records(partitions)`` its live set of active partitions,
    and a fetch waits there up to a second while rebalances and table recovery pause and resume
    partitions in that set. aiokafka reads an empty ``partitions`` as "every assigned partition": when
    a rebalance paused everything, a fetch already under way drained the changelog records that
    recovery had just sought to, and faust threw them away because the flow was stopped (it rewinds
    only partitions with committed offsets, which changelogs have none of). Recovery then waited
    forever for records it would never see again. Through this view an empty set means "none".
    """

    def __init__(self, live: AbstractSet[Any]) -> None:
        self._live = live

    def __contains__(self, tp: object) -> bool:
        return tp in self._live

    def __iter__(self) -> Iterator[Any]:
        return iter(set(self._live))

    def __len__(self) -> int:
        return len(self._live)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"ActivePartitions({set(self._live)!r})"


def fetch_only_active_partitions() -> None:
    """Make faust's aiokafka consumer thread fetch only from its active partitions (see
    ``ActivePartitions``); idempotent."""
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    original = thread._fetch_records
    if getattr(original, "_imgsearch_active_only", False):
        return

    @functools.wraps(original)
    async def _fetch_records(
        self: Any, consumer: Any, active_partitions: Any, timeout: float | None = None, max_records: int | None = None
    ) -> Any:
        if active_partitions is not None:  # None: a client-only app, which fetches everything
            active_partitions = ActivePartitions(active_partitions)
        return await original(self, consumer, active_partitions, timeout=timeout, max_records=max_records)

    _fetch_records._imgsearch_active_only = True  # type: ignore[attr-defined]
    thread._fetch_records = _fetch_records  # type: ignore[method-assign]


def keep_queued_events_on_resume(flow_control: Any) -> None:
    """Make ``flow_control.resume()`` keep the stream buffers while events already flow.

    mode's ``FlowControlEvent.resume()`` empties every stream buffer, also when flow control is
    already active. After an assignment, faust's table recovery makes it active when the restore
    begins, later resumes the stream partitions, awaits the seek to committed offsets, and only then
    calls ``resume()`` again: events the fetcher delivered in that window were emptied out. Their read
    offsets had moved on, so nothing fetched them again, and faust's commit check does not see a hole
    right after the committed offset, so later acks committed past them: a query worker restarted
    after kill -9 lost the first event after its committed offset in about one start in ten. Resuming
    from a real suspension (a rebalance) still empties the buffers of stale events.
    """
    if getattr(flow_control, "_imgsearch_keeps_queues", False):
        return
    original = flow_control.resume

    def resume() -> None:
        if flow_control.is_active():
            log.debug("flow control already active: stream buffers kept")
            return
        original()

    flow_control.resume = resume
    flow_control._imgsearch_keeps_queues = True


def idempotent_producers() -> None:
    """Every faust producer idempotent (acks=all): faust turns idempotence on only for transactions
    (exactly-once), so a send retried after a broker failover could write an event twice. With it,
    the broker drops a batch it already has (the producer id and sequence number match). Idempotent."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    producer_cls: Any = faust_aiokafka.Producer
    if getattr(producer_cls, "_imgsearch_idempotent", False):
        return
    original = producer_cls._settings_extra

    def settings_extra(self: Any) -> Mapping[str, Any]:
        return {**original(self), "acks": "all", "enable_idempotence": True}

    producer_cls._settings_extra = settings_extra
    producer_cls._imgsearch_idempotent = True


def make_app(role: str, settings: Settings) -> faust.App:
    check_patched_versions(settings.allow_untested_faust)
    fetch_only_active_partitions()
    idempotent_producers()
    datadir = Path(settings.data_dir) / "faust" / settings.app_id(role)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id(role),
        broker_credentials=faust_credentials(),
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
        producer_acks=-1,  # + idempotence: idempotent_producers()
        # the size-limit chain (schemas/limits.py): one event of the largest allowed size fits
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        # Before it commits on shutdown (SIGTERM) or gives up partitions in a rebalance, a worker
        # waits until the events its agents hold are done. Without this, faust cancels an agent in
        # the middle of an event and its stream iterator acks that event as it closes, so the final
        # commit skips it: a search request taken just before SIGTERM was never answered by anyone.
        stream_wait_empty=True,
        broker_commit_every=100,
        broker_commit_interval=1.0,
    )
    keep_queued_events_on_resume(app.flow_control)
    metrics.instrument_faust_app(  # no-op unless IMGSEARCH_METRICS_PORT > 0
        app, role, settings.metrics_port, host=settings.metrics_host, tries=settings.metrics_port_tries
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
    """Sends invalid events to the dead-letter topic, with a machine-readable reason."""

    def __init__(self, app: faust.App, settings: Settings, consumer: str) -> None:
        self._topic = topic(app, settings.topics.dead_letters(), settings)
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
            original_key_b64=None if key is None else base64.b64encode(key[:1024]).decode(),
            # a copy only up to DEAD_LETTER_MAX_ORIGINAL_BYTES, with the size and sha256: a dead letter
            # of a big event must still fit in a message (it used to crash the agent, which then
            # committed past the event: lost without a trace)
            **DeadLetter.original_fields(payload),
        )
        value = letter.to_bytes()
        assert len(value) <= DEAD_LETTER_MAX_BYTES, len(value)  # the payload copy and the reason are bounded
        await self._topic.send(key=source_topic.encode(), value=value)
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

    async def failed(self, event: Any, exc: BaseException) -> str:
        """Dead-letter an event whose processing raised something nobody foresaw, as
        ``processing_failed`` with the error; returns that reason (e.g. for an error reply)."""
        why = f"{type(exc).__name__}: {exc}"
        await self.from_event(event, "processing_failed", why)
        return why


class Offload:
    """Runs CPU-bound work (embedding) off the event loop, so heartbeats and I/O keep flowing."""

    def __init__(self, threads: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imgsearch-cpu")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
