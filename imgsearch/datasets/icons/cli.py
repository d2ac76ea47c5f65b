"""The icons-v1 command line: ``python -m imgsearch.datasets.icons build|sheet|coverage``."""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from imgsearch.datasets import debian
from imgsearch.datasets.icons.builder import DATASET_NAME, build, contact_sheet, plan_theme
from imgsearch.datasets.icons.tables import ALL_SUBJECTS, EXTRA_THEMES, SUBJECTS, THEMES, Subject, Theme

DESCRIPTION = 'A real, human-made "subject x style" image set built from Debian icon themes.'


def coverage(themes: Sequence[Theme] = THEMES, subjects: Sequence[Subject] = SUBJECTS) -> dict:
    """{style: {subject: [icon names found]}} from the extracted packages (fetching them if needed)."""
    result: dict[str, dict[str, list[str]]] = {}
    for theme in themes:
        pkg = debian.fetch_package(theme.package)
        theme_root = pkg.root / "usr" / "share" / "icons" / theme.theme_dir
        plan = plan_theme(theme.style, theme.package, pkg.root, theme_root, subjects)
        cells: dict[str, list[str]] = defaultdict(list)
        for item in plan:
            cells[item.subject].append(f"{item.icon_name}:{item.source.fmt}{item.source.pixels}")
        result[theme.style] = dict(cells)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgsearch.datasets.icons", description=DESCRIPTION)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fetch the theme packages and build the dataset")
    b.add_argument("--out", type=Path, default=None, help=f"dataset dir (default <cache>/datasets/{DATASET_NAME})")
    b.add_argument("--force", action="store_true", help="rebuild even if the manifest is up to date")
    b.add_argument("--quiet", action="store_true")
    s = sub.add_parser("sheet", help="write the contact sheet PNG")
    s.add_argument("--dataset", type=Path, default=None)
    s.add_argument("--out", type=Path, default=None, help="default docs/img/icons-dataset.png")
    s.add_argument("--cell", type=int, default=56)
    c = sub.add_parser("coverage", help="print which subjects each theme draws (no rendering)")
    c.add_argument("--all", action="store_true", help="include EXTRA_THEMES and EXTRA_SUBJECTS")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(build(args.out, force=args.force, quiet=args.quiet))
    elif args.cmd == "sheet":
        print(contact_sheet(args.dataset, args.out, cell=args.cell))
    elif args.cmd == "coverage":
        themes = THEMES + EXTRA_THEMES if args.all else THEMES
        subjects = ALL_SUBJECTS if args.all else SUBJECTS
        cov = coverage(themes, subjects)
        for style, cells in cov.items():
            print(f"{style:16s} {len(cells):3d} subjects  {sum(len(v) for v in cells.values()):4d} images")
        print()
        for subject in subjects:
            have = [st for st in cov if subject.name in cov[st]]
            print(f"{subject.name:13s} {len(have):2d}  missing: {' '.join(st for st in cov if st not in have)}")
    return 0
