"""A CLIP backend on ONNX Runtime: any CLIP-class dual encoder (OpenAI CLIP, open_clip/LAION,
SigLIP-style towers) exported once, elsewhere, to two ONNX graphs and a tokenizer file.

Files (docs/embeddings.md "ONNX CLIP backend" shows how to export them with open_clip or transformers):

    image encoder   one float32 input (n,3,S,S), pixels already normalised -> first output (n,d)
    text encoder    int64 ``input_ids`` (n,L) (the only input, or the one named input_ids), optionally
                    int64 ``attention_mask`` (n,L) -> first output (n,d); pooling (EOT token or mean)
                    and the text projection happen inside the graph
    tokenizer       a Hugging Face ``tokenizers`` JSON file (``tokenizer.json``) that adds the start and
                    end tokens itself (CLIP's does: ``<|startoftext|> ... <|endoftext|>``)

Preprocessing is configuration (`ClipPreprocessing`): input size (default: the image encoder's static
input size), mean/std (default: OpenAI CLIP's), resize mode (``crop``: short side to S and centre
crop, as CLIP was trained; ``pad``: whole image on a white square, kinder to icons; ``squash``;
``trim_pad``/``trim_squash``). Transparency is composited on white. Texts are tokenized, truncated to
the context length (the graph's static length, else 77) keeping the end token, and padded to that
length with ``pad_id`` (0, open_clip's convention; any id below the end token's keeps EOT pooling
by argmax right). Static batch dimensions in the graphs are honoured (short batches are padded).

The model id is ``clip-<name>-<sha256 prefix>`` over the three files and every preprocessing
parameter, so changing any of them re-indexes into a new index (docs/operations.md "Change the embedding model").
Only onnxruntime, tokenizers, numpy and Pillow are needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imgsearch.config import CLIP_MEAN, CLIP_STD
from imgsearch.embedding.base import EmbeddingError, Vectors, normalize_rows
from imgsearch.embedding.conse import RESIZE_MODES, fit_square, session_options, to_rgb_on_white

DEFAULT_CONTEXT_LENGTH = 77
DEFAULT_IMAGE_SIZE = 224
FILE_NAMES = {"image": "image_encoder.onnx", "text": "text_encoder.onnx", "tokenizer": "tokenizer.json"}


@dataclass(frozen=True)
class ClipPreprocessing:
    image_size: int = 0  # 0: the image encoder's static input size (224 if it has none)
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    resize_mode: str = "crop"

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need 3 values (R, G, B)")
        if min(self.std) <= 0:
            raise ValueError(f"std values must be > 0, got {self.std}")
        if self.image_size < 0:
            raise ValueError(f"image size must be >= 0, got {self.image_size}")


def clip_pixels(
    images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float], resize_mode: str
) -> NDArray[np.float32]:
    """PIL images -> (n,3,size,size) float32: RGB on white, resized, (x/255 - mean) / std."""
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        batch[i] = np.asarray(fit_square(to_rgb_on_white(img), size, resize_mode), dtype=np.uint8)
    scale = np.float32(1.0 / 255.0)
    m, sd = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    x: NDArray[np.float32] = (batch.astype(np.float32) * scale - m) / sd
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _run_batched(session: Any, feed_name: str, output: str, x: NDArray[Any], size: int, fixed: int | None) -> Any:
    """Run `session` over the rows of `x` in batches of `size`, or of exactly `fixed` rows (a static
    batch dimension; the last batch padded with copies of its first row, whose outputs are dropped)."""
    step = fixed or size
    out = []
    for start in range(0, x.shape[0], step):
        chunk = x[start : start + step]
        n = chunk.shape[0]
        if fixed and n < fixed:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], fixed - n, axis=0)])
        out.append(session.run([output], {feed_name: chunk})[0][:n])
    return np.concatenate(out, axis=0)


class OnnxClipEmbedder:
    """CLIP image and text towers on ONNX Runtime (see module docstring). Thread-safe after
    construction (onnxruntime sessions and tokenizers' encode_batch may be called concurrently)."""

    def __init__(
        self,
        image_model: str | os.PathLike[str],
        text_model: str | os.PathLike[str],
        tokenizer: str | os.PathLike[str],
        *,
        preprocessing: ClipPreprocessing | None = None,
        context_length: int = 0,
        pad_id: int = 0,
        name: str = "",
        image_batch_size: int = 16,
        text_batch_size: int = 64,
        intra_op_threads: int | None = None,
        long_text: str = "truncate",
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        paths = {"image": Path(image_model), "text": Path(text_model), "tokenizer": Path(tokenizer)}
        for what, path in paths.items():
            if not path.is_file():
                raise FileNotFoundError(f"CLIP {what} file not found: {path}")
        if long_text not in ("truncate", "error"):
            raise ValueError("long_text must be 'truncate' or 'error'")
        if name and not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"CLIP model name may hold letters, digits, '.', '_', '-' only: {name!r}")
        self.paths = paths
        self.long_text = long_text
        self.pad_id = int(pad_id)
        self.image_batch_size = max(1, int(image_batch_size))
        self.text_batch_size = max(1, int(text_batch_size))
        prep = preprocessing or ClipPreprocessing()
        opts = session_options(intra_op_threads)
        providers = ["CPUExecutionProvider"]

        # image tower: one (n,3,S,S) float input
        self._img = ort.InferenceSession(str(paths["image"]), opts, providers=providers)
        inputs = self._img.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(
                f"{paths['image']}: the image encoder needs one (n,3,S,S) input, has "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        shape = inputs[0].shape
        if _static(shape[1]) not in (None, 3):
            raise ValueError(f"{paths['image']}: input has {shape[1]} channels, not 3")
        graph_size = _static(shape[2]) if _static(shape[2]) == _static(shape[3]) else None
        if prep.image_size and graph_size and prep.image_size != graph_size:
            raise ValueError(
                f"image size {prep.image_size} configured, but the image encoder takes {graph_size}x{graph_size}"
            )
        size = prep.image_size or graph_size or DEFAULT_IMAGE_SIZE
        self.preprocessing = ClipPreprocessing(size, tuple(prep.mean), tuple(prep.std), prep.resize_mode)  # type: ignore[arg-type]
        self._img_input = inputs[0].name
        self._img_batch = _static(shape[0])
        self._img_output = self._img.get_outputs()[0].name

        # text tower: input_ids (+ attention_mask)
        self._txt = ort.InferenceSession(str(paths["text"]), opts, providers=providers)
        tin = {i.name: i for i in self._txt.get_inputs()}
        ids_name = "input_ids" if "input_ids" in tin else (next(iter(tin)) if len(tin) == 1 else "")
        extra = set(tin) - {ids_name, "attention_mask"}
        if not ids_name or extra:
            raise ValueError(
                f"{paths['text']}: the text encoder needs input_ids (and optionally attention_mask), has {sorted(tin)}"
            )
        self._ids_name = ids_name
        self._has_mask = "attention_mask" in tin
        tshape = tin[ids_name].shape
        if len(tshape) != 2:
            raise ValueError(f"{paths['text']}: input_ids must be (n,L), is {tshape}")
        graph_len = _static(tshape[1])
        if context_length and graph_len and context_length != graph_len:
            raise ValueError(f"context length {context_length} configured, but the text encoder takes {graph_len}")
        self.context_length = int(context_length or graph_len or DEFAULT_CONTEXT_LENGTH)
        self._txt_batch = _static(tshape[0])
        self._txt_output = self._txt.get_outputs()[0].name

        tok = Tokenizer.from_file(str(paths["tokenizer"]))
        tok.enable_truncation(max_length=self.context_length)
        tok.enable_padding(length=self.context_length, pad_id=self.pad_id)
        self.tokenizer = tok
        probe = tok.encode("a")
        if not any(s and m for s, m in zip(probe.special_tokens_mask, probe.attention_mask, strict=True)):
            raise ValueError(
                f"{paths['tokenizer']}: the tokenizer adds no start/end tokens (its post_processor is "
                "missing); CLIP's text encoder pools at the end token"
            )

        # one probe per tower: the output dimensions, and a clear error for a wrong size or length
        try:
            img_dim = self._image_features(np.zeros((1, 3, size, size), np.float32)).shape[1]
        except Exception as exc:
            raise ValueError(
                f"{paths['image']}: the image encoder fails on a (1,3,{size},{size}) input "
                f"(is {size} its input size? IMGSEARCH_CLIP_IMAGE_SIZE): {exc}"
            ) from exc
        try:
            txt_dim = self._text_features(["a photo"]).shape[1]
        except Exception as exc:
            raise ValueError(
                f"{paths['text']}: the text encoder fails on a (1,{self.context_length}) input "
                f"(is {self.context_length} its context length? IMGSEARCH_CLIP_CONTEXT_LENGTH): {exc}"
            ) from exc
        if img_dim != txt_dim:
            raise ValueError(f"the image encoder gives {img_dim}-d vectors, the text encoder {txt_dim}-d")
        self._dim = int(img_dim)

        params = {
            **asdict(self.preprocessing),
            "context_length": self.context_length,
            "pad_id": self.pad_id,
        }
        digest = hashlib.sha256(
            json.dumps(
                {"files": {k: file_sha256(p) for k, p in paths.items()}, "params": params}, sort_keys=True
            ).encode()
        ).hexdigest()
        self.params = params
        self._model_id = f"clip-{name or 'onnx'}-{digest[:12]}"

    # -- protocol ----------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dim

    def preprocess(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        p = self.preprocessing
        return clip_pixels(images, p.image_size, p.mean, p.std, p.resize_mode)

    def tokenize(self, texts: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(input_ids, attention_mask), both (n, context_length) int64."""
        encs = self.tokenizer.encode_batch(list(texts))
        if self.long_text == "error":
            for t, e in zip(texts, encs, strict=True):
                if e.overflowing:
                    raise EmbeddingError(f"text longer than {self.context_length} tokens: {t[:60]!r}...")
        ids = np.array([e.ids for e in encs], dtype=np.int64).reshape(len(encs), self.context_length)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64).reshape(len(encs), self.context_length)
        return ids, mask

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise EmbeddingError(f"texts must be str, got {type(t).__name__}")
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalize_rows(self._text_features(texts))

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        images = list(images)
        if not images:
            return np.zeros((0, self._dim), dtype=np.float32)
        out = [
            self._image_features(self.preprocess(images[s : s + self.image_batch_size]))
            for s in range(0, len(images), self.image_batch_size)
        ]
        return normalize_rows(np.concatenate(out, axis=0))

    # -- internals -----------------------------------------------------------------------------
    def _image_features(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        out = _run_batched(self._img, self._img_input, self._img_output, pixels, len(pixels), self._img_batch)
        return self._check_rows(out, len(pixels), "image")

    def _text_features(self, texts: list[str]) -> NDArray[np.float32]:
        rows = []
        for s in range(0, len(texts), self.text_batch_size):
            ids, mask = self.tokenize(texts[s : s + self.text_batch_size])
            rows.append(self._run_text(ids, mask))
        return self._check_rows(np.concatenate(rows, axis=0), len(texts), "text")

    def _run_text(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        step = self._txt_batch or len(ids)
        out = []
        for start in range(0, len(ids), step):
            i, m = ids[start : start + step], mask[start : start + step]
            n = len(i)
            if self._txt_batch and n < self._txt_batch:
                i = np.concatenate([i, np.repeat(i[:1], self._txt_batch - n, axis=0)])
                m = np.concatenate([m, np.repeat(m[:1], self._txt_batch - n, axis=0)])
            feed = {self._ids_name: i}
            if self._has_mask:
                feed["attention_mask"] = m
            out.append(self._txt.run([self._txt_output], feed)[0][:n])
        return np.concatenate(out, axis=0)

    @staticmethod
    def _check_rows(out: Any, n: int, what: str) -> NDArray[np.float32]:
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"the {what} encoder returned shape {arr.shape}, expected ({n}, d)")
        if not np.isfinite(arr).all():
            raise EmbeddingError(f"the {what} encoder returned non-finite values")
        return arr


def from_directory(directory: str | os.PathLike[str], **kwargs: Any) -> OnnxClipEmbedder:
    """The embedder of a directory laid out as docs/embeddings.md's export writes it
    (image_encoder.onnx, text_encoder.onnx, tokenizer.json)."""
    d = Path(directory)
    return OnnxClipEmbedder(d / FILE_NAMES["image"], d / FILE_NAMES["text"], d / FILE_NAMES["tokenizer"], **kwargs)
