"""Progress bars (tqdm) that log lines do not break: while a bar is shown, records of the root
logger's console handlers are written above it (tqdm's logging_redirect_tqdm) instead of through it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


@contextlib.contextmanager
def progress_bar(total: int, desc: str, unit: str = "it", **kwargs: Any) -> Iterator[tqdm]:
    """A tqdm bar on stderr; on a terminal it redraws often, into a log file every 5 s at most."""
    interactive = sys.stderr.isatty()
    options: dict[str, Any] = {
        "total": total,
        "desc": f"  {desc}",
        "unit": unit,
        "file": sys.stderr,
        "dynamic_ncols": interactive,
        "mininterval": 0.2 if interactive else 5.0,
        "ascii": not interactive,
        **kwargs,
    }
    with logging_redirect_tqdm(), tqdm(**options) as bar:
        yield bar
