"""Synthetic test images: three drawn styles x four subjects x a few variants."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

STYLES = {
    # style: (background, palette, outline only)
    "neon": ((10, 10, 30), [(255, 0, 200), (0, 255, 240), (255, 240, 0)], True),
    "pastel": ((255, 255, 255), [(250, 190, 200), (190, 220, 250), (200, 240, 200)], False),
    "mono": ((235, 235, 235), [(40, 40, 40), (90, 90, 90), (140, 140, 140)], False),
}
SUBJECTS = ["circle", "square", "triangle", "bar"]


def draw(style: str, subject: str, variant: int) -> bytes:
    bg, palette, outline = STYLES[style]
    im = Image.new("RGB", (96, 96), bg)
    d = ImageDraw.Draw(im)
    colour = palette[variant % len(palette)]
    o = 4 * variant
    box = [14 + o, 14 + o // 2, 82 - o // 2, 82 - o]
    kw = {"outline": colour, "width": 5} if outline else {"fill": colour}
    if subject == "circle":
        d.ellipse(box, **kw)
    elif subject == "square":
        d.rectangle(box, **kw)
    elif subject == "triangle":
        d.polygon([(48, box[1]), (box[0], box[3]), (box[2], box[3])], **kw)
    else:
        d.rectangle([box[0], 40, box[2], 56], **kw)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def synthetic_folder(root: Path, variants: int = 3) -> dict[str, str]:
    """Writes style/subject/variant PNGs; returns image id -> style."""
    labels = {}
    for style in STYLES:
        for subject in SUBJECTS:
            for v in range(variants):
                path = root / style / f"{subject}-{v}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(draw(style, subject, v))
                labels[f"{style}/{subject}-{v}"] = style
    return labels
