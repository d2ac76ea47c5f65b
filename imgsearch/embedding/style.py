"""Image-only style descriptors (how a picture is drawn, not what it shows).

Implementations of the `StyleDescriber` protocol:

* `GramStyleDescriber` - neural-style-transfer statistics (Gatys et al., 2016): for three early
  layers of EfficientNet-Lite0 (16ch@112², 24ch@56², 40ch@28² for a 224² input) the channel mean,
  channel std and the signed-sqrt upper triangle of the Gram matrix, computed inside ``style.onnx``
  (raw vector: 1416 dims). Each raw dimension is z-scored, then projected by PCA (fitted at set-up on
  a reference image set, see manifest ``style``) to `dimension` dims and unit-normalised.
* `HandcraftedStyleDescriber` - no model at all (numpy + Pillow): colour histograms in HSV and
  CIELAB, gradient-orientation histogram, edge density, saturation/colourfulness statistics and
  palette flatness (few distinct colours = flat cartoon/icon; many = photo). 64 dims, unit rows.

* `EmbeddingStyle` - the embedder's own image vector (as the AWS article does with Titan): with a
  CLIP-class embedder its image vector carries style as well as content. The embedding worker then
  reuses the search vector instead of computing it twice.

`default_style_describer()` returns the Gram describer when its artifacts exist, else the fallback.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms

from imgsearch.embedding.base import Embedder, Vectors, normalize_rows
from imgsearch.embedding.conse import (
    default_artifact_dir,
    fit_square,
    normalize_pixels,
    session_options,
    to_rgb_on_white,
)


@runtime_checkable
class StyleDescriber(Protocol):
    """Image-only style vectors: float32, unit rows, comparable by cosine within one model_id."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def describe(self, images: Sequence[Image.Image]) -> Vectors: ...


# --------------------------------------------------------------------------- Gram (ONNX)


def fit_style_projection(raw: NDArray[np.floating], dim: int = 96) -> dict[str, NDArray[np.float32]]:
    """z-score + PCA basis for raw Gram features (rows = reference images)."""
    x = np.asarray(raw, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("need at least 2 reference rows")
    mu = x.mean(axis=0)
    sigma = x.std(axis=0)
    sigma[sigma < 1e-8] = 1.0
    z = (x - mu) / sigma
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    k = min(dim, vt.shape[0])
    var = s**2
    return {
        "mean": mu.astype(np.float32),
        "scale": sigma.astype(np.float32),
        "components": vt[:k].T.astype(np.float32),  # (raw_dim, k)
        "explained_variance_ratio": (var[:k] / var.sum()).astype(np.float32),
    }


def project_style(raw: NDArray[np.floating], projection: dict[str, Any]) -> Vectors:
    z = (np.asarray(raw, dtype=np.float32) - projection["mean"]) / projection["scale"]
    return normalize_rows(z @ projection["components"])


class GramStyleDescriber:
    """Gram-matrix style statistics of early EfficientNet-Lite0 layers (ONNX), PCA-reduced."""

    def __init__(
        self,
        artifact_dir: str | os.PathLike[str] | None = None,
        *,
        intra_op_threads: int | None = None,
        batch_size: int = 16,
    ) -> None:
        self.artifact_dir = Path(artifact_dir) if artifact_dir is not None else default_artifact_dir()
        self.intra_op_threads = intra_op_threads
        self.batch_size = max(1, int(batch_size))
        self._lock = threading.Lock()
        self._loaded = False

    @staticmethod
    def available(artifact_dir: str | os.PathLike[str] | None = None) -> bool:
        d = Path(artifact_dir) if artifact_dir is not None else default_artifact_dir()
        try:
            files = json.loads((d / "manifest.json").read_text())["files"]
            return (d / files["style"]).is_file() and (d / files["style_projection"]).is_file()
        except (OSError, KeyError, ValueError):
            return False

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            import onnxruntime as ort

            manifest = json.loads((self.artifact_dir / "manifest.json").read_text())
            files = manifest["files"]
            self._sess = ort.InferenceSession(
                str(self.artifact_dir / files["style"]),
                session_options(self.intra_op_threads),
                providers=["CPUExecutionProvider"],
            )
            info = manifest.get("style", {})
            self._size = int(info.get("image_size", 224))
            self._raw_dim = int(info.get("raw_dim", 0))
            proj_path = self.artifact_dir / files["style_projection"]
            self._proj: dict[str, Any] | None = None
            self._model_id = "gram-lite0-raw"
            if proj_path.is_file():  # absent only while model_build fits it
                with np.load(proj_path) as z:
                    self._proj = {k: z[k] for k in z.files}
                digest = manifest.get("sha256", {}).get(files["style_projection"], "")[:8]
                self._model_id = f"gram-lite0-pca{self._proj['components'].shape[1]}-{digest}"
            self._loaded = True

    @property
    def model_id(self) -> str:
        self._load()
        return self._model_id

    @property
    def dimension(self) -> int:
        self._load()
        if self._proj is None:
            return self._raw_dim
        return int(self._proj["components"].shape[1])

    def raw_features(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        self._load()
        images = list(images)
        out = []
        for s in range(0, len(images), self.batch_size):
            chunk = images[s : s + self.batch_size]
            batch = np.stack([np.asarray(fit_square(to_rgb_on_white(im), self._size, "pad")) for im in chunk])
            out.append(self._sess.run(["style_raw"], {"pixels": normalize_pixels(batch, "tf")})[0])
        if not out:
            return np.zeros((0, self._raw_dim), dtype=np.float32)
        return np.concatenate(out, axis=0)

    def describe(self, images: Sequence[Image.Image]) -> Vectors:
        images = list(images)
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        raw = self.raw_features(images)
        if self._proj is None:
            raise RuntimeError("style projection missing: re-run scripts/setup_models.sh")
        return project_style(raw, self._proj)


# --------------------------------------------------------------------------- handcrafted


_SRGB_TO_LAB: Any = None
_LAB_LOCK = threading.Lock()


def _to_lab(img: Image.Image) -> NDArray[np.float32]:
    """RGB image -> (H,W,3) float: L in [0,100], a/b in about [-128,127]."""
    global _SRGB_TO_LAB
    with _LAB_LOCK:
        if _SRGB_TO_LAB is None:
            _SRGB_TO_LAB = ImageCms.buildTransformFromOpenProfiles(
                ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
            )
        lab = ImageCms.applyTransform(img, _SRGB_TO_LAB)
    arr = np.asarray(lab, dtype=np.float32)
    return np.stack([arr[..., 0] * (100.0 / 255.0), arr[..., 1] - 128.0, arr[..., 2] - 128.0], -1)


def _hist(values: NDArray[np.floating], bins: int, lo: float, hi: float, weights: Any = None) -> NDArray[np.float64]:
    h, _ = np.histogram(values, bins=bins, range=(lo, hi), weights=weights)
    total = h.sum()
    return h / total if total > 0 else np.full(bins, 1.0 / bins)


def _centred_hellinger(h: NDArray[np.float64]) -> NDArray[np.float64]:
    """sqrt of a distribution minus the sqrt of the uniform one: signed, 0 = featureless."""
    return np.sqrt(h) - np.sqrt(1.0 / len(h))


class HandcraftedStyleDescriber:
    """Model-free style vector (numpy + Pillow): 64 dims, unit rows. See module docstring."""

    VERSION = 1
    SIZE = 160  # images are reduced to fit 160x160 first (style statistics are scale-tolerant)
    _DIM = 64

    @property
    def model_id(self) -> str:
        return f"handcrafted-style-v{self.VERSION}"

    @property
    def dimension(self) -> int:
        return self._DIM

    def describe(self, images: Sequence[Image.Image]) -> Vectors:
        images = list(images)
        if not images:
            return np.zeros((0, self._DIM), dtype=np.float32)
        return normalize_rows(np.stack([self.features(im) for im in images]))

    def features(self, image: Image.Image) -> NDArray[np.float32]:
        img = to_rgb_on_white(image)
        img = img.copy()
        img.thumbnail((self.SIZE, self.SIZE), Image.Resampling.BILINEAR)
        rgb = np.asarray(img, dtype=np.float32) / 255.0
        hsv = np.asarray(img.convert("HSV"), dtype=np.float32) / 255.0
        lab = _to_lab(img)
        h, s, v = hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()

        # colour: hue (weighted by chroma), saturation, value, CIELAB a/b and L
        chroma_w = s * v
        hue = _centred_hellinger(_hist(h, 12, 0.0, 1.0, chroma_w + 1e-6))
        sat = _centred_hellinger(_hist(s, 4, 0.0, 1.0))
        val = _centred_hellinger(_hist(v, 4, 0.0, 1.0))
        a, b = lab[..., 1].ravel(), lab[..., 2].ravel()
        ab2d, _, _ = np.histogram2d(a, b, bins=4, range=[[-64, 64], [-64, 64]])
        ab = _centred_hellinger(ab2d.ravel() / max(ab2d.sum(), 1.0))
        light = _centred_hellinger(_hist(lab[..., 0].ravel(), 6, 0.0, 100.0))

        # texture: gradient orientation histogram (magnitude-weighted), edge densities
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        gx = np.zeros_like(gray)
        gy = np.zeros_like(gray)
        gx[:, 1:-1] = (gray[:, 2:] - gray[:, :-2]) * 0.5
        gy[1:-1, :] = (gray[2:, :] - gray[:-2, :]) * 0.5
        mag = np.hypot(gx, gy).ravel()
        ori = np.arctan2(gy, gx).ravel() % np.pi
        orient = _centred_hellinger(_hist(ori, 8, 0.0, float(np.pi), mag + 1e-9))
        edge_lo = float((mag > 0.02).mean())
        edge_hi = float((mag > 0.15).mean())
        strong = mag[mag > 0.02]
        sharp = float((strong > 0.15).mean()) if strong.size else 0.0  # crisp outlines vs soft shading

        # saturation / colourfulness (Hasler & Suesstrunk 2003)
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        colourful = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))

        # palette flatness: distinct colours (5 bits per channel) and share of the 8 most common
        q = (np.asarray(img, dtype=np.uint8) >> 3).reshape(-1, 3).astype(np.int32)
        codes = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
        counts = np.bincount(codes, minlength=1 << 15)
        n_colours = int((counts > 0).sum())
        top8 = float(np.sort(counts)[-8:].sum() / codes.size)
        white = float(((rgb > 0.94).all(axis=2)).mean())

        scalars = np.array(
            [
                (s.mean() - 0.3) / 0.3,
                (s.std() - 0.2) / 0.2,
                (v.mean() - 0.6) / 0.3,
                (v.std() - 0.25) / 0.2,
                (colourful - 0.3) / 0.3,
                (edge_lo - 0.2) / 0.2,
                (edge_hi - 0.05) / 0.1,
                (sharp - 0.4) / 0.4,
                (np.log1p(n_colours) - 6.0) / 2.0,
                (top8 - 0.5) / 0.4,
                (white - 0.3) / 0.4,
                (float(mag.mean()) - 0.04) / 0.05,
            ],
            dtype=np.float64,
        )
        blocks = [  # (features, weight): each block contributes a comparable share of the norm
            (hue, 1.0),
            (sat, 0.7),
            (val, 0.7),
            (ab, 1.0),
            (light, 0.7),
            (orient, 1.0),
            (np.tanh(scalars), 0.5),
        ]
        vec = np.concatenate([f * w for f, w in blocks])
        out = np.zeros(self._DIM, dtype=np.float32)
        out[: vec.size] = vec  # 12+4+4+16+6+8+12 = 62 used, 2 reserved (zero)
        return out


class EmbeddingStyle:
    """The search embedder's image vector as the style vector (IMGSEARCH_STYLE=embedding)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    @property
    def model_id(self) -> str:
        return f"embedding:{self.embedder.model_id}"

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def describe(self, images: Sequence[Image.Image]) -> Vectors:
        return self.embedder.embed_images(images)

    def reuses(self, embedder: Embedder) -> bool:
        """True if its vectors are `embedder`'s image vectors (the caller may reuse them)."""
        return self.embedder is embedder or self.embedder.model_id == embedder.model_id


def default_style_describer(artifact_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> StyleDescriber:
    """Gram describer if its artifacts exist, else the model-free fallback."""
    if GramStyleDescriber.available(artifact_dir):
        return GramStyleDescriber(artifact_dir, **kwargs)
    return HandcraftedStyleDescriber()
