"""Speed benchmarks of the whole system on the real Kafka and OpenSearch, on this machine, in one run.

    .venv/bin/python bench/speed.py [--quick] [--out bench-results/speed.json]

1. ingest: images/s through the pipeline (publish → Kafka → embedding worker → OpenSearch, until
   searchable) vs the bare embedder in-process (embed + style describer, batch 16); 1 vs 2 embedders
2. nearest-centroid assignment cost per image vs embedding cost per image
3. search over Kafka request/reply: latency at a fixed open-loop rate (with the reply's timings and
   the Kafka hops) and a rate sweep to the max sustainable rate, on an index padded to 10k vectors
4. freshness: interaction published → first search reply for that user reflecting it
5. k-NN recall@10 (HNSW vs exact script_score) and index size per 10k vectors
6. scale: bulk-ingest cost, k-NN latency and recall at 1k / 10k / 100k synthetic vectors

Writes <out> (JSON), <out>.md (Markdown tables) and PNG plots next to it; the full run also copies
the plots to docs/img/bench-*.png. ``--quick`` runs a small version of every section (the smoke test).
The engines: KAFKA_BOOTSTRAP / OPENSEARCH_URL if set, else the local ones (scripts/engines.sh).
Everything the run creates (topics, consumer groups, indices) has a unique prefix and is deleted
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, clustered_unit_vectors, machine_facts, say, stats
from schemas.topics import Topics


@dataclass
class Config:
    quick: bool
    bare_images: int  # images for the in-process embedder baseline (≤ 475)
    ingest_images: int  # images per measured pipeline phase (distinct ids, the icon set repeated)
    warm_images: int
    partitions: int
    k_clusters: int
    target_docs: int  # pipeline index padded with synthetic vectors up to this many documents
    fixed_rate: float
    fixed_duration_s: float
    sweep_rates: list[float]
    sweep_duration_s: float
    fresh_trials: int
    recall_queries: int
    scale_sizes: list[int]
    scale_latency_queries: int
    scale_recall_queries: int
    search_timeout_s: float = 5.0
    slo_p50_ms: float = 30.0
    slo_p99_ms: float = 100.0
    dataset: Path | None = None  # the image set (labels.json + images); None: the icons-v1 set

    @classmethod
    def make(cls, quick: bool) -> Config:
        if quick:
            return cls(True, 32, 32, 8, 2, 8, 1000, 20, 3, [20, 40], 2, 3, 20, [500, 2000], 30, 10)
        return cls(
            False, 475, 950, 32, 2, 16, 10_000, 20, 25,
            [10, 20, 30, 40, 50, 60, 80, 100, 130, 160, 200], 8, 20, 100, [1000, 10_000, 100_000], 200, 50,
        )  # fmt: skip


# ----------------------------------------------------------------------------------------- set-up
def isolated_env(engines: dict[str, str], tag: str, tmp: Path, image_root: Path, cfg: Config) -> dict[str, str]:
    return {
        **engines,
        "IMGSEARCH_TOPIC_PREFIX": tag,
        "IMGSEARCH_APP_PREFIX": tag,
        "IMGSEARCH_INDEX": f"{tag}-images",
        "IMGSEARCH_DATA": str(tmp / "data"),  # faust data dirs (not the engines')
        "IMGSEARCH_ALLOWED_URI_ROOTS": str(image_root),
        "IMGSEARCH_PARTITIONS": str(cfg.partitions),
        "IMGSEARCH_UNKNOWN_IMAGE_WAIT_S": "5",
        "IMGSEARCH_LOG_LEVEL": "WARNING",
    }


def load_images(rows: list[dict]) -> list[Any]:
    from PIL import Image

    out = []
    for r in rows:
        with Image.open(r["file"]) as im:
            out.append(im.convert("RGB"))
    return out


# ------------------------------------------------------------------------------ 1. bare embedder
def bench_bare(embedder: Any, style: Any, images: list[Any], batch: int = 16) -> tuple[dict, np.ndarray, np.ndarray]:
    embedder.embed_images(images[:batch])  # load + warm the sessions
    style.describe(images[:batch])
    t_embed = t_style = 0.0
    search, styl = [], []
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        t0 = time.perf_counter()
        search.append(embedder.embed_images(chunk))
        t1 = time.perf_counter()
        styl.append(style.describe(chunk))
        t_style += time.perf_counter() - t1
        t_embed += t1 - t0
    n = len(images)
    out = {
        "images": n,
        "batch": batch,
        "embedder": embedder.model_id,
        "style": style.model_id,
        "embed_ms_per_image": round(1000 * t_embed / n, 3),
        "style_ms_per_image": round(1000 * t_style / n, 3),
        "images_per_s": round(n / (t_embed + t_style), 2),
    }
    return out, np.vstack(search), np.vstack(styl)


def decode_cost_ms(rows: list[dict], max_bytes: int, max_pixels: int) -> float:
    from imgsearch.images import decode

    t0 = time.perf_counter()
    for r in rows:
        decode(Path(r["file"]).read_bytes(), max_bytes, max_pixels)
    return round(1000 * (time.perf_counter() - t0) / len(rows), 3)


# ------------------------------------------------------------------------------ pipeline helpers
class PhysicalIndex:
    """Raw access to the query worker's physical index (count, bulk, knn, exact, stats)."""

    def __init__(self, url: str, name: str) -> None:
        from opensearchpy import AsyncOpenSearch

        from imgsearch.connections import opensearch_kwargs

        self.name = name
        self.client = AsyncOpenSearch(hosts=[url], timeout=120, **opensearch_kwargs(url))

    async def close(self) -> None:
        await self.client.close()

    async def count(self, refresh: bool = True) -> int:
        try:
            if not await self.client.indices.exists(index=self.name):  # HEAD: a 404 is not logged
                return 0
            if refresh:
                await self.client.indices.refresh(index=self.name)
            return int((await self.client.count(index=self.name))["count"])
        except Exception:
            return 0


async def wait_count(idx: PhysicalIndex, target: int, timeout: float, workers: Any, poll: float = 0.2) -> float:
    """Seconds (monotonic clock) when at least ``target`` documents are searchable."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers.check_alive()
        if await idx.count() >= target:
            return time.perf_counter()
        await asyncio.sleep(poll)
    raise TimeoutError(f"index {idx.name} did not reach {target} documents in {timeout:.0f}s")


async def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """(state, members with a partition assignment) of a consumer group."""
    from aiokafka.admin import AIOKafkaAdminClient

    from imgsearch.connections import kafka_security

    admin = AIOKafkaAdminClient(**kafka_security(), bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resp = await admin.describe_consumer_groups([group])
        for r in resp:
            for g in r.groups:
                # (error_code, group_id, state, protocol_type, protocol, members[...])
                state, members = g[2], g[5]
                assigned = sum(1 for m in members if m[-1])
                return str(state), assigned
    finally:
        await admin.close()
    return "unknown", 0


async def wait_group(bootstrap: str, group: str, members: int, timeout: float, workers: Any) -> None:
    deadline = time.monotonic() + timeout
    last: tuple[str, int] = ("unknown", 0)
    while time.monotonic() < deadline:
        workers.check_alive()
        with contextlib.suppress(Exception):
            last = await group_members(bootstrap, group)
            if last[0] == "Stable" and last[1] >= members:
                return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"consumer group {group} not stable with {members} members in {timeout:.0f}s (last {last})")


async def publish_images(bootstrap: str, rows: list[dict], prefix: str, topics: Topics) -> int:
    from producers.publisher import EventPublisher
    from schemas.events import NewImage

    events = [
        NewImage(
            image_id=f"{prefix}/{r['image_id']}",
            source_uri=Path(r["file"]).resolve().as_uri(),
            metadata={"style": r["style"], "subject": r["subject"]},
        )
        for r in rows
    ]
    async with EventPublisher(bootstrap, topics=topics) as pub:
        return await pub.publish_images(events)


async def ingest_phase(
    settings: Any, idx: PhysicalIndex, rows: list[dict], n: int, prefix: str, workers: Any, warm: int
) -> dict:
    """Warm batch (not timed), then n images (the set repeated with distinct ids), timed from the
    first publish to all searchable."""
    base = await idx.count()
    await publish_images(settings.kafka_bootstrap, rows[:warm], f"{prefix}-warm", settings.topics)
    await wait_count(idx, base + warm, 300, workers)
    base += warm
    batch = [rows[i % len(rows)] for i in range(n)]
    reps = [f"{prefix}-r{i // len(rows)}" for i in range(n)]
    t0 = time.perf_counter()
    published = 0
    for rep in dict.fromkeys(reps):
        published += await publish_images(
            settings.kafka_bootstrap, [b for b, r in zip(batch, reps, strict=True) if r == rep], rep, settings.topics
        )
    t_pub = time.perf_counter()
    t_done = await wait_count(idx, base + n, 600, workers)
    dt = t_done - t0
    return {
        "images": n,
        "seconds": round(dt, 3),
        "publish_seconds": round(t_pub - t0, 3),
        "images_per_s": round(n / dt, 2),
    }


# ---------------------------------------------------------------------------- 3. search over Kafka
@dataclass
class Shot:
    target: float  # scheduled send time (perf_counter)
    latency_ms: float | None = None  # reply received - scheduled send time
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


async def one_search(client: Any, shot: Shot, user: str, text: str, timeout: float) -> None:
    from producers import SearchTimeout

    try:
        resp = await client.search(user, text, k=10, timeout_s=timeout, raise_on_error=False)
    except SearchTimeout:
        shot.error = "timeout"
        return
    except Exception as exc:
        shot.error = type(exc).__name__
        return
    shot.latency_ms = (time.perf_counter() - shot.target) * 1000
    if resp.error is not None:
        shot.error = resp.error.code
    shot.timings = dict(resp.timings_ms)


async def open_loop(client: Any, rate: float, duration: float, queries: list[str], timeout: float) -> list[Shot]:
    """Requests at a fixed offered rate, whatever the replies do (open loop: no coordinated omission;
    latency is measured from the scheduled send time)."""
    n = max(1, int(rate * duration))
    t0 = time.perf_counter() + 0.05
    shots, tasks = [], []
    for i in range(n):
        shot = Shot(target=t0 + i / rate)
        delay = shot.target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        shots.append(shot)
        tasks.append(
            asyncio.create_task(one_search(client, shot, f"load-u{i % 64}", queries[i % len(queries)], timeout))
        )
    await asyncio.gather(*tasks)
    return shots


def summarize(shots: list[Shot], rate: float, duration: float) -> dict:
    ok = [s for s in shots if s.error is None and s.latency_ms is not None]
    e2e = [s.latency_ms for s in ok]
    worker = [sum(s.timings.get(k, 0.0) for k in ("embed", "knn", "rank")) for s in ok]
    hops = [e - w for e, w in zip(e2e, worker, strict=True)]
    errors: dict[str, int] = {}
    for s in shots:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    last = max((s.target + (s.latency_ms or 0) / 1000 for s in ok), default=0.0)
    first = min((s.target for s in shots), default=0.0)
    span = max(last - first, duration)
    return {
        "offered_rate": rate,
        "requests": len(shots),
        "ok": len(ok),
        "errors": errors,
        "error_rate": round(1 - len(ok) / max(1, len(shots)), 4),
        "achieved_rate": round(len(ok) / span, 2) if ok else 0.0,
        "e2e_ms": stats(e2e),
        "embed_ms": stats(s.timings.get("embed", 0.0) for s in ok),
        "knn_ms": stats(s.timings.get("knn", 0.0) for s in ok),
        "rank_ms": stats(s.timings.get("rank", 0.0) for s in ok),
        "worker_ms": stats(worker),
        "kafka_hops_ms": stats(hops),
    }


async def wait_quiet(client: Any, text: str, timeout: float = 60) -> None:
    """Until the query worker answers a fresh request quickly again (its backlog is drained)."""
    from producers import SearchTimeout

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        with contextlib.suppress(SearchTimeout):
            r = await client.search("quiet-probe", text, k=10, timeout_s=5, raise_on_error=False)
            if r.error is None and time.perf_counter() - t0 < 0.2:
                return
        await asyncio.sleep(0.5)


# ------------------------------------------------------------------------------------ 4. freshness
async def freshness_trial(client: Any, pub: Any, user: str, text: str, timeout: float = 10.0) -> dict:
    from schemas.events import EventType, Interaction

    first = await client.search(user, text, k=20, timeout_s=5)
    target = next((h.image_id for h in first.hits if not h.image_id.startswith("syn/")), None)
    if target is None:
        return {"error": "no real image among the hits"}
    found: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def poll() -> None:
        with contextlib.suppress(Exception):
            r = await client.search(user, text, k=20, timeout_s=5, raise_on_error=False)
            reflects = r.personalized and any(d.endswith(f":{target}") for h in r.hits for d in h.drivers)
            if reflects and not found.done():
                found.set_result(time.perf_counter())

    t0 = time.perf_counter()
    await pub.publish_interaction(Interaction(user_id=user, image_id=target, event_type=EventType.FAVORITE))
    t_ack = time.perf_counter()
    polls = []
    while not found.done() and time.perf_counter() - t0 < timeout:
        polls.append(asyncio.create_task(poll()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(found), 0.02)
    await asyncio.gather(*polls)
    if not found.done():
        return {"error": f"not reflected within {timeout:.0f}s", "polls": len(polls)}
    return {
        "freshness_ms": round((found.result() - t0) * 1000, 2),
        "publish_ack_ms": round((t_ack - t0) * 1000, 2),
        "polls": len(polls),
        "image": target,
    }


# ------------------------------------------------------------------------------- 5/6. k-NN recall
def knn_body(vec: list[float], k: int, size: int = 10) -> dict:
    return {"size": size, "_source": False, "query": {"knn": {"embedding": {"vector": vec, "k": k}}}}


def exact_body(vec: list[float], size: int = 10) -> dict:
    return {
        "size": size,
        "_source": False,
        "query": {
            "script_score": {
                "query": {"match_all": {}},
                "script": {
                    "source": "knn_score",
                    "lang": "knn",
                    "params": {"field": "embedding", "query_value": vec, "space_type": "cosinesimil"},
                },
            }
        },
    }


async def recall_at_10(client: Any, index: str, queries: np.ndarray, ks: tuple[int, ...] = (10, 50)) -> dict:
    """Tie-aware recall@10 of the HNSW k-NN query (asking k candidates) against exact search:
    an approximate hit counts if its score is at least the 10th exact score (duplicated vectors
    make id sets ambiguous). On OpenSearch 2.19 both scores are (1 + cos) / 2 for a lucene
    cosinesimil field; ``score_scale_check_max_abs_diff`` (same top-1 document, both scores) checks it."""
    per_k: dict[int, list[float]] = {k: [] for k in ks}
    exact_ms, score_check = [], []
    for q in queries:
        vec = [round(float(x), 6) for x in q]
        t0 = time.perf_counter()
        ex = (await client.search(index=index, body=exact_body(vec)))["hits"]["hits"]
        exact_ms.append((time.perf_counter() - t0) * 1000)
        if len(ex) < 10:
            continue
        ex_scores = [float(h["_score"]) for h in ex]
        for k in ks:
            ann = (await client.search(index=index, body=knn_body(vec, k)))["hits"]["hits"]
            ann_scores = [float(h["_score"]) for h in ann[:10]]
            good = sum(1 for c in ann_scores if c >= ex_scores[9] - 1e-5)
            per_k[k].append(min(good, 10) / 10)
            if ann and ann[0]["_id"] == ex[0]["_id"]:
                score_check.append(abs(ann_scores[0] - ex_scores[0]))
    if score_check and max(score_check) > 1e-3:
        raise RuntimeError(f"k-NN and exact scores are on different scales (diff {max(score_check):.3f})")
    return {
        **{f"recall_at_10_k{k}": round(float(np.mean(v)), 4) if v else None for k, v in per_k.items()},
        "queries": len(per_k[ks[0]]),
        "exact_ms": stats(exact_ms),
        "score_scale_check_max_abs_diff": round(max(score_check), 6) if score_check else None,
    }


async def index_size(client: Any, index: str) -> dict:
    cat = await client.cat.indices(index=index, format="json", bytes="b")
    st = await client.indices.stats(index=index, metric="segments", include_segment_file_sizes=True)
    seg = st["indices"][index]["primaries"]["segments"]
    files = {k: v["size_in_bytes"] for k, v in seg.get("file_sizes", {}).items()}
    vector_files = {k: v for k, v in files.items() if k in ("vec", "vex", "vem", "veq", "vemf", "vemq")}
    docs = int(cat[0]["docs.count"])
    per10k = 10_000 / max(1, docs)
    return {
        "docs": docs,
        "store_bytes": int(cat[0]["store.size"]),
        "segments": seg["count"],
        "segments_memory_bytes": seg.get("memory_in_bytes"),
        "file_sizes_bytes": files,
        "store_mb_per_10k": round(int(cat[0]["store.size"]) * per10k / 2**20, 2),
        "hnsw_and_vectors_mb_per_10k": round(sum(vector_files.values()) * per10k / 2**20, 2),
        "raw_float32_mb_per_10k": None,
    }


async def bulk_vectors(
    client: Any, index: str, vectors: np.ndarray, make_source: Any, chunk: int = 500, id_prefix: str = "syn"
) -> dict:
    """Bulk-index vectors; serialization is not timed, the bulk requests and the final refresh are."""
    t_index = took = 0.0
    for start in range(0, len(vectors), chunk):
        lines = []
        for i in range(start, min(start + chunk, len(vectors))):
            lines.append(json.dumps({"index": {"_index": index, "_id": f"{id_prefix}/{i}"}}))
            lines.append(json.dumps(make_source(i, np.round(vectors[i], 5).tolist())))
        body = "\n".join(lines) + "\n"
        t0 = time.perf_counter()
        resp = await client.bulk(body=body)
        t_index += time.perf_counter() - t0
        took += resp.get("took", 0)
        if resp.get("errors"):
            err = next(it["index"]["error"] for it in resp["items"] if it["index"].get("error"))
            raise RuntimeError(f"bulk error: {err}")
    t0 = time.perf_counter()
    await client.indices.refresh(index=index)
    t_refresh = time.perf_counter() - t0
    n = len(vectors)
    total = t_index + t_refresh
    return {
        "docs": n,
        "bulk_seconds": round(t_index, 3),
        "refresh_seconds": round(t_refresh, 3),
        "server_took_seconds": round(took / 1000, 3),
        "docs_per_s": round(n / total, 1),
        "us_per_doc": round(1e6 * total / n, 1),
    }


async def knn_latency(client: Any, index: str, queries: np.ndarray, k: int = 50, source: bool = True) -> dict:
    """Direct k-NN queries to OpenSearch the way the query worker asks (k candidates, filtered _source);
    with ``source=False`` the cluster id comes from doc values instead (no _source parsing)."""
    wall, took = [], []
    for i, q in enumerate(queries):
        body: dict[str, Any] = {
            "size": k,
            "query": {"knn": {"embedding": {"vector": [round(float(x), 6) for x in q], "k": k}}},
        }
        if source:
            body["_source"] = ["image_id", "cluster_id", "metadata"]
        else:
            body["_source"] = False
            body["docvalue_fields"] = ["cluster_id"]
        t0 = time.perf_counter()
        resp = await client.search(index=index, body=body)
        if i >= 10:  # the first ones warm the caches
            wall.append((time.perf_counter() - t0) * 1000)
            took.append(float(resp["took"]))
    return {"k": k, "wall_ms": stats(wall), "server_took_ms": stats(took)}


# --------------------------------------------------------------------------------------- the run
async def run(cfg: Config) -> dict:
    from opensearchpy import AsyncOpenSearch

    from imgsearch.config import Settings
    from imgsearch.connections import opensearch_kwargs
    from imgsearch.datasets.icons import dataset_dir, load_labels
    from imgsearch.domain.centroids import CentroidModel
    from imgsearch.embedding.factory import make_embedder, make_style
    from imgsearch.index.opensearch import mapping, physical_name
    from imgsearch.kafka_admin import ensure_topics
    from imgsearch.runner import Workers, ensure_engines
    from producers import EventPublisher, SearchClient

    engines = ensure_engines()
    facts = machine_facts(engines["OPENSEARCH_URL"])
    say(f"engines {engines}; {facts['nproc']} CPUs, {facts['ram_gb']} GB RAM, load {facts['loadavg_at_start']}")
    images_root = cfg.dataset or dataset_dir()
    if not (images_root / "labels.json").exists():
        raise SystemExit(f"no image set at {images_root}: bash scripts/setup_data.sh --icons (or pass --dataset)")
    tag = f"bench{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    env = isolated_env(engines, tag, tmp, images_root, cfg)
    os.environ.update(env)
    settings = Settings()
    res: dict[str, Any] = {"mode": "quick" if cfg.quick else "full", "machine": facts, "config": asdict(cfg)}
    res["run"] = {"tag": tag, "worker_logs": str(tmp / "logs")}
    workers = Workers(tmp / "logs", env)
    os_client = AsyncOpenSearch(
        hosts=[settings.opensearch_url], timeout=300, **opensearch_kwargs(settings.opensearch_url)
    )
    created_indices: list[str] = []
    try:
        # ------------------------------------------------------------------ 1. bare embedder
        rows = load_labels(images_root)
        rng = random.Random(0)
        bare_rows = rng.sample(rows, min(cfg.bare_images, len(rows)))
        say(f"1. ingest: loading {len(bare_rows)} icon images, bare embedder baseline (batch 16) ...")
        embedder = make_embedder(settings)
        style = make_style(settings, embedder)
        bare, search_vecs, style_vecs = bench_bare(embedder, style, load_images(bare_rows))
        bare["decode_ms_per_image"] = decode_cost_ms(bare_rows, settings.max_image_bytes, settings.max_image_pixels)
        say(
            f"   bare: {bare['images_per_s']} images/s (embed {bare['embed_ms_per_image']} ms + style "
            f"{bare['style_ms_per_image']} ms per image; decode {bare['decode_ms_per_image']} ms)"
        )
        # the style clusters, published like `imgsearch clusters` does
        from imgsearch.clusters import fit
        from streams.centroids import publish_centroids

        await ensure_topics(settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions)
        centroids = fit(style_vecs, cfg.k_clusters, "style", style.model_id)
        await publish_centroids(settings.kafka_bootstrap, settings.topics, centroids)
        say(f"   centroids k={centroids.k} published; starting workers: embedder, interactions, query")
        for role in ("embedder", "interactions", "query"):
            workers.start(role)
        index_name = physical_name(settings.index_name, embedder.model_id)
        created_indices.append(index_name)
        idx = PhysicalIndex(settings.opensearch_url, index_name)
        from imgsearch.index.opensearch import model_slug

        group = f"{settings.app_id('embedder')}-{model_slug(embedder.model_id)}"
        await wait_group(settings.kafka_bootstrap, group, 1, 180, workers)
        say(f"   1 embedder: {cfg.ingest_images} images through the pipeline ...")
        one = await ingest_phase(settings, idx, rows, cfg.ingest_images, "p1", workers, cfg.warm_images)
        say(f"   1 embedder: {one['images_per_s']} images/s ({one['seconds']} s)")
        workers.start("embedder")
        await wait_group(settings.kafka_bootstrap, group, 2, 180, workers)
        say(f"   2 embedders: {cfg.ingest_images} images through the pipeline ...")
        two = await ingest_phase(settings, idx, rows, cfg.ingest_images, "p2", workers, cfg.warm_images)
        say(f"   2 embedders: {two['images_per_s']} images/s ({two['seconds']} s)")
        for wp in [p for p in workers.procs if p.role == "embedder"]:
            workers.stop(wp)  # ingest is over: give the CPUs back
        workers.procs = [p for p in workers.procs if p.alive()]
        # the machine is shared: the baseline again after the pipeline phases, and their mean is the reference
        bare_after, _, _ = bench_bare(embedder, style, load_images(bare_rows))
        bare["images_per_s_before"] = bare["images_per_s"]
        bare["images_per_s_after"] = bare_after["images_per_s"]
        bare["images_per_s"] = round((bare["images_per_s_before"] + bare_after["images_per_s"]) / 2, 2)
        say(f"   bare again: {bare_after['images_per_s']} images/s; reference (mean) {bare['images_per_s']} images/s")
        res["ingest"] = {
            "bare": bare,
            "pipeline_1_embedder": one,
            "pipeline_2_embedders": two,
            "ratio_pipeline_1_to_bare": round(one["images_per_s"] / bare["images_per_s"], 3),
            "ratio_pipeline_2_to_bare": round(two["images_per_s"] / bare["images_per_s"], 3),
            "speedup_2_vs_1_embedders": round(two["images_per_s"] / one["images_per_s"], 3),
            "target_ratio": 0.9,
        }
        # ------------------------------------------------------------------ 2. assignment cost
        say("2. nearest-centroid assignment cost ...")
        assign: dict[str, Any] = {}
        nrng = np.random.default_rng(1)
        for d in (96, 384):
            c = nrng.standard_normal((100, d)).astype(np.float32)
            c /= np.linalg.norm(c, axis=1, keepdims=True)
            model = CentroidModel("bench", "style", "bench", c)
            for batch in (16, 1000):
                v = nrng.standard_normal((batch, d)).astype(np.float32)
                reps = 2000 if batch == 16 else 100
                model.assign(v)
                t0 = time.perf_counter()
                for _ in range(reps):
                    model.assign(v)
                us = 1e6 * (time.perf_counter() - t0) / (reps * batch)
                assign[f"k100_d{d}_batch{batch}_us_per_image"] = round(us, 3)
        embed_us = 1000 * (bare["embed_ms_per_image"] + bare["style_ms_per_image"])
        assign["embedding_us_per_image"] = round(embed_us, 1)
        assign["assignment_share_of_embedding"] = round(assign["k100_d384_batch16_us_per_image"] / embed_us, 6)
        res["assignment"] = assign
        say(
            f"   k=100 d=384 batch 16: {assign['k100_d384_batch16_us_per_image']} µs/image vs embedding "
            f"{embed_us / 1000:.1f} ms/image ({100 * assign['assignment_share_of_embedding']:.4f} %)"
        )

        # ------------------------------------------------------------------ 3. search latency
        real = await idx.count()
        pad = max(0, cfg.target_docs - real)
        say(f"3. search: padding the index from {real} to {real + pad} documents with synthetic vectors ...")
        syn, _ = clustered_unit_vectors(pad, embedder.dimension, seed=2)
        now = datetime.now(UTC).isoformat()
        crng = np.random.default_rng(3)
        cids = crng.integers(0, centroids.k, size=max(1, pad))

        def syn_source(i: int, vec: list[float]) -> dict:
            return {
                "image_id": f"syn/{i}", "embedding": vec, "style": None, "style_model_id": style.model_id,
                "cluster_id": int(cids[i]), "model_id": embedder.model_id, "centroid_version": centroids.version,
                "source_uri": None, "metadata": {"synthetic": "1"}, "indexed_at": now,
            }  # fmt: skip

        if pad:
            await bulk_vectors(os_client, index_name, syn, syn_source)
        docs = await idx.count()
        # icons-v1 rows name their subject's query; a styles set's rows their own text
        queries = sorted({str(r.get("query") or r["text"]) for r in rows})
        search: dict[str, Any] = {
            "indexed_docs": docs, "real_docs": real, "query_texts": len(queries), "dimension": embedder.dimension,
        }  # fmt: skip
        async with SearchClient(settings.kafka_bootstrap, topics=settings.topics) as client:
            from producers import SearchTimeout

            deadline = time.monotonic() + 120
            while True:
                try:
                    await client.search("warmup", queries[0], timeout_s=5)
                    break
                except SearchTimeout:
                    workers.check_alive()
                    if time.monotonic() > deadline:
                        raise
            await open_loop(client, 10, 3 if cfg.quick else 6, queries, cfg.search_timeout_s)  # warm-up
            await wait_quiet(client, queries[0])
            say("   unloaded latency: one request at a time (closed loop) ...")
            seq = []
            for i in range(10 if cfg.quick else 50):
                shot = Shot(target=time.perf_counter())
                await one_search(client, shot, f"seq-u{i % 8}", queries[i % len(queries)], cfg.search_timeout_s)
                seq.append(shot)
            search["unloaded"] = summarize(seq, 0, 0)
            u = search["unloaded"]
            say(
                f"   unloaded e2e p50 {u['e2e_ms']['p50']} ms (embed {u['embed_ms']['p50']}, knn {u['knn_ms']['p50']}, "
                f"rank {u['rank_ms']['p50']}, kafka hops {u['kafka_hops_ms']['p50']})"
            )
            say(f"   {docs} docs; fixed rate {cfg.fixed_rate}/s for {cfg.fixed_duration_s}s (open loop) ...")
            shots = await open_loop(client, cfg.fixed_rate, cfg.fixed_duration_s, queries, cfg.search_timeout_s)
            fixed = summarize(shots, cfg.fixed_rate, cfg.fixed_duration_s)
            fixed["cdf_e2e_ms"] = sorted(round(s.latency_ms, 2) for s in shots if s.latency_ms and not s.error)
            fixed["cdf_worker_ms"] = sorted(
                round(sum(s.timings.values()), 2) for s in shots if s.latency_ms and not s.error
            )
            search["fixed_rate"] = fixed
            e = fixed["e2e_ms"]
            say(
                f"   e2e p50 {e['p50']} p95 {e['p95']} p99 {e['p99']} ms; embed p50 {fixed['embed_ms']['p50']}, "
                f"knn p50 {fixed['knn_ms']['p50']}, rank p50 {fixed['rank_ms']['p50']}, kafka hops p50 "
                f"{fixed['kafka_hops_ms']['p50']} ms; errors {fixed['errors']}"
            )
            sweep = []
            for rate in cfg.sweep_rates:
                await wait_quiet(client, queries[0])
                s = summarize(
                    await open_loop(client, rate, cfg.sweep_duration_s, queries, cfg.search_timeout_s),
                    rate,
                    cfg.sweep_duration_s,
                )
                s["meets_slo"] = bool(
                    s["error_rate"] <= 0.01 and s["e2e_ms"]["p99"] is not None and s["e2e_ms"]["p99"] <= cfg.slo_p99_ms
                )
                s["sustained"] = bool(
                    s["error_rate"] <= 0.01
                    and s["e2e_ms"]["p99"] is not None
                    and s["e2e_ms"]["p99"] <= 1000
                    and s["achieved_rate"] >= 0.9 * rate
                )
                sweep.append(s)
                say(
                    f"   offered {rate}/s: achieved {s['achieved_rate']}/s, p50 {s['e2e_ms']['p50']} p99 "
                    f"{s['e2e_ms']['p99']} ms, errors {s['error_rate']:.1%}"
                )
                if not s["sustained"]:
                    break
            search["sweep"] = sweep
            search["max_rate_meeting_p99_slo"] = max((s["offered_rate"] for s in sweep if s["meets_slo"]), default=0)
            search["max_sustainable_rate"] = max((s["offered_rate"] for s in sweep if s["sustained"]), default=0)
            search["sustainable_definition"] = (
                "highest offered rate with errors ≤ 1 %, p99 ≤ 1 s and achieved ≥ 90 % of offered"
            )
            res["search"] = search
            say(
                f"   max sustainable {search['max_sustainable_rate']}/s; meeting p99 ≤ {cfg.slo_p99_ms:g} ms up to "
                f"{search['max_rate_meeting_p99_slo']}/s"
            )

            # -------------------------------------------------------------- 4. freshness
            await wait_quiet(client, queries[0])
            say(f"4. freshness: {cfg.fresh_trials} trials (interaction → first reply reflecting it) ...")
            trials = []
            async with EventPublisher(settings.kafka_bootstrap, topics=settings.topics) as pub:
                for t in range(cfg.fresh_trials):
                    trials.append(await freshness_trial(client, pub, f"fresh-{t}", queries[t % len(queries)]))
            ok = [t["freshness_ms"] for t in trials if "freshness_ms" in t]
            res["freshness"] = {
                "trials": len(trials),
                "ok": len(ok),
                "freshness_ms": stats(ok),
                "publish_ack_ms": stats(t["publish_ack_ms"] for t in trials if "publish_ack_ms" in t),
                "poll_interval_ms": 20,
                "failures": [t for t in trials if "freshness_ms" not in t],
                "target_p99_ms": 1000,
            }
            f = res["freshness"]["freshness_ms"]
            say(f"   freshness p50 {f['p50']} p99 {f['p99']} ms ({len(ok)}/{len(trials)} ok)")

        # ------------------------------------------------------------------ 5. recall + memory
        say(f"5. recall@10: {cfg.recall_queries} queries on the {docs}-doc index vs exact script_score ...")
        third = cfg.recall_queries // 3
        n_text = min(third, len(queries))  # every distinct subject query text, at most a third
        n_img = (cfg.recall_queries - n_text) // 2
        text_q = embedder.embed_texts(queries[:n_text]) if n_text else np.zeros((0, embedder.dimension), np.float32)
        qrng = np.random.default_rng(4)
        img_q = search_vecs[qrng.integers(0, len(search_vecs), size=n_img)]
        img_q = img_q + qrng.standard_normal(img_q.shape).astype(np.float32) * (0.3 / np.sqrt(embedder.dimension))
        img_q /= np.linalg.norm(img_q, axis=1, keepdims=True)
        n_syn = cfg.recall_queries - n_text - n_img
        syn_q, _ = clustered_unit_vectors(n_syn, embedder.dimension, seed=5)
        if pad:  # queries from the same mixture as the padding vectors
            _, centers = clustered_unit_vectors(1, embedder.dimension, seed=2)
            syn_q, _ = clustered_unit_vectors(n_syn, embedder.dimension, centers=centers, seed=5)
        recall = {
            "text_queries": await recall_at_10(os_client, index_name, np.asarray(text_q)),
            "image_queries_with_noise": await recall_at_10(os_client, index_name, img_q),
            "synthetic_mixture_queries": await recall_at_10(os_client, index_name, syn_q),
        }
        allq = np.vstack([np.asarray(text_q), img_q, syn_q])
        recall["all"] = await recall_at_10(os_client, index_name, allq)
        size = await index_size(os_client, index_name)
        size["raw_float32_mb_per_10k"] = round(10_000 * embedder.dimension * 4 / 2**20, 2)
        res["recall"] = {**recall, "target": 0.98, "index_size": size}
        say(
            f"   recall@10 (k=50, as the worker asks) {recall['all']['recall_at_10_k50']}, (k=10) "
            f"{recall['all']['recall_at_10_k10']}; store {size['store_mb_per_10k']} MB / 10k docs, "
            f"HNSW+vectors {size['hnsw_and_vectors_mb_per_10k']} MB / 10k"
        )
        await idx.close()

        # ------------------------------------------------------------------ 6. scale
        scale = []
        for n in cfg.scale_sizes:
            name = f"{tag}-scale-{n}"
            created_indices.append(name)
            say(f"6. scale: {n} synthetic vectors (d={embedder.dimension}) → {name} ...")
            await os_client.indices.create(index=name, body=mapping(embedder.dimension, "bench-synthetic"))
            vecs, centers = clustered_unit_vectors(n, embedder.dimension, seed=10)
            cl = np.random.default_rng(11).integers(0, 100, size=n)

            def scale_source(i: int, vec: list[float], cl: np.ndarray = cl) -> dict:
                return {"image_id": f"s/{i}", "embedding": vec, "cluster_id": int(cl[i]), "model_id": "bench-synthetic"}

            ing = await bulk_vectors(os_client, name, vecs, scale_source, id_prefix="s")
            q, _ = clustered_unit_vectors(cfg.scale_latency_queries + 10, embedder.dimension, centers=centers, seed=12)
            lat = await knn_latency(os_client, name, q)
            lat_dv = await knn_latency(os_client, name, q, source=False)
            rec = await recall_at_10(os_client, name, q[: cfg.scale_recall_queries])
            sz = await index_size(os_client, name)
            scale.append(
                {"vectors": n, "ingest": ing, "knn": lat, "knn_docvalues": lat_dv, "recall": rec, "index_size": sz}
            )
            say(
                f"   ingest {ing['docs_per_s']} docs/s ({ing['us_per_doc']} µs/doc); knn(k=50) p50 "
                f"{lat['wall_ms']['p50']} p95 {lat['wall_ms']['p95']} ms (doc values instead of _source: p50 "
                f"{lat_dv['wall_ms']['p50']}); recall@10 k50 {rec['recall_at_10_k50']} "
                f"k10 {rec['recall_at_10_k10']}; {sz['store_bytes'] / 2**20:.1f} MB on disk, {sz['segments']} segments"
            )
            with contextlib.suppress(Exception):
                await os_client.indices.delete(index=name)
        res["scale"] = scale
    finally:
        say("cleaning up: workers, indices, topics ...")
        workers.stop_all()
        with contextlib.suppress(Exception):
            from imgsearch.index.opensearch import OpenSearchIndex

            alias = OpenSearchIndex(settings.opensearch_url, settings.index_name)
            await alias.delete_index()
            await alias.close()
        for name in created_indices:
            with contextlib.suppress(Exception):
                await os_client.indices.delete(index=name)
        await os_client.close()
        with contextlib.suppress(Exception):
            await delete_prefixed_topics(settings.kafka_bootstrap, tag)
        shutil.rmtree(tmp / "data", ignore_errors=True)
    res["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    res["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return res


async def delete_prefixed_topics(bootstrap: str, tag: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from imgsearch.connections import kafka_security
    from imgsearch.kafka_admin import delete_topics

    admin = AIOKafkaAdminClient(**kafka_security(), bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tag)]
    finally:
        await admin.close()
    await delete_topics(bootstrap, names)


# ----------------------------------------------------------------------------------- reporting
def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "MISSED")


def markdown(res: dict) -> str:
    m, cfg = res["machine"], res["config"]
    ing, asg, se, fr, rc = res["ingest"], res["assignment"], res["search"], res["freshness"], res["recall"]
    fx = se["fixed_rate"]
    lines = [
        f"# Speed benchmark ({res['mode']} run)",
        "",
        f"{m['nproc']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM, load average at start {m['loadavg_at_start']}, at end "
        f"{m.get('loadavg_at_end')}; "
        f"Python {m['python']}, Kafka {m['kafka']}, OpenSearch {m['opensearch']} (k-NN, lucene HNSW m=16 "
        f"ef_construction=128), onnxruntime {m['packages']['onnxruntime']}, faust-streaming "
        f"{m['packages']['faust-streaming']}; commit {m['git_commit']}, {m['started_at']}. Kafka, OpenSearch, the "
        "workers and the load generator all share these CPUs.",
        "",
        "| what | measured | target |",
        "|---|---|---|",
        f"| bare embedder (ConSE + style, batch {ing['bare']['batch']}, in-process), mean of before / after "
        f"the pipeline runs | {ing['bare']['images_per_s']} images/s ({ing['bare']['images_per_s_before']} / "
        f"{ing['bare']['images_per_s_after']}) | |",
        f"| pipeline, 1 embedding worker (publish → searchable) | {ing['pipeline_1_embedder']['images_per_s']} "
        f"images/s = **{ing['ratio_pipeline_1_to_bare']}×** bare | ≥ 0.9× "
        f"({verdict(ing['ratio_pipeline_1_to_bare'] >= 0.9)}) |",
        f"| pipeline, 2 embedding workers | {ing['pipeline_2_embedders']['images_per_s']} images/s = "
        f"{ing['speedup_2_vs_1_embedders']}× one worker | |",
        f"| images per measured phase; bare decode cost | {ing['pipeline_1_embedder']['images']}; "
        f"{ing['bare']['decode_ms_per_image']} ms/image | |",
        f"| nearest-centroid assignment k=100, d=96 / d=384 (batch 16) | {asg['k100_d96_batch16_us_per_image']} / "
        f"{asg['k100_d384_batch16_us_per_image']} µs per image = {100 * asg['assignment_share_of_embedding']:.3f} % "
        f"of embedding ({asg['embedding_us_per_image'] / 1000:.1f} ms) | negligible "
        f"({verdict(asg['assignment_share_of_embedding'] < 0.01)}) |",
        f"| search e2e over Kafka at {fx['offered_rate']:g} req/s, {se['indexed_docs']} docs: p50 / p95 / p99 | "
        f"{fx['e2e_ms']['p50']} / {fx['e2e_ms']['p95']} / {fx['e2e_ms']['p99']} ms | p50 ≤ {cfg['slo_p50_ms']:g} "
        f"({verdict(fx['e2e_ms']['p50'] is not None and fx['e2e_ms']['p50'] <= cfg['slo_p50_ms'])}), p99 ≤ "
        f"{cfg['slo_p99_ms']:g} "
        f"({verdict(fx['e2e_ms']['p99'] is not None and fx['e2e_ms']['p99'] <= cfg['slo_p99_ms'])}) |",
        f"| — of which embed / knn / rank (p50) | {fx['embed_ms']['p50']} / {fx['knn_ms']['p50']} / "
        f"{fx['rank_ms']['p50']} ms | |",
        f"| — of which Kafka hops + client (e2e − worker time), p50 / p99 | {fx['kafka_hops_ms']['p50']} / "
        f"{fx['kafka_hops_ms']['p99']} ms | |",
        f"| unloaded search (one at a time): e2e p50 / p99; embed / knn / hops p50 | "
        f"{se['unloaded']['e2e_ms']['p50']} / {se['unloaded']['e2e_ms']['p99']} ms; "
        f"{se['unloaded']['embed_ms']['p50']} / "
        f"{se['unloaded']['knn_ms']['p50']} / {se['unloaded']['kafka_hops_ms']['p50']} ms | |",
        f"| max sustainable search rate (one query worker) | {se['max_sustainable_rate']:g} req/s "
        f"(p99 ≤ {cfg['slo_p99_ms']:g} ms up to {se['max_rate_meeting_p99_slo']:g} req/s) | |",
        f"| freshness: interaction → reflecting reply, p50 / p99 ({fr['ok']}/{fr['trials']} trials) | "
        f"{fr['freshness_ms']['p50']} / {fr['freshness_ms']['p99']} ms | p99 ≤ 1000 "
        f"({verdict(fr['freshness_ms']['p99'] is not None and fr['freshness_ms']['p99'] <= 1000)}) |",
        f"| k-NN recall@10, HNSW (k=50 as the worker asks / k=10) vs exact, {rc['all']['queries']} queries | "
        f"{rc['all']['recall_at_10_k50']} / {rc['all']['recall_at_10_k10']} | ≥ 0.98 "
        f"({verdict(rc['all']['recall_at_10_k50'] is not None and rc['all']['recall_at_10_k50'] >= 0.98)}) |",
        f"| index size per 10k vectors (d={se['dimension']}): store (`_cat/indices`) / "
        f"HNSW graph + vectors (.vec/.vex/.vem) / raw float32 | {rc['index_size']['store_mb_per_10k']} / "
        f"{rc['index_size']['hnsw_and_vectors_mb_per_10k']} / {rc['index_size']['raw_float32_mb_per_10k']} MB | |",
        "",
        "## Search latency vs offered rate (open loop, one query worker)",
        "",
        "| offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | errors | embed p50 | knn p50 | hops p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in se["sweep"]:
        lines.append(
            f"| {s['offered_rate']:g} | {s['achieved_rate']} | {s['e2e_ms']['p50']} | {s['e2e_ms']['p95']} | "
            f"{s['e2e_ms']['p99']} | {s['error_rate']:.1%} | {s['embed_ms']['p50']} | {s['knn_ms']['p50']} | "
            f"{s['kafka_hops_ms']['p50']} |"
        )
    lines += [
        "",
        "## Recall@10 by query kind (tie-aware, vs exact `script_score` / `knn_score`, cosinesimil)",
        "",
        "| queries | n | recall@10 (k=50) | recall@10 (k=10) | exact search p50 ms |",
        "|---|---|---|---|---|",
    ]
    for kind in ("text_queries", "image_queries_with_noise", "synthetic_mixture_queries", "all"):
        r = rc[kind]
        lines.append(
            f"| {kind} | {r['queries']} | {r['recall_at_10_k50']} | {r['recall_at_10_k10']} | {r['exact_ms']['p50']} |"
        )
    lines += [
        "",
        "## Scale (synthetic clustered unit vectors, bulk-loaded, direct k-NN queries to OpenSearch)",
        "",
        "| vectors | bulk ingest docs/s | µs/doc | k-NN (k=50, _source as the worker) p50 / p95 ms "
        "| server took p50 ms | k-NN with doc values p50 ms | recall@10 k=50 / k=10 | store MB | segments |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in res["scale"]:
        lines.append(
            f"| {s['vectors']} | {s['ingest']['docs_per_s']} | {s['ingest']['us_per_doc']} | "
            f"{s['knn']['wall_ms']['p50']} / {s['knn']['wall_ms']['p95']} | {s['knn']['server_took_ms']['p50']} | "
            f"{s['knn_docvalues']['wall_ms']['p50']} | "
            f"{s['recall']['recall_at_10_k50']} / {s['recall']['recall_at_10_k10']} | "
            f"{s['index_size']['store_bytes'] / 2**20:.1f} | {s['index_size']['segments']} |"
        )
    lines += [
        "",
        "Definitions: latency is measured from the *scheduled* send time (open loop); 'Kafka hops' is e2e minus the "
        "worker's embed + knn + rank (so it includes both Kafka round trips, (de)serialisation, the worker's queueing "
        "and the client). Freshness is from the start of publishing the interaction to the receipt of the first "
        "reply (searches every 20 ms) whose `personalized` is true and whose hits' `drivers` name the image. Recall "
        "counts an approximate hit as correct if its score ((1 + cos) / 2 in both) is ≥ the 10th exact "
        "score (repeated images have identical vectors). "
        "Index size: `_cat/indices` store.size (on disk, includes _source) and the Lucene vector files from "
        "`_stats/segments?include_segment_file_sizes` (what must stay in the page cache for fast k-NN; "
        "`segments.memory_in_bytes` is "
        f"{rc['index_size']['segments_memory_bytes']} — Lucene 9 keeps these off-heap).",
    ]
    return "\n".join(lines) + "\n"


def plots(res: dict, out_dir: Path, prefix: str = "bench-") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fx = res["search"]["fixed_rate"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for key, label in (("cdf_e2e_ms", "end to end (client)"), ("cdf_worker_ms", "worker: embed + knn + rank")):
        xs = fx[key]
        if xs:
            ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs), label=label)
    ax.axvline(res["config"]["slo_p99_ms"], color="grey", ls=":", label="p99 target")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"Search over Kafka at {fx['offered_rate']:g} req/s, {res['search']['indexed_docs']} docs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}latency-cdf.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    sw = res["search"]["sweep"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    rates = [s["offered_rate"] for s in sw]
    for p in ("p50", "p95", "p99"):
        ax.plot(rates, [s["e2e_ms"][p] for s in sw], marker="o", label=f"e2e {p}")
    ax.axhline(res["config"]["slo_p99_ms"], color="grey", ls=":", label="p99 target")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (req/s, open loop)")
    ax.set_ylabel("latency (ms)")
    ax2 = ax.twinx()
    ax2.plot(rates, [s["achieved_rate"] for s in sw], color="black", ls="--", marker="x", label="achieved req/s")
    ax2.set_ylabel("achieved rate (req/s)")
    ax.set_title("Search latency vs offered rate (one query worker)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}latency-vs-rate.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    sc = res["scale"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    ns = [s["vectors"] for s in sc]
    axes[0].plot(ns, [s["knn"]["wall_ms"]["p50"] for s in sc], marker="o", label="p50")
    axes[0].plot(ns, [s["knn"]["wall_ms"]["p95"] for s in sc], marker="o", label="p95")
    axes[0].set_ylabel("k-NN latency (ms, k=50)")
    axes[0].legend()
    axes[1].plot(ns, [s["recall"]["recall_at_10_k50"] for s in sc], marker="o", label="k=50")
    axes[1].plot(ns, [s["recall"]["recall_at_10_k10"] for s in sc], marker="o", label="k=10")
    axes[1].axhline(0.98, color="grey", ls=":", label="target")
    axes[1].set_ylabel("recall@10 vs exact")
    axes[1].legend()
    axes[2].plot(ns, [s["ingest"]["us_per_doc"] for s in sc], marker="o")
    axes[2].set_ylabel("bulk ingest (µs per vector)")
    for a in axes:
        a.set_xscale("log")
        a.set_xlabel("indexed vectors")
        a.grid(alpha=0.3)
    fig.suptitle(f"OpenSearch k-NN (lucene HNSW) vs index size, d={res['search']['dimension']}")
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}scale.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small version of every section (seconds to a minute)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench-results/speed[-quick].json)")
    ap.add_argument(
        "--dataset", type=Path, default=None, help="an image set with labels.json (default: the icons-v1 set)"
    )
    ap.add_argument("--no-docs-img", action="store_true", help="do not copy the plots to docs/img/")
    args = ap.parse_args()
    cfg = Config.make(args.quick)
    cfg.dataset = args.dataset
    out = args.out or REPO / "bench-results" / ("speed-quick.json" if args.quick else "speed.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    res = asyncio.run(run(cfg))
    out.write_text(json.dumps(res, indent=2, default=str))
    md = out.with_suffix(".md")
    md.write_text(markdown(res))
    pngs = plots(res, out.parent, "quick-bench-" if args.quick else "bench-")
    if not args.quick and not args.no_docs_img:
        for p in pngs:
            shutil.copy(p, REPO / "docs" / "img" / p.name)
    say(f"wrote {out}, {md}, {', '.join(str(p) for p in pngs)}")
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
