"""The embedding worker's batch handling behind its ports, with in-memory fakes (no Kafka, no
OpenSearch): a batch that fails for a non-transient reason is dead-lettered event by event (never
silently lost), valid batches are indexed and announced."""

import asyncio
import io

import numpy as np
from PIL import Image

from imgsearch.config import Settings
from imgsearch.domain.centroids import CentroidModel
from imgsearch.embedding.base import Embedder
from imgsearch.embedding.hashing import HashEmbedder
from imgsearch.embedding.style import HandcraftedStyleDescriber, StyleDescriber
from schemas.events import ImageIndexed, NewImage
from streams.embedding import EmbeddingPipeline
from streams.ports import FixedModel
from tests.support.fakes import ImageWriter, Letters, Sink, event


def png(size: int = 16, colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


class Wired:
    """An EmbeddingPipeline on fakes, and what it wrote."""

    def __init__(
        self,
        tmp_path,
        *,
        fail: Exception | None = None,
        embedder: Embedder | None = None,
        style: StyleDescriber | None = None,
        model: CentroidModel | None = None,
    ) -> None:
        self.index = ImageWriter(fail)
        self.indexed = Sink()
        self.dead = Letters("embedder")
        self.pipeline = EmbeddingPipeline(
            Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1"),
            embedder or HashEmbedder(),
            style or HandcraftedStyleDescriber(),
            self.index,
            FixedModel(model),
            self.indexed,
            self.dead.dlq,
        )
        self.pipeline.index_ready.set()

    def process(self, events: list) -> None:
        asyncio.run(self.pipeline.process(events))

    @property
    def letters(self) -> list[tuple[int | None, str, str]]:
        return [(dl.source_offset, dl.reason_code, dl.reason) for dl in self.dead.letters]


def new_image(image_id: str, offset: int, data: bytes | None = None):
    return event(NewImage.inline(image_id, data or png()).to_bytes(), offset, topic="t.images.new")


def test_valid_batch_is_indexed_and_announced(tmp_path):
    w = Wired(tmp_path)
    w.process([new_image(f"img-{i}", i) for i in range(3)] + [event(b"{bad", 3, topic="t.images.new")])
    assert [d.image_id for d in w.index.docs] == ["img-0", "img-1", "img-2"]
    assert w.indexed.keys == [b"img-0", b"img-1", b"img-2"]
    announced = [ImageIndexed.from_bytes(v) for v in w.indexed.values]
    assert [(a.image_id, a.cluster_id, a.centroid_version) for a in announced] == [
        ("img-0", -1, "none"),
        ("img-1", -1, "none"),
        ("img-2", -1, "none"),
    ]
    assert [(o, c) for o, c, _ in w.letters] == [(3, "malformed_json")]
    (letter,) = w.dead.letters
    assert (
        letter.source_topic == "t.images.new" and letter.consumer == "embedder" and letter.original_bytes() == b"{bad"
    )


def test_failed_batch_is_dead_lettered_not_lost(tmp_path):
    w = Wired(tmp_path, fail=ValueError("mapping rejected the document"))
    w.process([new_image(f"img-{i}", i) for i in range(2)])
    assert w.indexed.sent == [] and [(o, c) for o, c, _ in w.letters] == [
        (0, "processing_failed"),
        (1, "processing_failed"),
    ]
    assert "mapping rejected the document" in w.letters[0][2]


def test_images_are_clustered_by_the_current_centroid_model(tmp_path):
    style = HandcraftedStyleDescriber()
    d = style.dimension
    centroids = np.eye(2, d, dtype=np.float32)
    model = CentroidModel("v3", "style", style.model_id, centroids)
    w = Wired(tmp_path, style=style, model=model)
    w.process([new_image("a", 0, png(16, "red")), new_image("b", 1, png(16, "blue"))])
    assert {d.centroid_version for d in w.index.docs} == {"v3"} and all(d.cluster_id in (0, 1) for d in w.index.docs)
    assert [ImageIndexed.from_bytes(v).centroid_version for v in w.indexed.values] == ["v3", "v3"]


def test_a_model_trained_on_another_feature_leaves_images_unclustered(tmp_path):
    style = HandcraftedStyleDescriber()
    model = CentroidModel("v3", "style", "some-other-style", np.eye(2, style.dimension, dtype=np.float32))
    w = Wired(tmp_path, style=style, model=model)
    w.process([new_image("a", 0)])
    assert [(d.cluster_id, d.centroid_version) for d in w.index.docs] == [(-1, "none")]
