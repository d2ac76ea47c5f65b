"""Two-source candidates (issue 15): does a user's style reach the top-10 in a large catalog, and at what cost?

The real icon and emoji vectors of one split of the cross-style set (the product's learned search and
style heads, styles-v2) are mixed with synthetic distractors up to ``--total`` documents (default
100,000) and bulk-loaded into OpenSearch (the product's mapping: lucene HNSW, cosine). Distractor
search vectors are drawn from a Gaussian fitted to the real search vectors (their mean and covariance:
"more icons", relevant to no query) and take the style cluster of a random real image. Style clusters:
K-Means on the style vectors at K = number of styles, as the product. The simulated users and their
profiles are the cross-style evaluation's (history on images of no query subject, 20 % noise; one-
and two-style users).

For every (user, query) the product's own code ranks: ``OpenSearchIndex.knn`` (the global top-N,
N = IMGSEARCH_MIN_CANDIDATES) or ``OpenSearchIndex.knn_sources`` (the global top-N plus the top-M within
each of the user's S best clusters, one ``_msearch``), then ``normalise`` and ``blend`` at the default
weight. Reported, without and with the second source:

* reach: share of pairs whose top-10 holds a relevant image of a preferred style; and of the pairs
  where no such image is in the global top-N at all, the share that gets one into the top-10;
* subject P@10 and graded nDCG@10 (2 = subject and preferred style, 1 = subject only);
* latency of the k-NN call(s) as the query worker makes them (client side, ms): p50 / p99.

``--grid`` tries several (S, M) and is meant for the validation split (the choice of the defaults);
the test split is reported with the chosen ones.

    .venv/bin/python bench/two_source_eval.py --split val --grid
    .venv/bin/python bench/two_source_eval.py --split test --sources 1 --per-source 50
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench.cross_style_eval import simulate_users
from imgsearch.config import Settings
from imgsearch.domain.blend import blend
from imgsearch.domain.centroids import kmeans
from imgsearch.domain.profile import Profile, normalise
from imgsearch.index.opensearch import OpenSearchIndex, mapping
from imgsearch.quality import ndcg_at
from imgsearch.ranker.base import RankerResult
from streams import retrieval

MODEL_ID = "bench-two-source"


def distractors(search: NDArray[np.float32], count: int, seed: int) -> NDArray[np.float32]:
    """``count`` unit vectors from a Gaussian with the real vectors' mean and covariance."""
    rng = np.random.default_rng(seed)
    mu = search.mean(axis=0)
    cov = np.cov(search - mu, rowvar=False)
    out = rng.multivariate_normal(mu, cov, size=count, method="eigh").astype(np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


async def load(
    index: OpenSearchIndex, ids: Sequence[str], vectors: NDArray[np.float32], clusters: Sequence[int]
) -> None:
    dim = int(vectors.shape[1])
    client = index.client
    if await client.indices.exists(index=index.index):
        count = (await client.count(index=index.index))["count"]
        if count == len(ids):
            print(f"index {index.index} already holds {count} documents: reused", file=sys.stderr)
            return
        await client.indices.delete(index=index.index)
    body = mapping(dim, MODEL_ID)
    body["settings"]["index"]["refresh_interval"] = "-1"
    await client.indices.create(index=index.index, body=body)
    t0 = time.perf_counter()
    batch = 2000
    for s in range(0, len(ids), batch):
        ops: list[dict[str, Any]] = []
        for i in range(s, min(s + batch, len(ids))):
            ops.append({"index": {"_index": index.index, "_id": ids[i]}})
            ops.append({"image_id": ids[i], "embedding": vectors[i].tolist(), "cluster_id": int(clusters[i])})
        resp = await client.bulk(body=ops, request_timeout=300)
        if resp.get("errors"):
            raise RuntimeError(f"bulk errors: {[it for it in resp['items'] if it['index'].get('error')][:2]}")
        print(f"  loaded {min(s + batch, len(ids))}/{len(ids)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    await client.indices.put_settings(index=index.index, body={"index": {"refresh_interval": "1s"}})
    await client.indices.refresh(index=index.index, request_timeout=600)
    print(f"loaded {len(ids)} documents in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def evaluate(
    index: OpenSearchIndex,
    pairs: Sequence[tuple[dict[str, Any], str, NDArray[np.float32]]],
    ids: Sequence[str],
    groups: NDArray[Any],
    liked_of: Mapping[str, NDArray[np.bool_]],
    affinity: Mapping[str, dict[int, float]],
    k_clusters: int,
    settings: Settings,
    sources_n: int,
    per_source: int,
) -> dict[str, Any]:
    """One configuration (sources_n = 0: the global k-NN only) over every (user, query) pair."""
    pos = {image_id: i for i, image_id in enumerate(ids[: len(groups)])}  # the real images only
    n = retrieval.global_candidates(settings, 10, 10)  # the query worker's, for k = 10
    p10, nd, reach, rescued, lat, extra_n = [], [], [], [], [], []
    unreachable = 0
    for user, group, qv in pairs:
        aff = affinity[user["user"]]
        rel = groups == group
        good = rel & liked_of[user["user"]]
        everything = RankerResult(normalise(aff, list(range(k_clusters))), bool(aff), "bench")
        styles = retrieval.preferred_clusters(everything, sources_n)
        srcs: list[tuple[int, dict[str, Any] | None]] = [(n, None)]
        srcs += [(per_source, retrieval.style_filter(c, None)) for c in styles]
        t0 = time.perf_counter()
        found = await index.knn_sources(qv.tolist(), srcs)
        lat.append((time.perf_counter() - t0) * 1000)
        cands, extra = retrieval.union(found)
        extra_n.append(extra)
        scores = normalise(aff, sorted({c.cluster_id for c in cands}))
        ranked = blend(cands, scores, settings.personalization_weight, 10, mode=settings.blend_mode)
        top = [r.candidate.image_id for r in ranked]
        real = [pos[i] for i in top if i in pos]
        gains_all = rel.astype(float) + good.astype(float)
        g_top = np.array([gains_all[pos[i]] if i in pos else 0.0 for i in top])
        p10.append(float(np.mean([rel[pos[i]] if i in pos else False for i in top])) if top else 0.0)
        nd.append(ndcg_at(g_top, gains_all, 10))
        hit = any(good[j] for j in real)
        reach.append(float(hit))
        global_ids = {c.image_id for c in found[0]}
        if not any(good[pos[i]] for i in global_ids if i in pos):
            unreachable += 1
            rescued.append(float(hit))
    return {
        "style_sources": sources_n,
        "per_source": per_source,
        "pairs": len(pairs),
        "top10_has_preferred_relevant": float(np.mean(reach)),
        "pairs_none_in_global_topN": unreachable,
        "of_those_reaching_top10": float(np.mean(rescued)) if rescued else None,
        "subject_p10": float(np.mean(p10)),
        "ndcg10": float(np.mean(nd)),
        "extra_candidates_mean": float(np.mean(extra_n)),
        "knn_ms_p50": pct(lat, 50),
        "knn_ms_p99": pct(lat, 99),
    }


def real_vectors(dataset: Path, split: str, cache: Path | None) -> tuple[list[dict[str, Any]], Any, Any, Any]:
    from imgsearch.embedding.conse import default_artifact_dir
    from imgsearch.embedding.heads import load_heads
    from imgsearch.embedding.learned import PACKAGED_HEADS, FeatureExtractor
    from jobs.train_heads import eval_groups, extract_features, load_labels, query_vectors

    heads = load_heads(PACKAGED_HEADS)
    extractor = FeatureExtractor.from_artifacts(default_artifact_dir())
    labels = [lab for lab in load_labels(dataset) if lab["split"] == split and lab["kind"] in ("icon", "emoji")]
    feats = extract_features(labels, extractor, cache or dataset / "features")
    groups = eval_groups(labels)
    qvec = query_vectors(groups, extractor.conse.embed_texts)
    search = heads.search.embed(feats).astype(np.float32)
    style = heads.style.describe(feats).astype(np.float32)
    queries = [(g.name, qvec[g.query]) for g in groups]
    return labels, search, style, queries


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    labels, search, style, queries = real_vectors(args.dataset, args.split, args.cache)
    styles = sorted({str(lab["style"]) for lab in labels})
    k_clusters = len(styles)
    centroids, _ = kmeans(style, k_clusters, seed=args.seed)
    cluster = np.argmax(style @ centroids.T, axis=1)
    n_fake = max(0, args.total - len(labels))
    fake = distractors(search, n_fake, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    fake_cluster = cluster[rng.integers(0, len(labels), size=n_fake)]
    ids = [str(lab["image_id"]) for lab in labels] + [f"distractor-{i}" for i in range(n_fake)]
    vectors = np.concatenate([search, fake]) if n_fake else search
    clusters = np.concatenate([cluster, fake_cluster]).tolist()
    groups = np.array([lab.get("group") or "" for lab in labels])
    style_arr = np.array([lab["style"] for lab in labels])
    cluster_of = dict(zip(ids, clusters, strict=False))

    users = simulate_users(labels, styles, args.seed)
    now = 1000.0 + 100
    affinity: dict[str, dict[int, float]] = {}
    liked_of: dict[str, NDArray[np.bool_]] = {}
    for u in users:
        prof = Profile(version="eval")
        for n, (image_id, w) in enumerate(u["events"]):
            prof.add(f"{u['user']}-{n}", cluster_of[image_id], w, 1000.0 + n, settings.profile_half_life_s)
        affinity[u["user"]] = prof.affinity(now, settings.profile_half_life_s, settings.recency_weight)
        liked_of[u["user"]] = np.isin(style_arr, u["likes"])
    # the pairs where the catalog holds a relevant image of a preferred style (else nothing to reach)
    pairs = [(u, g, qv) for u in users for g, qv in queries if ((groups == g) & liked_of[u["user"]]).any()]
    random.Random(args.seed).shuffle(pairs)
    pairs = pairs[: args.max_pairs]

    index = OpenSearchIndex(
        settings.opensearch_url, f"{args.index}-{args.split}-{args.total}", timeout_s=120.0, settings=settings
    )
    try:
        await load(index, ids, vectors, clusters)
        if args.load_only:
            return {"split": args.split, "documents": len(ids), "loaded_only": True}
        await index.knn_sources(queries[0][1].tolist(), [(50, None)])  # warm up
        configs = [(0, 0)]
        if args.grid:
            configs += [
                (s, m)
                for s in (int(x) for x in args.grid_sources.split(","))
                if s <= k_clusters
                for m in (int(x) for x in args.grid_per_source.split(","))
            ]
        else:
            configs.append((args.sources, args.per_source))
        results = []
        for s, m in configs:
            r = await evaluate(index, pairs, ids, groups, liked_of, affinity, k_clusters, settings, s, m)
            results.append(r)
            print(json.dumps(r), file=sys.stderr)
    finally:
        await index.close()
    return {
        "split": args.split,
        "documents": len(ids),
        "real_images": len(labels),
        "styles": styles,
        "users": len(users),
        "queries": len(queries),
        "weight": settings.personalization_weight,
        "global_candidates": retrieval.global_candidates(settings, 10, 10),
        "results": results,
    }


def print_report(r: Mapping[str, Any]) -> None:
    print(
        f"split {r['split']}: {r['documents']} documents ({r['real_images']} real, styles {', '.join(r['styles'])}), "
        f"{r['users']} users, {r['queries']} queries, weight {r['weight']}, global top-{r['global_candidates']}"
    )
    head = (
        f"{'S':>2} {'M':>3} {'pairs':>6} {'top10 pref+rel':>15} {'none in top-N':>14} {'-> reach top10':>15} "
        f"{'P@10':>6} {'nDCG@10':>8} {'+cands':>7} {'p50 ms':>7} {'p99 ms':>7}"
    )
    print(head)
    for x in r["results"]:
        rescued = "-" if x["of_those_reaching_top10"] is None else f"{x['of_those_reaching_top10']:.3f}"
        print(
            f"{x['style_sources']:>2} {x['per_source']:>3} {x['pairs']:>6} {x['top10_has_preferred_relevant']:>15.3f} "
            f"{x['pairs_none_in_global_topN']:>14} {rescued:>15} {x['subject_p10']:>6.3f} {x['ndcg10']:>8.3f} "
            f"{x['extra_candidates_mean']:>7.1f} {x['knn_ms_p50']:>7.1f} {x['knn_ms_p99']:>7.1f}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=Path.home() / ".cache/imgsearch/datasets/styles-v2")
    ap.add_argument("--split", default="val", help="val (the choice) or test (the report)")
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (default: <dataset>/features)")
    ap.add_argument("--total", type=int, default=100_000, help="documents in the index, distractors included")
    ap.add_argument(
        "--grid", action="store_true", help="try every S of --grid-sources with every M of --grid-per-source"
    )
    ap.add_argument("--grid-sources", default="1,2,3")
    ap.add_argument("--grid-per-source", default="10,20,50")
    ap.add_argument("--sources", type=int, default=Settings().style_sources)
    ap.add_argument("--per-source", type=int, default=Settings().style_candidates)
    ap.add_argument("--max-pairs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", default="bench-two-source")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--load-only", action="store_true", help="load the index (if needed) and stop")
    args = ap.parse_args()
    report = asyncio.run(run(args))
    if report.get("loaded_only"):
        print(f"loaded {report['documents']} documents ({args.split})")
        return 0
    print_report(report)
    out = args.out or Path(f"bench-results/two_source_{args.split}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
