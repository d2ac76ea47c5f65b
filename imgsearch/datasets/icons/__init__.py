"""A real, human-made "subject x style" image set built from Debian icon themes.

Several desktop icon themes draw the same things (a printer, a camera, a folder, ...) in their own
style. Taking one subject from many themes gives images whose *content* is fixed and whose *style*
varies, which is what personalised search needs: a user who likes Oxygen should get the Oxygen
printer when searching "printer".

* style label  = the theme (``tango``, ``oxygen``, ``papirus``, ...)
* subject      = a small explicit synonym table from freedesktop icon names (``printer``,
  ``printer-network``, ``document-print`` -> ``printer``), each with a natural-language query text.

Output (under ``${IMGSEARCH_CACHE:-~/.cache/imgsearch}/datasets/icons-v1/``)::

    images/<theme>/<subject>/<icon-name>.png    128x128 RGB, alpha composited on white
    labels.json                                   [{image_id, path, subject, style, source_package, ...}]
    manifest.json                                 builder version, packages + versions + licences, counts
    licenses/<package>.copyright                  the Debian copyright file of each theme package

Everything is deterministic: sorted directory walks, a fixed preference order for sources and
variants, no randomness. Re-running with an up-to-date manifest is a fast no-op.

The package: :mod:`.tables` (themes, subjects, icon name -> subject), :mod:`.builder` (source
lookup, rendering, build, load / subset, contact sheet), :mod:`.cli`. Everything public is
importable from here.

CLI::

    python -m imgsearch.datasets.icons build [--out DIR] [--force]
    python -m imgsearch.datasets.icons sheet [--out docs/img/icons-dataset.png]
    python -m imgsearch.datasets.icons coverage     # which subject names each theme has (no rendering)
"""

from imgsearch.datasets import debian
from imgsearch.datasets.icons.builder import (
    BLANK_FRACTION,
    BUILDER_VERSION,
    DATASET_NAME,
    IMAGE_SIZE,
    MAX_VARIANTS,
    MIN_PNG_SIZE,
    MIN_THEMES,
    PlannedImage,
    Source,
    best_source,
    build,
    config_fingerprint,
    contact_sheet,
    dataset_dir,
    is_blank,
    is_up_to_date,
    load_labels,
    open_images,
    parse_size_dir,
    plan_theme,
    render_file,
    render_source,
    resolve_link,
    scan_theme,
    source_rank,
    subset,
)
from imgsearch.datasets.icons.cli import coverage, main
from imgsearch.datasets.icons.tables import (
    ALL_SUBJECTS,
    CURATED_NAME_TO_SUBJECT,
    DEFAULT_SUBJECT_NAMES,
    EXTRA_SUBJECTS,
    EXTRA_THEMES,
    NAME_TO_SUBJECT,
    SUBJECT_BY_NAME,
    SUBJECTS,
    THEME_BY_STYLE,
    THEMES,
    Subject,
    Theme,
    sanitize_id,
    subject_for_icon,
)

__all__ = [
    "ALL_SUBJECTS",
    "BLANK_FRACTION",
    "BUILDER_VERSION",
    "CURATED_NAME_TO_SUBJECT",
    "DATASET_NAME",
    "DEFAULT_SUBJECT_NAMES",
    "EXTRA_SUBJECTS",
    "EXTRA_THEMES",
    "IMAGE_SIZE",
    "MAX_VARIANTS",
    "MIN_PNG_SIZE",
    "MIN_THEMES",
    "NAME_TO_SUBJECT",
    "SUBJECTS",
    "SUBJECT_BY_NAME",
    "THEMES",
    "THEME_BY_STYLE",
    "PlannedImage",
    "Source",
    "Subject",
    "Theme",
    "best_source",
    "build",
    "config_fingerprint",
    "contact_sheet",
    "coverage",
    "dataset_dir",
    "debian",
    "is_blank",
    "is_up_to_date",
    "load_labels",
    "main",
    "open_images",
    "parse_size_dir",
    "plan_theme",
    "render_file",
    "render_source",
    "resolve_link",
    "sanitize_id",
    "scan_theme",
    "source_rank",
    "subject_for_icon",
    "subset",
]
