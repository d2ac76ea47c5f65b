"""``styles-v2``: a labelled subject x style image set from registry packages (issue 19's data).

Three kinds of human-made drawings, each drawn by several independent *styles* (designs):

* ``icon``    Debian icon themes (24 styles, 15 families): every icon name that at least
  ``MIN_FAMILIES`` families draw. Subject = the canonical icon name (``printer-network``); names in the
  curated synonym table (:data:`imgsearch.datasets.icons.ALL_SUBJECTS`) also carry ``curated_subject``
  and its natural ``query`` ("a printer").
* ``emoji``   npm ``emoji-datasource-*`` vendor PNGs, ``openmoji`` SVGs. Subject = the fully-qualified
  unified code point sequence (``1F63A``), the same for every vendor's drawing.
* ``clipart`` Debian ``openclipart-png`` (train only): subject = ``clipart/<folder>/<file stem>``.

Splits come from :mod:`imgsearch.datasets.splits` (by family; see its docstring for the table).

Output (under ``${IMGSEARCH_CACHE:-~/.cache/imgsearch}/datasets/styles-v2/``)::

    images/<style>/<subject>/<name>.png    128x128 RGB, alpha composited on white
    labels.json                            list of rows sorted by image_id (see ``label rows`` in docs)
    manifest.json                          builder version, config fingerprint, packages + versions +
                                           licences, counts per style / kind / split, skipped renders
    licenses/<package>.txt                 each package's copyright / licence text

The package: :mod:`.tables` (the styles and their packages), :mod:`.labels` (label text, keywords,
emoji metadata), :mod:`.builder` (plan, render, build, load, sheet, stats), :mod:`.cli`. Everything
public is importable from here.

CLI::

    python -m imgsearch.datasets.styles build [--families papirus,tango,...] [--kinds icon,emoji,clipart]
                                              [--clipart-limit N] [--out DIR] [--force]
    python -m imgsearch.datasets.styles sheet [--dataset DIR] [--out docs/img/styles-v2.png]
    python -m imgsearch.datasets.styles stats [--dataset DIR]

Deterministic (sorted walks, fixed preference orders, no randomness) and idempotent (a matching
manifest makes ``build`` a no-op without touching the network or the package trees).
"""

from imgsearch.datasets import debian, icons, npm, splits
from imgsearch.datasets.styles.builder import (
    BUILDER_VERSION,
    DATASET_NAME,
    IMAGE_SIZE,
    MAX_CLIPART_PIXELS,
    MAX_WORKERS,
    MIN_CLIPART_SIZE,
    MIN_FAMILIES,
    RENDER_VERSION,
    SHEET_SUBJECTS,
    Fetchers,
    IconCandidate,
    Item,
    PackageInfo,
    build,
    clipart_skip_reason,
    config,
    config_fingerprint,
    contact_sheet,
    dataset_dir,
    is_up_to_date,
    load_labels,
    make_manifest,
    make_row,
    plan_clipart_items,
    plan_emoji_items,
    plan_icon_items,
    plan_icons,
    render_key,
    scan_icon_style,
    stats,
)
from imgsearch.datasets.styles.cli import main
from imgsearch.datasets.styles.labels import (
    CURATED_BY_CANONICAL,
    CURATED_EMOJI,
    EMOJI_TO_CURATED,
    SKIN_TONES,
    SKIPPED_EMOJI_CATEGORIES,
    SKIPPED_EMOJI_SUBCATEGORIES,
    EmojiInfo,
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
    CLIPART,
    DEBIAN_LICENSE_OVERRIDES,
    EMOJI_META,
    EMOJI_STYLES,
    ICON_STYLES,
    KINDS,
    ClipartStyle,
    EmojiStyle,
    IconStyle,
    all_styles,
    select_styles,
)

__all__ = [
    "BUILDER_VERSION",
    "CLIPART",
    "CURATED_BY_CANONICAL",
    "CURATED_EMOJI",
    "DATASET_NAME",
    "DEBIAN_LICENSE_OVERRIDES",
    "EMOJI_META",
    "EMOJI_STYLES",
    "EMOJI_TO_CURATED",
    "ICON_STYLES",
    "IMAGE_SIZE",
    "KINDS",
    "MAX_CLIPART_PIXELS",
    "MAX_WORKERS",
    "MIN_CLIPART_SIZE",
    "MIN_FAMILIES",
    "RENDER_VERSION",
    "SHEET_SUBJECTS",
    "SKIN_TONES",
    "SKIPPED_EMOJI_CATEGORIES",
    "SKIPPED_EMOJI_SUBCATEGORIES",
    "ClipartStyle",
    "EmojiInfo",
    "EmojiStyle",
    "Fetchers",
    "IconCandidate",
    "IconStyle",
    "Item",
    "PackageInfo",
    "all_styles",
    "build",
    "canonical_icon_name",
    "clipart_keywords",
    "clipart_skip_reason",
    "config",
    "config_fingerprint",
    "contact_sheet",
    "curated_rank",
    "dataset_dir",
    "debian",
    "emoji_key",
    "emoji_keywords",
    "emoji_skip_reason",
    "humanize_clipart",
    "humanize_icon_name",
    "icon_keywords",
    "icons",
    "is_up_to_date",
    "load_labels",
    "main",
    "make_manifest",
    "make_row",
    "npm",
    "openmoji_tags",
    "parse_emoji_meta",
    "parse_openmoji",
    "plan_clipart_items",
    "plan_emoji_items",
    "plan_icon_items",
    "plan_icons",
    "render_key",
    "scan_icon_style",
    "select_styles",
    "splits",
    "stats",
]
