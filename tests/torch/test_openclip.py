"""The open_clip backend's plumbing with randomly initialised weights (no CLIP weights can be had
offline). Runs in the model-build environment, which has torch (scripts/test.sh runs it there)."""

import numpy as np
import pytest
from PIL import Image

from imgsearch.embedding.base import Embedder
from imgsearch.embedding.openclip import OpenClipEmbedder


@pytest.fixture(scope="module")
def emb():
    import torch

    torch.manual_seed(0)
    return OpenClipEmbedder("ViT-B-32", None, batch_size=2, threads=2)


def test_contract_shapes_and_norms(emb):
    assert isinstance(emb, Embedder)
    assert emb.model_id == "openclip-ViT-B-32-random" and emb.dimension == 512
    t = emb.embed_texts(["a cat", "a rocket", "origami"])
    imgs = [Image.new("RGB", (300, 200), "red"), Image.new("RGBA", (64, 64)), Image.new("L", (10, 500))]
    v = emb.embed_images(imgs)
    for x in (t, v):
        assert x.shape == (3, 512) and x.dtype == np.float32
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert emb.embed_texts([]).shape == (0, 512)


def test_preprocessing_is_clip_224(emb):
    batch = emb.preprocess([Image.new("RGB", (640, 480), "white"), Image.new("RGB", (50, 80), "black")])
    assert tuple(batch.shape) == (2, 3, 224, 224)
    # CLIP normalisation: white maps above 1.5 in every channel, black below -1.4
    assert float(batch[0].min()) > 1.5 and float(batch[1].max()) < -1.4


def test_batching_does_not_change_vectors(emb):
    imgs = [Image.new("RGB", (100, 100), c) for c in ("red", "green", "blue")]
    together = emb.embed_images(imgs)
    alone = np.concatenate([emb.embed_images([im]) for im in imgs])
    assert np.allclose(together, alone, atol=1e-4)
    assert not np.allclose(together[0], together[1])
