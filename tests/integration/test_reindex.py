"""A model change on the real servers: the new model's embedder re-indexes the whole catalog into
its own index by replaying the retained new-image topic, then moves the serving alias; the old
model's index keeps answering until then."""

from __future__ import annotations

import base64

import pytest

from imgsearch.index.opensearch import OpenSearchIndex, physical_name
from producers import SearchClient
from tests.support import Pipeline, ingest_all, search_until_ready, wait_for

pytestmark = pytest.mark.integration


async def test_new_model_reindexes_and_takes_over(pipeline: Pipeline):
    settings = pipeline.settings
    n = await ingest_all(pipeline)
    old_name = physical_name(settings.index_name, "hash-v1-d64")
    new_name = physical_name(settings.index_name, "hash-v1-d32")
    alias = OpenSearchIndex(settings.opensearch_url, settings.index_name, settings=settings)
    try:
        assert await alias.alias_targets() == [old_name]
        # deploy the new model: an embedder and a query worker configured with it
        new_model = settings.replace(hash_dim=32)
        pipeline.workers.start("embedder", new_model.child_env())
        new_query = pipeline.workers.start(
            "query", new_model.replace(app_prefix=settings.app_prefix + "-m2").child_env()
        )
        new_index = OpenSearchIndex(
            settings.opensearch_url, settings.index_name, model_id="hash-v1-d32", settings=settings
        )

        async def swapped():
            return await alias.alias_targets() == [new_name]

        await wait_for(swapped, 120, "the alias to move to the new model's index", workers=pipeline.workers)
        await new_index.refresh()
        assert await new_index.count() == n  # the whole catalog, replayed from the retained topic
        meta = await new_index.meta()
        assert meta == {"model_id": "hash-v1-d32", "dimension": 32}
        old_index = OpenSearchIndex(
            settings.opensearch_url, settings.index_name, model_id="hash-v1-d64", settings=settings
        )
        assert await old_index.count() == n  # untouched: old query workers could still serve from it
        await old_index.close()
        # both query workers answer (each from its own model's index): the result is right either way
        query = base64.b64encode((pipeline.image_dir / "neon/bar-1.png").read_bytes()).decode()
        async with SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client:
            for _ in range(4):
                resp = await search_until_ready(client, user_id="after-swap", image_b64=query, k=3)
                assert resp.hits[0].image_id == "neon/bar-1"
        assert new_query.alive()
        await new_index.close()
    finally:
        await alias.close()
