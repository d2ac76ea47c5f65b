"""Records golden outputs of the torch-exported ConSE artifacts (artifact version 2) for fixed inputs.

Run once, before the torch export was replaced by the onnx.helper build (see docs/embeddings.md,
"Golden check"); the result, tests/golden/model_goldens.npz + model_goldens.json, is what
tests/unit/test_model_build_golden.py holds the new build to. Needs only the project's .venv
(onnxruntime, tokenizers, numpy, Pillow): the torch-exported ONNX files are run by onnxruntime.

    python tests/golden/make_model_goldens.py --artifacts ~/.cache/imgsearch/models/conse-lite0 \
        --tango /path/to/extracted/tango-icon-theme --classifier lite1=PATH --classifier lite2=PATH

Inputs (stored in the npz, so the check never depends on Pillow's resampling):
* 8 synthetic 224x224 images drawn from numpy seed 20261201 (gradients, rectangles, ellipses,
  lines; two with noise textures);
* 4 real icons of Debian tango-icon-theme 0.8.90-11 (public domain), 32x32 PNGs put through
  serving's preprocessing (alpha on white, pad, bicubic to 224);
* 8 texts (short, long > 256 tokens, empty, non-ASCII), embedded as one padded batch.
lite1/lite2 inputs: the 224 images centre-padded with white (255) to 240/260 (no resampling).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from imgsearch.embedding.conse import MiniLMOnnx, fit_square, normalize_pixels, to_rgb_on_white  # noqa: E402

SEED = 20261201
TANGO_ICONS = (
    "32x32/apps/accessories-calculator.png",
    "32x32/apps/internet-web-browser.png",
    "32x32/devices/camera-photo.png",
    "32x32/places/user-home.png",
)
TEXTS = (
    "a photo of a cat.",
    "A US 25 cent piece ($.25) called a quarter.",
    "a much longer sentence about a red rocket on the launch pad at night, with smoke and stars",
    "origami crane",
    "",
    "Ünïcödé café naïve résumé — 東京 🚀",
    "a photo of a tabby, tabby cat: a cat with a grey or tawny coat mottled with black.",
    " ".join(f"word{i % 37}" for i in range(400)),  # > 256 tokens: truncated
)
CLASS_ROWS = tuple(range(0, 1000, 50))  # the class_text rows kept (20 of 1000)
SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}


def synthetic_images(n: int = 8, size: int = 224, seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0.0, 1.0, size)[None, :, None] if i % 2 else np.linspace(0.0, 1.0, size)[:, None, None]
        base = (c0 * (1 - t) + c1 * t) * np.ones((size, size, 1))
        img = Image.fromarray(base.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(3, 8))):
            x0, y0 = (int(v) for v in rng.integers(0, size - 20, 2))
            x1, y1 = x0 + int(rng.integers(10, size - x0)), y0 + int(rng.integers(10, size - y0))
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            kind = int(rng.integers(0, 3))
            if kind == 0:
                draw.rectangle((x0, y0, x1, y1), fill=fill)
            elif kind == 1:
                draw.ellipse((x0, y0, x1, y1), fill=fill, outline=(0, 0, 0), width=2)
            else:
                draw.line((x0, y0, x1, y1), fill=fill, width=int(rng.integers(2, 9)))
        arr = np.asarray(img, dtype=np.float64)
        if i == 6:  # photo-like texture, kept compressible: smooth 4x4-block noise ...
            arr = arr + np.repeat(np.repeat(rng.normal(0.0, 20.0, (size // 4, size // 4, 3)), 4, 0), 4, 1)
        elif i == 7:  # ... and per-pixel +-10 binary noise
            arr = arr + 10.0 * (2.0 * rng.integers(0, 2, arr.shape) - 1.0)
        out[i] = np.clip(arr, 0, 255).astype(np.uint8)
    return out


def tango_images(root: Path) -> tuple[np.ndarray, list[str]]:
    imgs = []
    for rel in TANGO_ICONS:
        with Image.open(root / "usr/share/icons/Tango" / rel) as im:
            im.load()
            imgs.append(im.copy())
    u8 = np.stack([np.asarray(fit_square(to_rgb_on_white(im), 224, "pad"), dtype=np.uint8) for im in imgs])
    return u8, list(TANGO_ICONS)  # serving's preprocessing up to the uint8 pixels


def encode_png(images: np.ndarray) -> dict[str, np.ndarray]:
    """(n,H,W,3) uint8 -> lossless PNG bytes, concatenated, + offsets (npz without pickles)."""
    blobs = []
    for a in images:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG", optimize=True)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    return {"images_png": np.concatenate(blobs), "images_png_offsets": np.cumsum([0] + [len(b) for b in blobs])}


def decode_png(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = []
    for a, b in itertools.pairwise(offsets):
        with Image.open(io.BytesIO(blob[a:b].tobytes())) as im:
            out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return np.stack(out)


def pad_white(u8: np.ndarray, size: int) -> np.ndarray:
    n, h, w, _ = u8.shape
    out = np.full((n, size, size, 3), 255, dtype=np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    out[:, top : top + h, left : left + w] = u8
    return out


def run(onnx_path: Path, output: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run([output], {"pixels": x[i : i + 4]})[0] for i in range(0, len(x), 4)])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", type=Path, required=True, help="a torch-exported conse-lite0 artifact dir (v2)")
    ap.add_argument("--tango", type=Path, required=True, help="dpkg -x of tango-icon-theme_0.8.90-11_all.deb")
    ap.add_argument("--classifier", action="append", default=[], help="VARIANT=PATH of a torch-exported classifier")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("model_goldens.npz"))
    args = ap.parse_args()

    art = args.artifacts
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["variant"] == "lite0" and manifest["artifact_version"] == 2, manifest["artifact_version"]
    icons, icon_names = tango_images(args.tango)
    images = np.concatenate([synthetic_images(), icons])
    x = normalize_pixels(images, "tf")
    arrays: dict[str, np.ndarray] = {**encode_png(images), "texts": np.array(TEXTS)}
    arrays["logits_lite0"] = run(art / "classifier.onnx", "logits", x)
    for spec in args.classifier:
        variant, path = spec.split("=", 1)
        arrays[f"logits_{variant}"] = run(Path(path), "logits", normalize_pixels(pad_white(images, SIZES[variant])))
    arrays["style_raw"] = run(art / "style.onnx", "style_raw", x)
    text = MiniLMOnnx(art / "text_encoder.onnx", art / "tokenizer.json", intra_op_threads=2)
    arrays["text_embeddings"] = text.embed(list(TEXTS))
    arrays["class_rows"] = np.array(CLASS_ROWS, dtype=np.int64)
    arrays["class_text_rows"] = np.load(art / "class_text.npy")[list(CLASS_ROWS)]
    arrays["class_prior"] = np.load(art / "class_prior.npy")
    with np.load(art / "style_projection.npz") as z:
        for k in ("mean", "scale", "explained_variance_ratio"):
            arrays[f"style_projection_{k}"] = z[k]
    assert np.array_equal(decode_png(arrays["images_png"], arrays["images_png_offsets"]), images)
    np.savez_compressed(args.out, **arrays)  # type: ignore[arg-type]

    note = {
        "made_by": "tests/golden/make_model_goldens.py",
        "made": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": "artifacts of the torch export (scripts/setup_models.sh at main b97e4b3), run by onnxruntime",
        "source_model_id": manifest["model_id"],
        "source_package_versions": manifest["package_versions"],
        "source_sha256": manifest["sha256"],
        "extra_classifiers": {s.split("=", 1)[0]: sha256(Path(s.split("=", 1)[1])) for s in args.classifier},
        "extra_classifiers_note": "export_classifier() of b97e4b3's export.py in the torch build venv",
        "images": {
            "0-7": f"synthetic, numpy default_rng({SEED}) + PIL ImageDraw, 224x224",
            "8-11": {"package": "tango-icon-theme 0.8.90-11 (Debian)", "licence": "public domain", "files": icon_names},
            "lite1/lite2": "the same 224 images centre-padded with white to 240/260",
        },
        "texts": "embedded as one padded batch through MiniLMOnnx (tokenizer.json, truncation 256)",
        "class_rows": "class_text.npy rows 0, 50, ..., 950",
        "files_sha256": {f: manifest["sha256"][f] for f in ("classes.txt", "class_glosses.txt", "tokenizer.json")},
        "onnxruntime": __import__("onnxruntime").__version__,
        "numpy": np.__version__,
    }
    args.out.with_suffix(".json").write_text(json.dumps(note, indent=2, ensure_ascii=False) + "\n")
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KB; arrays: {sorted(arrays)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
