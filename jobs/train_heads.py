"""``imgsearch train-heads``: learn the search head and the style head from the subject x style sets.

Protocol (docs/embeddings.md "Learned heads", docs/datasets.md for the split):
* every image belongs to a style family, and every family to one split (train / val / test), fixed in
  `imgsearch.datasets.splits`; subjects whose evaluation group is held out never reach training;
* heads are fitted on the train families only; every choice (architecture, temperature, the mix
  with ConSE, the style head's settings) is made on the val families; the test families are scored
  once, at the end, and written into the manifest beside the val figures;
* the Tux Paint captions are never read here (they stay the held-out caption benchmark).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from tqdm import tqdm

from imgsearch.datasets.augment import AUGMENTATIONS, augment
from imgsearch.datasets.groups import EvalGroup, eval_group_of, eval_groups, held_out_group
from imgsearch.domain.centroids import kmeans
from imgsearch.embedding.base import normalize_rows
from imgsearch.embedding.heads import (
    SearchHead,
    SearchTrainConfig,
    StyleHead,
    StyleTrainConfig,
    as_stored,
    save_heads,
    train_search_head,
    train_style_head,
)
from imgsearch.embedding.learned import PACKAGED_HEADS, FeatureExtractor, Features
from imgsearch.quality import nmi, purity, recall_and_precision, top_k

log = logging.getLogger(__name__)

# A small slice of the test families that is cheap to fetch (Debian papirus + suru, npm openmoji: ~30 MB):
# the manifest records the shipped heads' figures on it, and a test recomputes them from the images.
SMOKE_FAMILIES = ("papirus", "suru", "openmoji")
# a style config must beat the grid's first (the incumbent) by more than this on validation to replace it
STYLE_MARGIN = 0.01


def smoke_dataset(out: Path | None = None, quiet: bool = True) -> Path:
    """Build (or find) the smoke slice's dataset: only SMOKE_FAMILIES, every icon name they draw."""
    from imgsearch.datasets import styles

    out = out or styles.dataset_dir().with_name("styles-smoke")
    return styles.build(
        out=out, styles=SMOKE_FAMILIES, kinds=("icon", "emoji"), min_families=1, curated_only=True, quiet=quiet
    )


def smoke_rows(labels: Sequence[Mapping[str, Any]]) -> list[int]:
    """The smoke slice: images of SMOKE_FAMILIES that belong to an evaluation group."""
    return [i for i, lab in enumerate(labels) if lab["family"] in SMOKE_FAMILIES and lab.get("group")]


def smoke_report(
    search: SearchHead,
    style: StyleHead,
    labels: Sequence[Mapping[str, Any]],
    features: Features,
    embed_texts: Callable[[Sequence[str]], NDArray[np.float32]],
) -> dict[str, Any]:
    """The figures of the smoke slice (labels and features of that slice only)."""
    groups = eval_groups(labels)
    qvec = query_vectors(groups, embed_texts)
    out: dict[str, Any] = {
        "families": list(SMOKE_FAMILIES),
        "images": len(labels),
        "image_ids_sha256": hashlib.sha256("\n".join(str(lab["image_id"]) for lab in labels).encode()).hexdigest(),
        "search": _brief(search_metrics(search.embed(features), labels, groups, qvec)),
    }
    icons_idx = np.array([i for i, lab in enumerate(labels) if lab["kind"] == "icon"], dtype=np.int64)
    if len({labels[i]["style"] for i in icons_idx}) >= 2:
        out["style_icon"] = style_metrics(style.describe(take(features, icons_idx)), [labels[i] for i in icons_idx])
    return out


# ----------------------------------------------------------------------------- data + features
def query_vectors(
    groups: Sequence[EvalGroup], embed_texts: Callable[[Sequence[str]], NDArray[np.float32]]
) -> dict[str, NDArray[np.float32]]:
    """The text vector of every evaluation query, by query text."""
    texts = sorted({g.query for g in groups})
    return dict(zip(texts, embed_texts(texts), strict=True))


def load_labels(root: Path) -> list[dict[str, Any]]:
    """A styles dataset's rows (sorted by image id, with ``file``) and each row's evaluation ``group``."""
    from imgsearch.datasets import styles

    labels = styles.load_labels(root)
    for lab in labels:
        lab["group"] = eval_group_of(lab)
    return labels


def extract_features(
    labels: Sequence[Mapping[str, Any]],
    extractor: FeatureExtractor,
    cache: Path | None,
    batch: int = 64,
    augmentation: str | None = None,
) -> Features:
    """Features of every labelled image (or of its `augmentation` copy), cached under `cache` in chunks
    of 1024 images (each an .npz keyed by its image ids, the augmentation and the frozen models' ids),
    so an interrupted run resumes."""
    models = extractor.conse.model_id + extractor.gram.model_id + (f"+aug:{augmentation}" if augmentation else "")
    chunk = 1024
    parts: dict[str, list[np.ndarray]] = {}
    desc = f"features ({augmentation})" if augmentation else "features"
    with tqdm(total=len(labels), desc=desc, unit="img", file=sys.stderr) as bar:
        for c in range(0, len(labels), chunk):
            rows = labels[c : c + chunk]
            key = hashlib.sha256(("\n".join(str(lab["image_id"]) for lab in rows) + models).encode()).hexdigest()[:16]
            path = cache / f"features-{key}.npz" if cache else None
            if path is not None and path.is_file():
                with np.load(path) as z:
                    got = {k: z[k] for k in z.files}
                bar.update(len(rows))
            else:
                acc: dict[str, list[np.ndarray]] = {}
                for s in range(0, len(rows), batch):
                    imgs = []
                    for lab in rows[s : s + batch]:
                        with Image.open(lab["file"]) as im:
                            imgs.append(
                                augment(im, augmentation, str(lab["image_id"])) if augmentation else im.convert("RGB")
                            )
                    for k, v in extractor.extract(imgs).items():
                        acc.setdefault(k, []).append(v)
                    bar.update(len(imgs))
                got = {k: np.concatenate(v, axis=0).astype(np.float32) for k, v in acc.items()}
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp.npz")
                    np.savez(tmp, **got)
                    tmp.rename(path)
            for k, v in got.items():
                parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def take(features: Features, idx: NDArray[np.int64]) -> Features:
    return {k: v[idx] for k, v in features.items()}


# ----------------------------------------------------------------------------- evaluation
def search_metrics(
    vectors: NDArray[np.float32],
    labels: Sequence[Mapping[str, Any]],
    groups: Sequence[EvalGroup],
    query_vectors: Mapping[str, NDArray[np.float32]],
) -> dict[str, Any]:
    """Cross-style recall@50 and subject P@10, per kind, over the given gallery."""
    out: dict[str, Any] = {}
    gal_groups = np.array([lab.get("group") or "" for lab in labels])
    for kind in ("icon", "emoji"):
        gs = [g for g in groups if g.kind == kind and (gal_groups == g.name).sum() >= 2]
        if not gs:
            continue
        q = np.stack([query_vectors[g.query] for g in gs])
        ranked = top_k(q, vectors, 50)
        rel = [gal_groups == g.name for g in gs]
        rec, prec = recall_and_precision(ranked, rel)
        held = np.array([held_out_group(g.name) for g in gs])
        out[kind] = {
            "queries": len(gs),
            "recall@50": float(np.nanmean(rec)),
            "p@10": float(np.nanmean(prec)),
            "held_out_queries": int(held.sum()),
            "held_out_recall@50": float(np.nanmean(rec[held])) if held.any() else None,
            "held_out_p@10": float(np.nanmean(prec[held])) if held.any() else None,
            "per_query": {g.name: [float(r), float(p)] for g, r, p in zip(gs, rec, prec, strict=True)},
        }
    return out


def style_metrics(vectors: NDArray[np.float32], labels: Sequence[Mapping[str, Any]], seeds: int = 3) -> dict[str, Any]:
    """K-Means (the product's spherical k-means) at K = number of styles: purity vs style, NMI vs subject."""
    styles = [str(lab["style"]) for lab in labels]
    subjects = [str(lab["subject"]) for lab in labels]
    k = len(set(styles))
    pur, nmi_style, nmi_subj = [], [], []
    for seed in range(seeds):
        centroids, _ = kmeans(vectors, k, seed=seed)
        assign = np.argmax(vectors @ centroids.T, axis=1)
        pur.append(purity(styles, assign))
        nmi_style.append(nmi(styles, assign))
        nmi_subj.append(nmi(subjects, assign))
    return {
        "k": k,
        "purity": float(np.mean(pur)),
        "nmi_style": float(np.mean(nmi_style)),
        "nmi_subject": float(np.mean(nmi_subj)),
        "seeds": seeds,
    }


# ----------------------------------------------------------------------------- the job
@dataclass
class TrainResult:
    search: SearchHead
    style: StyleHead
    report: dict[str, Any]


def _split_idx(
    labels: Sequence[Mapping[str, Any]], split: str, kinds: Sequence[str] | None = None
) -> NDArray[np.int64]:
    return np.array(
        [i for i, lab in enumerate(labels) if lab["split"] == split and (kinds is None or lab["kind"] in kinds)],
        dtype=np.int64,
    )


def style_folds(
    labels: Sequence[Mapping[str, Any]], train_rows: NDArray[np.int64], n_folds: int = 3
) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Leave-families-out folds over the train icon families (sorted, dealt round-robin): per fold,
    (rows to fit on: every train row of the other families, icon rows of the held-out families)."""
    families = sorted({str(labels[i]["family"]) for i in train_rows if labels[i]["kind"] == "icon"})
    out = []
    for f in range(n_folds):
        held = set(families[f::n_folds])
        fit_idx = np.array([i for i in train_rows if labels[i]["family"] not in held], dtype=np.int64)
        held_idx = np.array(
            [i for i in train_rows if labels[i]["family"] in held and labels[i]["kind"] == "icon"], dtype=np.int64
        )
        if len({labels[i]["style"] for i in held_idx}) >= 2:
            out.append((fit_idx, held_idx))
    return out


def train(
    labels: Sequence[dict[str, Any]],
    features: Features,
    embed_texts: Callable[[Sequence[str]], NDArray[np.float32]],
    *,
    search_grid: Sequence[SearchTrainConfig],
    style_grid: Sequence[StyleTrainConfig],
    mixes: Sequence[float] = (0.5, 0.65, 0.8, 0.9, 1.0),
    curated_text: bool = True,
    refit_on_val: bool = False,
    augmented: Mapping[str, tuple[NDArray[np.int64], Features]] | None = None,
) -> TrainResult:
    """Fit on the train families, choose on val (search configs x mixes x with/without the `augmented`
    copies: augmentation name -> (label rows, their features)), optionally refit the choice on train+val."""
    report: dict[str, Any] = {"search_candidates": [], "style_candidates": []}
    groups = eval_groups(labels)
    qvec = query_vectors(groups, embed_texts)

    # training rows: train families, minus held-out subjects and everything in a held-out evaluation group
    def fit_rows(splits: Sequence[str]) -> NDArray[np.int64]:
        return np.array(
            [
                i
                for i, lab in enumerate(labels)
                if lab["split"] in splits
                and not lab.get("subject_held_out")
                and not (lab["group"] and held_out_group(lab["group"]))
            ],
            dtype=np.int64,
        )

    train_rows = fit_rows(["train"])

    # one class per training subject, named by its text; an icon of a curated subject is named by the
    # curated query instead ("a printer" for printer, printer-network, document-print ...), so the
    # class is what people type
    def class_of(lab: Mapping[str, Any]) -> tuple[str, str]:
        if curated_text and lab.get("kind") == "icon" and lab.get("curated_subject") and lab.get("query"):
            return f"curated:{lab['curated_subject']}", str(lab["query"])
        return str(lab["subject"]), str(lab["text"])

    def classes(rows: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        text_of: dict[str, str] = {}
        for i in rows:
            name, text = class_of(labels[i])
            text_of.setdefault(name, text)
        names = sorted(text_of)
        pos = {name: j for j, name in enumerate(names)}
        targets = np.array([pos[class_of(labels[i])[0]] for i in rows], dtype=np.int64)
        return embed_texts([text_of[name] for name in names]), targets

    def with_copies(rows: NDArray[np.int64], augs: Sequence[str]) -> tuple[Features, NDArray[np.int64]]:
        """The rows' features plus those of their augmented copies (same subjects), and all their rows."""
        parts, all_rows = [take(features, rows)], [rows]
        for name in augs:
            arows, afeats = (augmented or {})[name]
            pos = {int(r): j for j, r in enumerate(arows)}
            sel = np.array([pos[int(r)] for r in rows if int(r) in pos], dtype=np.int64)
            parts.append(take(afeats, sel))
            all_rows.append(arows[sel])
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}, np.concatenate(all_rows)

    class_text, targets = classes(train_rows)
    report["train_images"], report["train_subjects"] = len(train_rows), len(class_text)
    augment_sets: list[tuple[str, ...]] = [()] + ([tuple(augmented)] if augmented else [])

    val = _split_idx(labels, "val")
    val_labels = [labels[i] for i in val]
    val_feats = take(features, val)

    def score(m: Mapping[str, Any]) -> float:
        parts = [m[k]["recall@50"] + m[k]["p@10"] for k in ("icon", "emoji") if k in m]
        return float(np.mean(parts)) if parts else 0.0

    best: tuple[float, SearchHead, dict[str, Any]] | None = None
    for cfg, augs in itertools.product(search_grid, augment_sets):
        t0 = time.monotonic()
        bar = tqdm(total=cfg.epochs, desc=f"search head h={cfg.hidden} T={cfg.temperature}", file=sys.stderr)

        def prog(epoch: int, loss: float, bar: Any = bar) -> None:
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)

        fit_feats, fit_rows_all = with_copies(train_rows, augs)
        class_text, targets = classes(fit_rows_all)
        head = train_search_head(fit_feats, targets, class_text, cfg, progress=prog)
        bar.close()
        for mix in mixes:
            m = search_metrics(head.embed(val_feats, mix), val_labels, groups, qvec)
            s = score(m)
            row = {
                "config": _cfg_dict(cfg),
                "augment": list(augs),
                "mix": mix,
                "val": _brief(m),
                "score": s,
                "seconds": time.monotonic() - t0,
            }
            report["search_candidates"].append(row)
            log.info("search head %s augment=%s mix=%.2f: val %s", _cfg_dict(cfg), list(augs), mix, _brief(m))
            if best is None or s > best[0]:
                best = (s, replace(head, mix=mix), row)
                best_cfg, best_augs = cfg, augs
    assert best is not None
    search = best[1]
    report["search_chosen"] = best[2]
    report["conse_val"] = _brief(search_metrics(normalize_rows(val_feats["conse"]), val_labels, groups, qvec))

    style_train = _split_idx(labels, "train")
    st_feats = take(features, style_train)
    st_styles = [labels[i]["style"] for i in style_train]
    st_subjects = [labels[i]["subject"] for i in style_train]
    best_style: tuple[float, StyleHead, dict[str, Any]] | None = None
    val_sets = {kind: idx for kind, idx in _kind_rows(val_labels).items()}
    val_sets["all"] = np.arange(len(val_labels))
    # The val families hold two icon styles and one emoji vendor: too few to tell style heads apart by
    # K-Means purity. So the style head is also scored by leave-families-out folds of the train icon
    # families (fit on the other train families, cluster the held-out ones); no test family is read.
    folds = style_folds(labels, style_train)
    style_heads: list[StyleHead] = []
    for scfg in style_grid:
        head_s = train_style_head(st_feats, st_styles, st_subjects, scfg)
        style_heads.append(head_s)
        vecs = head_s.describe(val_feats)
        m = {name: style_metrics(vecs[idx], [val_labels[i] for i in idx]) for name, idx in val_sets.items()}
        for n_fold, (fit_idx, held_idx) in enumerate(folds):
            fold_head = train_style_head(
                take(features, fit_idx),
                [labels[i]["style"] for i in fit_idx],
                [labels[i]["subject"] for i in fit_idx],
                scfg,
            )
            m[f"fold{n_fold}"] = style_metrics(
                fold_head.describe(take(features, held_idx)), [labels[i] for i in held_idx]
            )
        s = float(np.mean([v["purity"] - v["nmi_subject"] for v in m.values()]))
        report["style_candidates"].append({"config": _cfg_dict(scfg), "val": m, "score": s})
        log.info("style head %s: val %s", _cfg_dict(scfg), {k: _round(v) for k, v in m.items()})
        if best_style is None or s > best_style[0]:
            best_style = (s, head_s, report["style_candidates"][-1])
            best_style_cfg = scfg
    assert best_style is not None
    # The first style config of the grid is the incumbent (the one shipped before): another one replaces
    # it only if it scores clearly better, by more than STYLE_MARGIN - differences below that are K-Means
    # noise on these few validation styles, and a coin flip should not change what users get.
    first = report["style_candidates"][0]
    if best_style[0] - first["score"] <= STYLE_MARGIN and best_style[2] is not first:
        log.info("style head: %s is within %.3f of the incumbent, which stays", best_style[2]["config"], STYLE_MARGIN)
        best_style_cfg = style_grid[0]
        best_style = (first["score"], style_heads[0], first)
    report["style_chosen"] = best_style[2]
    report["style_margin"] = STYLE_MARGIN
    style = best_style[1]
    if refit_on_val:
        # every choice made, the chosen settings are fitted once more on train + val families (two more
        # icon styles and one emoji vendor to learn from); the test families are still never seen
        fit_feats, rows = with_copies(fit_rows(["train", "val"]), best_augs)
        class_text, targets = classes(rows)
        search = replace(train_search_head(fit_feats, targets, class_text, best_cfg), mix=search.mix)
        rows_s = np.concatenate([style_train, _split_idx(labels, "val")])
        style = train_style_head(
            take(features, rows_s),
            [labels[i]["style"] for i in rows_s],
            [labels[i]["subject"] for i in rows_s],
            best_style_cfg,
        )
        report["refit"] = {"splits": ["train", "val"], "search_images": len(rows), "style_images": len(rows_s)}
    return TrainResult(search, style, report)


def _round(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in m.items()}


def _kind_rows(labels: Sequence[Mapping[str, Any]]) -> dict[str, NDArray[np.int64]]:
    out: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        out.setdefault(str(lab["kind"]), []).append(i)
    return {k: np.array(v, dtype=np.int64) for k, v in out.items() if len({labels[i]["style"] for i in v}) >= 2}


def _cfg_dict(cfg: Any) -> dict[str, Any]:
    d = asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _brief(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: {kk: vv for kk, vv in v.items() if kk != "per_query"} for k, v in m.items()}


def test_report(
    result: TrainResult,
    labels: Sequence[dict[str, Any]],
    features: Features,
    embed_texts: Callable[[Sequence[str]], NDArray[np.float32]],
) -> dict[str, Any]:
    """Once, after every choice is made: the test families, the chosen heads vs ConSE / the Gram PCA."""
    groups = eval_groups(labels)
    qvec = query_vectors(groups, embed_texts)
    test = _split_idx(labels, "test")
    t_labels = [labels[i] for i in test]
    t_feats = take(features, test)
    out: dict[str, Any] = {
        "search": search_metrics(result.search.embed(t_feats), t_labels, groups, qvec),
        "search_conse": _brief(search_metrics(normalize_rows(t_feats["conse"]), t_labels, groups, qvec)),
        "style": {},
    }
    for kind, idx in _kind_rows(t_labels).items():
        out["style"][kind] = style_metrics(result.style.describe(take(t_feats, idx)), [t_labels[i] for i in idx])
    return out


def main(argv: list[str] | None = None) -> int:
    from imgsearch.embedding.conse import default_artifact_dir

    p = argparse.ArgumentParser(prog="imgsearch train-heads", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", type=Path, required=True, help="a styles dataset directory (labels.json)")
    p.add_argument("--model-dir", type=Path, default=None, help="ConSE artifacts (default: the set-up's)")
    p.add_argument("--out", type=Path, default=PACKAGED_HEADS, help="heads path without suffix")
    p.add_argument("--cache", type=Path, default=None, help="feature cache dir (default: <dataset>/features)")
    p.add_argument("--quick", action="store_true", help="a small grid and few epochs (smoke runs)")
    p.add_argument(
        "--report-model-dir",
        type=Path,
        default=None,
        help="artifacts for the test and smoke figures (default: --model-dir), e.g. the serving build",
    )
    p.add_argument("--report-cache", type=Path, default=None, help="feature cache for those figures")
    p.add_argument("--refit", action="store_true", help="after choosing on val, fit the choice on train + val")
    p.add_argument(
        "--smoke-dataset", type=Path, default=None, help="also record the figures of the smoke slice built there"
    )
    p.add_argument(
        "--augment",
        default=",".join(AUGMENTATIONS),
        help="augmented copies of the train/val images the search head may use, chosen on val ('none': off)",
    )
    p.add_argument("--augment-kinds", default="icon,emoji", help="which kinds of images get augmented copies")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    labels = load_labels(args.dataset)
    extractor = FeatureExtractor.from_artifacts(args.model_dir or default_artifact_dir())
    feats = extract_features(labels, extractor, args.cache or args.dataset / "features")
    if args.quick:
        search_grid = [SearchTrainConfig(hidden=0, epochs=0), SearchTrainConfig(hidden=64, epochs=2)]
        style_grid = [StyleTrainConfig(subject_dirs=16, shrinkage=0.1, dims=16)]
    else:
        # an earlier, wider grid (ridge 0.01-10, the contrastive fine-tune of the linear map, a 1024-wide
        # MLP head) gave no more on validation than the closed-form ridge map (docs/embeddings.md)
        search_grid = [
            SearchTrainConfig(blocks=tuple(w), weights=w, hidden=0, epochs=0, ridge=r)
            for w in ({"conse": 1.0, "pooled": 1.0}, {"conse": 1.0, "pooled": 1.0, "gram": 0.5})
            for r in (0.03, 0.1)
        ]
        # the first is the incumbent (heads-v1's choice), see STYLE_MARGIN
        style_grid = [
            StyleTrainConfig(blocks=blocks, weights=dict.fromkeys(blocks, 1.0), subject_dirs=r, shrinkage=sh, dims=16)
            for blocks, r, sh in ((("gram", "pooled"), 32, 0.03), (("gram",), 32, 0.3), (("gram",), 128, 0.3))
        ]
    augmented: dict[str, tuple[NDArray[np.int64], Features]] = {}
    kinds = {k for k in args.augment_kinds.split(",") if k}
    aug_rows = np.array(
        [i for i, lab in enumerate(labels) if lab["split"] in ("train", "val") and lab["kind"] in kinds], dtype=np.int64
    )
    aug_labels = [labels[i] for i in aug_rows]
    for name in [a for a in args.augment.split(",") if a and a != "none"]:
        augmented[name] = (
            aug_rows,
            extract_features(aug_labels, extractor, args.cache or args.dataset / "features", augmentation=name),
        )
    embed = extractor.conse.embed_texts
    result = train(
        labels,
        feats,
        embed,
        search_grid=search_grid,
        style_grid=style_grid,
        refit_on_val=args.refit,
        augmented=augmented,
    )
    result.search, result.style = as_stored(result.search, result.style)
    report = result.report
    # the figures written into the manifest come from the frozen models that will serve (which may be
    # another build of the same networks than the one the training features were extracted with)
    rep_extractor = extractor
    if args.report_model_dir is not None:
        rep_extractor = FeatureExtractor.from_artifacts(args.report_model_dir)
        report["training_features_from"] = extractor.conse.model_id
        test_rows = _split_idx(labels, "test")
        t_labels = [labels[i] for i in test_rows]
        t_feats = extract_features(t_labels, rep_extractor, args.report_cache)
        report["test"] = test_report(result, t_labels, t_feats, embed)
    else:
        report["test"] = test_report(result, labels, feats, embed)
    extractor = rep_extractor
    if args.smoke_dataset is not None:
        s_labels = load_labels(smoke_dataset(args.smoke_dataset))
        rows = np.array(smoke_rows(s_labels), dtype=np.int64)
        s_labels = [s_labels[i] for i in rows]
        s_feats = extract_features(s_labels, extractor, args.report_cache or args.smoke_dataset / "features")
        report["smoke"] = smoke_report(result.search, result.style, s_labels, s_feats, embed)
    manifest = {
        "dataset": json.loads((args.dataset / "manifest.json").read_text()),
        "frozen_models": {
            "conse": extractor.conse.model_id,
            "gram": extractor.gram.model_id,
            "artifact_version": extractor.conse.manifest.get("artifact_version"),
            "variant": extractor.conse.manifest.get("variant"),
        },
        "command": "imgsearch train-heads --dataset "
        + str(args.dataset.name)
        + (" --quick" if args.quick else "")
        + (" --refit" if args.refit else "")
        + f" --augment {args.augment} --augment-kinds {args.augment_kinds}",
        "report": report,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    heads = save_heads(args.out, result.search, result.style, manifest)
    print(
        json.dumps(
            {
                "out": str(args.out),
                "sha256": heads.digest,
                "test": _brief(report["test"]["search"]),
                "test_style": report["test"]["style"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
