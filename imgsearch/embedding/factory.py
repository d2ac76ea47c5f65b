"""Choose the embedder and the style describer from configuration.

IMGSEARCH_EMBEDDER: ``auto`` (ConSE if its artifacts are set up, else the hash test embedder with a
loud warning), ``conse``, ``titan`` (Bedrock; IMGSEARCH_TITAN_DIM 256/384/1024), ``openclip``
(IMGSEARCH_OPENCLIP_MODEL / _PRETRAINED; needs torch), ``hash``.
IMGSEARCH_STYLE: ``auto`` (Gram statistics if the artifacts exist, else the model-free handcrafted
descriptor), ``gram``, ``handcrafted``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from imgsearch.config import Settings
from imgsearch.embedding.base import Embedder
from imgsearch.embedding.style import GramStyleDescriber, HandcraftedStyleDescriber, StyleDescriber

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

        return TitanEmbedder(dimension=int(os.environ.get("IMGSEARCH_TITAN_DIM", "1024")))
    if kind == "openclip":
        from imgsearch.embedding.openclip import OpenClipEmbedder

        return OpenClipEmbedder(
            os.environ.get("IMGSEARCH_OPENCLIP_MODEL", "ViT-B-32"),
            os.environ.get("IMGSEARCH_OPENCLIP_PRETRAINED") or None,
        )
    if kind in ("auto", "hash"):
        from imgsearch.embedding.hashing import HashEmbedder

        return HashEmbedder(dimension=int(os.environ.get("IMGSEARCH_HASH_DIM", "64")))
    raise ValueError(f"IMGSEARCH_EMBEDDER={kind!r} is not one of auto, conse, titan, openclip, hash")


def make_style(settings: Settings) -> StyleDescriber:
    kind = settings.style
    if kind in ("auto", "gram"):
        path = _artifact_dir(settings)
        if GramStyleDescriber.available(path):
            return GramStyleDescriber(path)
        if kind == "gram":
            raise FileNotFoundError(f"no Gram style artifacts in {path}: run scripts/setup_models.sh")
    if kind in ("auto", "handcrafted"):
        return HandcraftedStyleDescriber()
    raise ValueError(f"IMGSEARCH_STYLE={kind!r} is not one of auto, gram, handcrafted")
