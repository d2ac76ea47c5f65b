"""The ONNX CLIP backend through the whole pipeline on the real servers, with a tiny random CLIP-shaped
model pair (tests/tiny_clip.py) and its image vector as the style vector (IMGSEARCH_STYLE=embedding):
ingest → embed in the worker → style clusters on the CLIP vectors → index → text and image search over
Kafka. A random model has no semantics, so the checks compare the workers' vectors and rankings with the
same embedder run here."""

from __future__ import annotations

import asyncio
import base64
import sys

import numpy as np
import pytest

from imgsearch.config import process_environment
from imgsearch.embedding.factory import make_embedder
from imgsearch.embedding.onnx_clip import OnnxClipEmbedder
from imgsearch.images import decode
from producers import SearchClient
from schemas.events import SearchResponse
from tests.support import Pipeline, ingest_all, search_until_ready
from tests.support.fixtures import PipelineFactory
from tests.tiny_clip import build_tiny_clip

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    tiny = build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))
    return await pipeline_factory(
        embedder="onnx_clip",
        style="embedding",
        k=3,
        clip_dir=str(tiny.directory),
        clip_name="tiny-random",
        clip_resize="pad",
    )


def local_embedder(p: Pipeline) -> OnnxClipEmbedder:
    emb = make_embedder(p.settings)
    assert isinstance(emb, OnnxClipEmbedder)
    return emb


def local_image_vectors(p: Pipeline, emb: OnnxClipEmbedder) -> dict[str, np.ndarray]:
    ids = sorted(p.labels)
    images = [decode((p.image_dir / f"{i}.png").read_bytes(), 2**24, 10**8) for i in ids]
    return dict(zip(ids, emb.embed_images(images), strict=True))


async def ensure_ingested(p: Pipeline) -> None:
    if not getattr(p, "_ingested", False):
        assert await ingest_all(p) == len(p.labels) == 36
        p._ingested = True  # type: ignore[attr-defined]


async def test_workers_index_clip_vectors_and_style_clusters(pipeline: Pipeline):
    await ensure_ingested(pipeline)
    emb = local_embedder(pipeline)
    assert emb.model_id.startswith("clip-tiny-random-") and emb.dimension == 16
    expected = local_image_vectors(pipeline, emb)
    idx = pipeline.index()
    try:
        docs = {i: await idx.get(i) for i in pipeline.labels}
    finally:
        await idx.close()
    assert all(d is not None for d in docs.values())
    for image_id, d in docs.items():
        assert d is not None
        assert d["model_id"] == emb.model_id and len(d["embedding"]) == 16
        assert np.allclose(d["embedding"], expected[image_id], atol=1e-5)  # the worker's vector is ours
        assert d["style_model_id"] == f"embedding:{emb.model_id}"
        # the style is the embedding; the index returns the embedding as float32 (derived source)
        assert np.allclose(d["style"], d["embedding"], atol=1e-6)
    versions = {d["centroid_version"] for d in docs.values() if d}
    assert len(versions) == 1 and versions != {"none"}  # clustered by centroids trained on the CLIP vectors
    assert {d["cluster_id"] for d in docs.values() if d} <= {0, 1, 2}


async def test_text_and_image_search_rank_like_the_local_embedder(pipeline: Pipeline):
    await ensure_ingested(pipeline)
    emb = local_embedder(pipeline)
    vectors = local_image_vectors(pipeline, emb)
    ids = list(vectors)
    matrix = np.stack([vectors[i] for i in ids])
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        for text in ("a red circle", "a photo of a big blue triangle"):
            resp = await search_until_ready(client, user_id="nobody", text=text, k=5)
            assert resp.ok and len(resp.hits) == 5 and not resp.personalized
            cos = matrix @ emb.embed_texts([text])[0]
            best = ids[int(np.argmax(cos))]
            assert resp.hits[0].image_id == best, ([h.image_id for h in resp.hits], best)
            assert [h.knn_score for h in resp.hits] == sorted((h.knn_score for h in resp.hits), reverse=True)
        target = "neon/triangle-2"
        image_b64 = base64.b64encode((pipeline.image_dir / f"{target}.png").read_bytes()).decode()
        resp = await search_until_ready(client, user_id="nobody", image_b64=image_b64, k=3)
    assert resp.hits[0].image_id == target


async def test_cli_search_json_on_the_real_pipeline(pipeline: Pipeline):
    """`imgsearch search … --json` prints the query worker's SearchResponse, ranked as here."""
    await ensure_ingested(pipeline)
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        direct = await search_until_ready(client, user_id="nobody", text="a green square", k=4)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "apps",
        "search",
        "a green square",
        "--user",
        "nobody",
        "-k",
        "4",
        "--timeout",
        "30",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**process_environment(), **pipeline.env},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    resp = SearchResponse.model_validate_json(out)
    assert [h.image_id for h in resp.hits] == [h.image_id for h in direct.hits]
    assert resp.user_id == "nobody" and resp.ok
