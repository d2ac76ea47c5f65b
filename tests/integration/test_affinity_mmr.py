"""Issue 15 on the real servers (Kafka + OpenSearch, the three workers): continuous style affinity and
MMR diversity, through the interactions topic, the query worker's profile table and the reply topic.

The query worker runs with IMGSEARCH_AFFINITY=continuous. The corpus is the synthetic one (3 drawn
styles x 4 shapes x 3 variants) plus 12 "border" images half-way between two styles (the handcrafted
style vector, K = 3 style clusters): the test reads the indexed vectors back from OpenSearch to find a
pair of images on either side of a cluster border, so it depends on no particular clustering."""

from __future__ import annotations

import base64
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgsearch.domain.blend import Candidate, blend
from producers import SearchClient
from schemas.events import EventType, SearchResponse
from tests.support import (
    SUBJECTS,
    Pipeline,
    draw,
    ingest_all,
    search_until_ready,
    synthetic_folder,
    teach_user,
)
from tests.support.fixtures import PipelineFactory

pytestmark = pytest.mark.integration


def make_images(root: Path) -> dict[str, str]:
    """The synthetic corpus plus "border" images: each pastel drawing blended half-way with its mono
    twin, so some images sit between two style clusters."""
    labels = synthetic_folder(root)
    for subject in SUBJECTS:
        for v in range(3):
            a = Image.open(io.BytesIO(draw("pastel", subject, v))).convert("RGB")
            b = Image.open(io.BytesIO(draw("mono", subject, v))).convert("RGB")
            path = root / "border" / f"{subject}-{v}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.blend(a, b, 0.5).save(path)
            labels[f"border/{subject}-{v}"] = "border"
    return labels


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    return await pipeline_factory(make_images=make_images, affinity_mode="continuous")


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


async def indexed(pipeline: Pipeline) -> dict[str, dict]:
    idx = pipeline.index()
    try:
        return {i: src async for i, src in idx.scan(["style", "cluster_id", "embedding"])}
    finally:
        await idx.close()


def png(pipeline: Pipeline, image_id: str) -> str:
    return base64.b64encode((pipeline.image_dir / f"{image_id}.png").read_bytes()).decode()


def order(r: SearchResponse) -> list[str]:
    return [h.image_id for h in r.hits]


async def test_continuous_affinity_ranks_up_the_neighbour_style_across_a_cluster_border(pipeline: Pipeline) -> None:
    await ingest_all(pipeline)
    docs = await indexed(pipeline)
    style = {i: unit(d["style"]) for i, d in docs.items()}
    emb = {i: unit(d["embedding"]) for i, d in docs.items()}
    cluster = {i: int(d["cluster_id"]) for i, d in docs.items()}
    w = pipeline.settings.personalization_weight
    bandwidth = pipeline.settings.affinity_bandwidth

    def cluster_mode_rank(x: str, y: str) -> int:
        """y's rank for a query by x's image, by the cluster profile of a user who liked only x."""
        cands = [Candidate(i, (1 + float(emb[x] @ emb[i])) / 2, cluster[i]) for i in docs]
        ranked = blend(cands, {cluster[x]: 1.0}, w, len(cands))
        return [r.candidate.image_id for r in ranked].index(y)

    def farther_own(x: str, y: str) -> int:
        """How many images of x's own cluster are farther from x in style than y is."""
        return sum(1 for z in docs if cluster[z] == cluster[x] and style[z] @ style[x] < style[y] @ style[x])

    # the liked image x and an image y of ANOTHER cluster that is nearer to x in style than most of x's
    # own cluster (a border pair), among the pairs where the cluster profile leaves y outside the top 3
    pairs = [
        (farther_own(x, y), float(style[x] @ style[y]), x, y)
        for x, y in itertools.permutations(sorted(docs), 2)
        if cluster[x] != cluster[y] and cluster_mode_rank(x, y) >= 3
    ]
    n_farther, sim, x, y = max(pairs)
    user = "u-border"
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        await search_until_ready(client, user_id="u-warm", image_b64=png(pipeline, x), k=1)
        await teach_user(pipeline, client, user, [(x, EventType.FAVORITE), (x, EventType.DOWNLOAD)], x)
        r = await client.search(user, image_b64=png(pipeline, x), k=20, timeout_s=10)
        new = await client.search("u-nobody", image_b64=png(pipeline, x), k=20, personalization_weight=0.0)
        # what the style-vector _mget costs: the query worker's ranking step, medoid user vs a new user
        cost = {}
        for who in (user, "u-nobody"):
            runs = [await client.search(who, image_b64=png(pipeline, x), k=20) for _ in range(20)]
            cost[who] = float(np.median([q.timings_ms["rank"] for q in runs]))
        print(f"rank step p50 ms (20 searches): continuous user {cost[user]:.2f}, new user {cost['u-nobody']:.2f}")
    ids = order(r)
    before = cluster_mode_rank(x, y)
    print(f"x={x} (cluster {cluster[x]}) y={y} (cluster {cluster[y]}) style cos {sim:.3f}, {n_farther} farther")
    print("continuous:", [(i, cluster[i], round(h.personal_score, 3)) for i, h in zip(ids, r.hits, strict=True)])
    print(f"y: cluster-mode rank {before + 1}, continuous rank {ids.index(y) + 1 if y in ids else None}")
    assert r.personalized and r.ranker.endswith("+styles"), r.ranker
    # each hit's personal score is its own style's similarity to the user's one interest medoid (x)
    for h in r.hits:
        expected = float(np.exp((style[h.image_id] @ style[x] - 1.0) / bandwidth))
        assert h.personal_score == pytest.approx(expected, abs=2e-3), h.image_id
    # the neighbour across the border ranks higher than the cluster profile would put it
    assert y in ids and ids.index(y) < before, (ids, before)
    # and it is lifted above its unpersonalised place
    assert ids.index(y) < (order(new).index(y) if y in order(new) else len(docs)), order(new)


async def test_mmr_lambda_below_one_gives_more_distinct_styles(pipeline: Pipeline) -> None:
    await ingest_all(pipeline)
    docs = await indexed(pipeline)
    emb = {i: unit(d["embedding"]) for i, d in docs.items()}
    query = sorted(docs)[0]
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        await search_until_ready(client, user_id="u-warm", image_b64=png(pipeline, query), k=1)
        kw = {"image_b64": png(pipeline, query), "k": 10, "personalization_weight": 0.0}
        plain = await client.search("u-mmr", **kw)
        one = await client.search("u-mmr", mmr_lambda=1.0, **kw)
        low = await client.search("u-mmr", mmr_lambda=0.3, **kw)
        cost = {}
        for lam in (1.0, 0.3):
            runs = [await client.search("u-mmr", mmr_lambda=lam, **kw) for _ in range(20)]
            cost[lam] = float(np.median([q.timings_ms["rank"] for q in runs]))
        print(f"rank step p50 ms (20 searches): lambda 1 {cost[1.0]:.2f}, lambda 0.3 {cost[0.3]:.2f}")

    def spread(r: SearchResponse) -> tuple[int, float]:
        ids = order(r)
        sims = [float(emb[a] @ emb[b]) for a, b in itertools.combinations(ids, 2)]
        return len({pipeline.labels[i] for i in ids}), float(np.mean(sims))

    print("lambda 1  :", [pipeline.labels[i] for i in order(plain)], spread(plain))
    print("lambda 0.3:", [pipeline.labels[i] for i in order(low)], spread(low))
    assert order(one) == order(plain)  # lambda 1 is today's order
    assert len(order(low)) == 10 and order(low)[0] == order(plain)[0]
    (styles_plain, sim_plain), (styles_low, sim_low) = spread(plain), spread(low)
    assert sim_low < sim_plain
    assert styles_low > styles_plain
