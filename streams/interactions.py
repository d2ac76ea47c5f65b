"""Role 2, the interaction mapper: interaction (user, image) → cluster id → personalization event.

The image → cluster mapping is a global table fed by image-indexed events, so every mapper has the
whole mapping whatever partitions of the interactions it owns. An interaction for an image not
indexed yet waits a bounded time (IMGSEARCH_UNKNOWN_IMAGE_WAIT_S), then goes to the dead-letter
topic with a reason. The personalization event keeps the interaction's event id, so redelivery
after a rebalance is recognised downstream and never counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from imgsearch.config import Settings
from imgsearch.domain.centroids import NO_CLUSTER
from schemas import topics
from schemas.events import ImageIndexed, Interaction, InvalidEvent, PersonalizationEvent, parse_event
from streams.common import DeadLetters, json_schema, make_app, topic

log = logging.getLogger(__name__)
ROLE = "interactions"


class InteractionMapper:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.settings = settings
        self.clusters = app.GlobalTable("image-clusters", schema=json_schema(), partitions=settings.partitions)
        self.dlq = DeadLetters(app, settings, ROLE)
        self.out = topic(app, topics.personalization_events(), settings)
        self.mapped = 0

    async def cluster_of(self, image_id: str) -> tuple[int, str] | None:
        """(cluster id, centroid version) of an indexed image, waiting a bounded time for it."""
        deadline = time.monotonic() + self.settings.unknown_image_wait_s
        while True:
            entry = self.clusters.get(image_id)
            if entry is not None and int(entry[0]) != NO_CLUSTER:
                return int(entry[0]), str(entry[1])
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)

    async def handle(self, event: Any) -> None:
        """One interaction; an unexpected error dead-letters it (``processing_failed``), the stream goes on."""
        try:
            await self._handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "interaction at %s[%s]@%s failed", event.message.topic, event.message.partition, event.message.offset
            )
            await self.dlq.from_event(event, "processing_failed", f"{type(exc).__name__}: {exc}")

    async def _handle(self, event: Any) -> None:
        try:
            interaction = parse_event(Interaction, event.message.value)
        except InvalidEvent as exc:
            await self.dlq.from_event(event, exc.code, exc.message)
            return
        found = await self.cluster_of(interaction.image_id)
        if found is None:
            known = interaction.image_id in self.clusters
            code, why = (
                ("unclustered_image", "the image is indexed but has no cluster yet (no centroid model)")
                if known
                else (
                    "unknown_image",
                    f"image {interaction.image_id!r} was not indexed within {self.settings.unknown_image_wait_s:.0f}s",
                )
            )
            await self.dlq.from_event(event, code, why)
            return
        cluster, version = found
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
        self.mapped += 1


def build(settings: Settings) -> tuple[faust.App, InteractionMapper]:
    app = make_app(ROLE, settings)
    mapper = InteractionMapper(app, settings)
    indexed = topic(app, topics.images_indexed(), settings)
    source = topic(app, topics.interactions(), settings)

    @app.agent(indexed, name="image-clusters")
    async def track_clusters(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                msg = parse_event(ImageIndexed, event.message.value)
                mapper.clusters[msg.image_id] = [msg.cluster_id, msg.centroid_version]
            except InvalidEvent as exc:
                await mapper.dlq.from_event(event, exc.code, exc.message)
            except Exception as exc:  # one bad event is dead-lettered; the stream goes on
                log.exception("image-indexed event failed")
                await mapper.dlq.from_event(event, "processing_failed", f"{type(exc).__name__}: {exc}")

    @app.agent(source, name="map-interactions")
    async def map_interactions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await mapper.handle(event)

    if settings.ranker == "personalize":
        from imgsearch.ranker.personalize import PersonalizeEventSink

        if not settings.personalize_tracking_id:
            raise ValueError("IMGSEARCH_RANKER=personalize needs IMGSEARCH_PERSONALIZE_TRACKING_ID")
        sink = PersonalizeEventSink(
            settings.personalize_tracking_id, max_calls_per_s=settings.personalize_max_calls_per_s
        )
        events_topic = topic(app, topics.personalization_events(), settings)

        @app.agent(events_topic, name="personalize-put-events")
        async def put_events(stream: faust.StreamT) -> None:
            # offsets advance only after PutEvents succeeded (at-least-once); Personalize sees the
            # interaction's own event id, so a redelivered message is the same event
            async for events in stream.take_events(10, within=0.5):  # type: ignore[attr-defined]
                batch, sources = [], []
                for event in events:
                    try:
                        batch.append(parse_event(PersonalizationEvent, event.message.value))
                        sources.append(event)
                    except InvalidEvent as exc:
                        await mapper.dlq.from_event(event, exc.code, exc.message)
                try:
                    await asyncio.to_thread(sink.put, batch)
                except Exception as exc:  # the sink retries what can be retried; then dead letters, never a crash
                    log.exception("PutEvents failed for %d events", len(batch))
                    for event in sources:
                        await mapper.dlq.from_event(event, "processing_failed", f"{type(exc).__name__}: {exc}")

    return app, mapper
