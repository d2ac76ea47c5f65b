"""Personalization quality on the icon set (same subjects, different themes = styles).

Simulated users each prefer one style (or two); they interact with training images (views,
favorites, downloads, with 20% noise on other styles). On held-out text queries (the subjects'
query texts), measure preferred-style precision@10, subject precision@10 and subject nDCG@10,
against the non-personalized baseline (weight 0), sweeping the personalization weight, for the
two blend modes and for clusters on the style vector vs the search vector.

The ranking path is the product's own (imgsearch.domain: centroid assignment, Profile, the local
ranker's normalisation, blend) over exact cosine k-NN computed in-process on the same vectors the
index holds, so the quality numbers do not depend on HNSW recall (measured in bench/speed.py).

    .venv/bin/python bench/personalization_eval.py [--k 16,32] [--out bench-results/personalization.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np

from imgsearch.domain.blend import Candidate, blend
from imgsearch.domain.centroids import kmeans
from imgsearch.domain.profile import Profile, normalise

WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
DAY = 86400.0


def is_train(image_id: str) -> bool:
    return int(hashlib.sha1(image_id.encode()).hexdigest(), 16) % 2 == 0


def simulate_users(labels: list[dict], styles: list[str], seed: int = 0, per_user: int = 15) -> list[dict]:
    rng = random.Random(seed)
    train = [r for r in labels if is_train(r["image_id"])]
    users: list[dict[str, Any]] = []
    for i, style in enumerate(styles):
        users.append({"user": f"u-{style}", "likes": [style]})
        other = styles[(i + 3) % len(styles)]
        users.append({"user": f"u-{style}+{other}", "likes": [style, other]})
    for u in users:
        events = []
        for _ in range(per_user):
            if rng.random() < 0.2:
                pool = [r for r in train if r["style"] not in u["likes"]]
            else:
                liked = rng.choice(u["likes"])
                pool = [r for r in train if r["style"] == liked]
            if not pool:  # a tiny set may have no training image of that style
                continue
            row = rng.choice(pool)
            events.append((row["image_id"], rng.choice([1.0, 1.0, 3.0, 5.0])))
        u["events"] = events
    return users


def ndcg(rel: list[int], k: int = 10) -> float:
    dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel[:k]))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, sum(rel) if sum(rel) else 0)))
    return dcg / ideal if ideal else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--k", default="16,32")
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--dataset", type=Path, default=None, help="a labelled dataset dir (default: the icon set)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/personalization.json"))
    args = ap.parse_args()

    from imgsearch.config import Settings
    from imgsearch.datasets.icons import SUBJECTS, load_labels, open_images
    from imgsearch.embedding.factory import make_embedder, make_style

    labels = load_labels(args.dataset)
    ids = [r["image_id"] for r in labels]
    images = open_images(labels)
    settings = Settings()
    emb = make_embedder(settings)
    style_desc = make_style(settings, emb)
    search = emb.embed_images(images)
    style_vecs = style_desc.describe(images)
    present = {r["subject"] for r in labels}
    queries = [(s.name, s.query) for s in SUBJECTS if s.name in present]
    qvecs = emb.embed_texts([q for _, q in queries])
    styles = sorted({r["style"] for r in labels})
    users = simulate_users(labels, styles)
    by_id = {r["image_id"]: r for r in labels}
    print(f"{len(ids)} images, {len(styles)} styles, {len(queries)} queries, {len(users)} simulated users")
    results = []
    style_index = np.array([styles.index(r["style"]) for r in labels])
    ks = [int(x) for x in args.k.split(",")]
    settings_list: list[tuple[str, np.ndarray | None, int]] = []
    settings_list.extend(("style", style_vecs, k) for k in ks)
    settings_list.extend(("search", search, k) for k in ks)
    # diagnostic upper bound: clusters that ARE the themes (what a perfect style vector would give)
    settings_list.append(("oracle-theme", None, len(styles)))
    for vector_name, vecs, k in settings_list:
        if vecs is None:
            cluster = style_index
        else:
            centers, _ = kmeans(vecs, k, seed=0)
            cluster = np.argmax(vecs @ centers.T, axis=1)
        cluster_of = dict(zip(ids, cluster.tolist(), strict=True))
        profiles = {}
        for u in users:
            p = Profile(version="eval")
            for n, (image_id, weight) in enumerate(u["events"]):
                p.add(f"{u['user']}-{n}", cluster_of[image_id], weight, 1000.0 + n, DAY)
            profiles[u["user"]] = p
        for mode in ("gated", "linear"):
            curve = []
            for w in WEIGHTS:
                style_p, subj_p, nd = [], [], []
                for qi, (subject, _) in enumerate(queries):
                    sims = search @ qvecs[qi]
                    top = np.argsort(-sims)[: args.candidates]
                    cands = [Candidate(ids[j], float((1 + sims[j]) / 2), int(cluster[j])) for j in top]
                    for u in users:
                        aff = profiles[u["user"]].affinity(1000.0 + len(u["events"]), DAY, 0.6)
                        scores = normalise(aff, [c.cluster_id for c in cands])
                        ranked = blend(cands, scores, w, 10, mode=mode)
                        hits = [by_id[r.candidate.image_id] for r in ranked]
                        style_p.append(sum(h["style"] in u["likes"] for h in hits) / 10)
                        rel = [int(h["subject"] == subject) for h in hits]
                        subj_p.append(sum(rel) / 10)
                        nd.append(ndcg(rel))
                curve.append(
                    {
                        "weight": w,
                        "style_p10": float(np.mean(style_p)),
                        "subject_p10": float(np.mean(subj_p)),
                        "subject_ndcg10": float(np.mean(nd)),
                    }
                )
            base = curve[0]
            results.append({"vector": vector_name, "k": k, "mode": mode, "curve": curve})
            print(
                f"\n{vector_name} vectors, k={k}, blend={mode}  (baseline style P@10 {base['style_p10']:.3f}, "
                f"subject P@10 {base['subject_p10']:.3f})"
            )
            print(f"  {'w':>4} {'style P@10':>10} {'×base':>6} {'subj P@10':>10} {'×base':>6} {'nDCG@10':>8}")
            for c in curve:
                print(
                    f"  {c['weight']:>4.1f} {c['style_p10']:>10.3f} {c['style_p10'] / base['style_p10']:>6.2f} "
                    f"{c['subject_p10']:>10.3f} {c['subject_p10'] / max(base['subject_p10'], 1e-9):>6.2f} "
                    f"{c['subject_ndcg10']:>8.3f}"
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"embedder": emb.model_id, "style": style_desc.model_id, "results": results}, indent=2)
    )
    plot(results, args.out.with_suffix(".png"))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


def plot(results: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        xs = [c["weight"] for c in r["curve"]]
        label = f"{r['vector']} k={r['k']} {r['mode']}"
        axes[0].plot(xs, [c["style_p10"] for c in r["curve"]], marker="o", label=label)
        axes[1].plot(xs, [c["subject_p10"] for c in r["curve"]], marker="o", label=label)
    axes[0].set(title="preferred-style precision@10", xlabel="personalization weight")
    axes[1].set(title="subject precision@10", xlabel="personalization weight")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
