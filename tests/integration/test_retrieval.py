"""Issue 15, the retrieval side, through the whole pipeline on the real servers (Kafka, OpenSearch,
the three workers): two-source candidates, similar_to, metadata filters inside the k-NN, paging with a
kept ranking, and the gateway's parameters for them.

The candidate counts are made small (IMGSEARCH_MIN_CANDIDATES 3, multiplier 1: a k=2 search ranks the
global top-10 of 36 images) so that a style absent from a query's global candidates exists here too."""

from __future__ import annotations

import base64

import pytest
from aiohttp.test_utils import TestClient, TestServer

from apps.gateway.app import Gateway, create_app
from imgsearch.config import process_environment
from producers import EventPublisher, SearchClient
from schemas.events import EventType, Interaction, MetadataFilter
from tests.support import Pipeline, ingest_all, search_until_ready, teach_user, wait_for
from tests.support.fixtures import PipelineFactory

pytestmark = pytest.mark.integration
QUERY = "neon/circle-0"


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    return await pipeline_factory(min_candidates=3, candidate_multiplier=1, style_sources=1, style_candidates=3)


def png(pipeline: Pipeline, image_id: str) -> str:
    return base64.b64encode((pipeline.image_dir / f"{image_id}.png").read_bytes()).decode()


async def teach_again(pipeline: Pipeline, client: SearchClient, user: str, images: list[str], marker: str) -> None:
    """More downloads for a user who was taught once (teach_user's event ids would repeat and be
    ignored as duplicates); returns when the query worker has applied them."""
    async with EventPublisher(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as pub:
        for n, image_id in enumerate([*images, marker]):
            kind = EventType.VIEW if image_id == marker else EventType.DOWNLOAD
            await pub.publish_interaction(
                Interaction(user_id=user, image_id=image_id, event_type=kind, event_id=f"{user}-again-{n}")
            )

    async def applied() -> bool:
        r = await client.search(user, image_b64=png(pipeline, marker), k=10, personalization_weight=0.1)
        return any(h.image_id == marker and f"view:{marker}" in h.drivers for h in r.hits)

    await wait_for(applied, 60, f"{user}'s second interactions applied")


@pytest.fixture(scope="module")
async def ready(pipeline: Pipeline) -> Pipeline:
    await ingest_all(pipeline)
    return pipeline


async def test_style_source_brings_in_style_images_from_beyond_the_global_candidates(ready: Pipeline):
    async with SearchClient(
        ready.settings.kafka_bootstrap, topics=ready.settings.topics, settings=ready.settings
    ) as client:
        full = await search_until_ready(client, user_id="nobody", image_b64=png(ready, QUERY), k=36)
        order = [h.image_id for h in full.hits]  # relevance only: the whole k-NN order
        global10 = order[:10]  # what a k=2 search ranks without the style source (depth 10)
        style_of = ready.labels
        # the style with the fewest images among the query's global candidates (none, for a neon query)
        liked = min(("pastel", "mono"), key=lambda s: sum(style_of[i] == s for i in global10))
        history = [(i, EventType.FAVORITE) for i in style_of if style_of[i] == liked and "circle" not in i][:6]
        marker = next(i for i in style_of if style_of[i] == liked and i.startswith(f"{liked}/circle"))
        await teach_user(ready, client, "u-style", history, marker)
        resp = await client.search("u-style", image_b64=png(ready, QUERY), k=2, personalization_weight=1.0)
        assert resp.ok and resp.personalized, resp
        assert any("more candidates from the preferred styles" in n for n in resp.notes), resp.notes
        top_cluster = max(resp.hits, key=lambda h: h.personal_score).cluster_id
        in_global = [i for i in global10 if full.hits[order.index(i)].cluster_id == top_cluster]
        assert len(in_global) < 2, f"precondition: the liked cluster has {in_global} in the global top-10"
        hits = [h.image_id for h in resp.hits]
        assert all(h.cluster_id == top_cluster for h in resp.hits), resp.hits
        reached = [i for i in hits if i not in global10]
        assert reached, f"{hits} all from the global top-10 {global10}"
        print(f"liked {liked}: top-2 {hits}; from beyond the global top-10: {reached}")
        # without personalization the same request has no second source
        plain = await client.search("u-style", image_b64=png(ready, QUERY), k=2, personalization_weight=0.0)
        assert [h.image_id for h in plain.hits] == order[:2]
        assert not any("preferred styles" in n for n in plain.notes)


async def test_similar_to_uses_the_stored_vector_and_refuses_an_unknown_id(ready: Pipeline):
    async with SearchClient(
        ready.settings.kafka_bootstrap, topics=ready.settings.topics, settings=ready.settings
    ) as client:
        by_bytes = await search_until_ready(client, user_id="nobody", image_b64=png(ready, QUERY), k=6)
        by_id = await client.search("nobody", similar_to=QUERY, k=5)
        assert by_bytes.hits[0].image_id == QUERY
        assert [h.image_id for h in by_id.hits] == [h.image_id for h in by_bytes.hits[1:6]]
        assert [h.rank for h in by_id.hits] == [1, 2, 3, 4, 5]
        missing = await client.search("nobody", similar_to="no/such-image", k=5, raise_on_error=False)
        assert missing.error is not None and missing.error.code == "unknown_image", missing
        assert "no/such-image" in missing.error.message


async def test_metadata_filters_run_inside_the_knn(ready: Pipeline):
    async with SearchClient(
        ready.settings.kafka_bootstrap, topics=ready.settings.topics, settings=ready.settings
    ) as client:
        plain = await search_until_ready(client, user_id="nobody", image_b64=png(ready, QUERY), k=5)
        assert not any(h.metadata["folder"] == "mono" for h in plain.hits)  # the query is neon
        mono = await client.search(
            "nobody", image_b64=png(ready, QUERY), k=5, filters=[MetadataFilter(field="folder", term="mono")]
        )
        # k hits that match, not the unfiltered top-k filtered down to none
        assert len(mono.hits) == 5 and all(h.metadata["folder"] == "mono" for h in mono.hits), mono.hits
        both = await client.search(
            "nobody",
            similar_to=QUERY,
            k=10,
            filters=[{"field": "folder", "terms": ["pastel", "mono"]}, {"field": "file", "gte": "s"}],
        )
        assert len(both.hits) == 10
        assert all(h.metadata["folder"] in ("pastel", "mono") for h in both.hits)
        assert all(h.metadata["file"].startswith(("square", "triangle")) for h in both.hits), both.hits
        none = await client.search(
            "nobody", image_b64=png(ready, QUERY), k=5, filters=[{"field": "folder", "term": "no-such-folder"}]
        )
        assert none.ok and none.hits == []


async def test_a_wider_hnsw_search_is_accepted_by_the_real_engine_alone_and_in_msearch(ready: Pipeline):
    """IMGSEARCH_KNN_EF_SEARCH (issue 16) on the real OpenSearch: the single k-NN and the filtered
    _msearch both take it, and on 36 images (exact either way) they find the same documents."""
    from imgsearch.index.opensearch import OpenSearchIndex

    s = ready.settings
    plain = OpenSearchIndex(s.opensearch_url, s.index_name, settings=s)
    wide = OpenSearchIndex(s.opensearch_url, s.index_name, settings=s.model_copy(update={"knn_ef_search": 200}))
    try:
        vec = await plain.vector_of(QUERY)
        assert vec is not None
        mono = {"bool": {"filter": [{"term": {"metadata.folder": "mono"}}]}}
        a = await plain.knn_sources(vec, [(8, None), (4, mono)])
        b = await wide.knn_sources(vec, [(8, None), (4, mono)])
        assert [[c.image_id for c in src] for src in a] == [[c.image_id for c in src] for src in b]
        assert [c.image_id for c in await wide.knn(vec, 8)] == [c.image_id for c in a[0]]
    finally:
        await plain.close()
        await wide.close()


async def test_filters_on_an_index_from_before_them_are_refused_not_silently_empty(ready: Pipeline):
    """An index created with the earlier mapping (metadata not indexed) would match nothing for any
    filter; the index says so, and a filtered search there gets a clear error."""
    from imgsearch.index.opensearch import OpenSearchIndex, mapping

    current = OpenSearchIndex(ready.settings.opensearch_url, ready.settings.index_name, settings=ready.settings)
    old = OpenSearchIndex(ready.settings.opensearch_url, "test-retrieval-old-mapping", settings=ready.settings)
    try:
        assert await current.metadata_filterable()
        body = mapping(4, "old-model")
        body["mappings"]["properties"]["metadata"] = {"type": "object", "enabled": False}
        await old.client.indices.create(index=old.index, body=body)
        assert not await old.metadata_filterable()
    finally:
        await old.client.indices.delete(index=old.index, ignore_unavailable=True)
        await old.close()
        await current.close()


async def test_pages_keep_their_ranking_when_the_profile_changes(ready: Pipeline):
    async with SearchClient(
        ready.settings.kafka_bootstrap, topics=ready.settings.topics, settings=ready.settings
    ) as client:
        user = "u-pager"
        pastel = [i for i, s in ready.labels.items() if s == "pastel"]
        await teach_user(ready, client, user, [(i, EventType.FAVORITE) for i in pastel[:4]], pastel[4])
        first = await search_until_ready(client, user_id=user, image_b64=png(ready, QUERY), k=3)
        assert first.personalized and first.page == 1 and first.has_more and first.ranking_id
        # the profile changes between page 1 and page 2: the user now favours mono
        mono = [i for i, s in ready.labels.items() if s == "mono"]
        await teach_again(ready, client, user, mono[:6], mono[6])
        second = await client.search(user, image_b64=png(ready, QUERY), k=3, page=2, ranking_id=first.ranking_id)
        again = await client.search(user, image_b64=png(ready, QUERY), k=3, page=1, ranking_id=first.ranking_id)
        assert [h.rank for h in second.hits] == [4, 5, 6]
        assert not {h.image_id for h in second.hits} & {h.image_id for h in first.hits}
        assert [h.image_id for h in again.hits] == [h.image_id for h in first.hits]  # the same order
        assert "cached" in second.timings_ms
        # a fresh ranking follows the new profile; an unknown ranking_id is ranked afresh and said so
        fresh = await client.search(user, image_b64=png(ready, QUERY), k=3, ranking_id="expired-or-never-seen")
        assert any("ranked afresh" in n for n in fresh.notes) and len(fresh.hits) == 3
        # a page beyond the kept depth (5 pages at k=3 = 15 hits): the kept order first, then the rest
        deep = await client.search(user, image_b64=png(ready, QUERY), k=3, page=7, ranking_id=first.ranking_id)
        assert [h.rank for h in deep.hits] == [19, 20, 21]
        pages = [
            await client.search(user, image_b64=png(ready, QUERY), k=3, page=p, ranking_id=first.ranking_id)
            for p in range(1, 13)
        ]
        ids = [h.image_id for r in pages for h in r.hits]
        assert len(ids) == len(set(ids)) == 36, ids  # every image once over the pages, none twice
        assert not pages[-1].has_more
        # search_after: following each reply's cursor walks the same ranking, page for page
        walked, reply = [h.image_id for h in first.hits], first
        while reply.has_more:
            assert reply.cursor is not None
            reply = await client.search(user, image_b64=png(ready, QUERY), k=3, search_after=reply.cursor)
            assert reply.ranking_id == first.ranking_id and reply.page == len(walked) // 3 + 1
            walked += [h.image_id for h in reply.hits]
        assert walked == ids and reply.cursor is None


async def test_gateway_similar_to_filters_and_pages(ready: Pipeline):
    gateway = Gateway(ready.settings.replace(gateway_auth="demo"))
    port = int(process_environment().get("IMGSEARCH_TEST_GATEWAY_PORT", "0")) or None
    async with TestClient(TestServer(create_app(gateway=gateway), host="127.0.0.1", port=port)) as http:
        r = await http.get(
            "/api/search",
            params=[("user", "gw"), ("similar_to", QUERY), ("k", "4"), ("filter", "folder=pastel|mono")],
        )
        body = await r.json()
        assert r.status == 200, body
        assert len(body["hits"]) == 4 and all(h["metadata"]["folder"] in ("pastel", "mono") for h in body["hits"])
        nxt = await http.get(
            "/api/search",
            params={"user": "gw", "similar_to": QUERY, "k": "4", "page": "2", "ranking_id": body["ranking_id"]},
        )
        page2 = await nxt.json()
        assert nxt.status == 200 and [h["rank"] for h in page2["hits"]] == [5, 6, 7, 8]
        after = await http.get(
            "/api/search", params={"user": "gw", "similar_to": QUERY, "k": "4", "search_after": body["cursor"]}
        )
        assert after.status == 200 and (await after.json())["hits"] == page2["hits"]
        forged = await http.get("/api/search", params={"user": "gw", "q": "x", "search_after": "forged"})
        assert forged.status == 400 and "search_after" in (await forged.json())["error"]["message"]
        posted = await http.post(
            "/api/search",
            json={"user_id": "gw", "similar_to": QUERY, "k": 3, "filters": [{"field": "file", "lt": "c"}]},
        )
        assert posted.status == 200
        assert all(h["metadata"]["file"].startswith("bar") for h in (await posted.json())["hits"])
        unknown = await http.get("/api/search", params={"user": "gw", "similar_to": "no/such"})
        assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "unknown_image"
        for bad in ("folder", "a b=c"):
            refused = await http.get("/api/search", params={"user": "gw", "q": "x", "filter": bad})
            assert refused.status == 400, await refused.text()
        too_deep = await http.get("/api/search", params={"user": "gw", "q": "x", "k": "100", "page": "6"})
        assert too_deep.status == 400
