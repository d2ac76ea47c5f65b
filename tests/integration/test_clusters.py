"""Re-clustering on the real servers: a new centroid version is hot-reloaded by a running
embedding worker, every indexed image moves to it, and a user's preferences follow their images."""

from __future__ import annotations

import base64
from collections import Counter

import pytest

from imgsearch.index.opensearch import OpenSearchIndex
from imgsearch.kafka.model_topics import current_model
from jobs.clusters import recluster
from producers import EventPublisher, SearchClient
from schemas.events import EventType, ImageIndexed, Interaction, NewImage
from tests.support import Pipeline, ingest_all, read_topic, search_until_ready, wait_for

pytestmark = pytest.mark.integration


async def clusters_by_id(idx: OpenSearchIndex) -> dict[str, tuple[int, str]]:
    await idx.refresh()
    return {
        i: (int(s["cluster_id"]), s["centroid_version"]) async for i, s in idx.scan(["cluster_id", "centroid_version"])
    }


async def test_recluster_moves_every_image_and_keeps_preferences(pipeline: Pipeline):
    settings = pipeline.settings
    n = await ingest_all(pipeline)
    old_model = await current_model(settings)
    assert old_model is not None
    idx = pipeline.index()
    try:
        before = await clusters_by_id(idx)
        assert {v for _, v in before.values()} == {old_model.version}

        # a user who likes the "neon" style, learnt on the old cluster model
        user = "neon-fan"
        liked = sorted(i for i in pipeline.labels if i.startswith("neon/"))[:6]
        query = base64.b64encode((pipeline.image_dir / "pastel/square-0.png").read_bytes()).decode()
        async with (
            EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub,
            SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client,
        ):
            for image_id in liked:
                await pub.publish_interaction(
                    Interaction(user_id=user, image_id=image_id, event_type=EventType.DOWNLOAD)
                )
            await search_until_ready(client, user_id=user, image_b64=query, k=5)

            async def personalized():
                r = await client.search(user, image_b64=query, k=12, personalization_weight=1.0, timeout_s=5)
                return r if r.personalized else None

            await wait_for(personalized, 30, "the old-model profile")

            # re-cluster with another k while the workers run
            new_model = await recluster(settings, k=6, vector_kind="style", seed=3)
            assert new_model.version != old_model.version and old_model.version in new_model.remaps
            after = await clusters_by_id(idx)
            assert len(after) == n and {v for _, v in after.values()} == {new_model.version}

            # the running embedder hot-reloaded the new version
            fresh = NewImage.inline("fresh-after-recluster", (pipeline.image_dir / "mono/circle-1.png").read_bytes())
            await pub.publish_image(fresh)

            async def fresh_doc():
                return await idx.get("fresh-after-recluster")

            doc = await wait_for(fresh_doc, 60, "the image indexed after re-clustering", workers=pipeline.workers)
            assert doc["centroid_version"] == new_model.version

            # re-emitted image → cluster events carry the new version
            events = [
                ImageIndexed.from_bytes(m.value)
                for m in await read_topic(
                    settings.kafka_bootstrap, pipeline.settings.topics.images_indexed().name, min_count=2 * n + 1
                )
            ]
            assert {e.image_id for e in events if e.centroid_version == new_model.version} >= set(before)

            # the stored preference followed the liked images to their new clusters
            liked_new = Counter(after[i][0] for i in liked)

            async def remapped():
                r = await client.search(user, image_b64=query, k=12, personalization_weight=1.0, timeout_s=5)
                top = {h.cluster_id for h in r.hits[:3]}
                return r if r.personalized and top <= set(liked_new) else None

            resp = await wait_for(remapped, 30, "personalization on the new cluster model")
            assert all(pipeline.labels.get(h.image_id, "").startswith("neon") for h in resp.hits[:3])

            # an interaction after re-clustering maps to a new-model cluster
            await pub.publish_interaction(
                Interaction(user_id="late-user", image_id=liked[0], event_type=EventType.FAVORITE)
            )

            async def late():
                r = await client.search("late-user", image_b64=query, k=12, personalization_weight=1.0, timeout_s=5)
                return r if r.personalized else None

            resp = await wait_for(late, 30, "a new-model interaction")
            assert resp.hits[0].cluster_id == after[liked[0]][0]
    finally:
        await idx.close()
