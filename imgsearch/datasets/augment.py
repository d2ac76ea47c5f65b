"""Style augmentations for training the search head: the same subject, redrawn in another look.

The frozen ImageNet features see a subject well in shaded, photo-like icons and poorly in flat ones;
the test families (papirus, moka, paper, suru) are flat. Training the search head on extra copies of
the training images that *look* different but keep their subject teaches the map to rely less on
the look (domain randomisation). Each copy is deterministic (seeded by the image id), so a feature
cache keyed by the augmentation stays valid.

- ``flat``: composited on white, a 3x3 median filter (smooths gradients), then 6 colours (median cut):
  shading and gloss disappear, shapes and main colours stay - the look of a flat theme.
- ``hue``: the hue turned by a seeded 40-215 degrees (of 256): the palette changes, nothing else.

Chosen on validation (docs/embeddings.md): on the val families and on a breeze-held-out fold, ``flat``
and ``hue`` together raised recall@50 and P@10 of the ridge head; a third one (a pale silhouette with
dark outlines, like symbolic icons) did not add to them and is not shipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from imgsearch.embedding.conse import to_rgb_on_white

AUGMENTATIONS: tuple[str, ...] = ("flat", "hue")


def flat(img: Image.Image, key: str = "") -> Image.Image:
    smooth = to_rgb_on_white(img).filter(ImageFilter.MedianFilter(3))
    return smooth.quantize(colors=6, method=Image.Quantize.MEDIANCUT).convert("RGB")


def hue(img: Image.Image, key: str = "") -> Image.Image:
    shift = 40 + int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 176
    hsv = np.asarray(to_rgb_on_white(img).convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


_BY_NAME: dict[str, Callable[[Image.Image, str], Image.Image]] = {"flat": flat, "hue": hue}


def augment(img: Image.Image, name: str, key: str) -> Image.Image:
    """The `name` copy of `img`; `key` (the image id) seeds it."""
    try:
        fn = _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown augmentation {name!r}; known: {sorted(_BY_NAME)}") from None
    return fn(img, key)
