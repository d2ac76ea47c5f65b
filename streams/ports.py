"""The ports of the stream handlers: what ``EmbeddingPipeline``, ``InteractionMapper`` and
``QueryService`` need from the outside, as small protocols. Each module's ``build()`` wires faust
(its topics and tables), OpenSearch and the model watchers to them; a unit test wires in-memory
fakes (``tests/unit/fakes.py``): no Kafka, no OpenSearch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from imgsearch.domain.blend import Candidate
from imgsearch.index.opensearch import ImageDoc

M = TypeVar("M")
M_co = TypeVar("M_co", covariant=True)

Headers = list[tuple[str, bytes]]


class EventSink(Protocol):
    """One topic that a handler writes events to (faust: the app's ``TopicT``)."""

    async def send(self, *, key: bytes, value: bytes, headers: Headers | None = None) -> Any: ...


class ReplySender(Protocol):
    """The search replies: each goes to the reply topic its request names (one per client)."""

    async def exists(self, topic: str) -> bool:
        """Whether the topic exists, asked without creating it; may raise when nobody answers."""
        ...

    async def send(self, topic: str, key: bytes, value: bytes) -> None: ...

    async def close(self) -> None: ...


class ModelSource(Protocol[M_co]):
    """The newest version of a hot-reloaded model (``imgsearch.kafka.model_topics.LatestValueWatcher``):
    ``current`` is None before one is published, ``ready`` is set once the topic has been read."""

    @property
    def current(self) -> M_co | None: ...

    @property
    def ready(self) -> asyncio.Event: ...


class FixedModel(Generic[M]):
    """A model source that never changes (tests; a role run without its watcher)."""

    def __init__(self, model: M | None = None) -> None:
        self.current = model
        self.ready = asyncio.Event()
        self.ready.set()


class ImageWriter(Protocol):
    """Where the embedding worker writes its documents (``OpenSearchIndex``), an idempotent upsert."""

    async def upsert(self, docs: Sequence[ImageDoc]) -> None: ...


class SearchIndex(Protocol):
    """What the query worker reads of the vector index (``OpenSearchIndex``)."""

    async def vector_of(self, image_id: str) -> list[float] | None: ...

    async def metadata_filterable(self) -> bool: ...

    async def knn_sources(
        self, vector: Sequence[float], sources: Sequence[tuple[int, dict[str, Any] | None]]
    ) -> list[list[Candidate]]: ...

    async def sources(
        self, image_ids: Sequence[str], fields: Sequence[str], *, realtime: bool = True
    ) -> dict[str, dict[str, Any]]: ...

    async def close(self) -> None: ...
