"""Text → image search through the whole pipeline with the default offline embedder (ConSE) on
real photos (the ones scikit-image ships)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from producers import SearchClient
from tests.support import Pipeline, ingest_all, search_until_ready
from tests.support.fixtures import PipelineFactory

pytestmark = pytest.mark.integration
PHOTOS = {
    "cat": data.chelsea,
    "rocket": data.rocket,
    "coffee": data.coffee,
    "astronaut": data.astronaut,
    "camera": data.camera,
    "horse": data.horse,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
}


def make_images(root: Path) -> dict[str, str]:
    labels = {}
    for name, load in PHOTOS.items():
        arr = load()
        img = Image.fromarray(arr if arr.dtype.kind == "u" else (arr * 255).astype("uint8"))
        path = root / "photos" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.convert("RGB").save(path)
        labels[f"photos/{name}"] = name
    return labels


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    return await pipeline_factory(embedder="conse", k=2, make_images=make_images)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a photo of a cat", "photos/cat"),
        ("a space rocket", "photos/rocket"),
        ("a cup of coffee", "photos/coffee"),
        ("a motorcycle", "photos/motorcycle"),
    ],
)
async def test_text_query_finds_the_photo(pipeline: Pipeline, query: str, expected: str):
    if not getattr(pipeline, "_ingested", False):
        await ingest_all(pipeline)
        pipeline._ingested = True  # type: ignore[attr-defined]
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        resp = await search_until_ready(client, user_id="someone", text=query, k=3)
    assert resp.hits[0].image_id == expected, [(h.image_id, round(h.knn_score, 3)) for h in resp.hits]
    assert resp.hits[0].knn_score > resp.hits[1].knn_score
