"""Training a centroid model (K-Means) and publishing it to the compacted centroids topic.

The cluster model says which vector it clusters: the style vector (default; the offline search
embedding keeps content, not style) or the search embedding.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imgsearch.config import Settings
from imgsearch.domain.centroids import CentroidModel, VectorKind, kmeans, model_version
from imgsearch.images import to_rgb

log = logging.getLogger(__name__)


def clamp_k(k: int, n: int) -> int:
    """At most one cluster per 3 images (so a cluster is a group, not a single image)."""
    return max(1, min(k, n // 3 if n >= 6 else 1))


def fit(
    vectors: NDArray[np.float32], k: int, vector_kind: VectorKind, feature_id: str, seed: int = 0
) -> CentroidModel:
    k_eff = clamp_k(k, len(vectors))
    centers, inertia = kmeans(vectors, k_eff, seed=seed)
    log.info("k-means: k=%d (asked %d) over %d vectors, inertia %.3f", len(centers), k, len(vectors), inertia)
    return CentroidModel(model_version(centers, feature_id), vector_kind, feature_id, centers)


def load_images(paths: Sequence[Path]) -> list[Image.Image]:
    out = []
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            out.append(to_rgb(im))
        if (i + 1) % 100 == 0:
            print(f"  loaded {i + 1}/{len(paths)} images", file=sys.stderr)
    return out


async def train_from_folder(
    settings: Settings, folder: Path, k: int, vector_kind: VectorKind, publish: bool = True
) -> CentroidModel:
    from imgsearch.cli import image_files
    from imgsearch.embedding.factory import make_embedder, make_style
    from streams.centroids import publish_centroids

    images = load_images(image_files(folder))
    if vector_kind == "style":
        style = make_style(settings)
        vectors, feature = style.describe(images), style.model_id
    else:
        embedder = make_embedder(settings)
        vectors, feature = embedder.embed_images(images), embedder.model_id
    model = fit(vectors, k, vector_kind, feature)
    if publish:
        await publish_centroids(settings.kafka_bootstrap, model)
    print(
        f"centroid model {model.version}: k={model.k} on {vector_kind} vectors ({feature}); "
        f"{'published' if publish else 'not published'}"
    )
    return model
