"""Choose the embedder and the style describer from configuration.

IMGSEARCH_EMBEDDER: ``auto`` (ConSE if its artifacts are set up, else the hash test embedder with a
loud warning), ``conse``, ``titan`` (Bedrock; IMGSEARCH_TITAN_DIM 256/384/1024), ``onnx_clip`` (a CLIP
exported to ONNX: IMGSEARCH_CLIP_DIR or IMGSEARCH_CLIP_IMAGE_MODEL / _TEXT_MODEL / _TOKENIZER, and the
preprocessing settings IMGSEARCH_CLIP_*; see imgsearch/config.py), ``hash``.
IMGSEARCH_STYLE: ``auto`` (Gram statistics if the artifacts exist, else the model-free handcrafted
descriptor), ``gram``, ``handcrafted``, ``embedding`` (the embedder's own image vector, as the AWS
article does with Titan; best with a CLIP-class embedder).
All settings are read in imgsearch/config.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

from imgsearch.config import Settings
from imgsearch.embedding.base import Embedder
from imgsearch.embedding.style import (
    EmbeddingStyle,
    GramStyleDescriber,
    HandcraftedStyleDescriber,
    StyleDescriber,
)

log = logging.getLogger(__name__)


def _artifact_dir(settings: Settings) -> Path:
    from imgsearch.embedding.conse import default_artifact_dir

    return Path(settings.model_dir) if settings.model_dir else default_artifact_dir()


def make_embedder(settings: Settings) -> Embedder:
    kind = settings.embedder
    if kind in ("auto", "conse"):
        path = _artifact_dir(settings)
        if (path / "manifest.json").exists():
            from imgsearch.embedding.conse import ConseEmbedder

            return ConseEmbedder(path)
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
    raise ValueError(f"IMGSEARCH_EMBEDDER={kind!r} is not one of auto, conse, titan, onnx_clip, hash")


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
        long_text=settings.clip_long_text,
    )


def make_style(settings: Settings, embedder: Embedder | None = None) -> StyleDescriber:
    """The style describer; for ``embedding``, over `embedder` (made from the settings if None)."""
    kind = settings.style
    if kind == "embedding":
        return EmbeddingStyle(embedder if embedder is not None else make_embedder(settings))
    if kind in ("auto", "gram"):
        path = _artifact_dir(settings)
        if GramStyleDescriber.available(path):
            return GramStyleDescriber(path)
        if kind == "gram":
            raise FileNotFoundError(f"no Gram style artifacts in {path}: run scripts/setup_models.sh")
    if kind in ("auto", "handcrafted"):
        return HandcraftedStyleDescriber()
    raise ValueError(f"IMGSEARCH_STYLE={kind!r} is not one of auto, gram, handcrafted, embedding")
