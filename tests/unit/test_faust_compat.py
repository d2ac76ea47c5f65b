"""The faust workarounds (streams/faust_compat.py) and the canaries of the upstream behaviour each
exists for: when a canary fails after an upgrade, that workaround needs another look.

* faust's consumer thread fetches only from its active partitions, also when none is active
  (ActivePartitions): aiokafka reads an empty partition set as "every partition", which lost the
  changelog records a table recovery had just sought to (the recovery then never ended).
* Events a worker has fetched survive faust's recovery "resume" (keep_queued_events_on_resume): after
  a restart, faust's table recovery resumes the stream partitions, awaits the seek to committed
  offsets and only then calls ``app.flow_control.resume()`` -- which, in mode, empties every stream
  buffer even when flow control is already active. An event fetched in that window was dropped, its
  read offset had moved on, and the commit went past it: the kill -9 fault test lost the first event
  after the committed offset in about one restart in ten.
* The version gate, the consumer's private committed offsets (consumer lag), the worker's own event
  loop and arguments.
"""

import asyncio
import contextlib
import importlib.metadata
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka.consumer.fetcher import Fetcher, FetchResult
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from imgsearch.config import Settings
from streams import faust_compat
from streams.common import make_app
from streams.faust_compat import ActivePartitions, fetch_only_active_partitions, keep_queued_events_on_resume

CHANGELOG = TopicPartition("app-profiles-changelog", 1)


class Records:
    """aiokafka's partition records: an iterator over messages that knows the next offset to fetch."""

    def __init__(self, offsets: list[int]) -> None:
        self._it = iter(offsets)
        self.next_fetch_offset = offsets[0]

    def __iter__(self) -> "Records":
        return self

    def __next__(self) -> SimpleNamespace:
        offset = next(self._it)
        self.next_fetch_offset = offset + 1
        return SimpleNamespace(offset=offset)


def buffered(offsets: list[int]) -> tuple[SimpleNamespace, SimpleNamespace]:
    """An aiokafka fetcher (its real ``fetched_records``) holding fetched changelog records."""
    state = SimpleNamespace(paused=False, position=offsets[0])
    state.consumed_to = lambda position: setattr(state, "position", position)
    assignment = SimpleNamespace(active=True, state_value=lambda tp: state)
    fetcher = SimpleNamespace(
        _subscriptions=SimpleNamespace(
            reassignment_in_progress=False, is_assigned=lambda tp: True, fetch_context=contextlib.nullcontext
        ),
        _records={
            CHANGELOG: FetchResult(CHANGELOG, assignment=assignment, partition_records=Records(offsets), backoff=0)
        },
        _notify=lambda future: None,
        _wait_consume_future=None,
        _closed=False,
    )
    fetcher.fetched_records = lambda partitions, timeout=0, max_records=None: Fetcher.fetched_records(
        fetcher, partitions, timeout, max_records
    )
    return fetcher, state


async def test_aiokafka_reads_an_empty_partition_set_as_every_partition():
    """Why the view exists: an empty set drains (and moves past) records of partitions nobody asked for."""
    fetcher, state = buffered([0, 1, 2])
    drained = await Fetcher.fetched_records(fetcher, set(), timeout=0)
    assert [m.offset for m in drained[CHANGELOG]] == [0, 1, 2]
    assert state.position == 3


async def test_the_consumer_thread_fetches_nothing_while_no_partition_is_active():
    fetch_only_active_partitions()
    fetch_only_active_partitions()  # idempotent: wraps once
    assert getattr(AIOKafkaConsumerThread._fetch_records, "_imgsearch_active_only", False)
    fetcher, state = buffered([0, 1, 2])
    thread = SimpleNamespace(consumer=SimpleNamespace(flow_active=True))
    consumer = SimpleNamespace(_fetcher=fetcher, _closed=False)
    active: set[TopicPartition] = set()  # faust's live set: everything paused (a rebalance)

    assert await AIOKafkaConsumerThread._fetch_records(thread, consumer, active, timeout=0) == {}
    assert state.position == 0  # nothing consumed: still there for the recovery that resumes it

    active.add(CHANGELOG)  # recovery resumes the changelog partition (the view is live)
    drained = await AIOKafkaConsumerThread._fetch_records(thread, consumer, active, timeout=0)
    assert [m.offset for m in drained[CHANGELOG]] == [0, 1, 2]


def test_active_partitions_view():
    live = {CHANGELOG}
    view = ActivePartitions(live)
    assert CHANGELOG in view and len(view) == 1 and set(view) == {CHANGELOG}
    live.clear()
    assert view and CHANGELOG not in view and len(view) == 0


async def test_mode_empties_the_buffers_on_every_resume() -> None:
    """The upstream behaviour the patch exists for (if this fails, mode changed: revisit the patch)."""
    flow = FlowControlEvent(initially_suspended=False)
    buffer: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    await buffer.put("personalization event at offset 98")
    flow.resume()  # already flowing
    assert buffer.qsize() == 0


async def test_an_app_keeps_events_fetched_while_flowing_and_drops_those_from_before_a_suspension(
    tmp_path: Path,
) -> None:
    app = make_app("query-test", Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1"))
    buffer = app.channel().queue  # the buffer faust gives each stream, managed by app.flow_control
    assert not app.flow_control.is_active()  # a new app waits for its first assignment

    app.flow_control.resume()  # the restore begins: flow control goes active
    await buffer.put("event fetched between resume_partitions and the seek")
    app.flow_control.resume()  # recovery completed: resumes again
    assert buffer.qsize() == 1
    assert buffer.get_nowait() == "event fetched between resume_partitions and the seek"

    await buffer.put("event of a partition about to be revoked")
    app.flow_control.suspend()  # a rebalance starts
    app.flow_control.resume()  # the next generation begins: stale events go
    assert buffer.qsize() == 0
    assert app.flow_control.is_active()

    keep_queued_events_on_resume(app.flow_control)  # idempotent: wraps once
    await buffer.put("still here")
    app.flow_control.resume()
    assert buffer.qsize() == 1


def test_patched_versions_are_checked_at_start_up(monkeypatch, caplog):
    """The faust patches are gated on the versions they were tested with: the installed (locked)
    ones pass; another faust-streaming/mode-streaming stops start-up with a clear error unless
    allowed, another aiokafka only warns."""
    assert faust_compat.check_patched_versions() == []  # the locked versions are the tested ones
    real = importlib.metadata.version
    fake = {"mode-streaming": "0.8.0", "aiokafka": "0.15.0"}
    monkeypatch.setattr(importlib.metadata, "version", lambda d: fake.get(d) or real(d))
    with pytest.raises(faust_compat.UntestedVersions, match=r"mode-streaming 0\.8\.0 \(tested: 0\.7\.1\)"):
        faust_compat.check_patched_versions()
    monkeypatch.setattr(faust_compat, "_installed", False)  # a new process: the check runs before any app
    with pytest.raises(faust_compat.UntestedVersions, match="IMGSEARCH_ALLOW_UNTESTED_FAUST=1"):
        make_app("x", Settings(kafka_bootstrap="127.0.0.1:1"))
    assert faust_compat._installed is False  # refused: nothing patched, and the next start checks again
    diffs = faust_compat.check_patched_versions(allow_untested=True)
    assert diffs == ["mode-streaming 0.8.0 (tested: 0.7.1)", "aiokafka 0.15.0 (tested: 0.14.0)"]
    assert "untested version: aiokafka 0.15.0" in caplog.text
    monkeypatch.setenv("IMGSEARCH_ALLOW_UNTESTED_FAUST", "1")
    assert Settings().allow_untested_faust is True


def test_install_patches_once_per_process(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(faust_compat, "_installed", False)
    monkeypatch.setattr(faust_compat, "check_patched_versions", lambda allow: calls.append("check"))
    monkeypatch.setattr(faust_compat, "fetch_only_active_partitions", lambda: calls.append("fetch"))
    monkeypatch.setattr(faust_compat, "idempotent_producers", lambda: calls.append("producers"))
    faust_compat.install()
    faust_compat.install()
    assert calls == ["check", "fetch", "producers"]


def test_consumer_lag_reads_fausts_committed_offsets(tmp_path: Path) -> None:
    """Canary: faust's consumer keeps the last committed offset per partition in the private
    ``_committed_offset`` map that consumer_lags reads."""
    app = make_app("lag-test", Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1"))
    assert isinstance(app.consumer._committed_offset, dict)
    tp = TopicPartition("t", 0)
    consumer = SimpleNamespace(
        assignment=lambda: {tp, TopicPartition("t", 1)},
        highwater=lambda p: 10 if p == tp else None,  # partition 1: nothing fetched yet
        _committed_offset={tp: 6},
    )
    assert faust_compat.consumer_lags(SimpleNamespace(consumer=consumer)) == [("t", 0, 3)]


def test_start_up_work_runs_on_a_loop_of_its_own(monkeypatch):
    async def which() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    loop = faust_compat.run_before_worker(which())
    assert loop.is_closed()  # not left for faust's worker, which makes its own


def test_the_worker_runs_with_a_clean_argv(monkeypatch):
    seen: list[list[str]] = []

    class Worker:
        def __init__(self, app, loglevel, quiet):
            assert (app, loglevel, quiet) == ("app", "INFO", True)

        def execute_from_commandline(self):
            seen.append(list(sys.argv))
            raise SystemExit(0)

    import faust.worker

    monkeypatch.setattr(faust.worker, "Worker", Worker)
    monkeypatch.setattr(sys, "argv", ["imgsearch", "worker", "query"])
    with pytest.raises(SystemExit):
        faust_compat.run_worker("app", "INFO")
    assert seen == [["imgsearch"]]
