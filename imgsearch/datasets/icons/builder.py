"""The icons-v1 builder: find each subject's best source in every theme package, render it to a
128x128 RGB PNG, write labels.json / manifest.json / licences; load, subset and contact-sheet a
built set. Deterministic (sorted walks, fixed preferences, no randomness)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from imgsearch.datasets import debian
from imgsearch.datasets.files import draw_grid, swap_in
from imgsearch.datasets.icons.tables import (
    SUBJECT_BY_NAME,
    SUBJECTS,
    THEMES,
    Subject,
    Theme,
    sanitize_id,
)

DATASET_NAME = "icons-v1"
# Bump when anything that changes the output (tables, selection rules, rendering) changes.
BUILDER_VERSION = "1.1.0"
IMAGE_SIZE = 128
MAX_VARIANTS = 3  # per (theme, subject) cell, so no cell dominates
MIN_THEMES = 3  # a subject is kept only if at least this many themes draw it
MIN_PNG_SIZE = 48  # sources drawn for smaller sizes (PNG or SVG) are never used
BLANK_FRACTION = 0.01  # a render with fewer non-white pixels than this is considered empty


# ------------------------------------------------------------------------------- source lookup
_SIZE_RE = re.compile(r"^(\d+)(?:x(\d+))?(?:@(\d)x)?$")
_SKIP_DIRS = {"symbolic", "cursors", "animations", "animation", "emotes", "stock", "extras", "panel"}


@dataclass(frozen=True)
class Source:
    icon_name: str
    path: Path  # as listed in the theme (may be a symlink)
    real: Path  # the regular file it resolves to
    fmt: str  # "png" | "svg"
    size: int  # nominal size of the directory (scalable -> 1024)
    scale: int  # @2x -> 2

    @property
    def pixels(self) -> int:
        return self.size * self.scale


def parse_size_dir(parts: Sequence[str]) -> tuple[int, int] | None:
    """(size, scale) from the directory components of an icon path, None if no size component.

    Understands both layouts (``48x48/apps`` and ``apps/48``), ``@2x`` suffixes, and ``scalable``
    (-> 1024); ``scalable-up-to-32`` style directories count as their limit.
    """
    for part in reversed(parts):
        m = _SIZE_RE.match(part)
        if m:
            return int(m.group(1)), int(m.group(3) or 1)
        if part == "scalable":
            return 1024, 1
        m2 = re.match(r"^scalable-(?:up-to|max)-(\d+)$", part)
        if m2:
            return int(m2.group(1)), 1
    return None


def resolve_link(path: Path, pkg_root: Path, max_hops: int = 16) -> Path | None:
    """Follow symlinks inside an extracted package; absolute targets are re-rooted at ``pkg_root``.
    Returns None for broken links or links that leave the package tree."""
    p = path
    for _ in range(max_hops):
        if not p.is_symlink():
            break
        target = os.readlink(p)
        p = pkg_root / target.lstrip("/") if os.path.isabs(target) else p.parent / target
        p = Path(os.path.normpath(p))
    else:
        return None
    try:
        real = Path(os.path.realpath(p))
        real.relative_to(os.path.realpath(pkg_root))
    except ValueError:
        return None
    return real if real.is_file() else None


def scan_theme(theme_root: Path, pkg_root: Path, wanted: set[str] | None = None) -> dict[str, list[Source]]:
    """All usable PNG/SVG files of a theme, by icon name (restricted to ``wanted`` names if given).
    Walks in sorted order and does not follow directory symlinks (their targets are walked anyway)."""
    found: dict[str, list[Source]] = defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(theme_root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel_parts = Path(dirpath).relative_to(theme_root).parts
        size = parse_size_dir(rel_parts)
        if size is None:
            continue
        for fname in sorted(filenames):
            stem, dot, ext = fname.rpartition(".")
            if not dot or ext not in ("png", "svg") or stem.endswith("-symbolic"):
                continue
            if wanted is not None and stem not in wanted:
                continue
            path = Path(dirpath) / fname
            real = resolve_link(path, pkg_root)
            if real is None:
                continue
            found[stem].append(Source(stem, path, real, ext, size[0], size[1]))
    return dict(found)


def source_rank(src: Source) -> tuple | None:
    """Sort key for picking one file per icon name (lower is better), None if unusable.

    1. a PNG drawn at >= 128 px (the smallest such: least resampling)
    2. an SVG (the largest nominal design: most detail; ``scalable`` first)
    3. a PNG at 48..127 px (the largest)

    Anything drawn for less than 48 px (PNG or SVG: small sizes are simplified toolbar glyphs) is unusable.
    """
    if src.fmt == "png":
        if src.pixels >= IMAGE_SIZE:
            return (0, src.pixels, src.scale, str(src.path))
        if src.pixels >= MIN_PNG_SIZE:
            return (2, -src.pixels, src.scale, str(src.path))
        return None
    if src.size < MIN_PNG_SIZE:
        return None
    return (1, -src.size, src.scale, str(src.path))


def best_source(sources: Iterable[Source]) -> Source | None:
    ranked = [(r, s) for s in sources if (r := source_rank(s)) is not None]
    return min(ranked, key=lambda rs: rs[0])[1] if ranked else None


@dataclass(frozen=True)
class PlannedImage:
    style: str
    subject: str
    icon_name: str
    source: Source
    package: str
    pkg_root: Path

    @property
    def image_id(self) -> str:
        return sanitize_id(f"{self.style}/{self.subject}/{self.icon_name}")


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan_theme(
    style: str,
    package: str,
    pkg_root: Path,
    theme_root: Path,
    subjects: Sequence[Subject] = SUBJECTS,
    max_variants: int = MAX_VARIANTS,
) -> list[PlannedImage]:
    """Per subject, up to ``max_variants`` distinct drawings, taken in synonym-table order.
    Aliases (symlinks, or byte-identical copies) of an already-taken drawing are skipped."""
    wanted = {n for s in subjects for n in s.icon_names}
    by_name = scan_theme(theme_root, pkg_root, wanted)
    plan: list[PlannedImage] = []
    taken_names: set[str] = set()
    for subject in subjects:
        seen: set[str] = set()
        count = 0
        for name in subject.icon_names:
            if count >= max_variants:
                break
            if name in taken_names or name not in by_name:
                continue  # a name listed under two subjects belongs to the first
            src = best_source(by_name[name])
            if src is None:
                continue
            key = _file_digest(src.real)
            if key in seen:
                continue
            seen.add(key)
            taken_names.add(name)
            plan.append(PlannedImage(style, subject.name, name, src, package, pkg_root))
            count += 1
    return plan


# ------------------------------------------------------------------------------------ rendering
def _svg_to_rgba(svg: Path, size: int) -> Image.Image:
    exe = shutil.which("rsvg-convert")
    if exe:
        out = subprocess.run(
            [exe, "-w", str(size), "-h", str(size), "-a", "-f", "png", str(svg)],
            capture_output=True,
            check=True,
        ).stdout
        return Image.open(io.BytesIO(out)).convert("RGBA")
    try:
        import cairosvg
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "rasterizing SVG icons needs rsvg-convert (apt-get install librsvg2-bin) or cairosvg"
        ) from exc
    data = cairosvg.svg2png(url=str(svg), output_width=size, output_height=size)
    return Image.open(io.BytesIO(data)).convert("RGBA")


def _fit_on_white(img: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    img = img.convert("RGBA")
    if img.size != (size, size):
        scale = size / max(img.size)
        new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(new, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    layer.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return Image.alpha_composite(canvas, layer).convert("RGB")


def render_file(path: Path, fmt: str, size: int = IMAGE_SIZE) -> Image.Image:
    """A PNG or SVG file as a ``size`` x ``size`` RGB image, aspect kept, centred, alpha composited on
    white (SVGs are rasterised at ``size``; PNGs resampled with Lanczos)."""
    if fmt == "svg":
        return _fit_on_white(_svg_to_rgba(path, size), size)
    with Image.open(path) as im:
        im.load()
        return _fit_on_white(im, size)


def render_source(src: Source, size: int = IMAGE_SIZE) -> Image.Image:
    """The source as a ``size`` x ``size`` RGB image, alpha composited on white."""
    return render_file(src.real, src.fmt, size)


def is_blank(img: Image.Image, fraction: float = BLANK_FRACTION) -> bool:
    """True if (almost) every pixel is white, or the image is one flat colour."""
    gray = img.convert("L")
    hist = gray.histogram()
    total = img.width * img.height
    nonwhite = total - sum(hist[250:])
    return nonwhite < fraction * total or max(hist) == total


# ----------------------------------------------------------------------------------------- build
def dataset_dir(out: Path | None = None) -> Path:
    return Path(out) if out else debian.cache_root() / "datasets" / DATASET_NAME


def config_fingerprint(themes: Sequence[Theme] = THEMES, subjects: Sequence[Subject] = SUBJECTS) -> str:
    payload = {
        "builder": BUILDER_VERSION,
        "size": IMAGE_SIZE,
        "max_variants": MAX_VARIANTS,
        "min_themes": MIN_THEMES,
        "themes": [[t.style, t.package, t.theme_dir] for t in themes],
        "subjects": [[s.name, s.query, list(s.icon_names)] for s in subjects],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def is_up_to_date(root: Path, themes: Sequence[Theme] = THEMES, subjects: Sequence[Subject] = SUBJECTS) -> bool:
    manifest = root / "manifest.json"
    if not manifest.is_file() or not (root / "labels.json").is_file():
        return False
    try:
        data = json.loads(manifest.read_text())
    except ValueError:
        return False
    return data.get("builder_version") == BUILDER_VERSION and data.get("config_fingerprint") == config_fingerprint(
        themes, subjects
    )


def build(
    out: Path | None = None,
    force: bool = False,
    quiet: bool = False,
    themes: Sequence[Theme] = THEMES,
    subjects: Sequence[Subject] = SUBJECTS,
    workers: int | None = None,
) -> Path:
    """Build the dataset (fetching the theme packages if needed) and return its directory.
    A no-op when the manifest matches this builder version and configuration."""
    root = dataset_dir(out)
    if not force and is_up_to_date(root, themes, subjects):
        _log(f"{root}: up to date (builder {BUILDER_VERSION})", quiet)
        return root
    t0 = time.monotonic()

    # 1. packages
    packages: dict[str, debian.ExtractedPackage] = {}
    for i, theme in enumerate(themes, 1):
        if theme.package not in packages:
            _log(f"[{i}/{len(themes)}] package {theme.package}", quiet)
            packages[theme.package] = debian.fetch_package(theme.package)

    # 2. plan: the best file per icon name, up to MAX_VARIANTS drawings per cell
    plan: list[PlannedImage] = []
    for theme in themes:
        pkg = packages[theme.package]
        theme_root = pkg.root / "usr" / "share" / "icons" / theme.theme_dir
        if not theme_root.is_dir():
            raise FileNotFoundError(f"{theme.package} has no usr/share/icons/{theme.theme_dir}")
        plan.extend(plan_theme(theme.style, theme.package, pkg.root, theme_root, subjects))
    _log(f"planned {len(plan)} candidate images from {len(themes)} themes", quiet)

    # 3. render into a staging directory (parallel; the result does not depend on the order)
    staging = root.with_name(root.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "images").mkdir(parents=True)

    def work(item: PlannedImage) -> tuple[PlannedImage, str | None]:
        try:
            img = render_source(item.source)
        except Exception as exc:  # a broken source file is skipped, and reported
            return item, f"render failed: {exc}"
        if is_blank(img):
            return item, "blank render"
        dest = staging / "images" / f"{item.image_id}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        img.save(dest, format="PNG", optimize=True)
        return item, None

    rendered: list[PlannedImage] = []
    skipped: list[dict] = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        for n, (item, problem) in enumerate(pool.map(work, plan), 1):
            if problem is None:
                rendered.append(item)
            else:
                skipped.append({"image_id": item.image_id, "reason": problem})
            if n % 100 == 0 or n == len(plan):
                _log(f"  rendered {n}/{len(plan)}", quiet)

    # 4. keep subjects drawn by at least MIN_THEMES themes
    themes_per_subject: dict[str, set[str]] = defaultdict(set)
    for item in rendered:
        themes_per_subject[item.subject].add(item.style)
    kept_subjects = [s for s in subjects if len(themes_per_subject[s.name]) >= MIN_THEMES]
    kept_names = {s.name for s in kept_subjects}
    final = [it for it in rendered if it.subject in kept_names]
    for item in rendered:
        if item.subject not in kept_names:
            dest = staging / "images" / f"{item.image_id}.png"
            dest.unlink()
            if not any(dest.parent.iterdir()):
                dest.parent.rmdir()
    dropped_subjects = sorted({s.name for s in subjects} - kept_names)

    labels: list[dict[str, Any]] = []
    for item in sorted(final, key=lambda it: it.image_id):
        src_rel = "/" + str(item.source.path.relative_to(item.pkg_root))
        real_rel = "/" + str(item.source.real.relative_to(os.path.realpath(item.pkg_root)))
        labels.append(
            {
                "image_id": item.image_id,
                "path": f"images/{item.image_id}.png",
                "subject": item.subject,
                "style": item.style,
                "query": SUBJECT_BY_NAME[item.subject].query,
                "icon_name": item.icon_name,
                "source_package": item.package,
                "source_file": src_rel,
                "source_resolved": real_rel,
                "source_format": item.source.fmt,
                "source_size": "scalable" if item.source.size == 1024 else item.source.pixels,
            }
        )
    counts_theme = Counter(lab["style"] for lab in labels)
    counts_subject = Counter(lab["subject"] for lab in labels)
    cells: dict[str, dict[str, int]] = defaultdict(dict)
    cell_counts: Counter[tuple[str, str]] = Counter((lab["style"], lab["subject"]) for lab in labels)
    for (style, subject), n in sorted(cell_counts.items()):
        cells[style][subject] = n
    manifest = {
        "dataset": DATASET_NAME,
        "builder_version": BUILDER_VERSION,
        "config_fingerprint": config_fingerprint(themes, subjects),
        "image_size": IMAGE_SIZE,
        "max_variants_per_cell": MAX_VARIANTS,
        "min_themes_per_subject": MIN_THEMES,
        "num_images": len(labels),
        "packages": {
            p.name: {"version": p.version, "deb_sha256": p.sha256, "license": p.main_license()}
            for p in sorted(packages.values(), key=lambda p: p.name)
        },
        "themes": [
            {
                "style": t.style,
                "package": t.package,
                "theme_dir": t.theme_dir,
                "note": t.note,
                "images": counts_theme.get(t.style, 0),
            }
            for t in themes
        ],
        "subjects": [
            {
                "name": s.name,
                "query": s.query,
                "images": counts_subject[s.name],
                "themes": len(themes_per_subject[s.name]),
            }
            for s in kept_subjects
        ],
        "dropped_subjects": dropped_subjects,
        "cells": cells,
        "skipped": skipped,
    }
    (staging / "licenses").mkdir()
    for p in packages.values():  # the images are GPL / LGPL / CC-BY-SA works: ship their terms
        (staging / "licenses" / f"{p.name}.copyright").write_text(p.copyright())
    (staging / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    # 5. swap in atomically-ish: the old tree is removed only once the new one is complete
    swap_in(staging, root)
    _log(
        f"built {len(labels)} images, {len(counts_theme)} themes x {len(kept_subjects)} subjects "
        f"in {time.monotonic() - t0:.1f}s -> {root}",
        quiet,
    )
    return root


# ------------------------------------------------------------------------------- load / subset
def load_labels(root: Path | None = None) -> list[dict]:
    """The labels of a built dataset, sorted by image_id; each gets an absolute ``file`` path."""
    root = dataset_dir(root)
    labels = json.loads((root / "labels.json").read_text())
    for lab in labels:
        lab["file"] = str(root / lab["path"])
    return sorted(labels, key=lambda lab: lab["image_id"])


def open_images(labels: Sequence[dict]) -> list[Image.Image]:
    """The RGB images of ``load_labels`` rows, in the same order."""
    images = []
    for row in labels:
        with Image.open(row["file"]) as im:
            images.append(im.convert("RGB"))
    return images


def subset(
    labels: Sequence[dict] | None = None,
    max_per_cell: int = 1,
    themes: Iterable[str] | None = None,
    subjects: Iterable[str] | None = None,
    root: Path | None = None,
) -> list[dict]:
    """A deterministic small subset: at most ``max_per_cell`` images per (style, subject) cell.

    Within a cell images are taken in synonym-table order (the most canonical icon name first), ties
    by image_id. The result is sorted by image_id. ``themes`` / ``subjects`` restrict the cells.
    """
    if labels is None:
        labels = load_labels(root)
    theme_set = set(themes) if themes is not None else None
    subject_set = set(subjects) if subjects is not None else None

    def preference(lab: dict) -> tuple:
        subject = SUBJECT_BY_NAME.get(lab["subject"])
        names = subject.icon_names if subject else ()
        name = lab.get("icon_name") or lab["image_id"].rsplit("/", 1)[-1]
        return (names.index(name) if name in names else len(names), lab["image_id"])

    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for lab in labels:
        if theme_set is not None and lab["style"] not in theme_set:
            continue
        if subject_set is not None and lab["subject"] not in subject_set:
            continue
        cells[(lab["style"], lab["subject"])].append(lab)
    picked = [lab for cell in cells.values() for lab in sorted(cell, key=preference)[:max_per_cell]]
    return sorted(picked, key=lambda lab: lab["image_id"])


# ------------------------------------------------------------------------------- contact sheet
def contact_sheet(
    root: Path | None = None,
    out: Path | None = None,
    cell: int = 56,
    themes: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
) -> Path:
    """A PNG grid: one row per theme, one column per subject, the first image of each cell."""
    root = dataset_dir(root)
    manifest = json.loads((root / "manifest.json").read_text())
    row_names = list(themes or [t["style"] for t in manifest["themes"] if t["images"]])
    col_names = list(subjects or [s["name"] for s in manifest["subjects"]])
    picked = {(lab["style"], lab["subject"]): lab for lab in subset(load_labels(root), 1, row_names, col_names)}
    cells = {
        (r, c): picked[(style, subject)]["path"]
        for r, style in enumerate(row_names)
        for c, subject in enumerate(col_names)
        if (style, subject) in picked
    }
    out = Path(out) if out else Path(__file__).resolve().parents[3] / "docs" / "img" / "icons-dataset.png"
    return draw_grid(root, row_names, col_names, cells, out, cell=cell, label_w=92, header_h=74)
