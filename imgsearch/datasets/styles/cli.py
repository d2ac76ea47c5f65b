"""The styles-v2 command line: ``python -m imgsearch.datasets.styles build|sheet|stats``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imgsearch.datasets.styles.builder import DATASET_NAME, MAX_WORKERS, MIN_FAMILIES, build, contact_sheet, stats
from imgsearch.datasets.styles.tables import KINDS

DESCRIPTION = "``styles-v2``: a labelled subject x style image set from registry packages (issue 19's data)."


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imgsearch.datasets.styles", description=DESCRIPTION)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="fetch the packages and build the dataset")
    b.add_argument(
        "--families",
        "--styles",
        dest="families",
        default=None,
        help="comma-separated styles or families (default: all)",
    )
    b.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    b.add_argument(
        "--clipart-limit",
        "--limit",
        dest="clipart_limit",
        type=int,
        default=None,
        help="at most this many clip-art images (a hash-ordered sample)",
    )
    b.add_argument("--min-families", type=int, default=MIN_FAMILIES)
    b.add_argument("--out", type=Path, default=None, help=f"dataset dir (default <cache>/datasets/{DATASET_NAME})")
    b.add_argument("--force", action="store_true", help="rebuild even if the manifest is up to date")
    b.add_argument("--workers", type=int, default=MAX_WORKERS, help=f"render threads (at most {MAX_WORKERS})")
    b.add_argument("--quiet", action="store_true")
    s = sub.add_parser("sheet", help="write the contact sheet PNG")
    s.add_argument("--dataset", type=Path, default=None)
    s.add_argument("--out", type=Path, default=None, help="default docs/img/styles-v2.png")
    t = sub.add_parser("stats", help="print counts of a built dataset")
    t.add_argument("--dataset", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(
            build(
                args.out,
                _csv(args.families),
                _csv(args.kinds) or KINDS,
                force=args.force,
                quiet=args.quiet,
                clipart_limit=args.clipart_limit,
                min_families=args.min_families,
                workers=args.workers,
            )
        )
    elif args.cmd == "sheet":
        print(contact_sheet(args.dataset, args.out))
    elif args.cmd == "stats":
        print(stats(args.dataset))
    return 0
