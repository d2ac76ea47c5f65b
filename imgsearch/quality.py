"""Retrieval and clustering quality measures (pure numpy), shared by the head training job and the
benchmarks, so that what is chosen on validation and what is reported on test are the same numbers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def top_k(queries: NDArray[np.floating], gallery: NDArray[np.floating], k: int) -> NDArray[np.int64]:
    """Indices of the k most similar gallery rows per query (dot product of unit rows), best first."""
    sims = np.asarray(queries, np.float32) @ np.asarray(gallery, np.float32).T
    k = min(k, sims.shape[1])
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def recall_and_precision(
    ranked: NDArray[np.int64], relevant: Sequence[NDArray[np.bool_]], recall_at: int = 50, precision_at: int = 10
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per query: the share of its relevant items within the top `recall_at` (of at most `recall_at`
    reachable), and the precision of its top `precision_at` out of what is reachable: hits divided by
    min(`precision_at`, number of relevant items), so a query with 4 relevant images that finds all 4
    in its top 10 scores 1 (raw P@10 would cap it at 0.4)."""
    rec, prec = [], []
    for row, rel in zip(ranked, relevant, strict=True):
        n_rel = int(rel.sum())
        if n_rel == 0:
            rec.append(np.nan)
            prec.append(np.nan)
            continue
        rec.append(rel[row[:recall_at]].sum() / min(n_rel, recall_at))
        prec.append(rel[row[:precision_at]].sum() / min(n_rel, precision_at))
    return np.asarray(rec), np.asarray(prec)


def purity(labels_true: Sequence[str], clusters: NDArray[np.int64]) -> float:
    """Share of items whose cluster's majority label is their own label."""
    by_cluster: dict[int, Counter[str]] = {}
    for lab, c in zip(labels_true, clusters, strict=True):
        by_cluster.setdefault(int(c), Counter())[lab] += 1
    return sum(cnt.most_common(1)[0][1] for cnt in by_cluster.values()) / max(len(labels_true), 1)


def nmi(labels_true: Sequence[str], clusters: NDArray[np.int64]) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as scikit-learn's default)."""
    names = {s: i for i, s in enumerate(sorted(set(labels_true)))}
    a = np.array([names[s] for s in labels_true])
    _, b = np.unique(np.asarray(clusters), return_inverse=True)
    n = len(a)
    if n == 0:
        return 0.0
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    pij = table / n
    pi, pj = pij.sum(axis=1), pij.sum(axis=0)
    nz = pij > 0
    mi = float((pij[nz] * np.log(pij[nz] / np.outer(pi, pj)[nz])).sum())
    ha = float(-(pi[pi > 0] * np.log(pi[pi > 0])).sum())
    hb = float(-(pj[pj > 0] * np.log(pj[pj > 0])).sum())
    if ha == 0 or hb == 0:
        return 1.0 if ha == hb else 0.0
    return mi / ((ha + hb) / 2)


def ndcg_at(gains_ranked: NDArray[np.floating], gains_all: NDArray[np.floating], k: int = 10) -> float:
    """nDCG@k of one ranking: `gains_ranked` the gains in ranked order, normalised by the ideal ranking
    of `gains_all` (every item of the collection)."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    g = np.asarray(gains_ranked, np.float64)[:k]
    dcg = float((g * disc[: len(g)]).sum())
    ideal = np.sort(np.asarray(gains_all, np.float64))[::-1][:k]
    idcg = float((ideal * disc[: len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0
