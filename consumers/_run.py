"""Shared start-up of a worker process: logging, settings, the faust worker."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable

import faust

from imgsearch.config import Settings
from imgsearch.kafka.admin import ensure_topics
from streams import faust_compat
from streams.common import changelog_topics


def run(role: str, build: Callable[[Settings], faust.App]) -> None:
    settings = Settings()  # this process's environment: the parent's, with its settings.child_env()
    level = settings.log_level
    logging.basicConfig(level=level, format=f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("imgsearch").info(
        "starting %s worker: %s",
        role,
        {k: settings.redacted()[k] for k in ("kafka_bootstrap", "opensearch_url", "index_name", "partitions")},
    )
    faust_compat.install(settings.allow_untested_faust)  # before any app: the version gate, the patches
    app = build(settings)
    # Everything built so far (the models, their vocabularies, the app) lives as long as the process:
    # moved out of the collector's reach, a full collection no longer walks it. Without this, one
    # full collection in the query worker took ~55 ms of CPU, and on 2 shared cores it stalled
    # the requests in flight by 200+ ms (the p99 of bench/speed.py; docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    # faust creates its tables' changelogs itself, and subscribes right after: created here first,
    # and visible in the broker's metadata, the worker cannot miss them (see ensure_topics). The shared
    # topics too (idempotent, like `imgsearch topics`): the broker does not auto-create topics, so a
    # worker started before `imgsearch topics` neither waits on missing topics nor gets them with the
    # broker's default size limit.
    specs = [*settings.topics.all_shared(), *changelog_topics(app)]
    faust_compat.run_before_worker(
        ensure_topics(settings.kafka_bootstrap, specs, settings.partitions, settings=settings)
    )
    faust_compat.run_worker(app, level)
