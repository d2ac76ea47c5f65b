"""Offline joint text-image embedder: ConSE (Norouzi et al., 2014, "Zero-Shot Learning by Convex
Combination of Semantic Embeddings").

* Text  -> all-MiniLM-L6-v2 sentence embedding (384-d, mean pooling, L2-normalised), ONNX.
* Image -> EfficientNet-Lite ImageNet-1k classifier (ONNX) -> softmax(logits / T) -> the
  probability-weighted mean of the text embeddings of its top-k classes' prompts
  ("a photo of a {class}", averaged over a prompt ensemble) -> L2-normalised.

Both land in the MiniLM space, so a caption can be compared with an image by cosine similarity.
Serving needs only onnxruntime, tokenizers, numpy and Pillow; the artifacts are produced once by
``python -m imgsearch.embedding.model_build`` (see scripts/setup_models.sh and docs/embeddings.md).

Artifact directory layout (written by model_build, described by ``manifest.json``)::

    classifier.onnx      input "pixels" (n,3,S,S) float32, already normalised -> "logits" (n,1000) and
                         (version >= 3) "features" (n,1280), the pooled activations the last layer maps to logits
    text_encoder.onnx    input_ids/attention_mask/token_type_ids (n,L) int64 -> "sentence_embedding" (n,384)
    tokenizer.json       HF tokenizers file of all-MiniLM-L6-v2
    class_text.npy       (1000,384) float32 unit rows: prompt-ensemble embedding of every class
    classes.txt          the 1000 ImageNet class names (comma-separated synonyms), one per line
    class_glosses.txt    (optional) the WordNet gloss of every class, one per line, "" if unknown
    class_prior.npy      (optional) (1000,) mean softmax(logits / T) over a reference image set
                         (not the evaluation images); used for prior correction p / prior**power
    manifest.json        artifact_version, variant, preprocessing, ConSE parameters, sources, sha256
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imgsearch.embedding.base import Embedder, EmbeddingError, Vectors, normalize_rows

TEXT_DIM = 384
MAX_TEXT_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)

# Prompt templates for the class-name text matrix ({} = class name).
PROMPT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "photo": ("a photo of a {}.",),
    "ensemble5": (
        "a photo of a {}.",
        "a drawing of a {}.",
        "an icon of a {}.",
        "a cartoon {}.",
        "clip art of a {}.",
    ),
    "drawing": ("a drawing of a {}.",),
    "bare": ("{}",),
    # with the class's WordNet gloss ({gloss}); classes without a gloss fall back to "photo"
    "photo_gloss": ("a photo of a {}: {gloss}.",),
    "gloss_only": ("{gloss}",),
}

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PIXEL_NORMS = ("tf", "imagenet")  # tf: x*2-1 ([-1,1]); imagenet: (x-mean)/std
RESIZE_MODES = ("pad", "crop", "squash", "trim_pad", "trim_squash")


def default_cache_dir() -> Path:
    """The environment's cache directory (IMGSEARCH_CACHE, default ~/.cache/imgsearch)."""
    from imgsearch.config import environment_cache_path

    return environment_cache_path()


def default_artifact_dir(variant: str = "lite0", cache: Path | None = None) -> Path:
    """Where scripts/setup_models.sh builds the feature extractor, in ``cache`` (default: the
    environment's cache directory)."""
    return (cache or default_cache_dir()) / "models" / f"conse-{variant}"


# --------------------------------------------------------------------------- pure helpers


def to_rgb_on_white(img: Image.Image) -> Image.Image:
    """Any PIL image -> RGB; transparency (RGBA, LA, P+transparency, PA) is composited on white."""
    if not isinstance(img, Image.Image):
        raise EmbeddingError(f"expected a PIL.Image, got {type(img).__name__}")
    if img.width < 1 or img.height < 1:
        raise EmbeddingError(f"empty image ({img.width}x{img.height})")
    try:
        mode = img.mode
        if mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")
            mode = "RGBA"
        if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            # 16/32-bit greyscale: rescale to 8 bit by the image's own range.
            arr = np.asarray(img, dtype=np.float32)
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
            return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
        if mode != "RGB":
            return img.convert("RGB")
        img.load()
        return img
    except EmbeddingError:
        raise
    except Exception as exc:  # truncated/undecodable data surfaces here (lazy decoding)
        raise EmbeddingError(f"cannot decode image: {exc}") from exc


def fit_square(img: Image.Image, size: int, mode: str = "pad") -> Image.Image:
    """Resize an RGB image to size x size.

    pad: keep the whole image, pad the short side with white (drawings/icons sit on white);
    crop: resize the short side to `size` and centre-crop (classic ImageNet eval);
    squash: ignore the aspect ratio;
    trim_pad / trim_squash: first crop away a uniform border (see `trim_background`).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if mode.startswith("trim_"):
        img = trim_background(img)
        mode = mode[len("trim_") :]
    w, h = img.size
    if mode == "squash":
        return img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    if mode == "crop":
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        return img.crop((left, top, left + size, top + size))
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(img, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def trim_background(img: Image.Image, tol: int = 12, margin: float = 0.04) -> Image.Image:
    """Crop an RGB image to the bounding box of pixels that differ from its top-left corner colour
    by more than `tol` (a uniform background, e.g. white after compositing), keeping a small
    margin. Images without such a border come back unchanged."""
    arr = np.asarray(img, dtype=np.int16)
    bg = arr[0, 0]
    fg = np.abs(arr - bg).max(axis=2) > tol
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return img
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = round(margin * max(bottom - top, right - left))
    box = (max(0, left - pad), max(0, top - pad), min(img.width, right + pad), min(img.height, bottom + pad))
    if box == (0, 0, img.width, img.height):
        return img
    return img.crop(box)


def normalize_pixels(arr: NDArray[np.uint8], pixel_norm: str = "tf") -> NDArray[np.float32]:
    """(n,H,W,3) uint8 -> (n,3,H,W) float32 normalised for the classifier."""
    x = np.asarray(arr, dtype=np.float32) / 255.0
    if pixel_norm == "tf":
        x = x * 2.0 - 1.0
    elif pixel_norm == "imagenet":
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    else:
        raise ValueError(f"pixel_norm must be one of {PIXEL_NORMS}, got {pixel_norm!r}")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def preprocess_images(
    images: Sequence[Image.Image], size: int, pixel_norm: str = "tf", resize_mode: str = "pad"
) -> NDArray[np.float32]:
    """PIL images -> (n,3,size,size) float32 model input."""
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        batch[i] = np.asarray(fit_square(to_rgb_on_white(img), size, resize_mode), dtype=np.uint8)
    return normalize_pixels(batch, pixel_norm)


def softmax(logits: NDArray[np.floating], temperature: float = 1.0) -> NDArray[np.float32]:
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def prior_correct(
    probs: NDArray[np.floating], prior: NDArray[np.floating] | None, power: float = 1.0
) -> NDArray[np.float32]:
    """Prior correction: p / prior**power, renormalised per row. `prior` is the mean class
    distribution over a reference image set; dividing by it damps the classes the model predicts
    for almost anything (e.g. "envelope", "web site" for flat drawings). power 0 = no-op."""
    p = np.asarray(probs, dtype=np.float32)
    if prior is None or power == 0:
        return p
    pr = np.asarray(prior, dtype=np.float64).reshape(-1)
    if pr.shape[0] != p.shape[1]:
        raise ValueError(f"prior has {pr.shape[0]} classes, probabilities {p.shape[1]}")
    scale = (np.maximum(pr, 1e-12) ** -float(power)).astype(np.float64)
    q = p.astype(np.float64) * scale[None, :]
    q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-300)
    return q.astype(np.float32)


def conse_combine(
    probs: NDArray[np.floating],
    class_matrix: NDArray[np.floating],
    top_k: int | None = 10,
    prior: NDArray[np.floating] | None = None,
    prior_power: float = 1.0,
) -> Vectors:
    """ConSE: for each row of class probabilities (optionally prior-corrected first, see
    `prior_correct`), the probability-weighted mean of the class embeddings of its top_k classes
    (all classes if top_k is None or >= n_classes), unit-normalised."""
    p = np.asarray(probs, dtype=np.float32)
    m = np.asarray(class_matrix, dtype=np.float32)
    if p.ndim != 2 or m.ndim != 2 or p.shape[1] != m.shape[0]:
        raise ValueError(f"shape mismatch: probs {p.shape} vs class matrix {m.shape}")
    p = prior_correct(p, prior, prior_power)
    n_classes = p.shape[1]
    if top_k is not None and 0 < top_k < n_classes:
        idx = np.argpartition(-p, top_k - 1, axis=1)[:, :top_k]
        w = np.zeros_like(p)
        rows = np.arange(p.shape[0])[:, None]
        w[rows, idx] = p[rows, idx]
    else:
        w = p
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return normalize_rows(w @ m)


def class_prompts(
    class_name: str, templates: Sequence[str], synonyms: str = "first", gloss: str | None = None
) -> list[str]:
    """Prompts of one ImageNet class line ("tabby, tabby cat").

    synonyms: "first" (first name only), "all" (one prompt per synonym), "joined" (the whole line).
    Templates may use {gloss} (the class's WordNet definition); without a gloss such a template
    degrades to "a photo of a {}." ("{gloss}" alone to the bare name).
    """
    names = [s.strip() for s in class_name.split(",") if s.strip()]
    if synonyms == "first":
        names = names[:1]
    elif synonyms == "joined":
        names = [", ".join(names)]
    elif synonyms != "all":
        raise ValueError(f"synonyms must be first|all|joined, got {synonyms!r}")
    gloss = (gloss or "").strip().rstrip(".")
    out = []
    for t in templates:
        if "{gloss}" in t and not gloss:
            t = "{}" if t.strip() == "{gloss}" else "a photo of a {}."
        for n in names:
            out.append(t.format(n, gloss=gloss) if "{gloss}" in t else t.format(n))
    return out


def build_class_matrix(
    embed_texts: Any,
    class_names: Sequence[str],
    templates: Sequence[str],
    synonyms: str = "first",
    glosses: Sequence[str] | None = None,
) -> Vectors:
    """(n_classes, d) unit rows: per class, the normalised mean of its prompts' embeddings."""
    if glosses is not None and len(glosses) != len(class_names):
        raise ValueError(f"{len(glosses)} glosses for {len(class_names)} classes")
    prompts: list[str] = []
    owner: list[int] = []
    for ci, name in enumerate(class_names):
        ps = class_prompts(name, templates, synonyms, glosses[ci] if glosses is not None else None)
        prompts.extend(ps)
        owner.extend([ci] * len(ps))
    emb = np.asarray(embed_texts(prompts), dtype=np.float32)
    out = np.zeros((len(class_names), emb.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owner), emb)
    return normalize_rows(out)


def read_class_names(path: str | os.PathLike[str]) -> list[str]:
    lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln]


def read_glosses(path: str | os.PathLike[str]) -> list[str]:
    """class_glosses.txt: one gloss per class line (empty lines = no gloss), kept positionally."""
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------- text encoder


class MiniLMOnnx:
    """all-MiniLM-L6-v2 (transformer + mean pooling + L2 normalise) exported to ONNX."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        tokenizer_path: str | os.PathLike[str],
        *,
        intra_op_threads: int | None = None,
        batch_size: int = 64,
        long_text: str = "truncate",
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if long_text not in ("truncate", "error"):
            raise ValueError("long_text must be 'truncate' or 'error'")
        self.long_text = long_text
        self.batch_size = max(1, int(batch_size))
        self.session = ort.InferenceSession(
            str(model_path), session_options(intra_op_threads), providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        tok = Tokenizer.from_file(str(tokenizer_path))
        tok.enable_truncation(max_length=MAX_TEXT_TOKENS)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in the batch
        self.tokenizer = tok

    def embed(self, texts: Sequence[str]) -> Vectors:
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise EmbeddingError(f"texts must be str, got {type(t).__name__}")
        if not texts:
            return np.zeros((0, TEXT_DIM), dtype=np.float32)
        out = [self._batch(texts[s : s + self.batch_size]) for s in range(0, len(texts), self.batch_size)]
        return normalize_rows(np.concatenate(out, axis=0))

    def _batch(self, texts: list[str]) -> NDArray[np.float32]:
        encs = self.tokenizer.encode_batch(texts)
        if self.long_text == "error":
            for t, e in zip(texts, encs, strict=True):
                if e.overflowing:
                    raise EmbeddingError(f"text longer than {MAX_TEXT_TOKENS} tokens: {t[:60]!r}...")
        feed = {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }
        feed = {k: v for k, v in feed.items() if k in self._inputs}
        return self.session.run(["sentence_embedding"], feed)[0]


def session_options(intra_op_threads: int | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if intra_op_threads:
        opts.intra_op_num_threads = int(intra_op_threads)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


# --------------------------------------------------------------------------- the embedder


class ConseEmbedder(Embedder):
    """ConSE joint embedder over ONNX artifacts (see module docstring).

    Loads lazily on first use; onnxruntime sessions are safe to call from several threads.
    Parameters left as None come from the artifact manifest.
    """

    def __init__(
        self,
        artifact_dir: str | os.PathLike[str] | None = None,
        *,
        intra_op_threads: int | None = None,
        image_batch_size: int = 16,
        text_batch_size: int = 64,
        top_k: int | None = None,
        temperature: float | None = None,
        pixel_norm: str | None = None,
        resize_mode: str | None = None,
        prior_power: float | None = None,
        long_text: str = "truncate",
    ) -> None:
        self.artifact_dir = Path(artifact_dir) if artifact_dir is not None else default_artifact_dir()
        self.intra_op_threads = intra_op_threads
        self.image_batch_size = max(1, int(image_batch_size))
        self.text_batch_size = max(1, int(text_batch_size))
        if long_text not in ("truncate", "error"):
            raise ValueError("long_text must be 'truncate' or 'error'")
        self.long_text = long_text
        self._overrides = {
            "top_k": top_k,
            "temperature": temperature,
            "pixel_norm": pixel_norm,
            "resize_mode": resize_mode,
            "prior_power": prior_power,
        }
        self._lock = threading.Lock()
        self._loaded = False
        self._manifest: dict[str, Any] = {}

    # -- loading -------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any]:
        """The manifest (cheap, no sessions). Raises FileNotFoundError without artifacts."""
        if self._manifest:
            return self._manifest
        manifest_path = self.artifact_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"no ConSE artifacts in {self.artifact_dir} (manifest.json missing); run scripts/setup_models.sh"
            )
        manifest = json.loads(manifest_path.read_text())
        conse = dict(manifest.get("conse", {}))
        for key, value in self._overrides.items():
            if value is not None:
                conse[key] = value
        self._params = conse
        self._manifest = manifest
        return manifest

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            import onnxruntime as ort

            manifest = self._read_manifest()
            files = manifest["files"]
            conse = self._params
            self._top_k = conse.get("top_k") or None
            self._temperature = float(conse.get("temperature", 1.0))
            self._pixel_norm = conse.get("pixel_norm", "tf")
            self._resize_mode = conse.get("resize_mode", "pad")
            self._image_size = int(manifest["image_size"])
            self._prior_power = float(conse.get("prior_power") or 0.0)
            self._prior: NDArray[np.float32] | None = None
            if self._prior_power and files.get("class_prior"):
                # NB: computed at the manifest's temperature; a temperature override reuses it.
                self._prior = np.load(self.artifact_dir / files["class_prior"]).astype(np.float32)

            self._cls_sess = ort.InferenceSession(
                str(self.artifact_dir / files["classifier"]),
                session_options(self.intra_op_threads),
                providers=["CPUExecutionProvider"],
            )
            outputs = {o.name: o for o in self._cls_sess.get_outputs()}
            self._cls_outputs = set(outputs)
            feat_shape = outputs["features"].shape if "features" in outputs else [None, 0]
            self._feature_dim = int(feat_shape[1]) if isinstance(feat_shape[1], int) else 0
            self._text = MiniLMOnnx(
                self.artifact_dir / files["text_encoder"],
                self.artifact_dir / files["tokenizer"],
                intra_op_threads=self.intra_op_threads,
                batch_size=self.text_batch_size,
                long_text=self.long_text,
            )
            self._class_matrix = np.load(self.artifact_dir / files["class_text"]).astype(np.float32)
            self._class_names = read_class_names(self.artifact_dir / files["classes"])
            self._loaded = True

    # -- protocol ------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """From the manifest (no model loading). Without artifacts it raises FileNotFoundError -
        note that on Python 3.11 isinstance(x, Embedder) evaluates this property."""
        self._read_manifest()
        base = self._manifest.get("model_id", f"conse-{self._manifest.get('variant', '?')}")
        defaults = self._manifest.get("conse", {})
        diffs = [
            f"{k}={self._params[k]}"
            for k in ("top_k", "temperature", "pixel_norm", "resize_mode", "prior_power")
            if self._params.get(k) != defaults.get(k)
        ]
        return base + ("+" + ",".join(diffs) if diffs else "")

    @property
    def dimension(self) -> int:
        return TEXT_DIM

    @property
    def class_names(self) -> list[str]:
        self._load()
        return list(self._class_names)

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self._read_manifest())

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise EmbeddingError(f"texts must be str, got {type(t).__name__}")
        if not texts:
            return np.zeros((0, TEXT_DIM), dtype=np.float32)
        self._load()
        return self._text.embed(texts)

    def class_probabilities(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """softmax(logits / T) over the 1000 ImageNet classes, (n,1000)."""
        images = list(images)
        if not images:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        self._load()
        out = []
        for start in range(0, len(images), self.image_batch_size):
            chunk = images[start : start + self.image_batch_size]
            x = preprocess_images(chunk, self._image_size, self._pixel_norm, self._resize_mode)
            logits = self._cls_sess.run(["logits"], {"pixels": x})[0]
            out.append(softmax(logits, self._temperature))
        return np.concatenate(out, axis=0)

    def image_features(self, images: Sequence[Image.Image]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(logits (n,1000), features (n,1280)) of the classifier from one onnxruntime run per batch:
        `features` are the pooled EfficientNet activations that the final linear layer maps to the
        logits (a content descriptor of the image). `embed_logits(logits)` turns the logits into the
        same vectors as `embed_images`. Needs artifact version >= 3."""
        images = list(images)
        self._load()
        if "features" not in self._cls_outputs:
            raise EmbeddingError(
                f"{self.artifact_dir}/classifier.onnx has no 'features' output (artifact version < 3): "
                "re-run scripts/setup_models.sh"
            )
        if not images:
            return np.zeros((0, len(self._class_names)), np.float32), np.zeros((0, self._feature_dim), np.float32)
        logits, feats = [], []
        for start in range(0, len(images), self.image_batch_size):
            chunk = images[start : start + self.image_batch_size]
            x = preprocess_images(chunk, self._image_size, self._pixel_norm, self._resize_mode)
            lg, ft = self._cls_sess.run(["logits", "features"], {"pixels": x})
            logits.append(lg)
            feats.append(ft)
        return np.concatenate(logits, axis=0), np.concatenate(feats, axis=0)

    def embed_logits(self, logits: NDArray[np.floating]) -> Vectors:
        """ConSE vectors from classifier logits (as `embed_images` computes them from images)."""
        self._load()
        probs = softmax(np.asarray(logits), self._temperature)
        return conse_combine(probs, self._class_matrix, self._top_k, self._prior, self._prior_power)

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        images = list(images)
        if not images:
            return np.zeros((0, TEXT_DIM), dtype=np.float32)
        probs = self.class_probabilities(images)
        return conse_combine(probs, self._class_matrix, self._top_k, self._prior, self._prior_power)

    def top_classes(self, images: Sequence[Image.Image], k: int = 5) -> list[list[tuple[str, float]]]:
        """The k most probable ImageNet classes per image (first synonym, probability): handy as
        explanations or automatic tags."""
        probs = self.class_probabilities(images)
        names = self._class_names
        result = []
        for row in probs:
            idx = np.argsort(-row)[:k]
            result.append([(names[i].split(",")[0].strip(), float(row[i])) for i in idx])
        return result


def iter_batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
