"""The default offline embedder and style describer: the frozen ConSE models plus the learned heads
(`imgsearch.embedding.heads`).

* `LearnedEmbedder` - texts: MiniLM, unchanged (so queries, the index dimension and every text path
  stay as they were); images: the search head over [ConSE vector, pooled EfficientNet features],
  mixed with the ConSE vector.
* `LearnedStyleDescriber` - the style head over the Gram statistics of the early layers.

Both read one `FeatureExtractor`: the embedding worker calls ``embed_images(batch)`` and then
``describe(batch)`` with the same batch, so the extractor keeps the features of the last batch and
the networks run once per image.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from imgsearch.embedding.base import Embedder, Vectors
from imgsearch.embedding.conse import ConseEmbedder
from imgsearch.embedding.heads import Heads, load_heads
from imgsearch.embedding.style import GramStyleDescriber

Features = dict[str, NDArray[np.float32]]
PACKAGED_HEADS = Path(__file__).resolve().parent / "trained" / "heads-v2"


class FeatureExtractor:
    """Frozen features of images: ``conse`` (384), ``pooled`` (1280), ``gram`` (1416 raw statistics)."""

    def __init__(self, conse: ConseEmbedder, gram: GramStyleDescriber) -> None:
        self.conse = conse
        self.gram = gram
        self._lock = threading.Lock()
        self._last: tuple[list[Image.Image], Features] | None = None

    @staticmethod
    def from_artifacts(
        artifact_dir: Path, *, intra_op_threads: int | None = None, batch_size: int = 16
    ) -> FeatureExtractor:
        return FeatureExtractor(
            ConseEmbedder(artifact_dir, intra_op_threads=intra_op_threads, image_batch_size=batch_size),
            GramStyleDescriber(artifact_dir, intra_op_threads=intra_op_threads, batch_size=batch_size),
        )

    def extract(self, images: Sequence[Image.Image]) -> Features:
        images = list(images)
        with self._lock:
            last = self._last
        if (
            last is not None
            and len(last[0]) == len(images)
            and all(a is b for a, b in zip(last[0], images, strict=True))
        ):
            return last[1]
        logits, pooled = self.conse.image_features(images)
        feats: Features = {
            "conse": self.conse.embed_logits(logits),
            "pooled": pooled,
            "gram": self.gram.raw_features(images),
        }
        with self._lock:  # holding the images keeps their ids from being reused
            self._last = (images, feats)
        return feats


class LearnedEmbedder(Embedder):
    def __init__(self, extractor: FeatureExtractor, heads: Heads, mix: float | None = None) -> None:
        self.extractor = extractor
        self.heads = heads
        self.mix = heads.search.mix if mix is None else float(mix)

    @property
    def model_id(self) -> str:
        mix = "" if self.mix == self.heads.search.mix else f"+mix={self.mix:g}"
        return f"{self.extractor.conse.model_id}+lit-{self.heads.digest}{mix}"

    @property
    def dimension(self) -> int:
        return self.extractor.conse.dimension

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        return self.extractor.conse.embed_texts(texts)

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        images = list(images)
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.heads.search.embed(self.extractor.extract(images), self.mix)


class LearnedStyleDescriber:
    def __init__(self, extractor: FeatureExtractor, heads: Heads) -> None:
        self.extractor = extractor
        self.heads = heads

    @property
    def model_id(self) -> str:
        return f"style-lda{self.heads.style.dimension}-{self.heads.digest}"

    @property
    def dimension(self) -> int:
        return self.heads.style.dimension

    def describe(self, images: Sequence[Image.Image]) -> Vectors:
        images = list(images)
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.heads.style.describe(self.extractor.extract(images))


def heads_available(path: Path = PACKAGED_HEADS) -> bool:
    return path.with_suffix(".npz").is_file() and path.with_suffix(".json").is_file()


def load_learned(
    artifact_dir: Path, heads_path: Path = PACKAGED_HEADS, *, intra_op_threads: int | None = None, batch_size: int = 16
) -> tuple[LearnedEmbedder, LearnedStyleDescriber]:
    """The embedder and the style describer over one shared extractor."""
    heads = load_heads(heads_path)
    extractor = FeatureExtractor.from_artifacts(artifact_dir, intra_op_threads=intra_op_threads, batch_size=batch_size)
    return LearnedEmbedder(extractor, heads), LearnedStyleDescriber(extractor, heads)
