"""Caption -> image retrieval on the captioned Tux Paint stamps, over ConSE variants.

    python bench/embeddings_eval.py --out bench/results/embeddings_eval.json

Data: Debian `tuxpaint-stamps-default` extracted with dpkg -x (scripts/setup_models.sh --with-eval-data
does it) under $IMGSEARCH_CACHE/data/tuxpaint; every PNG whose .txt sibling has an English first
line; transparent PNGs composited on white. Query = caption, gallery = all those images, relevant =
the caption's own image. Metrics: R@1, R@5, R@10, median rank, MRR.

Stage 1 sweeps the image side (variant x pixel normalisation x resize mode) with the text side fixed;
stage 2 sweeps the text side (prompt templates, synonyms, top-k, temperature) for the best image
configuration of each variant (both choose on this very set: no held-out split).

Stage 3 (``--stage3``, the improvements of artifact version 2) uses a fixed split of the stamps by
sha1(relative path): half A (first byte even) to tune on, half B to report on; queries of one half
are ranked against the whole 785-image gallery, so the numbers compare with stages 1-2 (baseline
lite0: all 0.279, A 0.300, B 0.257 - B is the harder half). It evaluates, one factor at a time and
combined: WordNet-gloss prompts, prior correction (class prior of the artifact = mean prediction over
the oxygen icon theme, never the stamps), hubness centering, query expansion and a Lite0+Lite2
ensemble, then the default artifact end to end through ConseEmbedder. ``--stage3-only`` skips 1-2.
Needs only the serving dependencies (onnxruntime, tokenizers, numpy, Pillow).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgsearch.embedding.conse import (
    PROMPT_TEMPLATES,
    ConseEmbedder,
    MiniLMOnnx,
    build_class_matrix,
    conse_combine,
    default_cache_dir,
    preprocess_images,
    read_class_names,
    read_glosses,
    session_options,
    softmax,
    to_rgb_on_white,
)


def load_stamps(root: Path) -> tuple[list[str], list[Image.Image], list[str]]:
    captions, images, names = [], [], []
    for png in sorted(root.rglob("*.png")):
        txt = png.with_suffix(".txt")
        if not txt.is_file():
            continue
        first = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        cap = first[0].strip() if first else ""
        if not cap or "=" in cap.split(" ")[0]:
            continue
        with Image.open(png) as im:
            images.append(to_rgb_on_white(im).copy())
        captions.append(cap)
        names.append(str(png.relative_to(root)))
    return captions, images, names


def split_a(names: list[str]) -> np.ndarray:
    """True for half A (tuning half): first byte of sha1(relative path) even."""
    return np.array([hashlib.sha1(n.encode()).digest()[0] % 2 == 0 for n in names])


def metrics(q: np.ndarray, g: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
    """Query i's relevant item is gallery item i; `rows` (bool mask) restricts the queries."""
    q, g = normalize(q), normalize(g)
    sims = q @ g.T
    own = np.diag(sims)[:, None]
    ranks = 1 + (sims > own).sum(axis=1)
    if rows is not None:
        ranks = ranks[rows]
    return {
        "R@1": float((ranks <= 1).mean()),
        "R@5": float((ranks <= 5).mean()),
        "R@10": float((ranks <= 10).mean()),
        "median_rank": float(np.median(ranks)),
        "MRR": float((1.0 / ranks).mean()),
    }


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def run_classifier(sess, images, size, norm, resize, batch=16) -> tuple[np.ndarray, float, float]:
    """logits, ms/image end-to-end (preprocess + model), ms/image model only."""
    out, t_model = [], 0.0
    t0 = time.perf_counter()
    for s in range(0, len(images), batch):
        x = preprocess_images(images[s : s + batch], size, norm, resize)
        t1 = time.perf_counter()
        out.append(sess.run(["logits"], {"pixels": x})[0])
        t_model += time.perf_counter() - t1
    total = time.perf_counter() - t0
    n = len(images)
    return np.concatenate(out), total * 1000 / n, t_model * 1000 / n


def main() -> int:
    import onnxruntime as ort

    cache = default_cache_dir()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=cache / "models")
    ap.add_argument("--stamps", type=Path, default=cache / "data/tuxpaint/usr/share/tuxpaint/stamps")
    ap.add_argument("--variants", default="lite0,lite1,lite2")
    ap.add_argument("--norms", default="tf,imagenet")
    ap.add_argument("--resize", default="pad,squash,crop,trim_pad,trim_squash")
    ap.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0 = default)")
    ap.add_argument("--out", type=Path, required=True, help="JSON results path")
    ap.add_argument("--stage3", action="store_true", help="also run stage 3 (A/B split, v2 improvements)")
    ap.add_argument("--stage3-only", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the first N captioned stamps (smoke test)")
    ap.add_argument("--templates", default="photo,ensemble5,drawing,bare", help="stage 2: prompt template sets")
    ap.add_argument("--synonyms", default="first,all,joined", help="stage 2: how class synonyms enter the prompts")
    args = ap.parse_args()
    if args.stage3_only:
        return stage3(args)

    t0 = time.time()
    captions, images, _names = load_stamps(args.stamps)
    if args.limit:
        captions, images = captions[: args.limit], images[: args.limit]
    print(f"{len(captions)} captioned stamps loaded in {time.time() - t0:.1f}s", flush=True)
    variants = [v for v in args.variants.split(",") if (args.models / f"conse-{v}" / "manifest.json").is_file()]
    first = args.models / f"conse-{variants[0]}"
    man0 = json.loads((first / "manifest.json").read_text())
    text = MiniLMOnnx(
        first / man0["files"]["text_encoder"], first / man0["files"]["tokenizer"], intra_op_threads=args.threads or None
    )
    text.embed(captions[:64])
    t1 = time.perf_counter()
    q = text.embed(captions)
    ms_text = (time.perf_counter() - t1) * 1000 / len(captions)
    t1 = time.perf_counter()
    for c in captions[:200]:
        text.embed([c])
    ms_text_single = (time.perf_counter() - t1) * 1000 / 200
    print(f"text: {ms_text:.2f} ms/text (batch 64), {ms_text_single:.2f} ms/text (batch 1)", flush=True)

    class_names = read_class_names(first / man0["files"]["classes"])
    matrices: dict[tuple[str, str], np.ndarray] = {}

    def matrix(templates: str, synonyms: str) -> np.ndarray:
        key = (templates, synonyms)
        if key not in matrices:
            matrices[key] = build_class_matrix(text.embed, class_names, PROMPT_TEMPLATES[templates], synonyms)
        return matrices[key]

    base_text = {"templates": "ensemble5", "synonyms": "first", "top_k": 10, "temperature": 1.0}
    rows: list[dict] = []
    logits_cache: dict[tuple[str, str, str], np.ndarray] = {}
    timing: dict[str, dict] = {}

    # ---- stage 1: image side
    print("\nstage 1: image preprocessing (text side: ensemble5, first synonym, top-10, T=1)")
    hdr = f"{'variant':7} {'norm':8} {'resize':11} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'medR':>6} {'ms/img':>7}"
    print(hdr)
    for v in variants:
        d = args.models / f"conse-{v}"
        man = json.loads((d / "manifest.json").read_text())
        sess = ort.InferenceSession(
            str(d / man["files"]["classifier"]),
            session_options(args.threads or None),
            providers=["CPUExecutionProvider"],
        )
        size = int(man["image_size"])
        sess.run(["logits"], {"pixels": preprocess_images(images[:16], size, "tf", "pad")})  # warm-up
        for norm, resize in itertools.product(args.norms.split(","), args.resize.split(",")):
            logits, ms_e2e, ms_model = run_classifier(sess, images, size, norm, resize)
            logits_cache[(v, norm, resize)] = logits
            timing.setdefault(v, {"ms_per_image_e2e": [], "ms_per_image_model": [], "torch": man.get("torch_timing")})
            timing[v]["ms_per_image_e2e"].append(ms_e2e)
            timing[v]["ms_per_image_model"].append(ms_model)
            g = conse_combine(softmax(logits, 1.0), matrix("ensemble5", "first"), 10)
            m = metrics(q, g)
            rows.append(
                {
                    "stage": 1,
                    "variant": v,
                    "pixel_norm": norm,
                    "resize_mode": resize,
                    **base_text,
                    **m,
                    "ms_per_image_e2e": ms_e2e,
                    "ms_per_image_model": ms_model,
                }
            )
            print(
                f"{v:7} {norm:8} {resize:11} {m['R@1']:6.3f} {m['R@5']:6.3f} {m['R@10']:6.3f} "
                f"{m['median_rank']:6.0f} {ms_e2e:7.1f}",
                flush=True,
            )

    # ---- stage 2: text side, for the best image configuration of each variant
    print("\nstage 2: text side on each variant's best (norm, resize)")
    print(
        f"{'variant':7} {'norm':8} {'resize':11} {'templates':9} {'syn':6} {'k':>4} {'T':>4} "
        f"{'R@1':>6} {'R@5':>6} {'R@10':>6} {'medR':>6}"
    )
    best_overall = None
    for v in variants:
        s1 = [r for r in rows if r["stage"] == 1 and r["variant"] == v]
        b = max(s1, key=lambda r: (r["R@10"], r["MRR"]))
        logits = logits_cache[(v, b["pixel_norm"], b["resize_mode"])]
        for tpl, syn, k, temp in itertools.product(
            args.templates.split(","),
            args.synonyms.split(","),
            [5, 10, 20, 0],
            [0.5, 1.0, 2.0, 4.0],
        ):
            g = conse_combine(softmax(logits, temp), matrix(tpl, syn), k or None)
            m = metrics(q, g)
            row = {
                "stage": 2,
                "variant": v,
                "pixel_norm": b["pixel_norm"],
                "resize_mode": b["resize_mode"],
                "templates": tpl,
                "synonyms": syn,
                "top_k": k,
                "temperature": temp,
                **m,
            }
            rows.append(row)
            if best_overall is None or (m["R@10"], m["MRR"]) > (best_overall["R@10"], best_overall["MRR"]):
                best_overall = row
        s2 = sorted(
            (r for r in rows if r["stage"] == 2 and r["variant"] == v),
            key=lambda r: (r["R@10"], r["MRR"]),
            reverse=True,
        )
        for r in s2[:5]:
            print(
                f"{v:7} {r['pixel_norm']:8} {r['resize_mode']:11} {r['templates']:9} {r['synonyms']:6} "
                f"{r['top_k']:4d} {r['temperature']:4.1f} {r['R@1']:6.3f} {r['R@5']:6.3f} {r['R@10']:6.3f} "
                f"{r['median_rank']:6.0f}",
                flush=True,
            )

    if best_overall is None:
        raise SystemExit("no variant evaluated (--variants is empty)")
    # one-factor-at-a-time view around the best setting
    print(
        "\none factor at a time around the best setting:",
        json.dumps(
            {
                k: best_overall[k]
                for k in ("variant", "pixel_norm", "resize_mode", "templates", "synonyms", "top_k", "temperature")
            }
        ),
    )
    ofat = []
    for factor, values in (
        ("templates", args.templates.split(",")),
        ("synonyms", args.synonyms.split(",")),
        ("top_k", [5, 10, 20, 0]),
        ("temperature", [0.5, 1.0, 2.0, 4.0]),
    ):
        for val in values:
            r = next(
                r
                for r in rows
                if r["stage"] == 2
                and all(
                    r[k] == (val if k == factor else best_overall[k])
                    for k in ("variant", "templates", "synonyms", "top_k", "temperature")
                )
            )
            ofat.append({"factor": factor, "value": val, **{k: r[k] for k in ("R@1", "R@5", "R@10", "median_rank")}})
            print(
                f"  {factor:11} {val!s:9} R@1 {r['R@1']:.3f}  R@5 {r['R@5']:.3f}  R@10 {r['R@10']:.3f}  "
                f"medR {r['median_rank']:.0f}"
            )

    summary = {
        v: {
            "ms_per_image_e2e_b16": float(np.median(t["ms_per_image_e2e"])),
            "ms_per_image_model_b16": float(np.median(t["ms_per_image_model"])),
            "torch": t["torch"],
        }
        for v, t in timing.items()
    }
    print("\ntiming (median over stage-1 runs, batch 16):")
    for v, t in summary.items():
        print(
            f"  {v}: ORT {t['ms_per_image_e2e_b16']:.1f} ms/image incl. preprocessing, "
            f"{t['ms_per_image_model_b16']:.1f} model only; torch {t['torch']}"
        )
    print(f"  text (MiniLM ORT): {ms_text:.2f} ms/text batch 64, {ms_text_single:.2f} batch 1")
    result = {
        "dataset": {"stamps_root": str(args.stamps), "n": len(captions), "chance_R@1": 1 / len(captions)},
        "text_ms": {"batch64": ms_text, "batch1": ms_text_single},
        "timing": summary,
        "best": best_overall,
        "one_factor_at_a_time": ofat,
        "rows": rows,
        "threads": args.threads or "ort-default",
        "seconds": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out} ({time.time() - t0:.0f}s)")
    if args.stage3:
        return stage3(args, args.out.with_name(args.out.stem + "_stage3.json"))
    return 0


def stage3(args: argparse.Namespace, out: Path | None = None) -> int:
    """A/B-split evaluation of the version-2 improvements (see module docstring)."""
    import onnxruntime as ort

    out = out or args.out
    t0 = time.time()
    captions, images, names = load_stamps(args.stamps)
    in_a = split_a(names)
    in_b = ~in_a
    d0 = args.models / "conse-lite0"
    man = json.loads((d0 / "manifest.json").read_text())
    files = man["files"]
    if "class_prior" not in files or "glosses" not in files:
        raise SystemExit(f"{d0} is not a version-2 artifact (no class prior / glosses): run scripts/setup_models.sh")
    text = MiniLMOnnx(d0 / files["text_encoder"], d0 / files["tokenizer"], intra_op_threads=args.threads or None)
    q = text.embed(captions)
    classes = read_class_names(d0 / files["classes"])
    glosses = read_glosses(d0 / files["glosses"])
    prior0 = np.load(d0 / files["class_prior"])
    conse = man["conse"]
    temp, k, power = float(conse["temperature"]), int(conse["top_k"]), float(conse["prior_power"])

    def logits_of(variant: str) -> np.ndarray | None:
        d = args.models / f"conse-{variant}"
        if not (d / "manifest.json").is_file():
            return None
        m = json.loads((d / "manifest.json").read_text())
        sess = ort.InferenceSession(
            str(d / m["files"]["classifier"]), session_options(args.threads or None), providers=["CPUExecutionProvider"]
        )
        return run_classifier(sess, images, int(m["image_size"]), "tf", "pad")[0]

    l0 = logits_of("lite0")
    assert l0 is not None
    m_photo = build_class_matrix(text.embed, classes, PROMPT_TEMPLATES["photo"], "joined")
    m_gloss = build_class_matrix(text.embed, classes, PROMPT_TEMPLATES["photo_gloss"], "joined", glosses)
    m_gloss_only = build_class_matrix(text.embed, classes, PROMPT_TEMPLATES["gloss_only"], "joined", glosses)
    rows: list[dict] = []

    def report(label: str, qq: np.ndarray, g: np.ndarray, **extra: object) -> None:
        r: dict[str, Any] = {"setting": label, **extra}
        for part, mask in (("all", None), ("A", in_a), ("B", in_b)):
            r[part] = metrics(qq, g, mask)
        rows.append(r)
        a, b, al = r["A"], r["B"], r["all"]
        print(
            f"{label:52} all {al['R@1']:.3f} {al['R@5']:.3f} {al['R@10']:.3f} {al['median_rank']:4.0f} | "
            f"A {a['R@10']:.3f} {a['median_rank']:4.0f} | B {b['R@1']:.3f} {b['R@5']:.3f} {b['R@10']:.3f} "
            f"{b['median_rank']:4.0f}",
            flush=True,
        )

    print(f"\nstage 3: {in_a.sum()} captions in A, {in_b.sum()} in B; gallery = all {len(names)} images")
    print(f"{'setting':52} all R@1  R@5  R@10 medR | A R@10 medR | B R@1  R@5  R@10 medR")
    p0 = softmax(l0, temp)
    report("v1: photo joined, T2, k20", q, conse_combine(p0, m_photo, k))
    report("+ glosses (photo_gloss)", q, conse_combine(p0, m_gloss, k))
    report("  gloss only", q, conse_combine(p0, m_gloss_only, k))
    for a in (0.25, 0.5, 0.75, 1.0):
        report(f"+ prior (icons) power {a}, no glosses", q, conse_combine(p0, m_photo, k, prior0, a))
    for a in (0.25, 0.5, 0.75, 1.0):
        report(f"+ glosses + prior (icons) power {a}", q, conse_combine(p0, m_gloss, k, prior0, a))
    for tt, kk in ((1.5, 20), (1.5, 40), (2.0, 40), (3.0, 20)):
        report(
            f"  glosses + prior {power}, T{tt}, k{kk} (prior at T{temp})",
            q,
            conse_combine(softmax(l0, tt), m_gloss, kk, prior0, power),
        )
    mu = m_gloss.mean(axis=0)
    g_def = conse_combine(p0, m_gloss, k, prior0, power)
    for beta in (0.5, 1.0):
        report(f"  + hubness centering (mean class prompt) x{beta}", q - beta * mu, g_def - beta * mu)
    sims = normalize(q) @ m_gloss.T
    for lam in (0.3, 1.0):
        qc = conse_combine(softmax(sims, 0.05), m_gloss, 5)
        report(f"  + query expansion (top-5 class prompts) x{lam}", normalize(q) + lam * qc, g_def)
    l2 = logits_of("lite2")
    if l2 is not None:
        p2 = softmax(l2, temp)
        report("  lite2 alone, glosses, no prior", q, conse_combine(p2, m_gloss, k))
        report("  lite0+lite2 mean prob, glosses, no prior", q, conse_combine((p0 + p2) / 2, m_gloss, k))
        report(
            "  lite0+lite2 mean logit, glosses, no prior", q, conse_combine(softmax((l0 + l2) / 2, temp), m_gloss, k)
        )

    emb = ConseEmbedder(d0, intra_op_threads=args.threads or None)
    emb.embed_images(images[:16])
    t1 = time.perf_counter()
    g_e2e = emb.embed_images(images)
    ms = (time.perf_counter() - t1) * 1000 / len(images)
    report(f"DEFAULT ConseEmbedder end to end ({ms:.1f} ms/image)", emb.embed_texts(captions), g_e2e, ms_per_image=ms)
    result = {
        "split": "A = sha1(relative path)[0] even",
        "n_A": int(in_a.sum()),
        "n_B": int(in_b.sum()),
        "model_id": emb.model_id,
        "rows": rows,
        "seconds": round(time.time() - t0, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out} ({time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
