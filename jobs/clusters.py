"""Training a centroid model (K-Means) and publishing it to the compacted centroids topic.

The cluster model says which vector it clusters: the style vector (default; the offline search
embedding keeps content, not style) or the search embedding.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imgsearch.config import Settings
from imgsearch.connections import kafka_security
from imgsearch.domain.centroids import CentroidModel, VectorKind, kmeans, minibatch_kmeans, model_version
from imgsearch.images import to_rgb
from imgsearch.index.opensearch import OpenSearchIndex
from imgsearch.progress import progress_bar
from schemas.topics import Topics

log = logging.getLogger(__name__)
MINIBATCH_ABOVE = 20_000  # vectors: above this, mini-batch k-means


def clamp_k(k: int, n: int) -> int:
    """At most one cluster per 3 images (so a cluster is a group, not a single image)."""
    return max(1, min(k, n // 3 if n >= 6 else 1))


def fit(
    vectors: NDArray[np.float32],
    k: int,
    vector_kind: VectorKind,
    feature_id: str,
    seed: int = 0,
    settings: Settings | None = None,
) -> CentroidModel:
    """K-Means in-process (default, and without ``settings``) or on Amazon SageMaker
    (IMGSEARCH_KMEANS_BACKEND=sagemaker, with IMGSEARCH_SAGEMAKER_ROLE_ARN, IMGSEARCH_SAGEMAKER_BUCKET,
    IMGSEARCH_SAGEMAKER_PREFIX, AWS_REGION)."""
    k_eff = clamp_k(k, len(vectors))
    if settings is not None and settings.kmeans_backend == "sagemaker":
        from jobs.sagemaker_kmeans import SageMakerKMeans

        if not settings.sagemaker_role_arn or not settings.sagemaker_bucket:
            raise ValueError(
                "IMGSEARCH_KMEANS_BACKEND=sagemaker needs IMGSEARCH_SAGEMAKER_ROLE_ARN and IMGSEARCH_SAGEMAKER_BUCKET"
            )
        backend = SageMakerKMeans(
            role_arn=settings.sagemaker_role_arn,
            bucket=settings.sagemaker_bucket,
            prefix=settings.sagemaker_prefix,
            region=settings.aws_region,
            image=settings.sagemaker_image or None,
        )
        centers = backend.fit(vectors, k_eff, f"imgsearch-kmeans-{int(time.time())}")
    elif len(vectors) > MINIBATCH_ABOVE:
        centers, inertia = minibatch_kmeans(vectors, k_eff, seed=seed)
        log.info("mini-batch k-means: k=%d over %d vectors, inertia %.3f", len(centers), len(vectors), inertia)
    else:
        centers, inertia = kmeans(vectors, k_eff, seed=seed)
        log.info("k-means: k=%d (asked %d) over %d vectors, inertia %.3f", len(centers), k, len(vectors), inertia)
    return CentroidModel(model_version(centers, feature_id), vector_kind, feature_id, centers)


def load_images(paths: Sequence[Path]) -> list[Image.Image]:
    out = []
    with progress_bar(len(paths), "loaded", "img") as bar:
        for p in paths:
            with Image.open(p) as im:
                out.append(to_rgb(im))
            bar.update(1)
    return out


def describe_in_batches(
    describe: Callable[[Sequence[Image.Image]], NDArray[np.float32]],
    images: Sequence[Image.Image],
    what: str,
    batch: int = 64,
) -> NDArray[np.float32]:
    """describe(images), batch by batch, with a progress bar."""
    parts = []
    with progress_bar(len(images), what, "img") as bar:
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            parts.append(np.asarray(describe(chunk), dtype=np.float32))
            bar.update(len(chunk))
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), dtype=np.float32)


async def train_from_folder(
    settings: Settings, folder: Path, k: int, vector_kind: VectorKind, publish: bool = True
) -> CentroidModel:
    from imgsearch.embedding.factory import make_embedder, make_style
    from imgsearch.kafka.model_topics import publish_centroids
    from jobs.ingest import image_files

    images = load_images(image_files(folder))
    if vector_kind == "style":
        style = make_style(settings)
        describe, feature = style.describe, style.model_id
    else:
        embedder = make_embedder(settings)
        describe, feature = embedder.embed_images, embedder.model_id
    vectors = describe_in_batches(describe, images, f"{vector_kind} vectors")
    model = fit(vectors, k, vector_kind, feature, settings=settings)
    if publish:
        await publish_centroids(settings, model)
    print(
        f"centroid model {model.version}: k={model.k} on {vector_kind} vectors ({feature}); "
        f"{'published' if publish else 'not published'}"
    )
    return model


async def read_index_vectors(
    index: OpenSearchIndex, vector_kind: VectorKind
) -> tuple[list[str], NDArray[np.float32], NDArray[np.int64], set[str]]:
    """(image ids, vectors, current cluster ids, feature ids) of every indexed image."""
    field_name = "style" if vector_kind == "style" else "embedding"
    feature_field = "style_model_id" if vector_kind == "style" else "model_id"
    ids: list[str] = []
    rows: list[list[float]] = []
    clusters: list[int] = []
    features: set[str] = set()
    with progress_bar(await index.count(), f"read {vector_kind} vectors", "doc") as bar:
        async for doc_id, src in index.scan([field_name, "cluster_id", feature_field]):
            bar.update(1)
            if src.get(field_name) is None:
                continue
            ids.append(doc_id)
            rows.append(src[field_name])
            clusters.append(int(src.get("cluster_id", -1)))
            features.add(str(src.get(feature_field)))
    return ids, np.asarray(rows, dtype=np.float32), np.asarray(clusters, dtype=np.int64), features


async def retrain_from_index(settings: Settings, k: int, vector_kind: VectorKind, seed: int = 0) -> CentroidModel:
    """Fit a new centroid model on the indexed vectors and publish it, carrying the remap from the
    current model (so stored preferences follow the images to their new clusters)."""
    from imgsearch.kafka.model_topics import current_model, publish_centroids

    index = OpenSearchIndex(settings.opensearch_url, settings.index_name, settings=settings)
    try:
        ids, vectors, old, features = await read_index_vectors(index, vector_kind)
    finally:
        await index.close()
    if not ids:
        raise ValueError(f"no indexed images with {vector_kind} vectors in {settings.index_name}")
    if len(features) != 1:
        raise ValueError(f"indexed {vector_kind} vectors come from several models {sorted(features)}: re-index first")
    model = fit(vectors, k, vector_kind, features.pop(), seed=seed, settings=settings)
    previous = await current_model(settings)
    if previous is not None and previous.version != model.version:
        model = model.with_remap_from(previous, old, model.assign(vectors))
    await publish_centroids(settings, model)
    print(
        f"centroid model {model.version}: k={model.k} on {len(ids)} indexed {vector_kind} vectors; published"
        + (f" (remap from {previous.version})" if previous is not None else "")
    )
    return model


async def _reassign_batch(
    index: OpenSearchIndex,
    producer: Any,
    model: CentroidModel,
    rows: list[tuple[str, list[float], str]],
    topics: Topics,
) -> int:
    from schemas.events import ImageIndexed

    if not rows:
        return 0
    labels = model.assign(np.asarray([r[1] for r in rows], dtype=np.float32))
    await index.update_clusters({r[0]: (int(c), model.version) for r, c in zip(rows, labels, strict=True)})
    for (image_id, _, model_id), c in zip(rows, labels, strict=True):
        ev = ImageIndexed(image_id=image_id, cluster_id=int(c), model_id=model_id, centroid_version=model.version)
        await producer.send(topics.images_indexed().name, key=image_id.encode(), value=ev.to_bytes())
    return len(rows)


async def reassign_all(settings: Settings, model: CentroidModel, *, batch: int = 500, max_passes: int = 20) -> int:
    """Re-assign every indexed image to ``model`` (bulk partial updates: searches keep working) and
    re-emit image-indexed events so the interaction mapping follows. Repeats until no image carries
    another version (images indexed meanwhile by workers that had not yet loaded ``model``).
    Returns the number of images updated."""
    from aiokafka import AIOKafkaProducer

    field_name = "style" if model.vector_kind == "style" else "embedding"
    stale_query = {"bool": {"must_not": {"term": {"centroid_version": model.version}}}}
    index = OpenSearchIndex(settings.opensearch_url, settings.index_name, settings=settings)
    producer = AIOKafkaProducer(
        **kafka_security(settings), bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    updated = 0
    try:
        for _ in range(max_passes):
            await index.refresh()
            stale = await index.count_where(stale_query)
            if stale == 0:
                return updated
            batch_rows: list[tuple[str, list[float], str]] = []
            async for doc_id, src in index.scan([field_name, "model_id"], query=stale_query):
                if src.get(field_name) is None:
                    continue
                batch_rows.append((doc_id, src[field_name], str(src.get("model_id"))))
                if len(batch_rows) >= batch:
                    updated += await _reassign_batch(index, producer, model, batch_rows, settings.topics)
                    batch_rows = []
            updated += await _reassign_batch(index, producer, model, batch_rows, settings.topics)
            print(f"  re-assigned {updated} images", file=sys.stderr)
            await producer.flush()
            await asyncio.sleep(1.0)
        raise RuntimeError(f"images still not on {model.version} after {max_passes} passes")
    finally:
        await producer.stop()
        await index.close()


async def recluster(settings: Settings, k: int, vector_kind: VectorKind, seed: int = 0) -> CentroidModel:
    """Retrain on the index, publish (workers hot-reload it), re-assign every image."""
    model = await retrain_from_index(settings, k, vector_kind, seed=seed)
    n = await reassign_all(settings, model)
    print(f"re-clustering done: {n} images on {model.version}")
    return model


def silhouette(vectors: NDArray[np.float32], labels: NDArray[np.int64], sample: int = 2000, seed: int = 0) -> float:
    """Mean silhouette (cosine distance) over a deterministic sample of at most ``sample`` points."""
    n = len(vectors)
    idx = np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False) if n > sample else np.arange(n)
    x, lab = vectors[idx], labels[idx]
    dist = np.maximum(0.0, 1.0 - x @ x.T)
    clusters = np.unique(lab)
    if len(clusters) < 2:
        return 0.0
    scores = np.zeros(len(x))
    for i in range(len(x)):
        own = lab == lab[i]
        if own.sum() <= 1:
            continue
        a = dist[i, own].sum() / (own.sum() - 1)
        b = min(dist[i, lab == c].mean() for c in clusters if c != lab[i])
        scores[i] = (b - a) / max(a, b, 1e-12)
    return float(scores.mean())


def k_table(vectors: NDArray[np.float32], ks: Sequence[int], seed: int = 0) -> list[tuple[int, float, float]]:
    """(k actually used, inertia, silhouette) for each requested K."""
    out = []
    for k in ks:
        centers, inertia = kmeans(vectors, clamp_k(k, len(vectors)), seed=seed)
        labels = np.argmax(vectors @ centers.T, axis=1)
        out.append((len(centers), inertia, silhouette(vectors, labels)))
    return out


async def k_report(settings: Settings, ks: Sequence[int], vector_kind: VectorKind) -> list[tuple[int, float, float]]:
    index = OpenSearchIndex(settings.opensearch_url, settings.index_name, settings=settings)
    try:
        _, vectors, _, _ = await read_index_vectors(index, vector_kind)
    finally:
        await index.close()
    table = k_table(vectors, ks)
    print(f"{'k':>5} {'inertia':>10} {'silhouette':>10}   ({len(vectors)} {vector_kind} vectors)")
    for k, inertia, sil in table:
        print(f"{k:>5} {inertia:>10.2f} {sil:>10.3f}")
    return table
