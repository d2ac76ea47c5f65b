"""Choose the embedder and the style describer from configuration.

IMGSEARCH_EMBEDDER: ``auto`` (the learned heads over ConSE if the artifacts and the heads are there,
else ConSE alone if its artifacts are set up, else the hash test embedder with a loud warning),
``learned`` (ConSE + the search head of IMGSEARCH_HEADS), ``conse``, ``titan`` (Bedrock;
IMGSEARCH_TITAN_DIM 256/384/1024), ``onnx_clip`` (a CLIP exported to ONNX: IMGSEARCH_CLIP_DIR or
IMGSEARCH_CLIP_IMAGE_MODEL / _TEXT_MODEL / _TOKENIZER, and the preprocessing settings IMGSEARCH_CLIP_*;
see imgsearch/config.py), ``hash``.
IMGSEARCH_STYLE: ``auto`` (the learned style head if the heads and artifacts are there, else the
Gram statistics' PCA if the artifacts exist, else the model-free handcrafted descriptor), ``learned``,
``gram``, ``handcrafted``, ``embedding`` (the embedder's own image vector, as the AWS article does with
Titan; best with a CLIP-class embedder).
All settings are read in imgsearch/config.py.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from imgsearch.config import Settings
from imgsearch.embedding.base import Embedder
from imgsearch.embedding.style import (
    EmbeddingStyle,
    GramStyleDescriber,
    HandcraftedStyleDescriber,
    StyleDescriber,
)

if TYPE_CHECKING:
    from imgsearch.embedding.learned import LearnedEmbedder, LearnedStyleDescriber

log = logging.getLogger(__name__)


def _artifact_dir(settings: Settings) -> Path:
    from imgsearch.embedding.conse import default_artifact_dir

    return Path(settings.model_dir) if settings.model_dir else default_artifact_dir(cache=settings.cache_path)


def _heads_path(settings: Settings) -> Path:
    from imgsearch.embedding.learned import PACKAGED_HEADS

    return Path(settings.heads_path) if settings.heads_path else PACKAGED_HEADS


def learned_available(settings: Settings) -> bool:
    """The learned heads need the heads file and artifacts whose classifier has the pooled features."""
    from imgsearch.embedding.learned import heads_available

    try:
        manifest = json.loads((_artifact_dir(settings) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    # artifact version 3 (the torch-free build) gives the classifier its "features" output
    return int(manifest.get("artifact_version", 1)) >= 3 and heads_available(_heads_path(settings))


def _threads(settings: Settings) -> int | None:
    """The ONNX sessions' intra-op threads (None: onnxruntime's default, one per core)."""
    return settings.embed_threads or None


@functools.lru_cache(maxsize=4)
def _learned(
    artifact_dir: Path, heads: Path, threads: int | None, batch: int
) -> tuple[LearnedEmbedder, LearnedStyleDescriber]:
    from imgsearch.embedding.learned import load_learned

    return load_learned(artifact_dir, heads, intra_op_threads=threads, batch_size=batch)


def learned_pair(settings: Settings) -> tuple[LearnedEmbedder, LearnedStyleDescriber]:
    """The learned embedder and style describer of these settings, sharing one feature extractor (one
    run of the networks per image) - the same objects for every call with the same paths."""
    if not learned_available(settings):
        raise FileNotFoundError(
            f"no learned heads for {_artifact_dir(settings)} / {_heads_path(settings)}: run scripts/setup_models.sh"
        )
    return _learned(_artifact_dir(settings), _heads_path(settings), _threads(settings), settings.embed_batch)


def make_embedder(settings: Settings) -> Embedder:
    kind = settings.embedder
    if kind == "learned" or (kind == "auto" and learned_available(settings)):
        return learned_pair(settings)[0]
    if kind in ("auto", "conse"):
        path = _artifact_dir(settings)
        if (path / "manifest.json").exists():
            from imgsearch.embedding.conse import ConseEmbedder

            return ConseEmbedder(path, intra_op_threads=_threads(settings), image_batch_size=settings.embed_batch)
        if kind == "conse":
            raise FileNotFoundError(f"no ConSE model artifacts in {path}: run scripts/setup_models.sh")
        log.warning(
            "no ConSE model artifacts in %s (run scripts/setup_models.sh): using the hash test "
            "embedder, which cannot match text to images",
            path,
        )
    if kind == "titan":
        from imgsearch.embedding.titan import TitanEmbedder

        return TitanEmbedder(dimension=settings.titan_dim)
    if kind == "onnx_clip":
        return make_onnx_clip(settings)
    if kind in ("auto", "hash"):
        from imgsearch.embedding.hashing import HashEmbedder

        return HashEmbedder(dimension=settings.hash_dim)
    if kind == "openclip":
        raise ValueError(
            "IMGSEARCH_EMBEDDER=openclip (torch) was replaced by onnx_clip: export the model to ONNX once "
            "(docs/embeddings.md, ONNX CLIP backend) and set IMGSEARCH_CLIP_DIR"
        )
    raise ValueError(f"IMGSEARCH_EMBEDDER={kind!r} is not one of auto, learned, conse, titan, onnx_clip, hash")


def make_onnx_clip(settings: Settings) -> Embedder:
    from imgsearch.embedding.onnx_clip import ClipPreprocessing, OnnxClipEmbedder

    image_model, text_model, tokenizer = settings.clip_files()
    return OnnxClipEmbedder(
        image_model,
        text_model,
        tokenizer,
        preprocessing=ClipPreprocessing(
            image_size=settings.clip_image_size,
            mean=settings.clip_mean,
            std=settings.clip_std,
            resize_mode=settings.clip_resize,
        ),
        context_length=settings.clip_context_length,
        pad_id=settings.clip_pad_id,
        name=settings.clip_name,
        image_batch_size=settings.embed_batch,
        intra_op_threads=_threads(settings),
        long_text=settings.clip_long_text,
    )


def make_style(settings: Settings, embedder: Embedder | None = None) -> StyleDescriber:
    """The style describer; for ``embedding``, over `embedder` (made from the settings if None)."""
    kind = settings.style
    if kind == "embedding":
        return EmbeddingStyle(embedder if embedder is not None else make_embedder(settings))
    if kind == "learned" or (kind == "auto" and learned_available(settings)):
        return learned_pair(settings)[1]
    if kind in ("auto", "gram"):
        path = _artifact_dir(settings)
        if GramStyleDescriber.available(path):
            return GramStyleDescriber(path, intra_op_threads=_threads(settings), batch_size=settings.embed_batch)
        if kind == "gram":
            raise FileNotFoundError(f"no Gram style artifacts in {path}: run scripts/setup_models.sh")
    if kind in ("auto", "handcrafted"):
        return HandcraftedStyleDescriber()
    raise ValueError(f"IMGSEARCH_STYLE={kind!r} is not one of auto, learned, gram, handcrafted, embedding")
