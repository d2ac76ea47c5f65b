"""ConSE embedder and style descriptors.

Pure parts run everywhere. The tests at the bottom need the artifacts of scripts/setup_models.sh
(the test command builds them first; without them these tests fail, they are not skipped) and
scikit-image for its bundled photo of a cat (test-only dependency).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from imgsearch.embedding.base import Embedder, EmbeddingError
from imgsearch.embedding.conse import (
    ConseEmbedder,
    build_class_matrix,
    class_prompts,
    conse_combine,
    default_artifact_dir,
    fit_square,
    normalize_pixels,
    preprocess_images,
    prior_correct,
    read_glosses,
    softmax,
    to_rgb_on_white,
    trim_background,
)
from imgsearch.embedding.style import (
    GramStyleDescriber,
    HandcraftedStyleDescriber,
    StyleDescriber,
    default_style_describer,
    fit_style_projection,
    project_style,
)

# --------------------------------------------------------------------------- preprocessing


def test_transparent_pixels_become_white() -> None:
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    img.putpixel((1, 0), (0, 0, 255, 128))
    out = np.asarray(to_rgb_on_white(img))
    assert out.shape == (4, 4, 3)
    assert tuple(out[3, 3]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert abs(int(out[0, 1, 0]) - 127) <= 2 and out[0, 1, 2] == 255  # half blue on white


def test_palette_transparency_and_grey_modes() -> None:
    p = Image.new("P", (3, 3), 0)
    p.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info["transparency"] = 0
    out = np.asarray(to_rgb_on_white(p))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (10, 200, 10)
    assert to_rgb_on_white(Image.new("L", (2, 2), 7)).mode == "RGB"
    i16 = Image.fromarray(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16))
    arr = np.asarray(to_rgb_on_white(i16))
    assert arr[0, 0, 0] == 0 and arr[1, 1, 0] == 255


def test_refused_images() -> None:
    with pytest.raises(EmbeddingError):
        to_rgb_on_white("not an image")  # type: ignore[arg-type]
    with pytest.raises(EmbeddingError):
        to_rgb_on_white(Image.new("RGB", (0, 5)))


@pytest.mark.parametrize("mode", ["pad", "crop", "squash", "trim_pad", "trim_squash"])
def test_fit_square_sizes(mode: str) -> None:
    img = Image.new("RGB", (300, 120), (0, 128, 0))
    assert fit_square(img, 224, mode).size == (224, 224)


def test_pad_keeps_aspect_on_white() -> None:
    out = np.asarray(fit_square(Image.new("RGB", (200, 100), (0, 0, 0)), 100, "pad"))
    assert tuple(out[0, 50]) == (255, 255, 255)  # top band is padding
    assert tuple(out[50, 50]) == (0, 0, 0)
    assert (out[:, :, 0] == 0).sum() == pytest.approx(100 * 50, rel=0.05)


def test_trim_background_crops_uniform_border() -> None:
    img = Image.new("RGB", (100, 100), (255, 255, 255))
    img.paste((255, 0, 0), (40, 30, 60, 70))
    out = trim_background(img, margin=0.0)
    assert out.size == (20, 40)
    blank = Image.new("RGB", (10, 10), (255, 255, 255))
    assert trim_background(blank).size == (10, 10)


def test_normalize_pixels_ranges_and_layout() -> None:
    batch = np.zeros((2, 5, 6, 3), dtype=np.uint8)
    batch[0] = 255
    tf = normalize_pixels(batch, "tf")
    assert tf.shape == (2, 3, 5, 6) and tf.dtype == np.float32
    assert tf[0].min() == pytest.approx(1.0) and tf[1].max() == pytest.approx(-1.0)
    inet = normalize_pixels(batch, "imagenet")
    assert inet[1, 0, 0, 0] == pytest.approx(-0.485 / 0.229, rel=1e-5)
    assert inet[0, 2, 0, 0] == pytest.approx((1 - 0.406) / 0.225, rel=1e-5)
    with pytest.raises(ValueError):
        normalize_pixels(batch, "bogus")


def test_preprocess_images_shape() -> None:
    imgs = [Image.new("RGBA", (50, 30)), Image.new("L", (10, 90), 3)]
    x = preprocess_images(imgs, 32, "tf", "pad")
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert np.allclose(x[0], 1.0)  # fully transparent -> white everywhere


# --------------------------------------------------------------------------- ConSE maths


def test_softmax_and_temperature() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, 0.0]])
    p = softmax(logits)
    assert np.allclose(p.sum(axis=1), 1.0) and np.isfinite(p).all()
    assert softmax(logits, 4.0)[0].max() < p[0].max() < softmax(logits, 0.5)[0].max()
    with pytest.raises(ValueError):
        softmax(logits, 0.0)


CLASSES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0]], dtype=np.float32)


def test_conse_top1_is_the_class_vector() -> None:
    probs = np.array([[0.1, 0.7, 0.15, 0.05]], dtype=np.float32)
    assert np.allclose(conse_combine(probs, CLASSES, top_k=1), [[0.0, 1.0, 0.0]])


def test_conse_topk_weighted_mean() -> None:
    probs = np.array([[0.1, 0.6, 0.3, 0.0]], dtype=np.float32)
    got = conse_combine(probs, CLASSES, top_k=2)
    expected = 0.6 * CLASSES[1] + 0.3 * CLASSES[2]
    assert np.allclose(got[0], expected / np.linalg.norm(expected), atol=1e-6)
    everything = conse_combine(probs, CLASSES, top_k=None)
    full = probs[0] @ CLASSES
    assert np.allclose(everything[0], full / np.linalg.norm(full), atol=1e-6)
    assert np.allclose(conse_combine(probs, CLASSES, top_k=0), everything)


def test_conse_rows_are_unit_float32() -> None:
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(5, 4)))
    out = conse_combine(probs, CLASSES, top_k=3)
    assert out.dtype == np.float32 and out.shape == (5, 3)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError):
        conse_combine(probs[:, :3], CLASSES)


def test_class_prompts_synonyms() -> None:
    line = "tabby, tabby cat"
    assert class_prompts(line, ["a photo of a {}."], "first") == ["a photo of a tabby."]
    assert class_prompts(line, ["a {}", "b {}"], "all") == ["a tabby", "a tabby cat", "b tabby", "b tabby cat"]
    assert class_prompts(line, ["{}"], "joined") == ["tabby, tabby cat"]


def test_class_prompts_with_gloss() -> None:
    line = "tabby, tabby cat"
    gloss = "a cat with a grey or tawny coat mottled with black"
    assert class_prompts(line, ["a photo of a {}: {gloss}."], "joined", gloss) == [
        "a photo of a tabby, tabby cat: a cat with a grey or tawny coat mottled with black."
    ]
    # no gloss known: degrade to the plain photo prompt / the bare name
    assert class_prompts(line, ["a photo of a {}: {gloss}."], "first", "") == ["a photo of a tabby."]
    assert class_prompts(line, ["{gloss}"], "first", None) == ["tabby"]


def test_prior_correction() -> None:
    p = np.array([[0.6, 0.3, 0.1], [0.5, 0.25, 0.25]], dtype=np.float32)
    prior = np.array([0.6, 0.2, 0.2], dtype=np.float32)
    assert np.array_equal(prior_correct(p, None), p) and np.array_equal(prior_correct(p, prior, 0.0), p)
    q = prior_correct(p, prior, 1.0)
    assert np.allclose(q.sum(axis=1), 1.0) and q.dtype == np.float32
    assert np.argmax(q[0]) == 1  # the over-predicted class 0 loses its lead
    assert np.allclose(q[1], [0.25, 0.375, 0.375], atol=1e-6)
    half = prior_correct(p, prior, 0.5)
    assert q[0, 0] < half[0, 0] < p[0, 0]
    # conse_combine applies it before the top-k
    m = np.eye(3, dtype=np.float32)
    assert np.argmax(conse_combine(p[:1], m, top_k=1, prior=prior, prior_power=1.0)) == 1
    with pytest.raises(ValueError):
        prior_correct(p, prior[:2])


def test_imagenet_glosses_mapping_is_verified(tmp_path) -> None:
    from imgsearch.embedding.model_build.glosses import imagenet_glosses

    (tmp_path / "imagenet_synsets.txt").write_text("n1\nn2\nn3\n")
    (tmp_path / "imagenet_synset_to_lemma.txt").write_text("n1\ttench, Tinca tinca\nn2\tgoldfish\nn3\tcrane\n")
    (tmp_path / "imagenet_synset_to_definition.txt").write_text("n1\tA fish.\nn2\ta  gold fish\nn3\ta bird\n")
    glosses, info = imagenet_glosses(["tench, Tinca tinca", "goldfish, Carassius auratus", "hen"], tmp_path)
    assert glosses == ["A fish.", "a gold fish", ""]  # hen != crane: not verified, no gloss
    assert info["verified"] == 2 and info["unverified_classes"] == [2]
    with pytest.raises(ValueError):
        imagenet_glosses(["a", "b"], tmp_path)


def test_up_to_date_detects_old_artifact_versions(tmp_path) -> None:
    import json

    from imgsearch.embedding.model_build import ARTIFACT_VERSION
    from imgsearch.embedding.model_build.__main__ import _up_to_date

    (tmp_path / "a.bin").write_bytes(b"x")
    manifest = {"files": {"a": "a.bin"}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert not _up_to_date(tmp_path)  # version 1 (no artifact_version): rebuild
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "artifact_version": ARTIFACT_VERSION}))
    assert _up_to_date(tmp_path)
    (tmp_path / "a.bin").unlink()
    assert not _up_to_date(tmp_path)


def test_build_class_matrix_averages_prompts() -> None:
    table = {"x a": [1.0, 0.0], "x b": [0.0, 1.0], "y a": [1.0, 0.0]}
    fake = lambda texts: np.array([table[t] for t in texts], dtype=np.float32)  # noqa: E731
    m = build_class_matrix(fake, ["a, b", "a"], ["x {}", "y {}"][:1], "all")
    assert np.allclose(m[0], [np.sqrt(0.5), np.sqrt(0.5)]) and np.allclose(m[1], [1.0, 0.0])


def test_embedder_cheap_paths_need_no_artifacts(tmp_path) -> None:
    e = ConseEmbedder(tmp_path)
    assert Embedder in type(e).__mro__  # (isinstance would read model_id, which needs artifacts)
    assert e.dimension == 384
    assert e.embed_texts([]).shape == (0, 384)
    assert e.embed_images([]).shape == (0, 384)
    with pytest.raises(EmbeddingError):
        e.embed_texts(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(FileNotFoundError):
        e.embed_texts(["a cat"])
    with pytest.raises(FileNotFoundError):
        _ = e.model_id


# --------------------------------------------------------------------------- style


def _flat_cartoon() -> Image.Image:
    img = Image.new("RGB", (120, 120), (255, 255, 255))
    img.paste((230, 30, 30), (20, 20, 70, 70))
    img.paste((30, 30, 230), (60, 60, 110, 100))
    return img


def _noisy_photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, 120)[None, :, None] + rng.normal(0, 25, (120, 120, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def test_handcrafted_style_vectors() -> None:
    d = HandcraftedStyleDescriber()
    assert isinstance(d, StyleDescriber)
    imgs = [_flat_cartoon(), _noisy_photo(1), _noisy_photo(2), Image.new("RGBA", (30, 10))]
    v = d.describe(imgs)
    assert v.shape == (4, d.dimension) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(d.describe(imgs[:1]), v[:1])  # deterministic
    assert v[1] @ v[2] > v[0] @ v[1]  # two photos closer to each other than to the cartoon
    assert d.describe([]).shape == (0, d.dimension)


def test_style_projection_roundtrip() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(50, 20)) * np.arange(1, 21)
    proj = fit_style_projection(raw, dim=8)
    assert proj["components"].shape == (20, 8)
    out = project_style(raw[:3], proj)
    assert out.shape == (3, 8) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_default_style_describer_falls_back(tmp_path) -> None:
    assert isinstance(default_style_describer(tmp_path), HandcraftedStyleDescriber)


# --------------------------------------------------------------------------- real artifacts

ARTIFACTS = default_artifact_dir("lite0")


@pytest.fixture(autouse=False)
def artifacts() -> None:
    assert (ARTIFACTS / "manifest.json").is_file(), f"no model artifacts in {ARTIFACTS}: run scripts/setup_models.sh"


needs_artifacts = pytest.mark.usefixtures("artifacts")


@needs_artifacts
def test_default_artifacts_are_current() -> None:
    import json

    from imgsearch.embedding.model_build import ARTIFACT_VERSION

    manifest = json.loads((ARTIFACTS / "manifest.json").read_text())
    assert manifest["artifact_version"] == ARTIFACT_VERSION, "outdated artifacts: run scripts/setup_models.sh"
    files = manifest["files"]
    prior = np.load(ARTIFACTS / files["class_prior"])
    assert prior.shape == (1000,) and abs(float(prior.sum()) - 1.0) < 1e-3
    assert manifest["conse"]["prior_power"] > 0 and manifest["conse"]["templates_name"] == "photo_gloss"
    glosses = read_glosses(ARTIFACTS / files["glosses"])
    assert len(glosses) == 1000 and sum(bool(g) for g in glosses) >= 990
    e = ConseEmbedder(ARTIFACTS)
    assert e.model_id == manifest["model_id"]
    assert ConseEmbedder(ARTIFACTS, prior_power=0).model_id == manifest["model_id"] + "+prior_power=0"


@needs_artifacts
def test_cat_photo_matches_cat_text_better_than_rocket() -> None:
    from skimage import data as skimage_data

    e = ConseEmbedder(ARTIFACTS)
    img = e.embed_images([Image.fromarray(skimage_data.chelsea())])
    txt = e.embed_texts(["a photo of a cat", "a photo of a rocket"])
    sims = txt @ img[0]
    assert sims[0] > sims[1] + 0.1, sims
    assert img.shape == (1, 384) and abs(float(np.linalg.norm(img)) - 1.0) < 1e-5
    assert isinstance(e, Embedder) and e.model_id.startswith("conse-lite0-")
    assert "cat" in e.top_classes([Image.fromarray(skimage_data.chelsea())], 3)[0][0][0]


@needs_artifacts
def test_real_embedder_is_thread_safe_and_batch_invariant() -> None:
    e = ConseEmbedder(ARTIFACTS, intra_op_threads=1, image_batch_size=3)
    imgs = [_flat_cartoon(), _noisy_photo(1), _noisy_photo(2), Image.new("RGBA", (30, 10))]
    ref = e.embed_images(imgs)
    single = np.concatenate([e.embed_images([im]) for im in imgs])
    assert np.allclose(ref, single, atol=1e-4)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(e.embed_images(imgs))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(np.allclose(r, ref, atol=1e-4) for r in results)
    long_text = "word " * 1000
    assert e.embed_texts([long_text]).shape == (1, 384)  # truncated to 256 tokens
    with pytest.raises(EmbeddingError):
        ConseEmbedder(ARTIFACTS, long_text="error").embed_texts([long_text])


@needs_artifacts
def test_gram_style_describer() -> None:
    assert GramStyleDescriber.available(ARTIFACTS), "setup_models.sh builds the style artifacts too"
    d = GramStyleDescriber(ARTIFACTS)
    assert isinstance(d, StyleDescriber)
    v = d.describe([_flat_cartoon(), _noisy_photo(1), _noisy_photo(2)])
    assert v.shape == (3, d.dimension) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[1] @ v[2] > v[0] @ v[1]
