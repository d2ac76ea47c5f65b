"""Topic names and partition keys: the one place they are defined.

Every topic is keyed so that the work that must meet on one worker meets there:
interactions, personalization events and search requests are all keyed by ``user_id`` and have the
same partition count, so the query worker's per-user profile table is co-partitioned with the
search requests it serves and is read locally.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    doc: str
    compacted: bool = False
    partitions: int | None = None  # None: the configured default
    retain_forever: bool = False  # the source of truth that re-indexing replays
    retention_ms: int | None = None  # None: the broker's default (issue 14 item 15: user-keyed events)
    max_compaction_lag_ms: int | None = None  # compacted topics: how soon a tombstoned key is erased


EVENT_RETENTION_ENV = "IMGSEARCH_EVENT_RETENTION_MS"
DEFAULT_EVENT_RETENTION_MS = 7 * 24 * 3600 * 1000
# a forgotten user's profile (a tombstone on the table's changelog) is compacted away within a day
CHANGELOG_MAX_COMPACTION_LAG_MS = 24 * 3600 * 1000


def event_retention_ms() -> int:
    """How long the topics holding per-user events keep them (IMGSEARCH_EVENT_RETENTION_MS, default
    7 days): what is left of a forgotten user's raw events is gone after this (docs/operations.md)."""
    raw = os.environ.get(EVENT_RETENTION_ENV, "")
    try:
        return DEFAULT_EVENT_RETENTION_MS if raw == "" else int(raw)
    except ValueError as exc:
        raise ValueError(f"{EVENT_RETENTION_ENV} must be an integer (ms), got {raw!r}") from exc


_PREFIX: ContextVar[str | None] = ContextVar("imgsearch_topic_prefix", default=None)


@contextlib.contextmanager
def prefixed(prefix: str) -> Iterator[None]:
    """Topic names under ``prefix`` inside this block (and the tasks started in it), instead of
    IMGSEARCH_TOPIC_PREFIX: how a process hosting an isolated run (the speed bench) names its topics
    without changing its environment."""
    token = _PREFIX.set(prefix)
    try:
        yield
    finally:
        _PREFIX.reset(token)


def _prefix() -> str:
    return _PREFIX.get() or os.environ.get("IMGSEARCH_TOPIC_PREFIX", "imgsearch")


def _name(suffix: str) -> str:
    return f"{_prefix()}.{suffix}"


def new_images() -> TopicSpec:
    return TopicSpec(_name("images.new"), "image_id", "NewImage events from upstream apps", retain_forever=True)


def images_indexed() -> TopicSpec:
    return TopicSpec(_name("images.indexed"), "image_id", "ImageIndexed: image → cluster id")


def interactions() -> TopicSpec:
    return TopicSpec(
        _name("interactions"),
        "user_id",
        "Interaction events from upstream apps (and ForgetUser requests)",
        retention_ms=event_retention_ms(),
    )


def interactions_retry() -> TopicSpec:
    """Interactions for images not indexed yet, parked so they do not hold up other users (issue 14 item 5)."""
    return TopicSpec(
        _name("interactions.retry"),
        "user_id",
        "interactions waiting for their image (headers: attempt, not-before)",
        retention_ms=event_retention_ms(),
    )


def personalization_events() -> TopicSpec:
    return TopicSpec(
        _name("personalization.events"),
        "user_id",
        "cluster-level interactions for the ranker (and ForgetUser)",
        retention_ms=event_retention_ms(),
    )


def search_requests() -> TopicSpec:
    return TopicSpec(_name("search.requests"), "user_id", "SearchRequest from search clients")


def reply_prefix() -> str:
    """Every reply topic starts with this; query workers answer to no other topic."""
    return _name("search.replies.")


def reply_topic(client_id: str) -> TopicSpec:
    return TopicSpec(reply_prefix() + client_id, "request_id", "SearchResponse for one client", partitions=1)


def dead_letters() -> TopicSpec:
    return TopicSpec(
        _name("dead-letters"),
        "source topic",
        "DeadLetter: invalid events with a reason",
        retention_ms=event_retention_ms(),
    )


def centroids() -> TopicSpec:
    return TopicSpec(
        _name("centroids"), "'current'", "versioned centroid model (compacted)", compacted=True, partitions=1
    )


def ranker_model() -> TopicSpec:
    return TopicSpec(
        _name("ranker.model"), "'current'", "the local ranker's offline model (compacted)", compacted=True, partitions=1
    )


def all_shared() -> list[TopicSpec]:
    """The topics created up front (reply topics are created by each search client)."""
    return [
        new_images(),
        images_indexed(),
        interactions(),
        interactions_retry(),
        personalization_events(),
        search_requests(),
        dead_letters(),
        centroids(),
        ranker_model(),
    ]
