"""In-memory fakes of the stream handlers' ports (streams/ports.py): a handler built with these runs
its real logic with no Kafka and no OpenSearch, and the test reads what it sent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from imgsearch.domain.blend import Candidate
from schemas.events import DeadLetter, SearchResponse
from streams.common import DeadLetters


def event(
    value: bytes | None,
    offset: int = 0,
    *,
    topic: str = "t.in",
    partition: int = 0,
    key: bytes | None = b"k",
    headers=None,
) -> SimpleNamespace:
    """A faust event as the handlers read it: ``event.message`` with value, topic, partition, offset, key."""
    return SimpleNamespace(
        message=SimpleNamespace(
            value=value, topic=topic, partition=partition, offset=offset, key=key, headers=headers or []
        )
    )


class Sink:
    """An EventSink: keeps what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes, list[tuple[str, bytes]] | None]] = []

    async def send(self, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        self.sent.append((key, value, headers))

    @property
    def keys(self) -> list[bytes]:
        return [k for k, _, _ in self.sent]

    @property
    def values(self) -> list[bytes]:
        return [v for _, v, _ in self.sent]


class Letters:
    """Real ``DeadLetters`` over a ``Sink``: the letters as the dead-letter topic would hold them."""

    def __init__(self, consumer: str = "test") -> None:
        self.sink = Sink()
        self.dlq = DeadLetters(self.sink, consumer)

    @property
    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.from_bytes(v) for v in self.sink.values]

    @property
    def codes(self) -> list[str]:
        return [dl.reason_code for dl in self.letters]


class Replies:
    """A ReplySender: the reply topics in ``topics`` exist; sends are kept (or hang, with ``hang``)."""

    def __init__(self, topics: Sequence[str] = (), *, hang: bool = False, unknown: bool = False) -> None:
        self.topics = set(topics)
        self.hang = hang
        self.unknown = unknown  # exists() raises: nobody answers about the topic
        self.sent: list[tuple[str, SearchResponse]] = []
        self.closed = False

    async def exists(self, topic: str) -> bool:
        if self.unknown:
            raise ConnectionError("no broker answers")
        return topic in self.topics

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        response = SearchResponse.from_bytes(value)
        assert key == response.request_id.encode()
        self.sent.append((topic, response))

    async def close(self) -> None:
        self.closed = True


class SearchIndex:
    """A SearchIndex over a fixed list of candidates: k-NN gives the first k of them (cosine order is
    the list's order), ``sources`` the given documents; ``down`` makes every call fail."""

    def __init__(
        self,
        candidates: Sequence[Candidate] = (),
        docs: dict[str, dict[str, Any]] | None = None,
        *,
        vectors: dict[str, list[float]] | None = None,
        filterable: bool = True,
        down: bool = False,
    ) -> None:
        self.candidates = list(candidates)
        self.docs = docs or {}
        self.vectors = vectors or {}
        self.filterable = filterable
        self.down = down
        self.knn_calls: list[Sequence[tuple[int, dict[str, Any] | None]]] = []

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("OpenSearch is down")

    async def vector_of(self, image_id: str) -> list[float] | None:
        self._check()
        return self.vectors.get(image_id)

    async def metadata_filterable(self) -> bool:
        self._check()
        return self.filterable

    async def knn_sources(
        self, vector: Sequence[float], sources: Sequence[tuple[int, dict[str, Any] | None]]
    ) -> list[list[Candidate]]:
        self._check()
        self.knn_calls.append(sources)
        return [self.candidates[:k] for k, _ in sources]

    async def sources(
        self, image_ids: Sequence[str], fields: Sequence[str], *, realtime: bool = True
    ) -> dict[str, dict[str, Any]]:
        self._check()
        return {i: {f: self.docs[i][f] for f in fields if f in self.docs[i]} for i in image_ids if i in self.docs}

    async def close(self) -> None:
        pass


class ImageWriter:
    """An ImageWriter: keeps the upserted documents; ``fail`` makes every upsert raise it."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.docs: list[Any] = []

    async def upsert(self, docs: Sequence[Any]) -> None:
        if self.fail:
            raise self.fail
        self.docs.extend(docs)
