"""Speed benchmark sections 1 and 2: ingest (the bare embedder in-process vs the pipeline with one
and two embedding workers) and the nearest-centroid assignment cost."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import say
from bench.speed_env import PhysicalIndex, Run, wait_count, wait_group
from consumers.runner import Workers
from imgsearch.config import Settings


def load_images(rows: list[dict]) -> list[Any]:
    from PIL import Image

    out = []
    for r in rows:
        with Image.open(r["file"]) as im:
            out.append(im.convert("RGB"))
    return out


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


async def publish_images(settings: Settings, rows: list[dict], prefix: str) -> int:
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
    async with EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub:
        return await pub.publish_images(events)


async def ingest_phase(
    settings: Settings, idx: PhysicalIndex, rows: list[dict], n: int, prefix: str, workers: Workers, warm: int
) -> dict:
    """Warm batch (not timed), then n images (the set repeated with distinct ids), timed from the
    first publish to all searchable."""
    base = await idx.count()
    await publish_images(settings, rows[:warm], f"{prefix}-warm")
    await wait_count(idx, base + warm, 300, workers)
    base += warm
    batch = [rows[i % len(rows)] for i in range(n)]
    reps = [f"{prefix}-r{i // len(rows)}" for i in range(n)]
    t0 = time.perf_counter()
    published = 0
    for rep in dict.fromkeys(reps):
        published += await publish_images(settings, [b for b, r in zip(batch, reps, strict=True) if r == rep], rep)
    t_pub = time.perf_counter()
    t_done = await wait_count(idx, base + n, 600, workers)
    dt = t_done - t0
    return {
        "images": n,
        "seconds": round(dt, 3),
        "publish_seconds": round(t_pub - t0, 3),
        "images_per_s": round(n / dt, 2),
    }


def stop_embedders(workers: Workers) -> None:
    for wp in [p for p in workers.procs if p.role == "embedder"]:
        workers.stop(wp)
    workers.procs = [p for p in workers.procs if p.alive()]


# ------------------------------------------------------------------------------------ the stages
async def ingest(run: Run) -> None:
    """1. The bare embedder, the style clusters published, the workers started, the pipeline with
    one and then two embedding workers, and the bare embedder again."""
    from imgsearch.datasets.icons import load_labels
    from imgsearch.embedding.factory import make_embedder, make_style
    from imgsearch.index.opensearch import model_slug, physical_name
    from imgsearch.kafka.admin import ensure_topics
    from imgsearch.kafka.model_topics import publish_centroids
    from jobs.clusters import fit

    cfg, settings, workers = run.cfg, run.settings, run.workers
    rows = run.rows = load_labels(run.images_root)
    rng = random.Random(0)
    bare_rows = rng.sample(rows, min(cfg.bare_images, len(rows)))
    say(f"1. ingest: loading {len(bare_rows)} icon images, bare embedder baseline (batch 16) ...")
    embedder = run.embedder = make_embedder(settings)
    style = run.style = make_style(settings, embedder)
    bare, run.search_vecs, style_vecs = bench_bare(embedder, style, load_images(bare_rows))
    bare["decode_ms_per_image"] = decode_cost_ms(bare_rows, settings.max_image_bytes, settings.max_image_pixels)
    say(
        f"   bare: {bare['images_per_s']} images/s (embed {bare['embed_ms_per_image']} ms + style "
        f"{bare['style_ms_per_image']} ms per image; decode {bare['decode_ms_per_image']} ms)"
    )
    # the style clusters, published like `imgsearch clusters` does
    await ensure_topics(settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions, settings=settings)
    centroids = run.centroids = fit(style_vecs, cfg.k_clusters, "style", style.model_id)
    await publish_centroids(settings, centroids)
    say(f"   centroids k={centroids.k} published; starting workers: embedder, interactions, query")
    for role in ("embedder", "interactions", "query"):
        workers.start(role)
    run.index_name = physical_name(settings.index_name, embedder.model_id)
    run.created_indices.append(run.index_name)
    idx = run.idx = PhysicalIndex(settings, run.index_name)
    group = f"{settings.app_id('embedder')}-{model_slug(embedder.model_id)}"
    await wait_group(settings, group, 1, 180, workers)
    say(f"   1 embedder: {cfg.ingest_images} images through the pipeline ...")
    one = await ingest_phase(settings, idx, rows, cfg.ingest_images, "p1", workers, cfg.warm_images)
    say(f"   1 embedder: {one['images_per_s']} images/s ({one['seconds']} s)")
    workers.start("embedder")
    await wait_group(settings, group, 2, 180, workers)
    say(f"   2 embedders: {cfg.ingest_images} images through the pipeline ...")
    two = await ingest_phase(settings, idx, rows, cfg.ingest_images, "p2", workers, cfg.warm_images)
    say(f"   2 embedders: {two['images_per_s']} images/s ({two['seconds']} s)")
    # issue 16: the same two workers with the cores shared out (IMGSEARCH_EMBED_THREADS = cores / 2)
    stop_embedders(workers)
    threads = max(1, (os.cpu_count() or 1) // 2)
    for _ in range(2):
        workers.start("embedder", {"IMGSEARCH_EMBED_THREADS": str(threads)})
    await wait_group(settings, group, 2, 180, workers)
    say(f"   2 embedders, {threads} ONNX thread(s) each: {cfg.ingest_images} images through the pipeline ...")
    shared = await ingest_phase(settings, idx, rows, cfg.ingest_images, "p3", workers, cfg.warm_images)
    shared["threads_per_worker"] = threads
    say(f"   2 embedders, {threads} thread(s) each: {shared['images_per_s']} images/s ({shared['seconds']} s)")
    stop_embedders(workers)  # ingest is over: give the CPUs back
    # the machine is shared: the baseline again after the pipeline phases, and their mean is the reference
    bare_after, _, _ = bench_bare(embedder, style, load_images(bare_rows))
    bare["images_per_s_before"] = bare["images_per_s"]
    bare["images_per_s_after"] = bare_after["images_per_s"]
    bare["images_per_s"] = round((bare["images_per_s_before"] + bare_after["images_per_s"]) / 2, 2)
    say(f"   bare again: {bare_after['images_per_s']} images/s; reference (mean) {bare['images_per_s']} images/s")
    run.res["ingest"] = {
        "bare": bare,
        "pipeline_1_embedder": one,
        "pipeline_2_embedders": two,
        "ratio_pipeline_1_to_bare": round(one["images_per_s"] / bare["images_per_s"], 3),
        "ratio_pipeline_2_to_bare": round(two["images_per_s"] / bare["images_per_s"], 3),
        "speedup_2_vs_1_embedders": round(two["images_per_s"] / one["images_per_s"], 3),
        "pipeline_2_embedders_shared_threads": shared,
        "speedup_2_shared_vs_1_embedders": round(shared["images_per_s"] / one["images_per_s"], 3),
        "target_ratio": 0.9,
    }


async def assignment(run: Run) -> None:
    """2. Nearest-centroid assignment cost per image vs the embedding cost per image."""
    from imgsearch.domain.centroids import CentroidModel

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
    bare = run.res["ingest"]["bare"]
    embed_us = 1000 * (bare["embed_ms_per_image"] + bare["style_ms_per_image"])
    assign["embedding_us_per_image"] = round(embed_us, 1)
    assign["assignment_share_of_embedding"] = round(assign["k100_d384_batch16_us_per_image"] / embed_us, 6)
    run.res["assignment"] = assign
    say(
        f"   k=100 d=384 batch 16: {assign['k100_d384_batch16_us_per_image']} µs/image vs embedding "
        f"{embed_us / 1000:.1f} ms/image ({100 * assign['assignment_share_of_embedding']:.4f} %)"
    )
