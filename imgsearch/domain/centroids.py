"""A versioned centroid model and nearest-centroid assignment (vectorised numpy).

Vectors are unit-normalised, so cosine and l2 give the same nearest centroid; assignment uses the
dot product (one matrix multiply per batch).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

VectorKind = Literal["search", "style"]
NO_CLUSTER = -1
NO_MODEL_VERSION = "none"


Remap = dict[int, dict[int, float]]
"""old cluster id -> {new cluster id: share of the old cluster's images now there}"""
MAX_REMAP_VERSIONS = 5


@dataclass(frozen=True)
class CentroidModel:
    version: str
    vector_kind: VectorKind
    feature_id: str  # the embedder / style descriptor the centroids were trained on
    centroids: NDArray[np.float32]  # (k, d), unit rows
    # how clusters of earlier versions map onto this one: {earlier version: Remap}
    remaps: dict[str, Remap] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.centroids.shape[1])

    def assign(self, vectors: NDArray[np.float32]) -> NDArray[np.int64]:
        """Index of the nearest centroid for each row of ``vectors`` (n, d)."""
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of shape (n, {self.dimension}), got {v.shape}")
        return np.argmax(v @ self.centroids.T, axis=1).astype(np.int64)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "version": self.version,
                "vector_kind": self.vector_kind,
                "feature_id": self.feature_id,
                "centroids": self.centroids.round(7).tolist(),
                "remaps": {
                    v: {str(o): {str(n): w for n, w in row.items()} for o, row in r.items()}
                    for v, r in self.remaps.items()
                },
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> CentroidModel:
        raw = json.loads(data)
        arr = np.asarray(raw["centroids"], dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] < 1:
            raise ValueError("centroid model has no centroids")
        remaps = {
            v: {int(o): {int(n): float(w) for n, w in row.items()} for o, row in r.items()}
            for v, r in raw.get("remaps", {}).items()
        }
        return cls(raw["version"], raw["vector_kind"], raw["feature_id"], arr, remaps)

    def with_remap_from(self, previous: CentroidModel, old: NDArray[np.int64], new: NDArray[np.int64]) -> CentroidModel:
        """This model, carrying how ``previous``'s clusters (and the versions before it) map onto it,
        measured on the same images: ``old[i]`` / ``new[i]`` are image i's cluster in each."""
        step = overlap_remap(old, new)
        remaps = {previous.version: step}
        for version, earlier in list(previous.remaps.items())[: MAX_REMAP_VERSIONS - 1]:
            remaps[version] = compose(earlier, step)
        return CentroidModel(self.version, self.vector_kind, self.feature_id, self.centroids, remaps)


def overlap_remap(old: NDArray[np.int64], new: NDArray[np.int64]) -> Remap:
    """For each old cluster, the share of its images in each new cluster."""
    out: Remap = {}
    for o in np.unique(old):
        if o < 0:
            continue
        members = new[old == o]
        ids, counts = np.unique(members[members >= 0], return_counts=True)
        total = counts.sum()
        if total:
            out[int(o)] = {int(n): float(c / total) for n, c in zip(ids, counts, strict=True)}
    return out


def compose(first: Remap, second: Remap) -> Remap:
    """Remap a→c from a→b and b→c."""
    out: Remap = {}
    for a, row in first.items():
        acc: dict[int, float] = {}
        for b, w in row.items():
            for c, w2 in second.get(b, {}).items():
                acc[c] = acc.get(c, 0.0) + w * w2
        if acc:
            out[a] = acc
    return out


def model_version(centroids: NDArray[np.float32], feature_id: str) -> str:
    """Content-derived version: the same centroids always get the same version."""
    h = hashlib.sha256(feature_id.encode())
    h.update(np.ascontiguousarray(centroids, dtype=np.float32).tobytes())
    return f"k{centroids.shape[0]}-{h.hexdigest()[:12]}"


def kmeans(
    vectors: NDArray[np.float32], k: int, *, seed: int = 0, iters: int = 50, tol: float = 1e-5
) -> tuple[NDArray[np.float32], float]:
    """Spherical k-means (cosine) with k-means++ seeding. Returns (unit centroids, inertia).

    ``k`` is clamped to the number of distinct vectors.
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot cluster zero vectors")
    k = max(1, min(k, len(np.unique(x.round(6), axis=0))))
    rng = np.random.default_rng(seed)
    centers = np.empty((k, x.shape[1]), dtype=np.float32)
    centers[0] = x[rng.integers(n)]
    d2 = np.maximum(0.0, 2.0 - 2.0 * (x @ centers[0]))
    for i in range(1, k):
        total = float(d2.sum())
        idx = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centers[i] = x[idx]
        d2 = np.minimum(d2, np.maximum(0.0, 2.0 - 2.0 * (x @ centers[i])))
    prev = np.inf
    inertia = 0.0
    for _ in range(iters):
        sims = x @ centers.T
        labels = np.argmax(sims, axis=1)
        inertia = float(np.sum(2.0 - 2.0 * sims[np.arange(n), labels]))
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c = members.sum(axis=0)
                centers[j] = c / max(float(np.linalg.norm(c)), 1e-12)
            else:  # re-seed an empty cluster at the worst-served point
                centers[j] = x[int(np.argmin(sims[np.arange(n), labels]))]
        if prev - inertia <= tol * max(prev, 1e-12):
            break
        prev = inertia
    return centers, inertia


def minibatch_kmeans(
    vectors: NDArray[np.float32], k: int, *, seed: int = 0, batch: int = 2048, iters: int = 100
) -> tuple[NDArray[np.float32], float]:
    """Spherical mini-batch k-means (Sculley 2010) for catalogs too large for full passes: seeded by
    k-means++ on a sample, then per-centre learning rates 1/count. Returns (unit centroids, inertia)."""
    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(n, size=min(n, max(10 * k, batch)), replace=False)]
    centers, _ = kmeans(sample, k, seed=seed, iters=10)
    counts = np.zeros(len(centers))
    for _ in range(iters):
        b = x[rng.integers(0, n, size=min(batch, n))]
        labels = np.argmax(b @ centers.T, axis=1)
        for j in np.unique(labels):
            members = b[labels == j]
            counts[j] += len(members)
            eta = len(members) / counts[j]
            c = (1 - eta) * centers[j] + eta * members.mean(axis=0)
            centers[j] = c / max(float(np.linalg.norm(c)), 1e-12)
    sims = np.max(x @ centers.T, axis=1)
    return centers, float(np.sum(2.0 - 2.0 * sims))
