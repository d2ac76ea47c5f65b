"""Every workaround imgsearch needs around faust-streaming, in one place, gated on the versions it
was tested with.

faust-streaming (and mode-streaming under it) is pinned in pyproject.toml; what is here reaches into
private internals that a new release may change without notice:

* ``install()``, once per process before any app is made (``streams.common.make_app`` calls it;
  later calls do nothing): checks the installed versions (``check_patched_versions``), then patches
  two classes of faust's aiokafka driver, process-wide: the consumer thread fetches only from its
  active partitions (``fetch_only_active_partitions``), every producer is idempotent
  (``idempotent_producers``).
* ``prepare_app(app)``, per app: its flow control keeps queued events on a resume
  (``keep_queued_events_on_resume``).
* ``run_before_worker(coro)``: start-up work of a worker process on an event loop of its own, not
  the current one (faust's worker makes and owns its loop).
* ``run_worker(app, loglevel)``: the faust worker with a clean ``sys.argv`` (faust reads options such
  as ``--datadir`` from the process's arguments, which belong to ``imgsearch worker <role>``).
* ``consumer_lags(app)``: the consumer's committed positions, which faust keeps in a private map.

The canary tests beside this module (tests/unit/test_faust_compat.py) show the upstream behaviour
each workaround exists for: when one fails after an upgrade, revisit that workaround.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Coroutine, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, NoReturn, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# The versions the workarounds below (and consumer_lags' read of consumer._committed_offset) were
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
            "imgsearch patches private internals of faust-streaming and mode-streaming (streams/faust_compat.py) "
            f"and was tested only with {', '.join(f'{d} {v}' for d, v in TESTED_VERSIONS.items())}; "
            f"installed: {'; '.join(hard)}. Install the locked versions (bash scripts/setup.sh), or set "
            "IMGSEARCH_ALLOW_UNTESTED_FAUST=1 to run anyway (re-run the integration tests first)"
        )
    for diff in hard + soft:
        log.warning("untested version: %s; the faust patches in streams/faust_compat.py may not hold", diff)
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


_installed = False


def install(allow_untested: bool = False) -> None:
    """Check the versions (raises ``UntestedVersions`` unless ``allow_untested``), then apply the
    process-wide patches; once per process (later calls return at once)."""
    global _installed
    if _installed:
        return
    check_patched_versions(allow_untested)
    fetch_only_active_partitions()
    idempotent_producers()
    _installed = True


def prepare_app(app: Any) -> None:
    """The per-app workarounds of a new faust app (after ``install``)."""
    keep_queued_events_on_resume(app.flow_control)


def run_before_worker(coro: Coroutine[Any, Any, T]) -> T:
    """Run start-up work (e.g. creating topics) to its end on a new event loop, closed afterwards: not
    the current loop, which faust's worker makes and owns once it starts."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def run_worker(app: Any, loglevel: str) -> NoReturn:
    """Run the faust worker of ``app`` until it stops; the process's arguments are reset first (they
    are ``imgsearch worker <role>``'s, not faust's options)."""
    from faust.worker import Worker

    sys.argv = [sys.argv[0]]
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


def consumer_lags(app: Any) -> list[tuple[str, int, int]]:
    """(topic, partition, lag) of every partition assigned to a faust app's consumer: the high
    watermark less the next offset after the last one faust committed (a private map of its consumer)."""
    consumer = app.consumer
    out = []
    for tp in consumer.assignment():
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # not fetched yet
            continue
        if highwater is None:
            continue
        committed = consumer._committed_offset.get(tp)  # faust keeps the last processed offset
        done = 0 if committed is None else committed + 1
        out.append((tp.topic, tp.partition, int(highwater) - done))
    return out
