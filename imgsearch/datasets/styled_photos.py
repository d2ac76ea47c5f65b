"""A small corpus of the same subjects in different styles, from real photos that ship inside the
scikit-image wheel (a cat, a rocket, coffee, an astronaut, a motorcycle, a horse, a camera man):
four crops of each, each rendered in six styles (the photo itself, sepia, duotone, pop-art
posterisation, negative, pencil sketch) — 168 images, 24 per subject. Subjects are what the
embedder must recognise; styles are what users prefer. Used by the personalization acceptance test
(tests/integration/test_personal_styles.py) and bench/styled_users_eval.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from schemas.events import EventType

# subject -> skimage.data loader name (scikit-image is a dev/bench dependency: imported when used)
PHOTOS: dict[str, str] = {
    "cat": "chelsea",
    "rocket": "rocket",
    "coffee": "coffee",
    "astronaut": "astronaut",
    "motorcycle": "stereo_motorcycle",
    "horse": "horse",
    "cameraman": "camera",
}


def _sepia(im: Image.Image) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(im), (40, 20, 5), (255, 230, 180))


def _duotone(im: Image.Image) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(im), (10, 20, 90), (250, 240, 80))


def _pop(im: Image.Image) -> Image.Image:
    return ImageOps.posterize(ImageEnhance.Color(im).enhance(2.5), 2)


def _sketch(im: Image.Image) -> Image.Image:
    edges = ImageOps.grayscale(im).filter(ImageFilter.GaussianBlur(1)).filter(ImageFilter.FIND_EDGES)
    return ImageOps.invert(ImageOps.autocontrast(edges)).convert("RGB")


STYLES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "photo": lambda im: im,
    "sepia": _sepia,
    "duotone": _duotone,
    "pop": _pop,
    "negative": ImageOps.invert,
    "sketch": _sketch,
}
CROPS = [(0.1, 0.1), (0.0, 0.0), (0.2, 0.2), (0.2, 0.0)]  # 80% crops; odd ones mirrored


def _photo(name: str) -> Image.Image:
    from skimage import data

    raw: Any = getattr(data, PHOTOS[name])()
    arr = np.asarray(raw[0] if isinstance(raw, tuple) else raw)  # stereo_motorcycle: (left, right, disparity)
    return Image.fromarray(arr if arr.dtype.kind == "u" else (arr * 255).astype("uint8")).convert("RGB")


def make_images(root: Path) -> dict[str, str]:
    """Writes ``<style>/<subject>-<crop>.png``; returns image id -> style."""
    labels = {}
    for subject in PHOTOS:
        photo = _photo(subject)
        w, h = photo.size
        for v, (x0, y0) in enumerate(CROPS):
            crop = photo.crop((int(x0 * w), int(y0 * h), int((x0 + 0.8) * w), int((y0 + 0.8) * h)))
            if v % 2:
                crop = ImageOps.mirror(crop)
            for style, render in STYLES.items():
                path = root / style / f"{subject}-{v}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                render(crop).resize((224, 224)).save(path)
                labels[f"{style}/{subject}-{v}"] = style
    return labels


def subject_of(image_id: str) -> str:
    return image_id.split("/", 1)[1].rsplit("-", 1)[0]


def style_of(image_id: str) -> str:
    return image_id.split("/", 1)[0]


def teaching_events(
    image_ids: Iterable[str], style: str, avoid: str = "cat", n: int = 9
) -> list[tuple[str, EventType]]:
    """The scenario's interactions of a user who likes ``style``: ``n`` pictures of that style, none
    of the ``avoid`` subject, as favourite, download, view, ... (the last one a view)."""
    liked = sorted(i for i in image_ids if style_of(i) == style and subject_of(i) != avoid)[:n]
    kinds = (EventType.FAVORITE, EventType.DOWNLOAD, EventType.VIEW)
    return [(image_id, kinds[k % 3]) for k, image_id in enumerate(liked)]
