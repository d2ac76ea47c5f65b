"""The offline part of the local ranker: cluster-to-cluster similarity from all users' histories.

Item-based collaborative filtering (Sarwar et al. 2001; Deshpande & Karypis 2004) at cluster level:
each cluster is a vector of its users' interaction weights; two clusters are similar when the same
users like both (cosine, shrunk towards 0 for clusters with little support). With at most a few
hundred clusters and sparse users, this needs no iterative training and no tuning of latent
factors, is exact to recompute nightly, and explains itself ("people who like your styles also
like this one"). It also yields cluster popularity, the configurable answer for a new user.

At query time: ``personal(c) = affinity(c) + λ · Σ_a affinity(a) · sim(a, c)`` over the user's
real-time affinity (imgsearch.domain.profile), so a user also gets styles close to theirs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CooccurrenceModel:
    centroid_version: str
    clusters: list[int]
    similarity: np.ndarray  # (k, k), zero diagonal
    popularity: np.ndarray  # (k,), sums to 1

    def neighbours(self, affinity: Mapping[int, float], strength: float) -> dict[int, float]:
        """``affinity`` plus ``strength`` × similarity-weighted spill-over onto other clusters."""
        index = {c: i for i, c in enumerate(self.clusters)}
        vec = np.zeros(len(self.clusters))
        for c, a in affinity.items():
            if c in index:
                vec[index[c]] = a
        spill = vec @ self.similarity
        out = dict(affinity)
        for c, i in index.items():
            if spill[i] > 0:
                out[c] = out.get(c, 0.0) + strength * float(spill[i])
        return out

    def popular(self) -> dict[int, float]:
        return {c: float(p) for c, p in zip(self.clusters, self.popularity, strict=True)}

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "centroid_version": self.centroid_version,
                "clusters": self.clusters,
                "similarity": np.round(self.similarity, 6).tolist(),
                "popularity": np.round(self.popularity, 6).tolist(),
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> CooccurrenceModel:
        raw = json.loads(data)
        return cls(
            raw["centroid_version"],
            [int(c) for c in raw["clusters"]],
            np.asarray(raw["similarity"], dtype=np.float64),
            np.asarray(raw["popularity"], dtype=np.float64),
        )


def train(
    interactions: Iterable[tuple[str, int, float]], centroid_version: str, shrinkage: float = 5.0
) -> CooccurrenceModel:
    """From (user, cluster, weight) rows: cosine similarity between clusters' user vectors, shrunk
    by ``n / (n + shrinkage)`` with n the number of users who touched both clusters."""
    users: dict[str, int] = {}
    clusters: dict[int, int] = {}
    cells: dict[tuple[int, int], float] = {}
    for user, cluster, weight in interactions:
        u = users.setdefault(user, len(users))
        c = clusters.setdefault(cluster, len(clusters))
        cells[(u, c)] = cells.get((u, c), 0.0) + weight
    order = sorted(clusters)
    if not order:
        return CooccurrenceModel(centroid_version, [], np.zeros((0, 0)), np.zeros(0))
    col_of_seen = {seen: order.index(cluster) for cluster, seen in clusters.items()}
    m = np.zeros((len(users), len(order)))
    for (u, c_idx), w in cells.items():
        m[u, col_of_seen[c_idx]] = w
    norms = np.linalg.norm(m, axis=0)
    norms[norms == 0] = 1.0
    cos = (m.T @ m) / np.outer(norms, norms)
    support = (m > 0).astype(float)
    both = support.T @ support
    sim = cos * both / (both + shrinkage)
    np.fill_diagonal(sim, 0.0)
    totals = m.sum(axis=0)
    popularity = totals / totals.sum() if totals.sum() > 0 else totals
    return CooccurrenceModel(centroid_version, order, sim, popularity)
