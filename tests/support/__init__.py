"""Helpers shared by the test suites (import them from here, never from a conftest); the fixtures
in ``tests.support.fixtures`` are loaded by ``tests/conftest.py`` (``pytest_plugins``)."""

from tests.support.images import STYLES, SUBJECTS, draw, synthetic_folder
from tests.support.pipeline import (
    ROLES,
    Pipeline,
    ingest_all,
    isolated_settings,
    read_topic,
    search_until_ready,
    start_pipeline,
    stop_pipeline,
    teach_user,
    wait_for,
)

__all__ = [
    "ROLES",
    "STYLES",
    "SUBJECTS",
    "Pipeline",
    "draw",
    "ingest_all",
    "isolated_settings",
    "read_topic",
    "search_until_ready",
    "start_pipeline",
    "stop_pipeline",
    "synthetic_folder",
    "teach_user",
    "wait_for",
]
