"""faust's consumer thread fetches only from its active partitions, also when none is active
(streams.common.ActivePartitions): aiokafka reads an empty partition set as "every partition", which
lost the changelog records a table recovery had just sought to (the recovery then never ended)."""

import contextlib
from types import SimpleNamespace

from aiokafka.consumer.fetcher import Fetcher, FetchResult
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams.common import ActivePartitions, fetch_only_active_partitions

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
