"""A tiny deterministic embedder for tests and for hosts without the model artifacts.

NOT a joint text–image space: texts are feature-hashed words; images are a downsampled colour
thumbnail, randomly projected. Image→image search works (near-duplicates are near), text→image does
not. It exists so the pipeline's plumbing can be exercised without model files; the default is the
ConSE embedder (imgsearch.embedding.conse).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

from imgsearch.embedding.base import Vectors, normalize_rows

_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    def __init__(self, dimension: int = 64, seed: int = 7) -> None:
        self._dim = dimension
        rng = np.random.default_rng(seed)
        self._proj = rng.standard_normal((16 * 16 * 3, dimension)).astype(np.float32)

    @property
    def model_id(self) -> str:
        return f"hash-v1-d{self._dim}"

    @property
    def dimension(self) -> int:
        return self._dim

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
        return normalize_rows(out)

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        if not images:
            return np.zeros((0, self._dim), dtype=np.float32)
        thumbs = np.stack(
            [np.asarray(im.convert("RGB").resize((16, 16), Image.Resampling.BILINEAR), np.float32) for im in images]
        )
        flat = thumbs.reshape(len(images), -1) / 255.0 - 0.5
        return normalize_rows(flat @ self._proj)
