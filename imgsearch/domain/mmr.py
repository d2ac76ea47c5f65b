"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over the search vectors (issue 15).

Greedy: the next hit is the candidate maximising ``λ·rel(d) - (1-λ)·max_{s ∈ chosen} cos(d, s)``, where
``rel`` is the blended score min-max scaled to [0, 1] over the pool and ``cos`` the cosine of the two
images' search vectors, clipped at 0 (an opposite image earns no bonus over an unrelated one). λ = 1
is the input order exactly (no vectors needed); λ = 0 picks the most different image each time after
the first. It works beside the per-style cap: with ``max_per_cluster``
a candidate whose cluster is full is skipped, as ``blend`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imgsearch.domain.blend import Ranked, minmax


def validate_lambda(lam: float) -> float:
    if not 0.0 <= lam <= 1.0 or lam != lam:
        raise ValueError(f"the MMR lambda must be in [0, 1], got {lam}")
    return float(lam)


def mmr(
    ranked: Sequence[Ranked],
    vectors: Mapping[str, Sequence[float] | NDArray[Any]],
    lam: float,
    k: int,
    max_per_cluster: int | None = None,
) -> list[Ranked]:
    """The top ``k`` of ``ranked`` (best first, e.g. blend's whole list) re-selected by MMR.

    ``vectors``: image id -> search vector. A candidate without a vector counts as similar to nothing
    (it keeps its relevance)."""
    validate_lambda(lam)
    if k <= 0 or not ranked:
        return []
    if lam >= 1.0:
        return _capped(ranked, k, max_per_cluster)
    rel = np.asarray(minmax([r.blended_score for r in ranked]), dtype=np.float64)
    dim = next((len(vectors[r.candidate.image_id]) for r in ranked if r.candidate.image_id in vectors), 0)
    x = np.zeros((len(ranked), dim))
    for i, r in enumerate(ranked):
        v = vectors.get(r.candidate.image_id)
        if v is not None and len(v) == dim:
            a = np.asarray(v, dtype=np.float64)
            n = float(np.linalg.norm(a))
            x[i] = a / n if n > 1e-12 else a
    out: list[int] = []
    per: dict[int, int] = {}
    max_sim = np.full(len(ranked), -np.inf)  # to the chosen ones; -inf before the first pick
    free = np.ones(len(ranked), dtype=bool)
    while len(out) < k and free.any():
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        gain = np.where(free, lam * rel - (1.0 - lam) * penalty, -np.inf)
        i = int(np.argmax(gain))  # ties: the earlier (better ranked) candidate
        free[i] = False
        c = ranked[i].candidate.cluster_id
        if max_per_cluster is not None and per.get(c, 0) >= max_per_cluster:
            continue
        per[c] = per.get(c, 0) + 1
        out.append(i)
        max_sim = np.maximum(max_sim, np.clip(x @ x[i], 0.0, None))
    return [ranked[i] for i in out]


def _capped(ranked: Sequence[Ranked], k: int, max_per_cluster: int | None) -> list[Ranked]:
    if max_per_cluster is None:
        return list(ranked[:k])
    out: list[Ranked] = []
    per: dict[int, int] = {}
    for r in ranked:
        c = r.candidate.cluster_id
        if per.get(c, 0) < max_per_cluster:
            out.append(r)
            per[c] = per.get(c, 0) + 1
            if len(out) == k:
                break
    return out
