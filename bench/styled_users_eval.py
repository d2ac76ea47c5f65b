"""How robustly does a preference learnt on other subjects carry over to a new query?

The styled-photo corpus (imgsearch/datasets/styled_photos.py: 7 photos × 4 crops × 6 styles) is
embedded with the configured embedder and style descriptor (defaults: ConSE, Gram). Three users
each interact with nine pictures of one style, none of them cats; then everyone searches "a photo
of a cat". For every K-Means seed and K, it checks the acceptance criteria of issue 5 with the
product's own ranking path (centroid assignment, Profile, normalisation, gated blend at the
default weight) over exact cosine k-NN (50 candidates):

- subject: every hit of every user is a cat;
- lift: each user's style has more hits in their top-10 than in the non-personalized top-10;
- distinct: the three top-10s are three different sets;
- first: each user's first hit is in their style (stronger than the issue asks).

    .venv/bin/python bench/styled_users_eval.py [--seeds 8] [--k 8,10,12] [--styles sepia,sketch,pop]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--k", default="8,10,12")
    ap.add_argument("--styles", default="sepia,sketch,pop")
    ap.add_argument("--weight", type=float, default=None, help="default: IMGSEARCH_PERSONALIZATION_WEIGHT")
    ap.add_argument("--out", type=Path, default=Path("bench-results/styled_users.json"))
    args = ap.parse_args()

    from imgsearch.config import Settings
    from imgsearch.datasets.styled_photos import make_images, style_of, subject_of, teaching_events
    from imgsearch.domain.blend import Candidate, blend
    from imgsearch.domain.centroids import kmeans
    from imgsearch.domain.profile import Profile, normalise
    from imgsearch.embedding.factory import make_embedder, make_style

    settings = Settings()
    weight = settings.personalization_weight if args.weight is None else args.weight
    styles = args.styles.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        labels = make_images(Path(tmp))
        ids = sorted(labels)
        images = [Image.open(Path(tmp) / f"{i}.png").convert("RGB") for i in ids]
        emb = make_embedder(settings)
        style_desc = make_style(settings, emb)
        vecs, style_vecs = emb.embed_images(images), style_desc.describe(images)
    sims = vecs @ emb.embed_texts(["a photo of a cat"])[0]
    top = np.argsort(-sims)[:50]
    print(f"{len(ids)} images; embedder {emb.model_id}, style {style_desc.model_id}; users like {styles}; w={weight}")
    rows = []
    for seed in range(args.seeds):
        for k in [int(x) for x in args.k.split(",")]:
            centers, _ = kmeans(style_vecs, k, seed=seed)
            cluster = np.argmax(style_vecs @ centers.T, axis=1)
            cands = [Candidate(ids[j], float((1 + sims[j]) / 2), int(cluster[j])) for j in top]
            base = [r.candidate.image_id for r in blend(cands, {}, 0.0, 10)]
            tops: dict[str, list[str]] = {}
            for style in styles:
                p = Profile(version="eval")
                events = teaching_events(ids, style)
                for n, (image_id, kind) in enumerate(events):
                    p.add(
                        f"e{n}",
                        int(cluster[ids.index(image_id)]),
                        settings.event_weights[kind],
                        1000.0 + n,
                        settings.profile_half_life_s,
                        session_decay=settings.session_decay,
                    )
                now = 1000.0 + len(events)
                scores = normalise(
                    p.affinity(now, settings.profile_half_life_s, settings.recency_weight),
                    [c.cluster_id for c in cands],
                )
                tops[style] = [r.candidate.image_id for r in blend(cands, scores, weight, 10)]
            row = {
                "seed": seed,
                "k": k,
                "subject": all(subject_of(i) == "cat" for t in tops.values() for i in t),
                "lift": all(
                    sum(style_of(i) == s for i in t) > sum(style_of(i) == s for i in base) for s, t in tops.items()
                ),
                "distinct": len({frozenset(t) for t in tops.values()}) == len(styles),
                "first": all(style_of(t[0]) == s for s, t in tops.items()),
                "tops": {s: [style_of(i) for i in t] for s, t in tops.items()},
            }
            rows.append(row)
            flags = " ".join(f"{c}={'y' if row[c] else 'n'}" for c in ("subject", "lift", "distinct", "first"))
            print(f"seed {seed} K={k:<3} {flags}")
    n = len(rows)
    summary = {c: sum(bool(r[c]) for r in rows) for c in ("subject", "lift", "distinct", "first")}
    summary["all_of_the_issue"] = sum(bool(r["subject"] and r["lift"] and r["distinct"]) for r in rows)
    print("\n" + ", ".join(f"{c}: {v}/{n}" for c, v in summary.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"weight": weight, "styles": styles, "summary": summary, "runs": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
