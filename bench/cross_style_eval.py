"""Same query, *your* style: the cross-style figures of the offline models, on the TEST style families.

For icons and for emoji (test families only; nothing here was trained or tuned on them), with the
product's defaults, side by side for today's vectors (ConSE search vector, Gram-PCA style vector) and
the learned heads:

* cross-style recall@50 (share of a subject's images, all styles, in the top 50 k-NN hits) and subject
  P@10 without personalization - all queries, and the held-out subjects (never trained on);
* style clusters: spherical K-Means at K = number of styles: purity vs style, NMI vs subject;
* simulated users (history on images of no query subject, 20 % noise; one- and two-style users):
  share of (user, query) pairs whose top-3 holds a relevant image of a preferred style (where the
  collection has one), subject P@10 personalised / unpersonalised, graded nDCG@10 (2 = subject and
  preferred style, 1 = subject only; ideal = the whole collection) at weight 0 and the default;
  ranking = the product's own (centroid assignment, Profile, normalise, blend) over exact k-NN;
* no regression: Tux Paint caption R@10 (all 785 captions: never trained on), the scikit-image photo
  sanity (cat text -> cat photo vs rocket), and embedding speed (images/s, batch 16) of both paths.

    .venv/bin/python bench/cross_style_eval.py --dataset ~/.cache/imgsearch/datasets/styles-v2 \
        [--heads PATH] [--out bench-results/cross_style.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imgsearch.config import Settings
from imgsearch.domain.blend import Candidate, blend
from imgsearch.domain.centroids import kmeans
from imgsearch.domain.mmr import mmr
from imgsearch.domain.profile import Profile, demotion, normalise
from imgsearch.embedding.base import normalize_rows
from imgsearch.quality import ndcg_at
from schemas.events import EventType
from streams import retrieval

DAY = 86400.0
SEARCH_TARGETS: dict[str, dict[str, float]] = {
    "icon": {"recall@50": 0.85, "p@10": 0.80},
    "emoji": {"recall@50": 0.75, "p@10": 0.70},
}
TARGETS: dict[str, float] = {
    "purity": 0.85,
    "nmi_subject": 0.15,
    "top3": 0.90,
    "p10_ratio": 0.95,
    "caption_r10": 0.32,
}


def simulate_users(
    labels: Sequence[Mapping[str, Any]], styles: Sequence[str], seed: int = 0, per_user: int = 20
) -> list[dict[str, Any]]:
    """One-style users for every style and two-style users for every pair; their history is drawn
    from images of no evaluation subject (so never the queries' subjects), 20 % from other styles."""
    rng = random.Random(seed)
    pool = [lab for lab in labels if not lab.get("group")]
    users: list[dict[str, Any]] = [{"user": f"u-{s}", "likes": [s]} for s in styles]
    users += [{"user": f"u-{a}+{b}", "likes": [a, b]} for a, b in itertools.combinations(styles, 2)]
    for u in users:
        events = []
        for _ in range(per_user):
            if rng.random() < 0.2:
                cands = [lab for lab in pool if lab["style"] not in u["likes"]]
            else:
                liked = rng.choice(u["likes"])
                cands = [lab for lab in pool if lab["style"] == liked]
            if cands:
                events.append((rng.choice(cands)["image_id"], rng.choice([1.0, 1.0, 3.0, 5.0])))
        u["events"] = events
    return users


def _ranking_setup(
    style: NDArray[np.float32],
    labels: Sequence[Mapping[str, Any]],
    settings: Settings,
    k_clusters: int,
    seed: int,
) -> tuple[list[str], NDArray[np.int64], NDArray[Any], NDArray[Any], int]:
    """What the simulated rankings share: image ids, each image's style cluster (K-Means on the style
    vectors, as the product), evaluation groups, style labels and the product's candidate count."""
    ids = [str(lab["image_id"]) for lab in labels]
    centroids, _ = kmeans(style, k_clusters, seed=seed)
    cluster = np.argmax(style @ centroids.T, axis=1)
    groups = np.array([lab.get("group") or "" for lab in labels])
    style_arr = np.array([lab["style"] for lab in labels])
    n_cand = retrieval.global_candidates(settings, 10, 10)  # the query worker's, for k = 10
    return ids, cluster, groups, style_arr, n_cand


def personalised_figures(
    search: NDArray[np.float32],
    style: NDArray[np.float32],
    labels: Sequence[Mapping[str, Any]],
    queries: Sequence[tuple[str, NDArray[np.float32]]],
    settings: Settings,
    k_clusters: int,
    seed: int = 0,
    affinity: str = "cluster",
    mmr_lambda: float = 1.0,
) -> dict[str, Any]:
    """``affinity``: the local ranker's mode (issue 15: "cluster" profile or "continuous" style medoids,
    bandwidth and merge threshold from ``settings``); ``mmr_lambda`` < 1 re-selects the top-10 by MMR
    over the search vectors. Besides relevance: the mean number of distinct styles in the top-10."""
    ids, cluster, groups, style_arr, n_cand = _ranking_setup(style, labels, settings, k_clusters, seed)
    styles = sorted({str(lab["style"]) for lab in labels})
    row_of = {i: n for n, i in enumerate(ids)}
    cluster_of = dict(zip(ids, cluster.tolist(), strict=True))
    users = simulate_users(labels, styles, seed)
    now = 1000.0 + 100
    out: dict[str, Any] = {
        "k_clusters": k_clusters,
        "users": len(users),
        "queries": len(queries),
        "affinity": affinity,
        "mmr_lambda": mmr_lambda,
    }
    for name, weight in (("weight0", 0.0), ("default", settings.personalization_weight)):
        top3, p10, nd, distinct, pairs = [], [], [], [], 0
        for u in users:
            prof = Profile(version="eval")
            for n, (image_id, w) in enumerate(u["events"]):
                prof.add(f"{u['user']}-{n}", cluster_of[image_id], w, 1000.0 + n, settings.profile_half_life_s)
                if affinity == "continuous":
                    prof.add_style(
                        style[row_of[image_id]].tolist(),
                        w,
                        1000.0 + n,
                        settings.profile_half_life_s,
                        "eval",
                        settings.affinity_merge_sim,
                    )
            aff = prof.affinity(now, settings.profile_half_life_s, settings.recency_weight)
            medoids = prof.medoids()
            liked = np.isin(style_arr, u["likes"])
            for group, qv in queries:
                sims = search @ qv
                cand = np.argsort(-sims)[:n_cand]
                cands = [Candidate(ids[j], float((1 + sims[j]) / 2), int(cluster[j])) for j in cand]
                scores = normalise(aff, [c.cluster_id for c in cands])
                item_scores = None
                if affinity == "continuous" and medoids:
                    item_scores = medoids.scores(
                        {ids[j]: style[j] for j in cand}, now, settings.profile_half_life_s, settings.affinity_bandwidth
                    )
                pool = 10 if mmr_lambda >= 1.0 else len(cands)
                ranked = blend(cands, scores, weight, pool, mode=settings.blend_mode, item_scores=item_scores or None)
                if mmr_lambda < 1.0:
                    ranked = mmr(ranked, {ids[j]: search[j] for j in cand}, mmr_lambda, 10)
                idx = np.array([row_of[r.candidate.image_id] for r in ranked]) if ranked else np.array([], int)
                distinct.append(len(set(style_arr[idx].tolist())))
                rel = groups == group
                gains_all = rel.astype(float) + (rel & liked).astype(float)
                p10.append(float(rel[idx].mean()) if len(idx) else 0.0)
                nd.append(ndcg_at(gains_all[idx], gains_all, 10))
                if (rel & liked).any():
                    pairs += 1
                    top3.append(float((rel & liked)[idx[:3]].any()))
        out[name] = {
            "top3_preferred_relevant": float(np.mean(top3)) if top3 else None,
            "pairs_with_one": pairs,
            "subject_p10": float(np.mean(p10)),
            "ndcg10": float(np.mean(nd)),
            "distinct_styles10": float(np.mean(distinct)),
        }
    out["p10_ratio"] = out["default"]["subject_p10"] / max(out["weight0"]["subject_p10"], 1e-9)
    return out


def negative_feedback_figures(
    search: NDArray[np.float32],
    style: NDArray[np.float32],
    labels: Sequence[Mapping[str, Any]],
    queries: Sequence[tuple[str, NDArray[np.float32]]],
    settings: Settings,
    k_clusters: int,
    seed: int = 0,
    dislikes: int = 3,
    affinity: str = "cluster",
) -> dict[str, Any]:
    """Issue 15's negative feedback: for every (query, style) whose images fill at least `dislikes` of
    a new user's top-10, that user says "not my style" to that many of them (the product's Profile,
    aversion, demotion and blend; default weights and scale). Share of that style in the top-10
    before and after, the drop, and subject P@10 before and after."""
    ids, cluster, groups, style_arr, n_cand = _ranking_setup(style, labels, settings, k_clusters, seed)
    w_nms = settings.event_weights[EventType.NOT_MY_STYLE]
    drops, p10_before, p10_after, hit80 = [], [], [], []
    for group, qv in queries:
        sims = search @ qv
        cand = np.argsort(-sims)[:n_cand]
        cands = [Candidate(ids[j], float((1 + sims[j]) / 2), int(cluster[j])) for j in cand]
        base = cand[:10]
        rel = groups == group
        for s in sorted(set(style_arr[base].tolist())):
            mine = [j for j in base if style_arr[j] == s]
            if len(mine) < dislikes:
                continue
            prof = Profile(version="eval")
            for n, j in enumerate(mine[:dislikes]):
                prof.add(
                    f"n{n}",
                    int(cluster[j]),
                    w_nms,
                    1000.0 + n,
                    settings.profile_half_life_s,
                    image_id=ids[j],
                    event_type=EventType.NOT_MY_STYLE.value,
                )
                if affinity == "continuous":
                    prof.add_style(
                        style[j].tolist(),
                        w_nms,
                        1000.0 + n,
                        settings.profile_half_life_s,
                        "eval",
                        settings.affinity_merge_sim,
                    )
            now = 1000.0 + dislikes
            item_down = None
            if affinity == "continuous":
                aversion = prof.medoids().aversion(
                    {ids[j]: style[j] for j in cand}, now, settings.profile_half_life_s, settings.affinity_bandwidth
                )
                item_down = demotion(aversion, settings.dislike_scale)
            down = demotion(
                prof.aversion(now, settings.profile_half_life_s, settings.recency_weight), settings.dislike_scale
            )
            ranked = blend(
                cands,
                {},
                settings.personalization_weight,
                10,
                mode=settings.blend_mode,
                demotions=down,
                item_demotions=item_down,
            )
            after = np.array([ids.index(r.candidate.image_id) for r in ranked])
            before_share = len(mine) / 10
            after_share = float((style_arr[after] == s).mean())
            drops.append(1.0 - after_share / before_share)
            hit80.append(drops[-1] >= 0.8)
            p10_before.append(float(rel[base].mean()))
            p10_after.append(float(rel[after].mean()))
    if not drops:
        return {"pairs": 0}
    return {
        "pairs": len(drops),
        "dislikes": dislikes,
        "share_drop_mean": float(np.mean(drops)),
        "share_drop_ge_0.8": float(np.mean(hit80)),
        "subject_p10_before": float(np.mean(p10_before)),
        "subject_p10_after": float(np.mean(p10_after)),
    }


def caption_r10(embedder: Any, stamps: Path) -> dict[str, float]:
    from bench.embeddings_eval import load_stamps, metrics

    captions, images, _ = load_stamps(stamps)
    return metrics(embedder.embed_texts(captions), embedder.embed_images(images))


def photo_sanity(embedder: Any) -> dict[str, float]:
    from PIL import Image
    from skimage import data

    photos = {"cat": data.chelsea(), "rocket": data.rocket()}
    vecs = embedder.embed_images([Image.fromarray(a) for a in photos.values()])
    q = embedder.embed_texts(["a photo of a cat", "a photo of a rocket"])
    sims = q @ vecs.T
    return {
        "cat->cat": float(sims[0, 0]),
        "cat->rocket": float(sims[0, 1]),
        "rocket->rocket": float(sims[1, 1]),
        "rocket->cat": float(sims[1, 0]),
    }


def speed(embedders: Mapping[str, Any], images: Sequence[Any], rounds: int = 3) -> dict[str, float]:
    out = {}
    for name, emb in embedders.items():
        emb.embed_images(images[:16])
        best = 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            for s in range(0, len(images), 16):
                emb.embed_images(images[s : s + 16])
            best = max(best, len(images) / (time.perf_counter() - t0))
        out[name] = best
    return out


def main() -> int:
    from PIL import Image

    from imgsearch.embedding.conse import ConseEmbedder, default_artifact_dir
    from imgsearch.embedding.heads import load_heads
    from imgsearch.embedding.learned import PACKAGED_HEADS, FeatureExtractor, LearnedEmbedder
    from imgsearch.embedding.style import project_style
    from jobs.train_heads import (
        eval_groups,
        extract_features,
        load_labels,
        query_vectors,
        search_metrics,
        style_metrics,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--heads", type=Path, default=PACKAGED_HEADS)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--split", default="test", help="test (the report) or val")
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (default: <dataset>/features)")
    ap.add_argument(
        "--stamps", type=Path, default=Path.home() / ".cache/imgsearch/data/tuxpaint/usr/share/tuxpaint/stamps"
    )
    ap.add_argument("--out", type=Path, default=Path("bench-results/cross_style.json"))
    args = ap.parse_args()

    settings = Settings()
    model_dir = args.model_dir or default_artifact_dir()
    heads = load_heads(args.heads)
    extractor = FeatureExtractor.from_artifacts(model_dir)
    learned = LearnedEmbedder(extractor, heads)
    labels_all = load_labels(args.dataset)
    rows = [i for i, lab in enumerate(labels_all) if lab["split"] == args.split]
    labels = [labels_all[i] for i in rows]
    feats = extract_features(labels, extractor, args.cache or args.dataset / "features")
    groups = eval_groups(labels)
    qvec = query_vectors(groups, extractor.conse.embed_texts)
    with np.load(model_dir / "style_projection.npz") as z:
        gram_proj = {k: z[k] for k in z.files}
    vectors = {
        "today": (normalize_rows(feats["conse"]), project_style(feats["gram"], gram_proj)),
        "learned": (heads.search.embed(feats), heads.style.describe(feats)),
    }
    report: dict[str, Any] = {
        "split": args.split,
        "images": len(labels),
        "heads": str(args.heads),
        "heads_sha256": heads.digest,
        "search": {},
        "style": {},
        "users": {},
    }
    for name, (search, style) in vectors.items():
        report["search"][name] = search_metrics(search, labels, groups, qvec)
        report["style"][name] = {}
        report["users"][name] = {}
        for kind in ("icon", "emoji"):
            idx = [i for i, lab in enumerate(labels) if lab["kind"] == kind]
            if len({labels[i]["style"] for i in idx}) < 2:
                continue
            sub = [labels[i] for i in idx]
            report["style"][name][kind] = style_metrics(style[idx], sub)
            kind_queries = [(g.name, qvec[g.query]) for g in groups if g.kind == kind]
            report["users"][name][kind] = personalised_figures(
                search[idx], style[idx], sub, kind_queries, settings, len({lab["style"] for lab in sub})
            )
            # issue 15: the same users with the continuous style affinity (both modes always shown)
            report["users"][name][kind]["continuous"] = personalised_figures(
                search[idx],
                style[idx],
                sub,
                kind_queries,
                settings,
                len({lab["style"] for lab in sub}),
                affinity="continuous",
            )
            report["users"][name][kind]["not_my_style"] = negative_feedback_figures(
                search[idx], style[idx], sub, kind_queries, settings, len({lab["style"] for lab in sub})
            )
    conse = ConseEmbedder(model_dir)
    if args.stamps.is_dir():
        report["captions"] = {"today": caption_r10(conse, args.stamps), "learned": caption_r10(learned, args.stamps)}
    report["photos"] = {"today": photo_sanity(conse), "learned": photo_sanity(learned)}
    imgs = []
    for lab in labels[:160]:
        with Image.open(lab["file"]) as im:
            imgs.append(im.convert("RGB"))
    report["images_per_s"] = speed({"today": conse, "learned": learned}, imgs)
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")
    return 0


def _f(x: Any) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def print_report(r: Mapping[str, Any]) -> None:
    print(f"\n{r['split']} families: {r['images']} images; heads {r['heads_sha256']}")
    print(f"\n{'search (no personalization)':34} {'target':>7} {'today':>7} {'learned':>7}")
    for kind in ("icon", "emoji"):
        for m in ("recall@50", "p@10", "held_out_recall@50", "held_out_p@10"):
            t = SEARCH_TARGETS[kind].get(m.replace("held_out_", ""))
            today = r["search"]["today"].get(kind, {}).get(m)
            new = r["search"]["learned"].get(kind, {}).get(m)
            print(f"  {kind:6} {m:26} {_f(t)} {_f(today)} {_f(new)}")
        q = r["search"]["learned"].get(kind, {})
        print(f"  {kind:6} queries: {q.get('queries')} ({q.get('held_out_queries')} held out)")
    print(f"\n{'style clusters (K = styles)':34} {'target':>7} {'today':>7} {'learned':>7}")
    for kind in ("icon", "emoji"):
        for m, t in (("purity", TARGETS["purity"]), ("nmi_subject", TARGETS["nmi_subject"])):
            today = r["style"]["today"].get(kind, {}).get(m)
            new = r["style"]["learned"].get(kind, {}).get(m)
            print(f"  {kind:6} {m:26} {_f(t)} {_f(today)} {_f(new)}")
    print(f"\n{'simulated users':34} {'target':>7} {'today':>7} {'learned':>7}")
    for kind in ("icon", "emoji"):
        if kind not in r["users"]["learned"]:
            continue
        for m in ("top3_preferred_relevant", "subject_p10", "ndcg10"):
            for w in ("weight0", "default"):
                t = TARGETS["top3"] if (m.startswith("top3") and w == "default") else None
                today = r["users"]["today"][kind][w][m]
                new = r["users"]["learned"][kind][w][m]
                print(f"  {kind:6} {m + ' ' + w:26} {_f(t)} {_f(today)} {_f(new)}")
        for m in ("top3_preferred_relevant", "subject_p10", "ndcg10"):
            today = r["users"]["today"][kind]["continuous"]["default"][m]
            new = r["users"]["learned"][kind]["continuous"]["default"][m]
            print(f"  {kind:6} {m + ' continuous':26} {_f(None)} {_f(today)} {_f(new)}")
        print(
            f"  {kind:6} {'P@10 personalised/unpers.':26} {_f(TARGETS['p10_ratio'])} "
            f"{_f(r['users']['today'][kind]['p10_ratio'])} {_f(r['users']['learned'][kind]['p10_ratio'])}"
        )
    print(f"\n{'negative feedback (3 x not my style)':34} {'target':>7} {'today':>7} {'learned':>7}")
    for kind in ("icon", "emoji"):
        if kind not in r["users"]["learned"]:
            continue
        for m, t in (
            ("share_drop_mean", 0.8),
            ("share_drop_ge_0.8", None),
            ("subject_p10_before", None),
            ("subject_p10_after", None),
        ):
            today = r["users"]["today"][kind].get("not_my_style", {}).get(m)
            new = r["users"]["learned"][kind].get("not_my_style", {}).get(m)
            print(f"  {kind:6} {m:26} {_f(t)} {_f(today)} {_f(new)}")
    if "captions" in r:
        print(
            f"\n  captions R@10 (all)               {_f(TARGETS['caption_r10'])} "
            f"{_f(r['captions']['today']['R@10'])} {_f(r['captions']['learned']['R@10'])}"
        )
    for name in ("today", "learned"):
        p = r["photos"][name]
        print(
            f"  photos {name:8} cat->cat {p['cat->cat']:.3f} vs cat->rocket {p['cat->rocket']:.3f}; "
            f"rocket->rocket {p['rocket->rocket']:.3f} vs rocket->cat {p['rocket->cat']:.3f}"
        )
    s = r["images_per_s"]
    print(f"  images/s (batch 16): today {s['today']:.1f}, learned {s['learned']:.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
