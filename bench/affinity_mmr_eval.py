"""Issue 15: continuous style affinity vs the cluster profile, and the MMR diversity curve.

The simulated users and ranking of bench/cross_style_eval.py (the product's Profile, style medoids,
normalise, blend and MMR over exact k-NN with the query worker's 50 candidates), on the shipped heads'
vectors:

1. VALIDATION families: the continuous mode's bandwidth and merge threshold are chosen by the graded
   nDCG@10 at the default weight (mean over icons and emoji); the local default mode is the one with
   the higher validation nDCG@10. Nothing is chosen on the test families.
2. TEST families: both modes with the chosen parameters (top-3, subject P@10, graded nDCG@10 at weight
   0 and the default), and "not my style" (3 events) in both modes.
3. TEST families: MMR λ curve - distinct styles in the top-10 vs subject P@10 and graded nDCG@10, for a
   new user (weight 0) and the personalised users (default weight, chosen mode); a picture.

    .venv/bin/python bench/affinity_mmr_eval.py --dataset ~/.cache/imgsearch/datasets/styles-v2 \\
        [--cache DIR] [--out bench-results/affinity_mmr.json] [--plot docs/img/mmr_curve.png]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cross_style_eval import negative_feedback_figures, personalised_figures
from imgsearch.config import Settings

BANDWIDTHS = (0.05, 0.1, 0.2, 0.4, 0.8)
MERGE_SIMS = (0.5, 0.7, 0.8, 0.9)
LAMBDAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2)


def split_vectors(args: argparse.Namespace, split: str) -> dict[str, Any]:
    from imgsearch.embedding.conse import default_artifact_dir
    from imgsearch.embedding.heads import load_heads
    from imgsearch.embedding.learned import PACKAGED_HEADS, FeatureExtractor
    from jobs.train_heads import eval_groups, extract_features, load_labels, query_vectors

    heads = load_heads(args.heads or PACKAGED_HEADS)
    extractor = FeatureExtractor.from_artifacts(default_artifact_dir())
    labels_all = load_labels(args.dataset)
    labels = [lab for lab in labels_all if lab["split"] == split and lab["kind"] in ("icon", "emoji")]
    feats = extract_features(labels, extractor, args.cache or args.dataset / "features")
    groups = eval_groups(labels)
    qvec = query_vectors(groups, extractor.conse.embed_texts)
    search, style = heads.search.embed(feats), heads.style.describe(feats)
    out: dict[str, Any] = {}
    for kind in ("icon", "emoji"):
        idx = [i for i, lab in enumerate(labels) if lab["kind"] == kind]
        sub = [labels[i] for i in idx]
        if len({lab["style"] for lab in sub}) < 2:
            continue
        out[kind] = {
            "search": search[idx],
            "style": style[idx],
            "labels": sub,
            "queries": [(g.name, qvec[g.query]) for g in groups if g.kind == kind],
            "k": len({lab["style"] for lab in sub}),
        }
    return out


def figures(data: dict[str, Any], settings: Settings, **kw: Any) -> dict[str, Any]:
    return {
        kind: personalised_figures(d["search"], d["style"], d["labels"], d["queries"], settings, d["k"], **kw)
        for kind, d in data.items()
    }


def mean_ndcg(figs: dict[str, Any]) -> float:
    return float(np.mean([f["default"]["ndcg10"] for f in figs.values()]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--heads", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (default: <dataset>/features)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/affinity_mmr.json"))
    ap.add_argument("--plot", type=Path, default=Path("docs/img/mmr_curve.png"))
    ap.add_argument(
        "--only-compare",
        default=None,
        metavar="SPLIT",
        help="only print both modes (Settings' continuous parameters) on SPLIT, e.g. train (a further check)",
    )
    args = ap.parse_args()
    base = Settings()
    if args.only_compare:
        data = split_vectors(args, args.only_compare)
        for mode in ("cluster", "continuous"):
            print(f"{args.only_compare} {mode}: {json.dumps(_brief(figures(data, base, affinity=mode)))}")
        return 0
    report: dict[str, Any] = {"validation": {}, "test": {}}

    # 1. choose on validation
    val = split_vectors(args, "val")
    cluster_val = figures(val, base)
    grid: list[dict[str, Any]] = []
    for bw, ms in itertools.product(BANDWIDTHS, MERGE_SIMS):
        s = base.replace(affinity_bandwidth=bw, affinity_merge_sim=ms)
        figs = figures(val, s, affinity="continuous")
        grid.append({"bandwidth": bw, "merge_sim": ms, "ndcg10": mean_ndcg(figs), "per_kind": _brief(figs)})
        print(f"val continuous bandwidth {bw:<5} merge {ms:<4} nDCG@10 {grid[-1]['ndcg10']:.4f}", flush=True)
    best = max(grid, key=lambda g: g["ndcg10"])
    chosen_mode = "continuous" if best["ndcg10"] > mean_ndcg(cluster_val) else "cluster"
    report["validation"] = {
        "cluster": {"ndcg10": mean_ndcg(cluster_val), "per_kind": _brief(cluster_val)},
        "grid": grid,
        "best": {k: best[k] for k in ("bandwidth", "merge_sim", "ndcg10")},
        "chosen_mode": chosen_mode,
    }
    print(f"val cluster nDCG@10 {mean_ndcg(cluster_val):.4f}; best continuous {best}; chosen {chosen_mode}")

    # 2. report on test, both modes
    chosen = base.replace(affinity_bandwidth=best["bandwidth"], affinity_merge_sim=best["merge_sim"])
    test = split_vectors(args, "test")
    for mode in ("cluster", "continuous"):
        figs = figures(test, chosen, affinity=mode)
        report["test"][mode] = figs
        for kind, d in test.items():
            figs[kind]["not_my_style"] = negative_feedback_figures(
                d["search"], d["style"], d["labels"], d["queries"], chosen, d["k"], affinity=mode
            )

    # 3. the MMR curve on test
    curve: dict[str, Any] = {}
    for lam in LAMBDAS:
        figs = figures(test, chosen, affinity=chosen_mode, mmr_lambda=lam)
        curve[str(lam)] = _brief(figs)
        print(f"test MMR lambda {lam}: {json.dumps(curve[str(lam)])}", flush=True)
    report["test"]["mmr_curve"] = curve
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    plot(curve, args.plot)
    print(f"\nwrote {args.out} and {args.plot}")
    return 0


def _brief(figs: dict[str, Any]) -> dict[str, Any]:
    keys = ("top3_preferred_relevant", "subject_p10", "ndcg10", "distinct_styles10")
    return {kind: {w: {k: f[w][k] for k in keys} for w in ("weight0", "default")} for kind, f in figs.items()}


def _f(x: Any) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def print_report(r: dict[str, Any]) -> None:
    v = r["validation"]
    print(f"\nvalidation: cluster nDCG@10 {v['cluster']['ndcg10']:.4f}, continuous best {v['best']}")
    print(f"chosen local default: {v['chosen_mode']}")
    print(f"\n{'test families':36} {'cluster':>8} {'continuous':>10}")
    for kind in r["test"]["cluster"]:
        for w in ("weight0", "default"):
            for m in ("top3_preferred_relevant", "subject_p10", "ndcg10", "distinct_styles10"):
                a = r["test"]["cluster"][kind][w][m]
                b = r["test"]["continuous"][kind][w][m]
                print(f"  {kind:6} {m + ' ' + w:28} {_f(a)}   {_f(b)}")
        for m in ("share_drop_mean", "share_drop_ge_0.8", "subject_p10_before", "subject_p10_after"):
            a = r["test"]["cluster"][kind]["not_my_style"].get(m)
            b = r["test"]["continuous"][kind]["not_my_style"].get(m)
            print(f"  {kind:6} {'not_my_style ' + m:28} {_f(a)}   {_f(b)}")
    print(f"\nMMR on test ({v['chosen_mode']}): lambda, kind, weight: distinct styles / P@10 / nDCG@10")
    for lam, per in r["test"]["mmr_curve"].items():
        cells = [
            f"{kind} {w}: {x['distinct_styles10']:.2f} / {x['subject_p10']:.3f} / {x['ndcg10']:.3f}"
            for kind, ws in per.items()
            for w, x in ws.items()
        ]
        print(f"  {lam:>4}  " + " | ".join(cells))


def plot(curve: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(next(iter(curve.values())))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 4.0), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for w, marker in (("weight0", "o"), ("default", "s")):
            xs = [curve[lam][kind][w]["distinct_styles10"] for lam in curve]
            for metric, ls in (("subject_p10", "-"), ("ndcg10", "--")):
                ys = [curve[lam][kind][w][metric] for lam in curve]
                who = "new user" if w == "weight0" else "personalised"
                ax.plot(xs, ys, ls, marker=marker, label=f"{metric} ({who})")
                if metric == "subject_p10" and w == "weight0":
                    for lam, x, y in zip(curve, xs, ys, strict=True):
                        ax.annotate(f"λ={lam}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"{kind}s, test families: MMR λ")
        ax.set_xlabel("distinct styles in the top-10")
        ax.set_ylabel("relevance")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
