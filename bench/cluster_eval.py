"""Which vector separates styles? K-Means on each candidate vector of the icon set (same subjects,
different themes), scored against the theme (style) labels and the subject labels.

    .venv/bin/python bench/cluster_eval.py [--k 10,16,32,64] [--out bench-results/cluster_eval.json]

Purity and NMI against style should be high, and against subject low, for a style vector.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from imgsearch.domain.centroids import kmeans


def purity(labels: np.ndarray, truth: list[str]) -> float:
    total = 0
    for c in np.unique(labels):
        members = [truth[i] for i in np.flatnonzero(labels == c)]
        total += Counter(members).most_common(1)[0][1]
    return total / len(truth)


def nmi(labels: np.ndarray, truth: list[str]) -> float:
    """Normalised mutual information (arithmetic mean of the entropies)."""
    t_ids = {t: i for i, t in enumerate(sorted(set(truth)))}
    t = np.array([t_ids[x] for x in truth])
    n = len(t)
    joint = np.zeros((labels.max() + 1, len(t_ids)))
    for a, b in zip(labels, t, strict=True):
        joint[a, b] += 1
    p = joint / n
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = -float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    return 2 * mi / (ha + hb) if ha + hb > 0 else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--k", default="10,16,32,64")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dataset", type=Path, default=None, help="a labelled dataset dir (default: the icon set)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/cluster_eval.json"))
    args = ap.parse_args()

    from imgsearch.config import Settings
    from imgsearch.datasets.icons import load_labels, open_images
    from imgsearch.embedding.factory import make_embedder, make_style
    from imgsearch.embedding.style import HandcraftedStyleDescriber

    labels = load_labels(args.dataset)
    images = open_images(labels)
    styles = [r["style"] for r in labels]
    subjects = [r["subject"] for r in labels]
    settings = Settings()
    vectors = {}
    t0 = time.perf_counter()
    gram = make_style(settings)
    vectors[f"style:{gram.model_id}"] = gram.describe(images)
    vectors["style:handcrafted"] = HandcraftedStyleDescriber().describe(images)
    emb = make_embedder(settings)
    vectors[f"search:{emb.model_id}"] = emb.embed_images(images)
    print(
        f"{len(images)} images, {len(set(styles))} styles, {len(set(subjects))} subjects; "
        f"vectors in {time.perf_counter() - t0:.1f}s"
    )
    results = []
    print(f"{'vector':44s} {'k':>4} {'purity(style)':>14} {'NMI(style)':>11} {'purity(subj)':>13} {'NMI(subj)':>10}")
    for name, x in vectors.items():
        for k in [int(v) for v in args.k.split(",")]:
            rows = []
            for seed in range(args.seeds):
                centers, _ = kmeans(x, k, seed=seed)
                lab = np.argmax(x @ centers.T, axis=1)
                rows.append((purity(lab, styles), nmi(lab, styles), purity(lab, subjects), nmi(lab, subjects)))
            m = np.mean(rows, axis=0)
            results.append(
                {
                    "vector": name,
                    "k": k,
                    "purity_style": m[0],
                    "nmi_style": m[1],
                    "purity_subject": m[2],
                    "nmi_subject": m[3],
                    "seeds": args.seeds,
                }
            )
            print(f"{name[:44]:44s} {k:>4} {m[0]:>14.3f} {m[1]:>11.3f} {m[2]:>13.3f} {m[3]:>10.3f}")
    chance = Counter(styles).most_common(1)[0][1] / len(styles)
    print(f"chance purity (style, one cluster): {chance:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"images": len(images), "results": results, "chance_purity_style": chance}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
