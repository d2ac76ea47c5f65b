"""The backbone on the real servers: ingest → index → search over Kafka → personalization → DLQ."""

from __future__ import annotations

import base64
import json
import time

import pytest

from imgsearch.kafka.admin import ensure_topics
from producers import EventPublisher, SearchClient, SearchTimeout
from schemas.events import (
    DeadLetter,
    EventType,
    ImageIndexed,
    Interaction,
    NewImage,
    SearchRequest,
)
from schemas.topics import Topics
from tests.support import Pipeline, ingest_all, read_topic, search_until_ready, wait_for

pytestmark = pytest.mark.integration


async def test_images_become_searchable_with_cluster(pipeline: Pipeline):
    n = await ingest_all(pipeline)
    assert n == len(pipeline.labels) == 36
    idx = pipeline.index()
    try:
        docs = [await idx.get(image_id) for image_id in pipeline.labels]
    finally:
        await idx.close()
    assert all(d is not None for d in docs)
    versions = {d["centroid_version"] for d in docs}
    assert len(versions) == 1 and versions != {"none"}
    assert all(0 <= d["cluster_id"] < 3 for d in docs)
    assert all(len(d["embedding"]) == 64 and d["model_id"] == "hash-v1-d64" for d in docs)
    indexed = await read_topic(
        pipeline.settings.kafka_bootstrap, pipeline.settings.topics.images_indexed().name, min_count=n
    )
    events = [ImageIndexed.from_bytes(m.value) for m in indexed]
    assert {e.image_id for e in events} == set(pipeline.labels)
    assert {e.centroid_version for e in events} == versions
    # the style clusters separate the three drawn styles better than chance (purity 1/3)
    by_cluster: dict[int, list[str]] = {}
    for d in docs:
        by_cluster.setdefault(d["cluster_id"], []).append(pipeline.labels[d["image_id"]])
    purity = sum(max(s.count(x) for x in set(s)) for s in by_cluster.values()) / len(docs)
    assert purity > 0.6, by_cluster


async def test_search_reply_through_kafka(pipeline: Pipeline):
    target = "pastel/triangle-1"
    image_b64 = base64.b64encode((pipeline.image_dir / f"{target}.png").read_bytes()).decode()
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        resp = await search_until_ready(client, user_id="nobody", image_b64=image_b64, k=5)
    assert resp.ok and len(resp.hits) == 5
    assert resp.hits[0].image_id == target
    assert resp.hits[0].knn_score >= resp.hits[1].knn_score
    assert [h.rank for h in resp.hits] == [1, 2, 3, 4, 5]
    assert not resp.personalized and resp.notes
    assert set(resp.timings_ms) == {"embed", "knn", "rank"}


async def test_interaction_changes_that_users_ranking(pipeline: Pipeline):
    query = base64.b64encode((pipeline.image_dir / "pastel/circle-0.png").read_bytes()).decode()
    user, other = "user-neon-fan", "user-bystander"
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        before = await search_until_ready(client, user_id=user, image_b64=query, k=10, personalization_weight=0.7)
        # the cluster (style) least present in this user's unpersonalized top 5
        idx = pipeline.index()
        try:
            cluster_of = {i: (await idx.get(i))["cluster_id"] for i in pipeline.labels}
        finally:
            await idx.close()
        top5 = [h.cluster_id for h in before.hits[:5]]
        liked_cluster = min(sorted(set(cluster_of.values())), key=top5.count)
        liked = [i for i, c in cluster_of.items() if c == liked_cluster][:4]
        async with EventPublisher(
            pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
        ) as pub:
            for image_id in liked:
                await pub.publish_interaction(
                    Interaction(user_id=user, image_id=image_id, event_type=EventType.FAVORITE)
                )

        async def changed():
            r = await client.search(user, image_b64=query, k=10, personalization_weight=0.7, timeout_s=5)
            return r if r.personalized else None

        after = await wait_for(changed, 30, "a personalized ranking")
        top_before = sum(h.cluster_id == liked_cluster for h in before.hits[:5])
        top_after = sum(h.cluster_id == liked_cluster for h in after.hits[:5])
        assert top_after > top_before
        assert any(h.drivers for h in after.hits if h.cluster_id == liked_cluster)
        # weight 0 reproduces the non-personalized order exactly
        plain = await client.search(user, image_b64=query, k=10, personalization_weight=0.0)
        assert [h.image_id for h in plain.hits] == [h.image_id for h in before.hits]
        # another user's ranking did not move
        bystander = await client.search(other, image_b64=query, k=10, personalization_weight=0.7)
        assert [h.image_id for h in bystander.hits] == [h.image_id for h in before.hits]


async def test_malformed_events_go_to_dead_letters_and_stream_goes_on(pipeline: Pipeline):
    bootstrap = pipeline.settings.kafka_bootstrap
    good = NewImage.inline("late-good-image", (pipeline.image_dir / "mono/bar-2.png").read_bytes())
    bad = [
        (pipeline.settings.topics.new_images().name, b"{this is not json"),
        (
            pipeline.settings.topics.new_images().name,
            json.dumps({"image_id": "x y", "source_uri": "file:///a"}).encode(),
        ),
        (
            pipeline.settings.topics.new_images().name,
            json.dumps({"schema_version": 9, "image_id": "v9", "image_b64": ""}).encode(),
        ),
        (pipeline.settings.topics.new_images().name, NewImage.inline("not-an-image", b"GIF89a garbage").to_bytes()),
        (
            pipeline.settings.topics.new_images().name,
            NewImage(image_id="ssrf", source_uri="file:///etc/passwd").to_bytes(),
        ),
        (pipeline.settings.topics.interactions().name, b"\xff\xfe\x00"),
        (
            pipeline.settings.topics.interactions().name,
            Interaction(user_id="u", image_id="never-indexed", event_type=EventType.VIEW).to_bytes(),
        ),
        (pipeline.settings.topics.search_requests().name, json.dumps({"user_id": "u", "text": "x", "k": 0}).encode()),
    ]
    async with EventPublisher(bootstrap, topics=pipeline.settings.topics) as pub:
        for topic, payload in bad:
            await pub.publish_raw(topic, payload, key=b"k")
        await pub.publish_image(good)
    idx = pipeline.index()
    try:

        async def indexed():
            return await idx.get("late-good-image")

        await wait_for(indexed, 60, "the valid image after the bad ones", workers=pipeline.workers)
    finally:
        await idx.close()
    letters = [
        DeadLetter.from_bytes(m.value)
        for m in await read_topic(
            bootstrap, pipeline.settings.topics.dead_letters().name, min_count=len(bad), timeout=40
        )
    ]
    codes = sorted(dl.reason_code for dl in letters)
    assert codes == sorted(
        [
            "malformed_json",
            "schema_violation",
            "unknown_version",
            "undecodable_image",
            "uri_not_allowed",
            "malformed_json",
            "unknown_image",
            "schema_violation",
        ]
    ), [(d.reason_code, d.reason) for d in letters]
    for dl in letters:
        assert dl.reason and dl.source_offset is not None and dl.source_partition is not None
    originals = {dl.original_bytes() for dl in letters}
    assert {payload for _, payload in bad} <= originals


async def test_invalid_search_gets_an_error_reply(pipeline: Pipeline):
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        await search_until_ready(client, user_id="u", text="warm up", k=1)
        req = SearchRequest(user_id="u", text="circle", reply_topic=client.reply_topic)
        raw = json.loads(req.model_dump_json())
        raw["k"] = 1000
        fut_id = raw["request_id"]
        async with EventPublisher(
            pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
        ) as pub:
            await pub.publish_raw(pipeline.settings.topics.search_requests().name, json.dumps(raw).encode(), key=b"u")
        replies = await read_topic(pipeline.settings.kafka_bootstrap, client.reply_topic, min_count=2)
    errors = [json.loads(m.value) for m in replies if json.loads(m.value)["request_id"] == fut_id]
    assert errors and errors[0]["error"]["code"] == "schema_violation" and "k" in errors[0]["error"]["message"]


async def test_search_without_query_worker_times_out_clearly(engines, tmp_path):
    """No worker consumes this prefix's requests: the client gives up at its deadline, no hang."""
    topics = Topics(prefix="t-no-worker")
    # the topics exist (the broker creates none on its own), nobody consumes them
    await ensure_topics(engines["KAFKA_BOOTSTRAP"], [topics.search_requests()], 2)
    async with SearchClient(engines["KAFKA_BOOTSTRAP"], topics=topics) as client:
        t0 = time.monotonic()
        with pytest.raises(SearchTimeout, match=r"no reply to search .* within 1\.5s: is a query worker running"):
            await client.search("u", "cat", timeout_s=1.5)
        assert 1.4 < time.monotonic() - t0 < 4.0


async def test_style_switch_mid_session_is_followed(pipeline: Pipeline):
    """The article's designer: a history in one style, then a switch; the next searches follow."""
    settings = pipeline.settings
    idx = pipeline.index()
    try:
        cluster_of = {i: (await idx.get(i))["cluster_id"] for i in pipeline.labels}
    finally:
        await idx.close()
    clusters = sorted(set(cluster_of.values()))
    old_style, new_style = clusters[0], clusters[1]
    query = base64.b64encode((pipeline.image_dir / "mono/square-1.png").read_bytes()).decode()
    user = "designer"
    old_imgs = [i for i, c in cluster_of.items() if c == old_style]
    new_imgs = [i for i, c in cluster_of.items() if c == new_style]
    async with (
        EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub,
        SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client,
    ):
        for i, image_id in enumerate(old_imgs[:8]):
            await pub.publish_interaction(
                Interaction(
                    user_id=user, image_id=image_id, event_type=EventType.FAVORITE, event_id=f"designer-old-{i}"
                )
            )

        async def top_is(cluster: int):
            r = await client.search(user, image_b64=query, k=5, personalization_weight=0.9, timeout_s=5)
            return r if r.personalized and r.hits[0].cluster_id == cluster else None

        await wait_for(lambda: top_is(old_style), 30, "the first style on top")
        t0 = time.monotonic()
        for i, image_id in enumerate(new_imgs[:3]):
            await pub.publish_interaction(
                Interaction(
                    user_id=user, image_id=image_id, event_type=EventType.FAVORITE, event_id=f"designer-new-{i}"
                )
            )
        resp = await wait_for(lambda: top_is(new_style), 30, "the new style on top", interval=0.05)
        print(f"switch followed {time.monotonic() - t0:.3f}s after the last interaction was published")
        # the lasting taste is kept: the old style still scores, below the new one
        old_hits = [h for h in resp.hits if h.cluster_id == old_style]
        assert all(h.personal_score < resp.hits[0].personal_score for h in old_hits)
        # redelivered (same event id) interactions are not counted twice: replaying the whole old-style
        # history would put the old style back on top if it counted
        for i, image_id in enumerate(old_imgs[:8]):
            await pub.publish_interaction(
                Interaction(
                    user_id=user, image_id=image_id, event_type=EventType.FAVORITE, event_id=f"designer-old-{i}"
                )
            )
        third = next(i for i, c in cluster_of.items() if c not in (old_style, new_style))
        await pub.publish_interaction(
            Interaction(user_id=user, image_id=third, event_type=EventType.VIEW, event_id="designer-marker")
        )

        async def marker_applied():
            r = await client.search(user, image_b64=query, k=36, personalization_weight=0.9)  # every image
            return r if any(d.startswith("view:") for h in r.hits for d in h.drivers) else None

        after = await wait_for(marker_applied, 30, "the marker event after the replay")
        assert after.hits[0].cluster_id == new_style


async def test_diversity_cap_per_style(pipeline: Pipeline):
    query = base64.b64encode((pipeline.image_dir / "neon/circle-0.png").read_bytes()).decode()
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        plain = await search_until_ready(client, user_id="u-div", image_b64=query, k=3)
        capped = await client.search("u-div", image_b64=query, k=3, max_per_cluster=1)
    assert plain.hits[0].image_id == capped.hits[0].image_id == "neon/circle-0"
    assert len({h.cluster_id for h in capped.hits}) == len(capped.hits) == 3


async def test_export_cluster_interactions_for_personalize(pipeline: Pipeline, tmp_path):
    from jobs.export import read_events, rows, write

    events = await read_events(pipeline.settings)
    assert events, "the earlier tests sent interactions"
    table = rows(events, None)
    assert len(table) == len({e.event_id for e in events})
    assert {r[0] for r in table} >= {"user-neon-fan", "designer"}
    paths = write(table, tmp_path)
    assert (tmp_path / "interactions.csv").read_text().count("\n") == len(table) + 1 and len(paths) == 2


async def test_offline_ranker_model_is_trained_published_and_used(pipeline: Pipeline):
    from jobs.train_ranker import train_and_publish

    model = await train_and_publish(pipeline.settings)
    assert model.clusters and model.similarity.shape == (len(model.clusters), len(model.clusters))
    query = base64.b64encode((pipeline.image_dir / "pastel/circle-0.png").read_bytes()).decode()
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:

        async def uses_model():
            r = await client.search("user-neon-fan", image_b64=query, k=10, personalization_weight=0.7)
            return r if r.ranker == "local-profile+cooccurrence" else None

        resp = await wait_for(uses_model, 30, "the query worker to hot-load the ranker model")
    assert resp.personalized
