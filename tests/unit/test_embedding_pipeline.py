"""The embedding worker's batch handling, without servers: a batch that fails for a non-transient
reason is dead-lettered event by event (never silently lost), valid batches are indexed."""

import asyncio
import io
from types import SimpleNamespace

from PIL import Image

from imgsearch.config import Settings
from imgsearch.embedding.hashing import HashEmbedder
from imgsearch.embedding.style import HandcraftedStyleDescriber
from schemas.events import NewImage
from schemas.topics import Topics
from streams.centroids import CentroidWatcher
from streams.common import make_app
from streams.embedding import EmbeddingPipeline


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, "PNG")
    return buf.getvalue()


def event(value: bytes, offset: int) -> SimpleNamespace:
    return SimpleNamespace(
        message=SimpleNamespace(value=value, topic="t.images.new", partition=0, offset=offset, key=b"k")
    )


class Index:
    def __init__(self, fail: Exception | None) -> None:
        self.fail = fail
        self.docs: list = []

    async def upsert(self, docs):
        if self.fail:
            raise self.fail
        self.docs.extend(docs)


def pipeline(index: Index, tmp_path) -> tuple[EmbeddingPipeline, list, list]:
    settings = Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1")
    app = make_app("embedder-test", settings)
    watcher = CentroidWatcher("127.0.0.1:1", Topics())
    watcher.ready.set()
    p = EmbeddingPipeline(app, settings, HashEmbedder(), HandcraftedStyleDescriber(), index, watcher)  # type: ignore[arg-type]
    p.index_ready.set()
    letters: list = []
    sent: list = []

    async def from_event(ev, code, reason):
        letters.append((ev.message.offset, code, reason))

    async def send(key, value):
        sent.append(key)

    p.dlq.from_event = from_event  # type: ignore[method-assign]
    p.indexed_topic = SimpleNamespace(send=send)  # type: ignore[assignment]
    return p, letters, sent


def test_valid_batch_is_indexed_and_announced(tmp_path):
    index = Index(None)
    p, letters, sent = pipeline(index, tmp_path)
    events = [event(NewImage.inline(f"img-{i}", png()).to_bytes(), i) for i in range(3)] + [event(b"{bad", 3)]
    asyncio.run(p.process(events))
    assert [d.image_id for d in index.docs] == ["img-0", "img-1", "img-2"]
    assert sent == [b"img-0", b"img-1", b"img-2"]
    assert [(o, c) for o, c, _ in letters] == [(3, "malformed_json")]


def test_failed_batch_is_dead_lettered_not_lost(tmp_path):
    index = Index(ValueError("mapping rejected the document"))
    p, letters, sent = pipeline(index, tmp_path)
    events = [event(NewImage.inline(f"img-{i}", png()).to_bytes(), i) for i in range(2)]
    asyncio.run(p.process(events))
    assert sent == [] and [(o, c) for o, c, _ in letters] == [(0, "processing_failed"), (1, "processing_failed")]
    assert "mapping rejected the document" in letters[0][2]
