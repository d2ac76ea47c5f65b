"""``python -m imgsearch.datasets.icons build|sheet|coverage``."""

from imgsearch.datasets.icons.cli import main

raise SystemExit(main())
