"""The search head's style augmentations: deterministic, subject-preserving, cached apart from originals."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imgsearch.datasets.augment import AUGMENTATIONS, augment
from jobs.train_heads import extract_features


def _icon() -> Image.Image:
    """A shaded (gradient) disc on a transparent canvas, like a photo-like icon."""
    img = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for r in range(20, 0, -1):
        shade = 80 + 8 * (20 - r)
        draw.ellipse((24 - r, 24 - r, 24 + r, 24 + r), fill=(shade, 40, 255 - shade, 255))
    return img


def test_flat_removes_shading_but_keeps_the_shape() -> None:
    src = _icon()
    out = augment(src, "flat", "a/b/c")
    assert out.mode == "RGB" and out.size == src.size
    colours = {tuple(p) for p in np.asarray(out).reshape(-1, 3)}
    assert len(colours) <= 6 < len({tuple(p) for p in np.asarray(src.convert("RGB")).reshape(-1, 3)})
    # the disc is still where it was: background white, centre not
    a = np.asarray(out).astype(int)
    assert a[0, 0].tolist() == [255, 255, 255] and a[24, 24].sum() < 600


def test_hue_is_seeded_by_the_image_id_and_keeps_brightness() -> None:
    src = _icon()
    one, again, other = augment(src, "hue", "x/1"), augment(src, "hue", "x/1"), augment(src, "hue", "x/2")
    assert np.array_equal(np.asarray(one), np.asarray(again))
    assert not np.array_equal(np.asarray(one), np.asarray(other))
    # value (brightness) of HSV is untouched by a hue turn
    v_src = np.asarray(Image.fromarray(np.asarray(one)).convert("HSV"))[..., 2]
    v_ref = np.asarray(
        Image.alpha_composite(Image.new("RGBA", src.size, (255, 255, 255, 255)), src).convert("RGB").convert("HSV")
    )[..., 2]
    assert np.abs(v_src.astype(int) - v_ref.astype(int)).max() <= 2


def test_unknown_augmentation_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        augment(_icon(), "blur", "k")
    assert set(AUGMENTATIONS) == {"flat", "hue"}


class _FakeExtractor:
    """Counts what it is given; its one feature is each image's mean colour."""

    def __init__(self) -> None:
        self.conse = SimpleNamespace(model_id="conse-x")
        self.gram = SimpleNamespace(model_id="gram-y")
        self.calls = 0

    def extract(self, images: list[Image.Image]) -> dict[str, Any]:
        self.calls += 1
        return {"mean": np.stack([np.asarray(im, np.float32).mean(axis=(0, 1)) for im in images])}


def test_augmented_features_are_cached_apart_from_the_originals(tmp_path: Path) -> None:
    path = tmp_path / "icon.png"
    _icon().save(path)
    labels = [{"image_id": "s/a/icon", "file": str(path)}]
    ext = _FakeExtractor()
    plain = extract_features(labels, ext, tmp_path / "cache")  # type: ignore[arg-type]
    hued = extract_features(labels, ext, tmp_path / "cache", augmentation="hue")  # type: ignore[arg-type]
    assert ext.calls == 2 and not np.allclose(plain["mean"], hued["mean"])
    again = extract_features(labels, ext, tmp_path / "cache", augmentation="hue")  # type: ignore[arg-type]
    assert ext.calls == 2 and np.array_equal(again["mean"], hued["mean"])
    assert len(list((tmp_path / "cache").glob("features-*.npz"))) == 2
