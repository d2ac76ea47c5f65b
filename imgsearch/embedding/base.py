"""The embedder interface: every backend (offline ConSE, Titan via Bedrock, ONNX CLIP, test hash)
fills this narrow contract. Vectors are float32 and unit-normalised, one row per input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Vectors = NDArray[np.float32]


class EmbeddingError(ValueError):
    """Input an embedder refuses (too long, undecodable, over a limit). The message says why."""


@runtime_checkable
class Embedder(Protocol):
    """Embeds texts and images into one joint space."""

    @property
    def model_id(self) -> str:
        """Stable id of model + version, stored with every document (a change triggers re-indexing)."""
        ...

    @property
    def dimension(self) -> int: ...

    def embed_texts(self, texts: Sequence[str]) -> Vectors: ...

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors: ...


def normalize_rows(x: NDArray[np.floating]) -> Vectors:
    """Unit-normalise each row (zero rows stay zero)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (arr / norms).astype(np.float32)
