"""Shared fixtures (loaded by tests/conftest.py's ``pytest_plugins``): the engines, and pipelines.

A test module that needs a pipeline other than the default one asks the factory with explicit
keyword arguments, in its own ``pipeline`` fixture::

    @pytest.fixture(scope="module")
    async def pipeline(pipeline_factory):
        return await pipeline_factory(embedder="conse", k=2, make_images=make_images)

Every pipeline the factory started is stopped (workers, index) when the module is done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from consumers.runner import ensure_engines
from tests.support.pipeline import Pipeline, start_pipeline, stop_pipeline


class PipelineFactory(Protocol):
    async def __call__(self, **kw: Any) -> Pipeline: ...


@pytest.fixture(scope="session")
def engines() -> dict[str, str]:
    return ensure_engines()


@pytest.fixture(scope="module")
async def pipeline_factory(
    engines: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PipelineFactory]:
    """``await pipeline_factory(**kw)``: a started pipeline (tests.support.pipeline.start_pipeline's
    keyword arguments: embedder, style, k, make_images, worker_env, roles, and Settings fields)."""
    started: list[Pipeline] = []

    async def make(**kw: Any) -> Pipeline:
        p = await start_pipeline(engines, tmp_path_factory.mktemp("pipeline"), **kw)
        started.append(p)
        return p

    try:
        yield make
    finally:
        for p in reversed(started):
            await stop_pipeline(p)


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    """The default pipeline: hash embedder, handcrafted style, 36 drawings, k=3 (not ingested)."""
    return await pipeline_factory()
