"""Role 2, the interaction mapper: interaction (user, image) → cluster id → personalization event.

The image → cluster mapping is a global table fed by image-indexed events, so every mapper has the
whole mapping whatever partitions of the interactions it owns. An interaction for an image not
indexed yet does not wait inside the agent (one agent serves every user: five of them held up
everyone for 50 s, issue 14 item 5): it is parked on the retry topic and tried again there
IMGSEARCH_UNKNOWN_IMAGE_RETRIES times, IMGSEARCH_UNKNOWN_IMAGE_WAIT_S / retries apart, by an agent of
its own; then it goes to the dead-letter topic with a reason. An interaction stamped further in the
future than IMGSEARCH_MAX_CLOCK_SKEW_S is dead-lettered (``timestamp_in_future``, item 6). A
ForgetUser request (item 15) on the interactions topic drops the user's parked interactions and is
forwarded to the query workers on the personalization topic. The personalization event keeps the
interaction's event id, so redelivery after a rebalance is recognised downstream and never counted
twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import faust

from imgsearch.config import Settings
from imgsearch.domain.centroids import NO_CLUSTER
from schemas.events import ForgetUser, ImageIndexed, Interaction, PersonalizationEvent, event_type_of
from schemas.reasons import Reason
from streams.common import DeadLetters, json_schema, make_app, topic, valid
from streams.ports import EventSink

if TYPE_CHECKING:
    from imgsearch.ranker.personalize import PersonalizeDataDeletion

log = logging.getLogger(__name__)
ROLE = "interactions"


ATTEMPT_HEADER = "imgsearch-attempt"  # how many times the interaction was tried (1: parked once)
NOT_BEFORE_HEADER = "imgsearch-not-before"  # epoch seconds: not to be tried again before
PARKED_AT_HEADER = "imgsearch-parked-at"  # epoch seconds: when it was first parked
ORIGIN_HEADER = "imgsearch-origin"  # topic:partition:offset of the interaction as published


def _headers(message: Any) -> dict[str, str]:
    raw = getattr(message, "headers", None) or []
    items = raw.items() if isinstance(raw, Mapping) else raw
    out: dict[str, str] = {}
    for key, value in items:
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("utf-8", "replace")
        out[str(key)] = str(value)
    return out


def future_skew_s(ts: datetime, max_skew_s: float, now: float | None = None) -> float | None:
    """How far past the allowed clock skew ``ts`` lies in the future, or None if it is within it."""
    ahead = ts.timestamp() - (time.time() if now is None else now)
    return ahead if ahead > max_skew_s else None


class InteractionMapper:
    """The interaction worker's handler, behind its ports: ``clusters`` (image id -> [cluster id,
    centroid version], faust's global table), ``out`` (personalization events), ``retry`` (parked
    interactions), ``dlq`` (dead letters)."""

    def __init__(
        self,
        settings: Settings,
        clusters: MutableMapping[str, Any],
        out: EventSink,
        retry: EventSink,
        dlq: DeadLetters,
    ) -> None:
        self.settings = settings
        self.clusters = clusters
        self.dlq = dlq
        self.out = out
        self.retry = retry
        # user id -> wall time of their ForgetUser: interactions parked before it are dropped. Kept
        # in memory as long as a parked interaction can live (see forget_memory_s).
        self._forgotten: dict[str, float] = {}

    @property
    def retry_delay_s(self) -> float:
        return self.settings.unknown_image_wait_s / max(1, self.settings.unknown_image_retries)

    @property
    def forget_memory_s(self) -> float:
        return self.settings.unknown_image_wait_s + 2 * self.retry_delay_s + 60.0

    def cluster_of(self, image_id: str) -> tuple[int, str] | None:
        """(cluster id, centroid version) of an indexed and clustered image; None if not (yet)."""
        entry = self.clusters.get(image_id)
        if entry is not None and int(entry[0]) != NO_CLUSTER:
            return int(entry[0]), str(entry[1])
        return None

    async def handle(self, event: Any) -> None:
        """One event of the interactions topic (an interaction or a ForgetUser request); an unexpected
        error dead-letters it (``processing_failed``), the stream goes on."""
        try:
            await self._handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "interaction at %s[%s]@%s failed", event.message.topic, event.message.partition, event.message.offset
            )
            await self.dlq.failed(event, exc)

    async def _handle(self, event: Any) -> None:
        if event_type_of(event.message.value) == "user.forget":
            await self.forget(event)
            return
        interaction = await valid(event, Interaction, self.dlq)
        if interaction is None:
            return
        ahead = future_skew_s(interaction.timestamp, self.settings.max_clock_skew_s)
        if ahead is not None:
            await self.dlq.from_event(
                event,
                Reason.TIMESTAMP_IN_FUTURE,
                f"timestamp {interaction.timestamp.isoformat()} is {ahead:.0f} s ahead of this worker's clock "
                f"(allowed skew: {self.settings.max_clock_skew_s:g} s, IMGSEARCH_MAX_CLOCK_SKEW_S)",
            )
            return
        msg = event.message
        origin = f"{msg.topic}:{msg.partition}:{msg.offset}"
        await self._map_or_park(event, interaction, attempt=0, origin=origin, parked_at=time.time())

    async def handle_retry(self, event: Any) -> None:
        """One parked interaction: wait until it is due (this agent only), then map it, park it
        again, or dead-letter it after the last attempt."""
        headers = _headers(event.message)
        try:
            attempt = int(headers.get(ATTEMPT_HEADER, "1"))
            due = float(headers.get(NOT_BEFORE_HEADER, "0"))
            parked_at = float(headers.get(PARKED_AT_HEADER, "0"))
        except ValueError:
            attempt, due, parked_at = self.settings.unknown_image_retries, 0.0, 0.0
        # the topic is in due order (a constant delay); never wait longer than one delay
        wait = min(due - time.time(), self.retry_delay_s)
        if wait > 0:
            await asyncio.sleep(wait)
        interaction = await valid(event, Interaction, self.dlq)
        if interaction is None:
            return
        if self.is_forgotten(interaction.user_id, parked_at):
            log.info("parked interaction %s dropped: its user was forgotten", interaction.event_id)
            return
        origin = headers.get(ORIGIN_HEADER) or f"{event.message.topic}:{event.message.partition}:{event.message.offset}"
        await self._map_or_park(event, interaction, attempt=attempt, origin=origin, parked_at=parked_at)

    async def _map_or_park(
        self, event: Any, interaction: Interaction, *, attempt: int, origin: str, parked_at: float
    ) -> None:
        found = self.cluster_of(interaction.image_id)
        if found is not None:
            await self._emit(interaction, *found)
            return
        if attempt < self.settings.unknown_image_retries and self.settings.unknown_image_wait_s > 0:
            now = time.time()
            await self.retry.send(
                key=interaction.user_id.encode(),
                value=event.message.value,
                headers=[
                    (ATTEMPT_HEADER, str(attempt + 1).encode()),
                    (NOT_BEFORE_HEADER, f"{now + self.retry_delay_s:.3f}".encode()),
                    (PARKED_AT_HEADER, f"{parked_at:.3f}".encode()),
                    (ORIGIN_HEADER, origin.encode()),
                ],
            )
            return
        known = interaction.image_id in self.clusters
        code, why = (
            (Reason.UNCLUSTERED_IMAGE, "the image is indexed but has no cluster yet (no centroid model)")
            if known
            else (
                Reason.UNKNOWN_IMAGE,
                f"image {interaction.image_id!r} was not indexed within {self.settings.unknown_image_wait_s:g}s "
                f"({attempt} retries on {self.settings.topics.interactions_retry().name})",
            )
        )
        # the dead letter names the interaction as published (topic names have no ":")
        try:
            source, p, o = origin.rsplit(":", 2)
            partition, offset = int(p), int(o)
        except ValueError:
            source, partition, offset = event.message.topic, event.message.partition, event.message.offset
        await self.dlq.send(
            event.message.value,
            code,
            why,
            source_topic=source,
            partition=partition,
            offset=offset,
            key=event.message.key,
        )

    async def _emit(self, interaction: Interaction, cluster: int, version: str) -> None:
        out = PersonalizationEvent(
            event_id=interaction.event_id,
            user_id=interaction.user_id,
            cluster_id=cluster,
            image_id=interaction.image_id,
            event_type=interaction.event_type,
            weight=self.settings.event_weights.get(interaction.event_type, 1.0),
            timestamp=interaction.timestamp,
            session_id=interaction.session_id,
            centroid_version=version,
        )
        await self.out.send(key=interaction.user_id.encode(), value=out.to_bytes())

    async def track(self, event: Any) -> None:
        """One image-indexed event: the image's cluster goes into the image -> cluster map; a bad
        event is dead-lettered, the stream goes on."""
        try:
            msg = await valid(event, ImageIndexed, self.dlq)
            if msg is not None:
                self.clusters[msg.image_id] = [msg.cluster_id, msg.centroid_version]
        except Exception as exc:  # one bad event is dead-lettered; the stream goes on
            log.exception("image-indexed event failed")
            await self.dlq.failed(event, exc)

    def is_forgotten(self, user_id: str, parked_at: float) -> bool:
        now = time.time()
        for user, when in list(self._forgotten.items()):
            if now - when > self.forget_memory_s:
                del self._forgotten[user]
        at = self._forgotten.get(user_id)
        return at is not None and parked_at <= at

    async def forget(self, event: Any) -> None:
        """A ForgetUser request: interactions of this user parked before it are dropped, and the
        request goes on to the query workers (same key: after every event of the user mapped so far)."""
        request = await valid(event, ForgetUser, self.dlq)
        if request is None:
            return
        self._forgotten[request.user_id] = time.time()
        await self.out.send(key=request.user_id.encode(), value=request.to_bytes())
        log.info("forget request %s: parked interactions dropped, forwarded to the query workers", request.event_id)


async def forget_in_personalize(
    requests: list[tuple[Any, ForgetUser]], deletion: PersonalizeDataDeletion | None, dlq: DeadLetters
) -> None:
    """One Amazon Personalize data deletion job for the forget requests of a batch (issue 14 item
    15); without the deletion configured, each request is dead-lettered so it can be replayed."""
    if not requests:
        return
    if deletion is None:
        for event, _ in requests:
            await dlq.from_event(
                event,
                Reason.PERSONALIZE_DELETION_NOT_CONFIGURED,
                "the user was forgotten here but not in Amazon Personalize: set "
                "IMGSEARCH_PERSONALIZE_DATASET_GROUP_ARN, _DELETION_ROLE_ARN and _DELETION_S3, then replay",
            )
        return
    await asyncio.to_thread(deletion.delete_users, [r.user_id for _, r in requests], [r.event_id for _, r in requests])


def build(settings: Settings) -> tuple[faust.App, InteractionMapper]:
    app = make_app(ROLE, settings)
    mapper = InteractionMapper(
        settings,
        clusters=app.GlobalTable("image-clusters", schema=json_schema(), partitions=settings.partitions),
        out=topic(app, settings.topics.personalization_events(), settings),
        retry=topic(app, settings.topics.interactions_retry(), settings),
        dlq=DeadLetters(topic(app, settings.topics.dead_letters(), settings), ROLE),
    )
    indexed = topic(app, settings.topics.images_indexed(), settings)
    source = topic(app, settings.topics.interactions(), settings)

    @app.agent(indexed, name="image-clusters")
    async def track_clusters(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await mapper.track(event)

    @app.agent(source, name="map-interactions")
    async def map_interactions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await mapper.handle(event)

    retry_source = topic(app, settings.topics.interactions_retry(), settings)

    @app.agent(retry_source, name="retry-interactions")
    async def retry_interactions(stream: faust.StreamT) -> None:
        # parked interactions wait here, in an agent of their own: other users' interactions flow
        async for event in stream.events():
            await mapper.handle_retry(event)

    if settings.ranker == "personalize":
        from imgsearch.ranker.personalize import DeletionNotConfigured, PersonalizeDataDeletion, PersonalizeEventSink

        if not settings.personalize_tracking_id:
            raise ValueError("IMGSEARCH_RANKER=personalize needs IMGSEARCH_PERSONALIZE_TRACKING_ID")
        sink = PersonalizeEventSink(
            settings.personalize_tracking_id, max_calls_per_s=settings.personalize_max_calls_per_s
        )
        deletion: PersonalizeDataDeletion | None = None
        try:
            deletion = PersonalizeDataDeletion(
                settings.personalize_dataset_group_arn,
                settings.personalize_deletion_role_arn,
                settings.personalize_deletion_s3,
            )
        except DeletionNotConfigured as exc:
            log.warning("%s: a forgotten user's data stays in Amazon Personalize (dead-lettered)", exc)
        events_topic = topic(app, settings.topics.personalization_events(), settings)

        @app.agent(events_topic, name="personalize-put-events")
        async def put_events(stream: faust.StreamT) -> None:
            # offsets advance only after PutEvents succeeded (at-least-once); Personalize sees the
            # interaction's own event id, so a redelivered message is the same event
            async for events in stream.take_events(10, within=0.5):  # type: ignore[attr-defined]
                batch, sources = [], []
                forgets: list[tuple[Any, ForgetUser]] = []
                for event in events:
                    if event_type_of(event.message.value) == "user.forget":
                        if (forget := await valid(event, ForgetUser, mapper.dlq)) is not None:
                            forgets.append((event, forget))
                    elif (personal := await valid(event, PersonalizationEvent, mapper.dlq)) is not None:
                        batch.append(personal)
                        sources.append(event)
                # events of a user sent before the forget request are in Personalize before the
                # deletion job starts (the job deletes what the dataset holds when it runs)
                try:
                    await asyncio.to_thread(sink.put, batch)
                except Exception as exc:  # the sink retries what can be retried; then dead letters, never a crash
                    log.exception("PutEvents failed for %d events", len(batch))
                    for event in sources:
                        await mapper.dlq.failed(event, exc)
                if forgets:
                    await forget_in_personalize(forgets, deletion, mapper.dlq)

    return app, mapper
