"""The ONNX CLIP backend on a tiny, randomly initialised CLIP-shaped model pair (tests/tiny_clip.py):
the contract, preprocessing, the towers' inputs (checked against numpy references of the same graphs),
normalisation, batching (also static batch dimensions), text truncation, configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgsearch.config import CLIP_MEAN, CLIP_STD, Settings
from imgsearch.embedding.base import Embedder, EmbeddingError
from imgsearch.embedding.factory import make_embedder, make_style
from imgsearch.embedding.onnx_clip import ClipPreprocessing, OnnxClipEmbedder, from_directory
from imgsearch.embedding.style import EmbeddingStyle
from tests.tiny_clip import EOT, SOT, TinyClip, build_tiny_clip

MEAN = np.array(CLIP_MEAN, np.float32)
STD = np.array(CLIP_STD, np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyClip:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "eot")


@pytest.fixture(scope="module")
def emb(tiny: TinyClip) -> OnnxClipEmbedder:
    return OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer, image_batch_size=4, text_batch_size=3)


def images() -> list[Image.Image]:
    wide = Image.new("RGB", (60, 30), "red")
    wide.paste((0, 0, 255), (0, 0, 15, 30))  # a blue left quarter
    return [
        wide,
        Image.new("RGBA", (20, 20), (0, 0, 0, 0)),  # transparent: white
        Image.new("L", (7, 90), 40),
        Image.new("RGB", (32, 32), "green"),
        Image.new("P", (40, 40), 3),
        Image.new("RGB", (33, 100), (200, 120, 10)),
    ]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_contract_shapes_norms(emb: OnnxClipEmbedder, tiny: TinyClip):
    assert isinstance(emb, Embedder)
    assert emb.model_id.startswith("clip-onnx-") and emb.dimension == tiny.dim == 16
    assert emb.context_length == tiny.context_length == 12  # from the graph's static length
    assert emb.preprocessing.image_size == tiny.image_size == 32  # from the graph's static input
    t = emb.embed_texts(["a photo of a cat", "a red printer", "", "unknown words only"])
    v = emb.embed_images(images())
    for x, n in ((t, 4), (v, 6)):
        assert x.shape == (n, 16) and x.dtype == np.float32
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert emb.embed_texts([]).shape == (0, 16) and emb.embed_images([]).shape == (0, 16)
    assert len({tuple(np.round(r, 5)) for r in t}) == 4  # different texts, different vectors
    with pytest.raises(EmbeddingError):
        emb.embed_texts([b"bytes"])  # type: ignore[list-item]


def test_towers_get_the_right_inputs(emb: OnnxClipEmbedder, tiny: TinyClip):
    """The vectors are the tiny model's own (numpy reference), normalised: pixels in NCHW with CLIP's
    mean/std, token ids as the tokenizer gives them."""
    ims = images()
    assert np.allclose(emb.embed_images(ims), unit(tiny.image_reference(emb.preprocess(ims))), atol=1e-5)
    texts = ["a photo of a cat", "The Red Printer", "dog"]
    ids, mask = emb.tokenize(texts)
    assert np.allclose(emb.embed_texts(texts), unit(tiny.text_reference(ids, mask)), atol=1e-5)


def test_preprocessing_values_and_layout(emb: OnnxClipEmbedder):
    white, black = Image.new("RGB", (50, 80), "white"), Image.new("RGB", (640, 480), "black")
    x = emb.preprocess([white, black, Image.new("RGBA", (9, 9), (0, 0, 0, 0))])
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.float32
    assert np.allclose(x[0], ((1 - MEAN) / STD)[:, None, None], atol=1e-6)  # CLIP normalisation, per channel
    assert np.allclose(x[1], (-MEAN / STD)[:, None, None], atol=1e-6)
    assert np.allclose(x[2], x[0])  # transparency is composited on white


def test_resize_modes(tiny: TinyClip):
    wide = Image.new("RGB", (64, 32), "red")
    wide.paste((0, 0, 255), (0, 0, 16, 32))  # blue left quarter: cut away by a centre crop
    blue = ((np.array([0, 0, 1], np.float32) - MEAN) / STD)[:, None]
    crop = OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer).preprocess([wide])[0]
    pad = OnnxClipEmbedder(
        tiny.image_model, tiny.text_model, tiny.tokenizer, preprocessing=ClipPreprocessing(resize_mode="pad")
    ).preprocess([wide])[0]
    assert not np.isclose(crop, blue[:, :, None], atol=0.05).all(axis=0).any()  # no blue left after cropping
    assert np.isclose(pad[:, 16, 1], blue[:, 0], atol=0.05).all()  # padded: blue at the left...
    assert np.allclose(pad[:, 0, :], ((1 - MEAN) / STD)[:, None], atol=1e-6)  # ...white bars on top


def test_mean_std_are_configuration(tiny: TinyClip, emb: OnnxClipEmbedder):
    prep = ClipPreprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    other = OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer, preprocessing=prep)
    x = other.preprocess([Image.new("RGB", (8, 8), "white"), Image.new("RGB", (8, 8), "black")])
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0)
    assert other.model_id != emb.model_id  # preprocessing is part of the model id
    again = OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer)
    assert again.model_id == emb.model_id  # and the id is stable
    with pytest.raises(ValueError, match="std"):
        ClipPreprocessing(std=(0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match="resize mode"):
        ClipPreprocessing(resize_mode="stretch")


def test_batching_does_not_change_vectors(tiny: TinyClip, emb: OnnxClipEmbedder, tmp_path: Path):
    ims = images()
    together = emb.embed_images(ims)  # batches of 4: 4 + 2
    alone = np.concatenate([emb.embed_images([im]) for im in ims])
    assert np.allclose(together, alone, atol=1e-5)
    texts = ["a cat", "a photo of a big red rocket", "mono", "neon circle", "this is a square"]
    assert np.allclose(emb.embed_texts(texts), np.concatenate([emb.embed_texts([t]) for t in texts]), atol=1e-5)
    # graphs exported with a fixed batch of 3: short batches are padded, the result is the same
    fixed = build_tiny_clip(tmp_path / "static", static_batch=3)
    static = OnnxClipEmbedder(fixed.image_model, fixed.text_model, fixed.tokenizer, image_batch_size=16)
    assert np.allclose(static.embed_images(ims), together, atol=1e-5)
    assert np.allclose(static.embed_texts(texts), emb.embed_texts(texts), atol=1e-5)


def test_text_truncation_keeps_the_end_token(emb: OnnxClipEmbedder, tiny: TinyClip, tmp_path: Path):
    words = ("a photo of a big red cat " * 8).split()
    ids, mask = emb.tokenize([" ".join(words), "a cat"])
    assert ids.shape == mask.shape == (2, 12)
    assert ids[0, 0] == tiny.vocab[SOT] and ids[0, -1] == tiny.vocab[EOT] and mask[0].all()
    assert list(ids[1, :4]) == [tiny.vocab[SOT], tiny.vocab["a"], tiny.vocab["cat"], tiny.vocab[EOT]]
    assert (ids[1, 4:] == 0).all() and list(mask[1]) == [1] * 4 + [0] * 8  # padded to the context length
    # a long text embeds as its first context_length - 2 words
    kept = " ".join(words[: 12 - 2])
    assert np.allclose(emb.embed_texts([" ".join(words)]), emb.embed_texts([kept]), atol=1e-6)
    strict = OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer, long_text="error")
    assert strict.embed_texts([kept]).shape == (1, 16)
    with pytest.raises(EmbeddingError, match="longer than 12 tokens"):
        strict.embed_texts([kept + " cat"])


def test_mean_pooling_with_attention_mask(tmp_path: Path):
    tiny = build_tiny_clip(tmp_path / "mean", pooling="mean")
    emb = OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer)
    texts = ["a cat", "a photo of a big red rocket"]
    ids, mask = emb.tokenize(texts)
    assert np.allclose(emb.embed_texts(texts), unit(tiny.text_reference(ids, mask)), atol=1e-5)
    assert np.allclose(emb.embed_texts(texts[:1]), emb.embed_texts(texts)[:1], atol=1e-6)  # padding is masked


def test_dynamic_graphs_take_the_configured_sizes(tmp_path: Path):
    tiny = build_tiny_clip(tmp_path / "dyn", dynamic_image_size=True, dynamic_context=True)
    emb = OnnxClipEmbedder(
        tiny.image_model,
        tiny.text_model,
        tiny.tokenizer,
        preprocessing=ClipPreprocessing(image_size=48),
        context_length=12,
    )
    assert emb.preprocessing.image_size == 48 and emb.preprocess([Image.new("RGB", (5, 5))]).shape == (1, 3, 48, 48)
    ims = images()
    assert np.allclose(emb.embed_images(ims), unit(tiny.image_reference(emb.preprocess(ims))), atol=1e-5)
    # the tiny text tower has 12 positions; the default context length (77) fails with a clear message
    with pytest.raises(ValueError, match="IMGSEARCH_CLIP_CONTEXT_LENGTH"):
        OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer)


def test_mismatches_are_refused(tiny: TinyClip, tmp_path: Path):
    with pytest.raises(ValueError, match="image size 64 configured"):
        OnnxClipEmbedder(
            tiny.image_model, tiny.text_model, tiny.tokenizer, preprocessing=ClipPreprocessing(image_size=64)
        )
    with pytest.raises(ValueError, match="context length 20 configured"):
        OnnxClipEmbedder(tiny.image_model, tiny.text_model, tiny.tokenizer, context_length=20)
    other = build_tiny_clip(tmp_path / "d8", dim=8)
    with pytest.raises(ValueError, match="16-d vectors, the text encoder 8-d"):
        OnnxClipEmbedder(tiny.image_model, other.text_model, tiny.tokenizer)
    with pytest.raises(ValueError, match="image encoder needs one"):
        OnnxClipEmbedder(tiny.text_model, tiny.text_model, tiny.tokenizer)  # swapped files
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        OnnxClipEmbedder(tiny.image_model, tiny.text_model, tmp_path / "missing.json")
    from tokenizers import Tokenizer

    bare = Tokenizer.from_file(str(tiny.tokenizer))
    bare.post_processor = None
    bare.save(str(tmp_path / "bare.json"))
    with pytest.raises(ValueError, match="no start/end tokens"):
        OnnxClipEmbedder(tiny.image_model, tiny.text_model, tmp_path / "bare.json")


def test_factory_and_settings(tiny: TinyClip, emb: OnnxClipEmbedder):
    env = {"IMGSEARCH_EMBEDDER": "onnx_clip"}
    with pytest.raises(ValueError, match="IMGSEARCH_CLIP_DIR"):
        make_embedder(Settings.from_env(env))
    env |= {"IMGSEARCH_CLIP_DIR": str(tiny.directory), "IMGSEARCH_CLIP_NAME": "tiny-random"}
    made = make_embedder(Settings.from_env(env))
    assert isinstance(made, OnnxClipEmbedder) and made.model_id.startswith("clip-tiny-random-")
    assert made.model_id.removeprefix("clip-tiny-random-") == emb.model_id.removeprefix("clip-onnx-")
    assert np.allclose(made.embed_texts(["a cat"]), emb.embed_texts(["a cat"]))
    assert from_directory(tiny.directory).model_id == emb.model_id
    # each file may be set on its own, and the preprocessing settings are typed
    with pytest.raises(FileNotFoundError):
        make_embedder(Settings.from_env({**env, "IMGSEARCH_CLIP_TOKENIZER": str(tiny.directory / "nowhere.json")}))
    env |= {"IMGSEARCH_CLIP_MEAN": "0.5,0.5,0.5", "IMGSEARCH_CLIP_STD": "0.5,0.5,0.5", "IMGSEARCH_CLIP_RESIZE": "pad"}
    s = Settings.from_env(env)
    assert s.clip_mean == (0.5, 0.5, 0.5) and s.clip_resize == "pad"
    configured = make_embedder(s)
    assert isinstance(configured, OnnxClipEmbedder)
    assert dataclasses.astuple(configured.preprocessing) == (32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "pad")
    with pytest.raises(ValueError, match="IMGSEARCH_CLIP_MEAN must be three"):
        Settings.from_env({**env, "IMGSEARCH_CLIP_MEAN": "0.5,0.5"})
    with pytest.raises(ValueError, match="onnx_clip"):
        make_embedder(Settings.from_env({**env, "IMGSEARCH_EMBEDDER": "openclip", "IMGSEARCH_CLIP_MEAN": ""}))


def test_embedding_as_style_vector(emb: OnnxClipEmbedder, tmp_path: Path):
    style = make_style(Settings(style="embedding"), emb)
    assert isinstance(style, EmbeddingStyle) and style.reuses(emb)
    assert style.model_id == f"embedding:{emb.model_id}" and style.dimension == emb.dimension
    ims = images()
    assert np.allclose(style.describe(ims), emb.embed_images(ims))

    # the embedding worker stores the search vector as the style vector, computed once
    from imgsearch.embedding.hashing import HashEmbedder
    from tests.unit.test_embedding_pipeline import Wired, new_image

    hashing = HashEmbedder()
    calls: list[int] = []
    original = hashing.embed_images

    def counted(images):
        calls.append(len(images))
        return original(images)

    hashing.embed_images = counted  # type: ignore[method-assign]
    w = Wired(tmp_path, embedder=hashing, style=EmbeddingStyle(hashing))
    index = w.index
    w.process([new_image(f"i{i}", i) for i in range(2)])
    assert calls == [2]  # one embedding call for both vectors
    assert [d.style_model_id for d in index.docs] == ["embedding:hash-v1-d64"] * 2
    assert all(np.array_equal(d.style, d.embedding) for d in index.docs)
