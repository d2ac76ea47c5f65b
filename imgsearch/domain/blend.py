"""Combine relevance (k-NN) and personal preference into one ranking.

The article blends by a weighted mean. The two scores live on different scales (OpenSearch's
cosine score is (1+cos)/2 and bunches near the top; Personalize's scores sum to 1 over the list),
so both are min-max normalised over the candidate list first. Two ways to combine them:

- ``linear``: the article's weighted mean ``(1-w)·knn + w·personal``. A strongly preferred style can
  then outrank a clearly better match: at w=0.5 a loosely related image of the user's style beats
  the best match of another style.
- ``gated`` (default): ``(1-w)·knn + w·knn·personal`` — the preference can only lift an image as
  far as its relevance allows, so an irrelevant image of the right style stays down while, among
  relevant images, the user's style comes first. w=1 ranks by ``knn·personal``.

With weight 0 both give exactly the k-NN order (ties broken by k-NN score, then image id).

Negative feedback: a cluster's ``demotion`` d in [0, 1] (from "not my style" / "hide", see
``imgsearch.domain.profile.demotion``) multiplies its candidates' blended scores by ``1 - d`` whatever
the mode, when the weight is above 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BLEND_MODES = ("gated", "linear")


@dataclass(frozen=True)
class Candidate:
    image_id: str
    knn_score: float
    cluster_id: int
    metadata: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    personal_score: float
    blended_score: float


def minmax(values: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; a constant list maps to all ones (every item equally good)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [1.0 for _ in values]
    return [(v - lo) / (hi - lo) for v in values]


def blend(
    candidates: Sequence[Candidate],
    cluster_scores: Mapping[int, float],
    weight: float,
    k: int,
    max_per_cluster: int | None = None,
    mode: str = "gated",
    demotions: Mapping[int, float] | None = None,
    item_scores: Mapping[str, float] | None = None,
    item_demotions: Mapping[str, float] | None = None,
) -> list[Ranked]:
    """Rank candidates by ``(1-w)·norm(knn) + w·norm(personal)`` and return the top ``k``.

    ``cluster_scores`` are the ranker's scores per cluster id (missing clusters score 0).
    ``max_per_cluster`` optionally caps how many hits one cluster (style) may take.
    ``demotions`` (cluster id -> [0, 1]) scale down disliked clusters' blended scores (weight > 0 only).
    ``item_scores`` (image id -> score; continuous style affinity, issue 15) replace the cluster scores
    when given; ``item_demotions`` (image id -> [0, 1]) add a per-image demotion (the larger one counts).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"personalization weight must be in [0, 1], got {weight}")
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode must be one of {BLEND_MODES}, got {mode!r}")
    if not candidates:
        return []
    knn_norm = minmax([c.knn_score for c in candidates])
    if item_scores is not None:
        personal_raw = [float(item_scores.get(c.image_id, 0.0)) for c in candidates]
    else:
        personal_raw = [float(cluster_scores.get(c.cluster_id, 0.0)) for c in candidates]
    has_signal = any(p > 0 for p in personal_raw)
    personal_norm = minmax(personal_raw) if has_signal else [0.0] * len(candidates)
    down = demotions if weight > 0 and demotions else {}
    item_down = item_demotions if weight > 0 and item_demotions else {}
    for d in [*down.values(), *item_down.values()]:
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"a demotion must be in [0, 1], got {d}")
    ranked = [
        Ranked(
            c,
            p_raw,
            ((1.0 - weight) * kn + weight * (pn if mode == "linear" else kn * pn))
            * (1.0 - max(down.get(c.cluster_id, 0.0), item_down.get(c.image_id, 0.0))),
        )
        for c, kn, pn, p_raw in zip(candidates, knn_norm, personal_norm, personal_raw, strict=True)
    ]
    ranked.sort(key=lambda r: (-r.blended_score, -r.candidate.knn_score, r.candidate.image_id))
    if max_per_cluster is None:
        return ranked[:k]
    out: list[Ranked] = []
    per: dict[int, int] = {}
    for r in ranked:
        if per.get(r.candidate.cluster_id, 0) < max_per_cluster:
            out.append(r)
            per[r.candidate.cluster_id] = per.get(r.candidate.cluster_id, 0) + 1
            if len(out) == k:
                break
    return out
