"""Topic names and partition keys: the one place they are defined.

Every topic is keyed so that the work that must meet on one worker meets there:
interactions, personalization events and search requests are all keyed by ``user_id`` and have the
same partition count, so the query worker's per-user profile table is co-partitioned with the
search requests it serves and is read locally.
"""

from __future__ import annotations

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


DEFAULT_EVENT_RETENTION_MS = 7 * 24 * 3600 * 1000
# a forgotten user's profile (a tombstone on the table's changelog) is compacted away within a day
CHANGELOG_MAX_COMPACTION_LAG_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topics:
    """The topics of one run: every name starts with ``prefix`` (IMGSEARCH_TOPIC_PREFIX; tests and
    the demo isolate themselves with their own), and the per-user event topics keep their events
    ``event_retention_ms`` (IMGSEARCH_EVENT_RETENTION_MS, default 7 days): what is left of a forgotten
    user's raw events is gone after this (docs/operations.md). A run's are ``settings.topics``."""

    prefix: str = "imgsearch"
    event_retention_ms: int = DEFAULT_EVENT_RETENTION_MS

    def _name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def new_images(self) -> TopicSpec:
        return TopicSpec(
            self._name("images.new"), "image_id", "NewImage events from upstream apps", retain_forever=True
        )

    def images_indexed(self) -> TopicSpec:
        return TopicSpec(self._name("images.indexed"), "image_id", "ImageIndexed: image → cluster id")

    def interactions(self) -> TopicSpec:
        return TopicSpec(
            self._name("interactions"),
            "user_id",
            "Interaction events from upstream apps (and ForgetUser requests)",
            retention_ms=self.event_retention_ms,
        )

    def interactions_retry(self) -> TopicSpec:
        """Interactions for images not indexed yet, parked so they do not hold up other users (issue 14 item 5)."""
        return TopicSpec(
            self._name("interactions.retry"),
            "user_id",
            "interactions waiting for their image (headers: attempt, not-before)",
            retention_ms=self.event_retention_ms,
        )

    def personalization_events(self) -> TopicSpec:
        return TopicSpec(
            self._name("personalization.events"),
            "user_id",
            "cluster-level interactions for the ranker (and ForgetUser)",
            retention_ms=self.event_retention_ms,
        )

    def search_requests(self) -> TopicSpec:
        return TopicSpec(self._name("search.requests"), "user_id", "SearchRequest from search clients")

    def reply_prefix(self) -> str:
        """Every reply topic starts with this; query workers answer to no other topic."""
        return self._name("search.replies.")

    def reply_topic(self, client_id: str) -> TopicSpec:
        return TopicSpec(self.reply_prefix() + client_id, "request_id", "SearchResponse for one client", partitions=1)

    def dead_letters(self) -> TopicSpec:
        return TopicSpec(
            self._name("dead-letters"),
            "source topic",
            "DeadLetter: invalid events with a reason",
            retention_ms=self.event_retention_ms,
        )

    def centroids(self) -> TopicSpec:
        return TopicSpec(
            self._name("centroids"), "'current'", "versioned centroid model (compacted)", compacted=True, partitions=1
        )

    def ranker_model(self) -> TopicSpec:
        return TopicSpec(
            self._name("ranker.model"),
            "'current'",
            "the local ranker's offline model (compacted)",
            compacted=True,
            partitions=1,
        )

    def all_shared(self) -> list[TopicSpec]:
        """The topics created up front (reply topics are created by each search client)."""
        return [
            self.new_images(),
            self.images_indexed(),
            self.interactions(),
            self.interactions_retry(),
            self.personalization_events(),
            self.search_requests(),
            self.dead_letters(),
            self.centroids(),
            self.ranker_model(),
        ]
