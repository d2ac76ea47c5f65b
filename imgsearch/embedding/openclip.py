"""An open_clip backend, for hosts that can load CLIP weights (a local checkpoint file, or a
pretrained tag where the host may download it). Configured by IMGSEARCH_OPENCLIP_MODEL (e.g.
``ViT-B-32``) and IMGSEARCH_OPENCLIP_PRETRAINED (a path to a checkpoint, or an open_clip tag).

Needs ``torch`` and ``open_clip_torch``, which are not project dependencies (PyPI's torch is a
multi-GB CUDA build). Its plumbing (preprocessing, shapes, normalisation) is tested here with
randomly initialised weights; its search quality was not measured here, since no CLIP weights
can be had offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgsearch.embedding.base import Vectors, normalize_rows


def _weights_tag(pretrained: str | None) -> str:
    if not pretrained:
        return "random"
    path = Path(pretrained)
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return f"file-{h.hexdigest()[:12]}"
    return pretrained


class OpenClipEmbedder:
    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = None,
        *,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        import open_clip
        import torch

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained or None)
        model.eval()
        self._model: Any = model
        self._preprocess: Any = preprocess
        self._tokenizer: Any = open_clip.get_tokenizer(model_name)
        self._batch = batch_size
        self._model_id = f"openclip-{model_name}-{_weights_tag(pretrained)}"
        with torch.no_grad():
            self._dim = int(model.encode_text(self._tokenizer(["x"])).shape[-1])

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dim

    def preprocess(self, images: Sequence[Image.Image]) -> Any:
        return self._torch.stack([self._preprocess(im.convert("RGB")) for im in images])

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        rows = []
        with self._torch.no_grad():
            for i in range(0, len(texts), self._batch):
                rows.append(self._model.encode_text(self._tokenizer(list(texts[i : i + self._batch]))).float().numpy())
        return normalize_rows(np.concatenate(rows)) if rows else np.zeros((0, self._dim), np.float32)

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        rows = []
        with self._torch.no_grad():
            for i in range(0, len(images), self._batch):
                rows.append(self._model.encode_image(self.preprocess(images[i : i + self._batch])).float().numpy())
        return normalize_rows(np.concatenate(rows)) if rows else np.zeros((0, self._dim), np.float32)
