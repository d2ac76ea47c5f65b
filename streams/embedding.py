"""Role 1, the embedding worker: new image → embedding (+ style vector) → nearest centroid →
upsert into OpenSearch (image id = document id) → image-indexed event.

Events are taken in small batches (the embedder is much faster per image in a batch). Invalid
events and undecodable/refused images go to the dead-letter topic with a reason; the batch goes on.
OpenSearch faults are retried with backoff until they pass: the offsets of a batch are not
committed before its documents are written, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import numpy as np
from PIL import Image

from imgsearch import metrics
from imgsearch.config import Settings
from imgsearch.connections import kafka_security
from imgsearch.domain.centroids import NO_CLUSTER, NO_MODEL_VERSION, CentroidModel
from imgsearch.embedding.base import Embedder
from imgsearch.embedding.style import EmbeddingStyle, StyleDescriber
from imgsearch.images import ImageRejected, decode, fetch_uri, parse_roots
from imgsearch.index.opensearch import ImageDoc, OpenSearchIndex, model_slug
from imgsearch.kafka.model_topics import CentroidWatcher
from schemas.events import ImageIndexed, NewImage
from streams.common import DeadLetters, Offload, make_app, topic, valid
from streams.ports import EventSink, ImageWriter, ModelSource

log = logging.getLogger(__name__)
ROLE = "embedder"


@dataclass
class Loaded:
    event: Any
    image: NewImage
    pixels: Image.Image


def assign(
    model: CentroidModel | None, embedder_id: str, style_id: str, search: np.ndarray, style: np.ndarray
) -> tuple[list[int], str]:
    """Cluster ids for a batch, with the centroid version used (``-1``/``none`` without a model)."""
    if model is None:
        return [NO_CLUSTER] * len(search), NO_MODEL_VERSION
    vectors, feature = (style, style_id) if model.vector_kind == "style" else (search, embedder_id)
    if model.feature_id != feature:
        log.error(
            "centroid model %s was trained on %s, not %s: images stay unclustered",
            model.version,
            model.feature_id,
            feature,
        )
        return [NO_CLUSTER] * len(search), NO_MODEL_VERSION
    return [int(c) for c in model.assign(vectors)], model.version


class EmbeddingPipeline:
    """The embedding worker's handler, behind its ports: ``index`` (the documents), ``indexed`` (the
    image-indexed events), ``dlq`` (dead letters), ``centroids`` (the current centroid model)."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        style: StyleDescriber,
        index: ImageWriter,
        centroids: ModelSource[CentroidModel],
        indexed: EventSink,
        dlq: DeadLetters,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.style = style
        self.index = index
        self.centroids = centroids
        self.dlq = dlq
        self.indexed = indexed
        self.offload = Offload()
        self.roots = parse_roots(settings.allowed_uri_roots)
        self.index_ready = asyncio.Event()

    def _load_pixels(self, image: NewImage) -> Image.Image:
        data = image.image_bytes()
        if data is None:
            assert image.source_uri is not None
            data = fetch_uri(
                image.source_uri, self.roots, self.settings.max_image_bytes, timeout_s=self.settings.read_timeout_s
            )
        return decode(
            data, self.settings.max_image_bytes, self.settings.max_image_pixels, max_side=self.settings.decode_max_side
        )

    async def process(self, events: list[Any]) -> None:
        """Process one batch; every event ends indexed or dead-lettered, once. Transient faults are
        retried inside. An unexpected error while reading one event dead-letters that event
        (``processing_failed``); one that fails the batch's embedding or indexing is retried event by
        event, so only the events that fail alone are dead-lettered (a raise here would crash the
        agent, and faust would count the batch as done: the images would be lost without a trace)."""
        loaded = await self._load(events)
        if not loaded:
            return
        try:
            await self._index(loaded)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if len(loaded) == 1:
                log.exception("new-image event %s failed", loaded[0].image.image_id)
                await self.dlq.failed(loaded[0].event, exc)
                return
            log.warning("batch of %d images failed (%s: %s): retrying one by one", len(loaded), type(exc).__name__, exc)
            for one in loaded:
                try:
                    await self._index([one])
                except asyncio.CancelledError:
                    raise
                except Exception as exc1:
                    log.exception("new-image event %s failed", one.image.image_id)
                    await self.dlq.failed(one.event, exc1)

    async def _load(self, events: list[Any]) -> list[Loaded]:
        loaded: list[Loaded] = []
        for event in events:
            try:
                image = await valid(event, NewImage, self.dlq)
                if image is None:
                    continue
                pixels = await self.offload.run(self._load_pixels, image)
            except ImageRejected as exc:
                await self.dlq.from_event(event, exc.code, str(exc))
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or an input nobody foresaw: this event only
                log.exception(
                    "new-image event at %s[%s]@%s failed",
                    event.message.topic,
                    event.message.partition,
                    event.message.offset,
                )
                await self.dlq.failed(event, exc)
                continue
            loaded.append(Loaded(event, image, pixels))
        return loaded

    async def _index(self, loaded: list[Loaded]) -> None:
        await self.index_ready.wait()
        pix = [x.pixels for x in loaded]
        with metrics.timed(ROLE, "embed_images"):
            search = await self.offload.run(self.embedder.embed_images, pix)
        if isinstance(self.style, EmbeddingStyle) and self.style.reuses(self.embedder):
            style = search  # IMGSEARCH_STYLE=embedding: the same vectors, computed once
        else:
            style = await self.offload.run(self.style.describe, pix)
        try:
            await asyncio.wait_for(self.centroids.ready.wait(), timeout=60)
        except TimeoutError:
            log.error("centroid topic not readable after 60 s: indexing this batch unclustered")
        clusters, version = assign(self.centroids.current, self.embedder.model_id, self.style.model_id, search, style)
        now = datetime.now(UTC)
        docs = [
            ImageDoc(
                image_id=x.image.image_id,
                embedding=search[i],
                style=style[i],
                style_model_id=self.style.model_id,
                cluster_id=clusters[i],
                model_id=self.embedder.model_id,
                centroid_version=version,
                source_uri=x.image.source_uri,
                metadata=x.image.metadata,
                indexed_at=now.isoformat(),
            )
            for i, x in enumerate(loaded)
        ]
        await self.index.upsert(docs)
        for doc in docs:
            out = ImageIndexed(
                image_id=doc.image_id,
                cluster_id=doc.cluster_id,
                model_id=doc.model_id,
                centroid_version=version,
                indexed_at=now,
            )
            await self.indexed.send(key=doc.image_id.encode(), value=out.to_bytes())


async def take_over_when_caught_up(
    settings: Settings, app: faust.App, index: OpenSearchIndex, poll_s: float = 2.0
) -> None:
    """Point the alias at this model's index once this model's consumer group has committed every
    new-image event that existed when it last looked (the re-index has caught up)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    name = settings.topics.new_images().name
    admin = AIOKafkaAdminClient(**kafka_security(settings), bootstrap_servers=settings.kafka_bootstrap)
    probe = AIOKafkaConsumer(
        **kafka_security(settings), bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await admin.start()
    await probe.start()
    try:
        while True:
            described = await admin.describe_topics([name])
            tps = [TopicPartition(name, p["partition"]) for d in described for p in d.get("partitions", [])]
            ends = await probe.end_offsets(tps) if tps else {}
            committed = await admin.list_consumer_group_offsets(app.conf.id)
            behind = sum(max(0, end - (committed[tp].offset if tp in committed else 0)) for tp, end in ends.items())
            if behind == 0:
                await index.serve_this_index()
                return
            log.info("re-indexing %s: %d new-image events to go", index.index, behind)
            await asyncio.sleep(poll_s)
    finally:
        await probe.stop()
        await admin.close()


def build(settings: Settings, embedder: Embedder, style: StyleDescriber) -> tuple[faust.App, EmbeddingPipeline]:
    # one consumer group per embedding model: a new model starts from the first retained new-image
    # event, i.e. re-indexes the whole catalog into its own index, while the old model keeps serving
    app = make_app(f"{ROLE}-{model_slug(embedder.model_id)}", settings)
    index = OpenSearchIndex(settings.opensearch_url, settings.index_name, model_id=embedder.model_id, settings=settings)
    watcher = CentroidWatcher(settings)
    dlq = DeadLetters(topic(app, settings.topics.dead_letters(), settings), ROLE)
    indexed = topic(app, settings.topics.images_indexed(), settings)
    pipeline = EmbeddingPipeline(settings, embedder, style, index, watcher, indexed, dlq)
    source = topic(app, settings.topics.new_images(), settings)

    @app.task
    async def prepare() -> None:
        serving = await index.ensure(embedder.dimension, embedder.model_id)
        pipeline.index_ready.set()
        if not serving:
            log.info(
                "re-indexing into %s for model %s; the alias %s moves here once caught up",
                index.index,
                embedder.model_id,
                index.alias,
            )
            await take_over_when_caught_up(settings, app, index)

    @app.task
    async def watch_centroids() -> None:
        await watcher.run()

    async def close_clients(app: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await index.close()  # its HTTP session: a clean stop, no "Unclosed client session"

    app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]  # faust's stub wants a sync callable

    @app.agent(source, name="embed-images")
    async def embed_images(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.embed_batch, within=0.05):  # type: ignore[attr-defined]
            await pipeline.process(list(events))

    return app, pipeline
