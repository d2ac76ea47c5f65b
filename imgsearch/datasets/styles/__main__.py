"""``python -m imgsearch.datasets.styles build|sheet|stats``."""

from imgsearch.datasets.styles.cli import main

raise SystemExit(main())
