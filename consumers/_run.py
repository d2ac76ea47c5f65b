"""Shared start-up of a worker process: logging, settings, the faust worker."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import faust
from faust.worker import Worker

from imgsearch.config import Settings


def run(role: str, build: Callable[[Settings], faust.App]) -> None:
    level = os.environ.get("IMGSEARCH_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format=f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    logging.getLogger("imgsearch").info(
        "starting %s worker: %s",
        role,
        {k: settings.redacted()[k] for k in ("kafka_bootstrap", "opensearch_url", "index_name", "partitions")},
    )
    app = build(settings)
    Worker(app, loglevel=level, quiet=True).execute_from_commandline()
