"""Issue 16: the query worker's text batcher (streams.common.TextBatcher): overlapping query texts
share one encoder call, each request gets its own vector (the same as embedded alone), a lone text
is not delayed, and an encoder error reaches every request of its batch (and only those)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from imgsearch.embedding.hashing import HashEmbedder
from streams.common import Offload, TextBatcher
from tests.unit.test_query_service import Wired, answer, request

TEXTS = ["a printer", "a sleeping cat", "the weather", "a music player", "a folder", "a red car"]


class Recording:
    """An encoder that records its calls; ``gate`` holds the first call until set (so that texts pile
    up behind it deterministically)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.inner = HashEmbedder()
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.gate.wait(5)
        if self.fail_on in texts:
            raise RuntimeError("encoder failed")
        return self.inner.embed_texts(texts)


def test_texts_that_arrive_while_a_batch_runs_share_the_next_call() -> None:
    enc = Recording()

    async def run() -> list[np.ndarray]:
        batcher = TextBatcher(enc, Offload(), max_batch=4)
        first = asyncio.ensure_future(batcher.embed(TEXTS[0]))
        await asyncio.sleep(0.05)  # the first text is being embedded (held by the gate)
        rest = [asyncio.ensure_future(batcher.embed(t)) for t in TEXTS[1:]]
        await asyncio.sleep(0.05)
        enc.gate.set()
        return [await first, *[await r for r in rest]]

    vectors = asyncio.run(run())
    assert enc.calls == [TEXTS[:1], TEXTS[1:5], TEXTS[5:]]  # alone at once; then batches of at most 4
    alone = HashEmbedder().embed_texts(TEXTS)
    assert all(np.allclose(v, a) for v, a in zip(vectors, alone, strict=True))


def test_an_encoder_error_fails_its_batch_only() -> None:
    enc = Recording(fail_on="a folder")
    enc.gate.set()

    async def run() -> list[object]:
        batcher = TextBatcher(enc, Offload(), max_batch=2)
        tasks = [asyncio.ensure_future(batcher.embed(t)) for t in TEXTS[2:]]
        return await asyncio.gather(*tasks, return_exceptions=True)

    got = asyncio.run(run())
    assert enc.calls == [TEXTS[2:4], TEXTS[4:6]]
    assert all(isinstance(g, np.ndarray) for g in got[:2])
    assert all(isinstance(g, RuntimeError) for g in got[2:])


def test_concurrent_searches_search_with_the_vectors_they_get_alone(tmp_path) -> None:
    w = Wired(tmp_path)
    seen: list[list[float]] = []
    knn_sources = w.index.knn_sources

    async def recording(vector, sources):  # type: ignore[no-untyped-def]
        seen.append(list(vector))
        return await knn_sources(vector, sources)

    w.index.knn_sources = recording  # type: ignore[method-assign]
    for t in TEXTS:
        assert answer(w, request(text=t, k=3)).ok
    alone, seen[:] = list(seen), []

    async def together() -> list[object]:
        return list(await asyncio.gather(*(w.service.answer(request(text=t, k=3)) for t in TEXTS)))

    assert all(r.ok for r in asyncio.run(together()))  # type: ignore[attr-defined]
    assert w.service.texts.batches[-1] == len(TEXTS)  # requests of one turn of the loop: one encoder call
    assert np.allclose(np.array(seen), np.array(alone), atol=1e-6)  # the same vectors, request by request
