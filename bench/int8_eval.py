"""int8 image classifier: is it fast enough to be worth it, and does it keep the quality? (issue 16)

Builds int8 versions of the classifier (imgsearch/embedding/model_build/quantize.py; calibrated on
images of the TRAIN style families), runs bench/cross_style_eval.py for float and each variant on the
VALIDATION families, and adopts a variant only if no gate metric drops by more than 0.01 (caption
R@10 and the product's cross-style figures, the learned heads' columns). The variant with the
smallest worst drop is then reported on the TEST families beside float, with images/s of both ways
(the product's embed + style path, batch 16, best of alternating rounds on the same images).

    .venv/bin/python bench/int8_eval.py --dataset ~/.cache/imgsearch/datasets/styles-v2 \
        [--variants 1:0,3:0,1:1,3:2] [--out bench-results/int8.json]

A variant is keep_first:keep_last, the convolutions left float at each end. ~15 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, say

GATE_DROP = 0.01
# (label, path in cross_style_eval's JSON): the default product's figures (learned heads)
GATE: list[tuple[str, tuple[str, ...]]] = [
    ("caption R@10", ("captions", "learned", "R@10")),
    ("icon recall@50", ("search", "learned", "icon", "recall@50")),
    ("icon p@10", ("search", "learned", "icon", "p@10")),
    ("emoji recall@50", ("search", "learned", "emoji", "recall@50")),
    ("emoji p@10", ("search", "learned", "emoji", "p@10")),
    ("icon style purity", ("style", "learned", "icon", "purity")),
    ("emoji style purity", ("style", "learned", "emoji", "purity")),
    ("icon users top3 (default)", ("users", "learned", "icon", "default", "top3_preferred_relevant")),
    ("icon users nDCG@10 (default)", ("users", "learned", "icon", "default", "ndcg10")),
    ("icon users top3 (continuous)", ("users", "learned", "icon", "continuous", "default", "top3_preferred_relevant")),
    ("emoji users top3 (default)", ("users", "learned", "emoji", "default", "top3_preferred_relevant")),
    ("emoji users nDCG@10 (default)", ("users", "learned", "emoji", "default", "ndcg10")),
]


def dig(report: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = report
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def gate_drops(base: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, float]:
    """base - other for every gate metric both reports have (positive = the variant is worse)."""
    out = {}
    for label, path in GATE:
        a, b = dig(base, path), dig(other, path)
        if a is not None and b is not None:
            out[label] = round(a - b, 4)
    return out


def calibration_batches(dataset: Path, model_dir: Path, n: int) -> list[Any]:
    """n images of the train families (a deterministic stride sample), preprocessed as the
    classifier sees them, in batches of 16."""
    from PIL import Image

    from imgsearch.embedding.conse import preprocess_images

    manifest = json.loads((model_dir / "manifest.json").read_text())
    conse = manifest.get("conse", {})
    labels = [lab for lab in json.loads((dataset / "labels.json").read_text()) if lab["split"] == "train"]
    step = max(1, len(labels) // n)
    rows = labels[::step][:n]
    batches = []
    for s in range(0, len(rows), 16):
        imgs = []
        for lab in rows[s : s + 16]:
            with Image.open(dataset / lab["path"]) as im:
                imgs.append(im.convert("RGBA"))
        batches.append(
            preprocess_images(
                imgs, int(manifest["image_size"]), conse.get("pixel_norm", "tf"), conse.get("resize_mode", "pad")
            )
        )
    return batches


def build_variant(model_dir: Path, out: Path, keep_first: int, keep_last: int, calib: list[Any]) -> dict[str, Any]:
    """A copy of the artifacts (links to the unchanged files) with an int8 classifier."""
    from imgsearch.embedding.model_build.quantize import quantize_classifier

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    cls = manifest["files"]["classifier"]
    for f in model_dir.iterdir():
        if f.name not in ("manifest.json", cls):
            (out / f.name).symlink_to(f.resolve())
    info = quantize_classifier(model_dir / cls, out / cls, calib, keep_first=keep_first, keep_last=keep_last)
    manifest["model_id"] = f"{manifest['model_id']}+int8-f{keep_first}l{keep_last}"
    manifest["int8"] = info
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return info


def cross_style(dataset: Path, model_dir: Path, split: str, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(REPO / "bench/cross_style_eval.py"), "--dataset", str(dataset)]
    cmd += ["--model-dir", str(model_dir), "--split", split, "--out", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def images_per_s(model_dirs: Mapping[str, Path], dataset: Path, n: int, rounds: int = 3) -> dict[str, float]:
    """The product's image path (learned embedder + style describer over one extractor), batch 16,
    best of `rounds`, the models taking turns on the same validation images."""
    from PIL import Image

    from imgsearch.embedding.learned import PACKAGED_HEADS, load_learned

    labels = [lab for lab in json.loads((dataset / "labels.json").read_text()) if lab["split"] == "val"][:n]
    imgs = []
    for lab in labels:
        with Image.open(dataset / lab["path"]) as im:
            imgs.append(im.convert("RGB"))
    pairs = {name: load_learned(d, PACKAGED_HEADS) for name, d in model_dirs.items()}
    for emb, sty in pairs.values():  # load and warm the sessions
        emb.embed_images(imgs[:16])
        sty.describe(imgs[:16])
    best = dict.fromkeys(pairs, 0.0)
    for _ in range(rounds):
        for name, (emb, sty) in pairs.items():
            t0 = time.perf_counter()
            for s in range(0, len(imgs), 16):
                chunk = imgs[s : s + 16]
                emb.embed_images(chunk)
                sty.describe(chunk)
            best[name] = max(best[name], round(len(imgs) / (time.perf_counter() - t0), 1))
    return best


def main() -> int:
    from imgsearch.embedding.conse import default_artifact_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--variants", default="1:0,3:0,1:1,3:2", help="keep_first:keep_last, comma-separated")
    ap.add_argument("--calibration", type=int, default=256, help="train-family images for the int8 ranges")
    ap.add_argument("--speed-images", type=int, default=320)
    ap.add_argument("--work", type=Path, default=REPO / "bench-results/int8")
    ap.add_argument("--out", type=Path, default=REPO / "bench-results/int8.json")
    args = ap.parse_args()
    model_dir = args.model_dir or default_artifact_dir()
    variants = [tuple(int(x) for x in v.split(":")) for v in args.variants.split(",") if v]

    say(f"calibration: {args.calibration} train-family images from {args.dataset}")
    calib = calibration_batches(args.dataset, model_dir, args.calibration)
    dirs: dict[str, Path] = {"float": model_dir}
    built: dict[str, Any] = {}
    for first, last in variants:
        name = f"int8-f{first}l{last}"
        built[name] = build_variant(model_dir, args.work / name, first, last, calib)
        dirs[name] = args.work / name
        say(f"built {name}: {built[name]['quantized_convs']} convolutions int8")

    val: dict[str, Any] = {}
    for name, d in dirs.items():
        say(f"validation families: {name} ...")
        val[name] = cross_style(args.dataset, d, "val", args.work / f"{name}-val.json")
    drops = {name: gate_drops(val["float"], val[name]) for name in dirs if name != "float"}
    worst = {name: max(d.values()) for name, d in drops.items()}
    chosen = min(worst, key=lambda k: worst[k])
    adopted = worst[chosen] <= GATE_DROP
    say(
        f"chosen on validation: {chosen} (worst drop {worst[chosen]:+.3f}; gate {GATE_DROP}): "
        + ("passes" if adopted else "FAILS")
    )

    test = {}
    for name in ("float", chosen):
        say(f"test families: {name} ...")
        test[name] = cross_style(args.dataset, dirs[name], "test", args.work / f"{name}-test.json")
    test_drops = gate_drops(test["float"], test[chosen])
    say("images/s: float vs " + chosen + " ...")
    speed = images_per_s({"float": model_dir, chosen: dirs[chosen]}, args.dataset, args.speed_images)

    print(f"\n{'validation: drop vs float (+ = worse)':34}" + "".join(f"{n:>13}" for n in drops))
    for label, _ in GATE:
        cells = "".join(f"{drops[n][label]:+13.3f}" if label in drops[n] else f"{'-':>13}" for n in drops)
        print(f"  {label:32}{cells}")
    print(f"  {'worst':32}" + "".join(f"{worst[n]:+13.3f}" for n in drops))
    print(f"\ntest families: float vs {chosen}")
    for label, path in GATE:
        a, b = dig(test["float"], path), dig(test[chosen], path)
        if a is not None and b is not None:
            print(f"  {label:32} {a:7.3f} {b:7.3f}  drop {a - b:+.3f}")
    print(
        f"\nimages/s (embed + style, batch 16): float {speed['float']}, {chosen} {speed[chosen]} "
        f"({speed[chosen] / speed['float']:.2f}x)"
    )
    print(
        f"verdict: {chosen} "
        + ("ADOPTED" if adopted else f"not adopted (a gate metric drops {worst[chosen]:.3f} > {GATE_DROP})")
    )

    report = {
        "gate_drop": GATE_DROP,
        "variants": built,
        "validation_drops": drops,
        "validation_worst": worst,
        "chosen": chosen,
        "adopted": adopted,
        "test_drops": test_drops,
        "test": {n: {label: dig(r, p) for label, p in GATE} for n, r in test.items()},
        "images_per_s": speed,
        "calibration": {"split": "train", "images": args.calibration},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
