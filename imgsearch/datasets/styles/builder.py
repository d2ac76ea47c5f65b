"""The styles-v2 builder: plan every kind's items from the fetched packages, render them (cached by
source digest), write labels.json / manifest.json / licences; load, contact-sheet and count a built set."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from imgsearch.datasets import debian, icons, npm, splits
from imgsearch.datasets.files import draw_grid, swap_in
from imgsearch.datasets.styles.labels import (
    CURATED_BY_CANONICAL,
    CURATED_EMOJI,
    EMOJI_TO_CURATED,
    canonical_icon_name,
    clipart_keywords,
    curated_rank,
    emoji_key,
    emoji_keywords,
    emoji_skip_reason,
    humanize_clipart,
    humanize_icon_name,
    icon_keywords,
    openmoji_tags,
    parse_emoji_meta,
    parse_openmoji,
)
from imgsearch.datasets.styles.tables import (
    _LICENSE_LINE_RE,
    CLIPART,
    DEBIAN_LICENSE_OVERRIDES,
    EMOJI_META,
    EMOJI_STYLES,
    ICON_STYLES,
    KINDS,
    IconStyle,
    select_styles,
)

DATASET_NAME = "styles-v2"
# Bump when anything that changes the output (tables, selection rules, rendering, label fields) changes.
BUILDER_VERSION = "2.2.1"
IMAGE_SIZE = icons.IMAGE_SIZE
MIN_FAMILIES = 3  # an icon name is kept only if at least this many families draw it
MIN_CLIPART_SIZE = 48  # clip-art PNGs whose longer side is smaller are skipped
MAX_CLIPART_PIXELS = 4096 * 4096  # ... and those larger (19 PNGs of up to 623 Mpx: minutes of CPU, GBs of RAM)
MAX_WORKERS = 2  # the machine is shared: never more render threads than this


# --------------------------------------------------------------------------------------- items
@dataclass
class Item:
    """One planned image: where it comes from and its label row (without path/size fields)."""

    image_id: str
    source: Path
    fmt: str  # "png" | "svg"
    row: dict[str, Any] = field(default_factory=dict)
    digest: str = ""  # SHA-256 of the source file (the render cache key), computed when empty


def make_row(
    style: str,
    kind: str,
    subject: str,
    name: str,
    text: str,
    keywords: Sequence[str],
    package: str,
    version: str,
    license: str,
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    """(image_id, label row) with the fields every row has; ``extra`` is added as is."""
    image_id = icons.sanitize_id(f"{style}/{subject}/{name}")
    family = splits.family_of(style)
    row: dict[str, Any] = {
        "image_id": image_id,
        "path": f"images/{image_id}.png",
        "style": style,
        "family": family,
        "split": splits.split_of_family(family),
        "kind": kind,
        "subject": subject,
        "subject_held_out": splits.is_held_out_subject(subject),
        "text": text,
        "keywords": list(keywords),
        "source_package": package,
        "source_version": version,
        "license": license,
    }
    row.update(extra)
    return image_id, row


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _icon_context(src: icons.Source, theme_root: Path) -> str:
    parts = src.path.relative_to(theme_root).parts[:-1]
    rest = [p for p in parts if icons.parse_size_dir([p]) is None and p not in ("base",)]
    return rest[-1] if rest else ""


@dataclass
class IconCandidate:
    style: str
    name: str  # canonical
    raw_name: str
    source: icons.Source
    digest: str
    context: str


def scan_icon_style(theme_root: Path, pkg_root: Path, style: str) -> list[IconCandidate]:
    """The best source of every usable icon name of one theme (sorted by name)."""
    by_raw = icons.scan_theme(theme_root, pkg_root)
    by_canon: dict[str, list[tuple[str, icons.Source]]] = defaultdict(list)
    for raw, sources in by_raw.items():
        canon = canonical_icon_name(raw)
        if canon is None:
            continue
        for src in sources:
            by_canon[canon].append((raw, src))
    out = []
    for canon in sorted(by_canon):
        pairs = by_canon[canon]
        best = icons.best_source(s for _, s in pairs)
        if best is None:
            continue
        raw = next(r for r, s in pairs if s is best)
        out.append(IconCandidate(style, canon, raw, best, _digest(best.real), _icon_context(best, theme_root)))
    return out


def plan_icons(
    candidates: dict[str, list[IconCandidate]], min_families: int = MIN_FAMILIES
) -> tuple[list[IconCandidate], dict[str, list[str]], dict[str, int]]:
    """Keep icon names drawn by >= ``min_families`` families; within a style, a drawing shared by
    several names (symlinks or byte copies) is kept once, under the name most families draw (ties:
    shorter, then alphabetical), the others listed as its aliases.

    Returns (kept candidates sorted by (style, name), {style/name: aliases}, {name: families}).
    """
    fams: dict[str, set[str]] = defaultdict(set)
    for style, cands in candidates.items():
        for c in cands:
            fams[c.name].add(splits.family_of(style))
    nfam = {name: len(f) for name, f in fams.items()}
    eligible = {name for name, n in nfam.items() if n >= min_families}
    while True:  # dedupe, recount, drop names that fell below min_families; repeat until stable
        kept: list[IconCandidate] = []
        aliases: dict[str, list[str]] = {}
        for style in sorted(candidates):
            groups: dict[str, list[IconCandidate]] = defaultdict(list)
            for c in candidates[style]:
                if c.name in eligible:
                    groups[c.digest].append(c)
            same_file: dict[str, list[str]] = defaultdict(list)
            for c in candidates[style]:
                same_file[c.digest].append(c.name)
            for digest, group in groups.items():
                group.sort(key=lambda c: (-nfam[c.name], len(c.name), c.name))
                kept.append(group[0])
                aliases[f"{style}/{group[0].name}"] = sorted(n for n in same_file[digest] if n != group[0].name)
        kept_fams: dict[str, set[str]] = defaultdict(set)
        for c in kept:
            kept_fams[c.name].add(splits.family_of(c.style))
        still = {name for name in eligible if len(kept_fams[name]) >= min_families}
        if still == eligible:
            break
        eligible = still
    nfam = {name: len(kept_fams[name]) for name in eligible}
    kept.sort(key=lambda c: (c.style, c.name))
    return kept, aliases, nfam


# --------------------------------------------------------------------------------------- build
def dataset_dir(out: Path | None = None) -> Path:
    return Path(out) if out else debian.cache_root() / "datasets" / DATASET_NAME


def config(
    styles: Sequence[str],
    kinds: Sequence[str],
    clipart_limit: int | None,
    min_families: int,
    curated_only: bool = False,
) -> dict:
    emoji = {s.style: [s.package, s.version] for s in EMOJI_STYLES if s.style in styles}
    themes = {s.style: [s.package, s.theme_dir] for s in ICON_STYLES if s.style in styles}
    return {
        "builder": BUILDER_VERSION,
        "size": IMAGE_SIZE,
        "styles": list(styles),
        "kinds": sorted(kinds),
        "min_families": min_families,
        **({"curated_only": True} if curated_only else {}),
        "clipart_limit": clipart_limit,
        "themes": themes,
        "emoji": emoji,
        "emoji_meta": list(EMOJI_META),
        "curated": [[s.name, s.query, list(s.icon_names)] for s in icons.ALL_SUBJECTS],
        "curated_emoji": CURATED_EMOJI,
        "family_split": splits.FAMILY_SPLIT,
    }


def config_fingerprint(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def is_up_to_date(root: Path, fingerprint: str) -> bool:
    try:
        data = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        (root / "labels.json").is_file()
        and data.get("builder_version") == BUILDER_VERSION
        and data.get("config_fingerprint") == fingerprint
    )


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _progress(iterable: Iterable, total: int, desc: str, quiet: bool) -> Iterable:
    if quiet:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, unit="img", mininterval=2.0)


@dataclass
class Fetchers:
    """How packages are obtained (tests swap in fakes that return prepared directories)."""

    debian: Callable[[str], debian.ExtractedPackage] = debian.fetch_package
    npm: Callable[[str, str], npm.NpmPackage] = npm.fetch_package


@dataclass
class PackageInfo:
    name: str
    version: str
    registry: str  # "debian" | "npm"
    sha256: str
    license: str
    license_text: str
    license_statement: str = ""
    package_license: str = ""  # npm: the package.json "license" field (the code's, not the images')


def _debian_info(pkg: debian.ExtractedPackage) -> PackageInfo:
    lic = DEBIAN_LICENSE_OVERRIDES.get(pkg.name) or pkg.main_license()
    return PackageInfo(pkg.name, pkg.version, "debian", pkg.sha256, lic, pkg.copyright())


def _scan_icon_spec(
    spec: IconStyle,
    pkg: debian.ExtractedPackage,
    packages: dict[str, PackageInfo],
    roots: dict[str, Path],
    cands: dict[str, list[IconCandidate]],
    quiet: bool,
) -> None:
    packages[spec.package] = _debian_info(pkg)
    theme_root = pkg.root / "usr" / "share" / "icons" / spec.theme_dir
    if not theme_root.is_dir():
        raise FileNotFoundError(f"{spec.package} has no usr/share/icons/{spec.theme_dir}")
    roots[spec.style] = pkg.root
    cands[spec.style] = scan_icon_style(theme_root, pkg.root, spec.style)
    _log(f"  {spec.style:22s} {len(cands[spec.style]):6d} usable icon names ({spec.package} {pkg.version})", quiet)


def plan_icon_items(
    styles: Sequence[str],
    fetch: Fetchers,
    packages: dict[str, PackageInfo],
    min_families: int,
    quiet: bool,
    curated_only: bool = False,
) -> tuple[list[Item], dict[str, int]]:
    cands: dict[str, list[IconCandidate]] = {}
    roots: dict[str, Path] = {}
    wanted = [spec for spec in ICON_STYLES if spec.style in styles]
    # the downloads (apt-get download + dpkg -x, network-bound) run ahead in a few threads while the
    # themes already fetched are scanned, in ICON_STYLES order as before
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="apt")
    pending = {pkg: pool.submit(fetch.debian, pkg) for pkg in dict.fromkeys(spec.package for spec in wanted)}
    try:
        for spec in wanted:
            _scan_icon_spec(spec, pending[spec.package].result(), packages, roots, cands, quiet)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    kept, aliases, nfam = plan_icons(cands, min_families)
    if curated_only:  # a small set for the demo and the smoke tests: only what a curated subject names
        kept = [c for c in kept if c.name in CURATED_BY_CANONICAL]
    pkg_of = {s.style: s.package for s in ICON_STYLES}
    items = []
    for c in kept:
        info = packages[pkg_of[c.style]]
        curated = CURATED_BY_CANONICAL.get(c.name)
        extra: dict[str, Any] = {
            "icon_name": c.raw_name,
            "icon_context": c.context,
            "aliases": aliases.get(f"{c.style}/{c.name}", []),
            "families_drawing": nfam[c.name],
            "source_file": "/" + str(c.source.path.relative_to(roots[c.style])),
            "source_format": c.source.fmt,
            "source_size": "scalable" if c.source.size == 1024 else c.source.pixels,
        }
        if curated is not None:
            extra["curated_subject"] = curated
            extra["curated_rank"] = curated_rank(c.name, curated)
            extra["query"] = icons.SUBJECT_BY_NAME[curated].query
        image_id, row = make_row(
            c.style,
            "icon",
            c.name,
            c.name,
            humanize_icon_name(c.raw_name, c.context),
            icon_keywords(c.raw_name),
            info.name,
            info.version,
            info.license,
            **extra,
        )
        items.append(Item(image_id, c.source.real, c.source.fmt, row, c.digest))
    return items, nfam


def _license_statement(style: str, readme: str) -> str:
    pattern = _LICENSE_LINE_RE.get(style)
    if pattern is None:
        return ""
    m = re.search(pattern, readme, flags=re.MULTILINE)
    if m is None:
        raise RuntimeError(f"the README of the {style} emoji package no longer states its image licence as expected")
    return m.group(0).strip()


def plan_emoji_items(
    styles: Sequence[str], fetch: Fetchers, packages: dict[str, PackageInfo], quiet: bool, notes: dict[str, Any]
) -> list[Item]:
    wanted = [s for s in EMOJI_STYLES if s.style in styles]
    if not wanted:
        return []
    meta_pkg = fetch.npm(*EMOJI_META)
    meta = parse_emoji_meta(json.loads((meta_pkg.root / "emoji.json").read_text(encoding="utf-8")))
    missing = sorted(k for k in EMOJI_TO_CURATED if k not in meta)
    if missing:  # a newer emoji-datasource renamed or dropped one: shows in the manifest, never silently
        _log(f"  warning: CURATED_EMOJI names emoji {EMOJI_META[0]} does not list (or skips): {missing}", quiet)
    notes["curated_emoji_missing"] = missing
    packages[meta_pkg.name] = PackageInfo(
        meta_pkg.name,
        meta_pkg.version,
        "npm",
        meta_pkg.sha256,
        meta_pkg.declared_license(),
        meta_pkg.license_text(),
        "metadata only (names, short names, categories); no images used",
        meta_pkg.declared_license(),
    )
    om_rows: dict[str, dict] = {}
    om_style = next((s for s in EMOJI_STYLES if s.vendor == ""), None)
    if om_style is not None:  # openmoji's tags are keywords for every vendor's drawing
        om_pkg = fetch.npm(om_style.package, om_style.version)
        om_rows = parse_openmoji(json.loads((om_pkg.root / "data" / "openmoji.json").read_text(encoding="utf-8")))
    items: list[Item] = []
    for spec in wanted:
        pkg = fetch.npm(spec.package, spec.version)
        readme = (
            (pkg.root / "README.md").read_text(encoding="utf-8", errors="replace")
            if (pkg.root / "README.md").is_file()
            else ""
        )
        key = f"{spec.package}@{spec.version}"
        packages[key] = PackageInfo(
            spec.package,
            spec.version,
            "npm",
            pkg.sha256,
            spec.license,
            pkg.license_text(),
            _license_statement(spec.style, readme),
            pkg.declared_license(),
        )
        found: list[tuple[str, Path, str]] = []  # (key, file, fmt)
        if spec.vendor:
            rows = json.loads((pkg.root / "emoji.json").read_text(encoding="utf-8"))
            for row in rows:
                if not row.get(f"has_img_{spec.vendor}") or emoji_skip_reason(row) is not None:
                    continue
                path = pkg.root / spec.image_dir / row["image"]
                if path.is_file():
                    found.append((emoji_key(row["unified"]), path, "png"))
        else:
            for k, row in om_rows.items():
                path = pkg.root / spec.image_dir / f"{row['hexcode']}.svg"
                if path.is_file():
                    found.append((k, path, "svg"))
        seen: set[str] = set()
        for k, path, fmt in sorted(found, key=lambda t: (t[0], str(t[1]))):
            info = meta.get(k)
            if info is None or k in seen:
                continue  # not a (kept) emoji of the current Unicode list, or a duplicate row
            seen.add(k)
            tags = openmoji_tags(om_rows[k]) if k in om_rows else []
            curated: dict[str, Any] = {}
            if k in EMOJI_TO_CURATED:
                subj, rank = EMOJI_TO_CURATED[k]
                curated = {"curated_subject": subj, "curated_rank": rank, "query": icons.SUBJECT_BY_NAME[subj].query}
            image_id, row = make_row(
                spec.style,
                "emoji",
                info.subject,
                info.subject.lower(),
                info.name,
                emoji_keywords(info, tags),
                spec.package,
                spec.version,
                spec.license,
                emoji=info.char,
                short_names=list(info.short_names),
                category=info.category,
                subcategory=info.subcategory,
                **({"cldr_name": om_rows[k]["annotation"]} if om_rows.get(k, {}).get("annotation") else {}),
                **curated,
                source_file=str(path.relative_to(pkg.root)),
                source_format=fmt,
            )
            items.append(Item(image_id, path, fmt, row))
        _log(f"  {spec.style:22s} {len(seen):6d} emoji ({spec.package}@{spec.version})", quiet)
    return items


_GENERATED_STAR = re.compile(r"^star_\d+pt\d+step$")


def clipart_skip_reason(folder: str, stem: str) -> str | None:
    """Clip-art never used: the ~1,400 generated star polygons of ``shapes/stars`` (``star_64pt23step``:
    near-identical line patterns with a meaningless name), and files whose name has no word (``70a031``)."""
    if folder.startswith("shapes/stars") and _GENERATED_STAR.match(stem):
        return "generated star pattern"
    if not re.search(r"[a-z]{2,}", stem.lower()):
        return "no word in the file name"
    return None


def plan_clipart_items(
    fetch: Fetchers,
    packages: dict[str, PackageInfo],
    limit: int | None,
    quiet: bool,
    notes: dict[str, Any] | None = None,
) -> list[Item]:
    pkg = fetch.debian(CLIPART.package)
    info = _debian_info(pkg)
    packages[pkg.name] = info
    base = pkg.root / CLIPART.png_dir
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        files.extend(Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(".png"))
    seen: set[str] = set()
    items: list[Item] = []
    skipped_counts: Counter[str] = Counter()
    # a limited build takes a hash-ordered sample, so it spreads over all folders deterministically
    order = sorted(files, key=lambda p: hashlib.sha1(str(p.relative_to(base)).encode()).hexdigest())
    for path in order:
        if limit is not None and len(items) >= limit:
            break
        real = icons.resolve_link(path, pkg.root)
        if real is None:
            continue
        digest = _digest(real)
        if digest in seen:
            continue
        try:
            with warnings.catch_warnings():  # huge PNGs are skipped below, never decoded
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(real) as im:
                    w, h = im.size
        except Exception:  # unreadable, or past PIL's decompression-bomb limit
            continue
        if max(w, h) < MIN_CLIPART_SIZE or w * h > MAX_CLIPART_PIXELS:
            continue
        rel = path.relative_to(base)
        folder = str(rel.parent) if str(rel.parent) != "." else ""
        stem = rel.stem
        reason = clipart_skip_reason(folder, stem)
        if reason is not None:
            skipped_counts[reason] += 1
            continue
        seen.add(digest)
        subject = icons.sanitize_id(f"clipart/{folder}/{stem}" if folder else f"clipart/{stem}")
        image_id, row = make_row(
            CLIPART.style,
            "clipart",
            subject,
            stem,
            humanize_clipart(folder, stem),
            clipart_keywords(folder, stem),
            pkg.name,
            pkg.version,
            info.license,
            clipart_folder=folder,
            source_file="/" + str(path.relative_to(pkg.root)),
            source_format="png",
            source_size=max(w, h),
        )
        items.append(Item(image_id, real, "png", row, digest))
    if notes is not None:
        notes["clipart_skipped"] = dict(sorted(skipped_counts.items()))
    _log(f"  {CLIPART.style:22s} {len(items):6d} clip-art images ({pkg.name} {pkg.version})", quiet)
    return items


RENDER_VERSION = "1"  # bump when icons.render_file or is_blank change what they produce


def render_key(source_sha256: str, fmt: str, size: int = IMAGE_SIZE) -> str:
    """The render cache key of a source file: the same bytes rendered the same way give the same PNG."""
    return hashlib.sha256(f"{RENDER_VERSION}|{fmt}|{size}|{source_sha256}".encode()).hexdigest()


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system, or no hard links there
        shutil.copyfile(src, dest)


def build(
    out: Path | None = None,
    styles: Iterable[str] | None = None,
    kinds: Iterable[str] = KINDS,
    force: bool = False,
    quiet: bool = False,
    clipart_limit: int | None = None,
    min_families: int = MIN_FAMILIES,
    curated_only: bool = False,
    workers: int = MAX_WORKERS,
    fetch: Fetchers | None = None,
    render_cache: Path | None = None,
) -> Path:
    """Build the dataset for the selected styles / families and kinds; returns its directory.

    ``styles``: style or family names (None = all). A no-op when the manifest already matches.
    Renders are cached by source content under ``render_cache`` (default ``<cache>/renders``) and
    hard-linked into the dataset, so rebuilding or building a subset re-renders nothing already seen.
    """
    fetch = fetch or Fetchers()
    kinds = tuple(k for k in KINDS if k in set(kinds))
    chosen = select_styles(styles, kinds)
    if not chosen:
        raise ValueError("no style selected")
    cfg = config(chosen, kinds, clipart_limit, min_families, curated_only)
    fp = config_fingerprint(cfg)
    root = dataset_dir(out)
    if not force and is_up_to_date(root, fp):
        _log(f"{root}: up to date (builder {BUILDER_VERSION}, config {fp})", quiet)
        return root
    t0 = time.monotonic()
    packages: dict[str, PackageInfo] = {}
    notes: dict[str, Any] = {}
    items: list[Item] = []
    _log(f"planning {len(chosen)} styles: {' '.join(chosen)}", quiet)
    if "icon" in kinds:
        icon_items, _ = plan_icon_items(chosen, fetch, packages, min_families, quiet, curated_only)
        items += icon_items
    if "emoji" in kinds:
        items += plan_emoji_items(chosen, fetch, packages, quiet, notes)
    if "clipart" in kinds and CLIPART.style in chosen:
        items += plan_clipart_items(fetch, packages, clipart_limit, quiet, notes)
    ids = Counter(it.image_id for it in items)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise RuntimeError(f"{len(dup)} image ids planned twice, e.g. {dup[:3]}")
    t_plan = time.monotonic() - t0

    staging = root.with_name(root.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "images").mkdir(parents=True)

    cache_dir = render_cache if render_cache is not None else debian.cache_root() / "renders"

    def work(item: Item) -> tuple[Item, str | None]:
        dest = staging / item.row["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        key = render_key(item.digest or _digest(item.source), item.fmt)
        cached = cache_dir / key[:2] / f"{key}.png"
        if cached.is_file():
            _link_or_copy(cached, dest)
            return item, None
        if cached.with_suffix(".blank").is_file():
            return item, "blank render"
        try:
            img = icons.render_file(item.source, item.fmt, IMAGE_SIZE)
        except subprocess.CalledProcessError as exc:  # no cache paths in the manifest: it stays comparable
            err = (exc.stderr or b"").decode("utf-8", "replace").replace(str(item.source), "<source>").strip()
            return item, f"render failed: rsvg-convert exit {exc.returncode}: {err[:160]}"
        except Exception as exc:  # a broken source is skipped and reported (and tried again next build)
            return item, f"render failed: {type(exc).__name__}: {str(exc).replace(str(item.source), '<source>')[:160]}"
        cached.parent.mkdir(parents=True, exist_ok=True)
        if icons.is_blank(img):
            cached.with_suffix(".blank").touch()
            return item, "blank render"
        tmp = cached.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        img.save(tmp, format="PNG", optimize=True)
        os.replace(tmp, cached)
        _link_or_copy(cached, dest)
        return item, None

    rendered: list[Item] = []
    skipped: list[dict[str, str]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, workers))) as pool:
        for item, problem in _progress(pool.map(work, items), len(items), "render", quiet):
            if problem is None:
                rendered.append(item)
            else:
                skipped.append({"image_id": item.image_id, "reason": problem})
    t_render = time.monotonic() - t0 - t_plan

    # icons: a blank/broken render can take a name below min_families: drop such names now
    fam_after: dict[str, set[str]] = defaultdict(set)
    for it in rendered:
        if it.row["kind"] == "icon":
            fam_after[it.row["subject"]].add(it.row["family"])
    final: list[Item] = []
    for it in rendered:
        if it.row["kind"] == "icon" and len(fam_after[it.row["subject"]]) < min_families:
            (staging / it.row["path"]).unlink()
            skipped.append({"image_id": it.image_id, "reason": "fewer than min_families after rendering"})
            continue
        if it.row["kind"] == "icon":
            it.row["families_drawing"] = len(fam_after[it.row["subject"]])
        final.append(it)
    for dirpath, _dirnames, _filenames in os.walk(staging / "images", topdown=False):
        if not os.listdir(dirpath):
            os.rmdir(dirpath)

    labels = [it.row for it in sorted(final, key=lambda it: it.image_id)]
    manifest = make_manifest(labels, chosen, kinds, cfg, fp, packages, skipped, clipart_limit, min_families)
    manifest["build_seconds"] = {"plan": round(t_plan, 1), "render": round(t_render, 1)}
    manifest.update(notes)
    (staging / "licenses").mkdir()
    for key, p in sorted(packages.items()):
        text = p.license_text or ""
        (staging / "licenses" / f"{icons.sanitize_id(key).replace('/', '+')}.txt").write_text(text)
    (staging / "labels.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False) + "\n")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")

    swap_in(staging, root)
    _log(
        f"built {len(labels)} images ({len(skipped)} skipped), {len(chosen)} styles in "
        f"{time.monotonic() - t0:.1f}s (plan {t_plan:.1f}s, render {t_render:.1f}s) -> {root}",
        quiet,
    )
    return root


def make_manifest(
    labels: Sequence[dict],
    styles: Sequence[str],
    kinds: Sequence[str],
    cfg: dict,
    fingerprint: str,
    packages: dict[str, PackageInfo],
    skipped: Sequence[dict],
    clipart_limit: int | None,
    min_families: int,
) -> dict:
    per_style = Counter(r["style"] for r in labels)
    subjects_style: dict[str, set[str]] = defaultdict(set)
    for r in labels:
        subjects_style[r["style"]].add(r["subject"])
    curated: dict[str, dict[str, int]] = defaultdict(dict)
    for (style, subj), n in sorted(
        Counter((r["style"], r["curated_subject"]) for r in labels if r.get("curated_subject")).items()
    ):
        curated[style][subj] = n
    icon_subject_families: dict[str, set[str]] = defaultdict(set)
    for r in labels:
        if r["kind"] == "icon":
            icon_subject_families[r["subject"]].add(r["family"])
    return {
        "dataset": DATASET_NAME,
        "builder_version": BUILDER_VERSION,
        "config_fingerprint": fingerprint,
        "config": cfg,
        "image_size": IMAGE_SIZE,
        "min_families_per_icon_subject": min_families,
        "clipart_limit": clipart_limit,
        "num_images": len(labels),
        "num_subjects": len({r["subject"] for r in labels}),
        "held_out_rule": f"sha1(subject) % {splits.HELD_OUT_MODULUS} == 0 -> subject_held_out (never trained on)",
        "counts": {
            "kind": dict(sorted(Counter(r["kind"] for r in labels).items())),
            "split": dict(sorted(Counter(r["split"] for r in labels).items())),
            "kind_split": dict(sorted(Counter(f"{r['kind']}/{r['split']}" for r in labels).items())),
            "held_out_images": sum(1 for r in labels if r["subject_held_out"]),
            "held_out_subjects": len({r["subject"] for r in labels if r["subject_held_out"]}),
            "icon_subjects": len(icon_subject_families),
            "icon_subjects_by_families": dict(sorted(Counter(len(f) for f in icon_subject_families.values()).items())),
        },
        "styles": [
            {
                "style": s,
                "family": splits.family_of(s),
                "split": splits.split_of_style(s),
                "kind": "icon"
                if s in {x.style for x in ICON_STYLES}
                else ("emoji" if s in {x.style for x in EMOJI_STYLES} else "clipart"),
                "images": per_style.get(s, 0),
                "subjects": len(subjects_style.get(s, ())),
            }
            for s in styles
        ],
        "curated_coverage": curated,
        "packages": {
            key: {
                "name": p.name,
                "version": p.version,
                "registry": p.registry,
                "sha256": p.sha256,
                "license": p.license,
                **({"license_statement": p.license_statement} if p.license_statement else {}),
                **({"package_license": p.package_license} if p.package_license else {}),
            }
            for key, p in sorted(packages.items())
        },
        "skipped": list(skipped),
    }


# ------------------------------------------------------------------------------- load / sheet
def load_labels(root: Path | None = None) -> list[dict]:
    """The rows of a built dataset, sorted by image_id, each with an absolute ``file`` path."""
    root = dataset_dir(root)
    labels = json.loads((root / "labels.json").read_text())
    for lab in labels:
        lab["file"] = str(root / lab["path"])
    return sorted(labels, key=lambda lab: lab["image_id"])


SHEET_SUBJECTS: tuple[str, ...] = (
    "printer",
    "camera",
    "folder",
    "trash",
    "calculator",
    "mail",
    "terminal",
    "calendar",
    "clock",
    "search",
    "keyboard",
    "battery",
    "headphones",
    "lock",
    "weather",
)


def contact_sheet(
    root: Path | None = None,
    out: Path | None = None,
    cell: int = 48,
    subjects: Sequence[str] = SHEET_SUBJECTS,
) -> Path:
    """Styles as rows, curated subjects as columns: per icon style the icon with the most canonical name,
    per emoji style the first emoji of ``CURATED_EMOJI`` (grey: none)."""
    root = dataset_dir(root)
    labels = load_labels(root)
    manifest = json.loads((root / "manifest.json").read_text())
    rows_styles = [s["style"] for s in manifest["styles"] if s["images"] and s["kind"] != "clipart"]
    row_of = {style: r for r, style in enumerate(rows_styles)}
    pick: dict[tuple[str, int], dict] = {}
    pref: dict[tuple[str, int], tuple] = {}
    for lab in labels:
        col = None
        if lab["kind"] == "icon" and lab.get("curated_subject") in subjects:
            col = subjects.index(lab["curated_subject"])
            names = icons.SUBJECT_BY_NAME[lab["curated_subject"]].icon_names
            canon = [canonical_icon_name(n) for n in names]
            rank: tuple = (canon.index(lab["subject"]) if lab["subject"] in canon else 99, lab["image_id"])
        elif lab["kind"] == "emoji" and lab.get("curated_subject") in subjects:
            col = subjects.index(lab["curated_subject"])
            rank = (lab["curated_rank"], lab["image_id"])
        if col is None:
            continue
        key = (lab["style"], col)
        if key not in pref or rank < pref[key]:
            pref[key], pick[key] = rank, lab
    cells = {(r, c): lab["path"] for (style, c), lab in pick.items() if (r := row_of.get(style)) is not None}
    out = Path(out) if out else Path(__file__).resolve().parents[3] / "docs" / "img" / "styles-v2.png"
    row_labels = [f"{style} ({splits.split_of_style(style)})" for style in rows_styles]
    return draw_grid(root, row_labels, list(subjects), cells, out, cell=cell, label_w=170, header_h=70)


def stats(root: Path | None = None) -> str:
    """A plain-text summary of a built dataset (counts per style/split, curated coverage)."""
    root = dataset_dir(root)
    m = json.loads((root / "manifest.json").read_text())
    lines = [f"{root}: {m['num_images']} images, {m['num_subjects']} subjects", json.dumps(m["counts"])]
    for s in m["styles"]:
        cov = m["curated_coverage"].get(s["style"], {})
        lines.append(
            f"  {s['style']:22s} {s['kind']:7s} {s['family']:13s} {s['split']:5s} {s['images']:6d} images "
            f"{s['subjects']:6d} subjects  curated {len(cov):2d}/{len(icons.ALL_SUBJECTS)}"
            + (f" (printer {cov.get('printer', 0)})" if s["kind"] == "icon" else "")
        )
    return "\n".join(lines)
