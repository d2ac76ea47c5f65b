"""File-tree helpers shared by the data set builders."""

from __future__ import annotations

import shutil
from pathlib import Path


def swap_in(staging: Path, root: Path) -> None:
    """Put the finished tree ``staging`` at ``root``, atomically-ish: an old ``root`` is moved aside
    and removed only once the new tree is in place (a failed build never leaves half a data set)."""
    if root.exists():
        old = root.with_name(root.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        root.rename(old)
        staging.rename(root)
        shutil.rmtree(old)
    else:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(root)


def draw_grid(
    root: Path,
    row_labels: list[str],
    col_labels: list[str],
    cells: dict[tuple[int, int], str],
    out: Path,
    *,
    cell: int,
    label_w: int,
    header_h: int,
) -> Path:
    """A contact sheet: labelled rows, rotated column headers, the image at ``root / cells[(r, c)]``
    in each cell (grey where a cell has none), saved as a 256-colour PNG (small enough for the repo;
    icons are flat enough not to show banding)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=11)
    pad = 2
    width = label_w + len(col_labels) * (cell + pad) + pad
    height = header_h + len(row_labels) * (cell + pad) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(col_labels):
        txt = Image.new("L", (header_h - 4, 14), 255)
        ImageDraw.Draw(txt).text((0, 0), name, fill=0, font=font)
        txt = txt.rotate(90, expand=True)
        x = label_w + c * (cell + pad) + (cell - txt.width) // 2
        sheet.paste(Image.new("RGB", txt.size, (0, 0, 0)), (x, 2), Image.eval(txt, lambda v: 255 - v))
    for r, label in enumerate(row_labels):
        y = header_h + r * (cell + pad)
        draw.text((4, y + cell // 2 - 6), label, fill=(0, 0, 0), font=font)
        for c in range(len(col_labels)):
            x = label_w + c * (cell + pad)
            path = cells.get((r, c))
            if path is None:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(235, 235, 235))
                continue
            with Image.open(root / path) as im:
                sheet.paste(im.convert("RGB").resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out
