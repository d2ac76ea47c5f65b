"""The vector index: OpenSearch with the k-NN plugin (HNSW, lucene engine).

The image id is the document id, so every write is an idempotent upsert. Every embedding model has
its own physical index, ``<IMGSEARCH_INDEX>.<model slug>``, with the model id and dimension in the
mapping's ``_meta``; the name IMGSEARCH_INDEX itself is an alias that points at the index of the
model being served. A model change therefore never mixes vectors of two models: the new model's
embedders fill their own index (re-indexing by replaying the retained new-image topic) and move the
alias when they have caught up.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, SSLError, TransportError
from opensearchpy.helpers import async_scan

from imgsearch.config import Settings, default_settings
from imgsearch.connections import opensearch_kwargs
from imgsearch.domain.blend import Candidate
from imgsearch.retry import retry_async

log = logging.getLogger(__name__)


class IndexMismatch(RuntimeError):
    """The index exists but was built for another embedder (model id or dimension)."""


def _tls_failure(exc: BaseException) -> bool:
    """The async transport wraps a failed TLS handshake in a plain ConnectionError: look at the cause."""
    from aiohttp import ClientSSLError

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError | ClientSSLError):
            return True
        info = getattr(seen, "info", None) if isinstance(seen, TransportError) else None
        seen = info if isinstance(info, BaseException) else (seen.__cause__ or seen.__context__)
    return False


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the server is unreachable or overloaded. Not: a TLS failure (an untrusted or
    wrong certificate does not heal by waiting), 401/403 (credentials, permissions), 4xx in general."""
    if isinstance(exc, SSLError) or _tls_failure(exc):
        return False
    if isinstance(exc, OSConnectionError | ConnectionTimeout):
        return True
    if isinstance(exc, TransportError):
        status = exc.status_code
        return isinstance(status, int) and (status == 429 or status >= 500)
    return False


@dataclass(frozen=True)
class ImageDoc:
    image_id: str
    embedding: Sequence[float]
    style: Sequence[float] | None
    style_model_id: str
    cluster_id: int
    model_id: str
    centroid_version: str
    source_uri: str | None
    metadata: dict[str, str]
    indexed_at: str

    def source(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "embedding": list(map(float, self.embedding)),
            "style": None if self.style is None else list(map(float, self.style)),
            "style_model_id": self.style_model_id,
            "cluster_id": self.cluster_id,
            "model_id": self.model_id,
            "centroid_version": self.centroid_version,
            "source_uri": self.source_uri,
            "metadata": self.metadata,
            "indexed_at": self.indexed_at,
        }


def mapping(
    dimension: int, model_id: str, ef_construction: int = 128, m: int = 16, replicas: int = 0
) -> dict[str, Any]:
    return {
        "settings": {
            "index": {
                "knn": True,
                "number_of_shards": 1,
                "number_of_replicas": replicas,
                "refresh_interval": "1s",
                # issue 16: vectors are not kept in the stored _source but rebuilt from the vector
                # files when a GET/_mget/search asks for them (k-NN derived source, 2.19): the store
                # halves (bench/index_store.py: 3.78x -> 2.05x raw float32 at 20k vectors)
                "knn.derived_source.enabled": True,
            }
        },
        "mappings": {
            "_meta": {"model_id": model_id, "dimension": dimension},
            "dynamic": "strict",
            "properties": {
                "image_id": {"type": "keyword"},
                "embedding": {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {
                        "name": "hnsw",
                        "space_type": "cosinesimil",
                        "engine": "lucene",
                        "parameters": {"m": m, "ef_construction": ef_construction},
                    },
                },
                "style": {"type": "object", "enabled": False},
                "style_model_id": {"type": "keyword"},
                "cluster_id": {"type": "integer"},
                "model_id": {"type": "keyword"},
                "centroid_version": {"type": "keyword"},
                "source_uri": {"type": "keyword", "index": False},
                # issue 15: flat_object, so term / range filters on metadata.<key> run inside the k-NN
                "metadata": {"type": "flat_object"},
                "indexed_at": {"type": "date"},
            },
        },
    }


def knn_body(
    vector: Sequence[float], k: int, filter: dict[str, Any] | None = None, ef_search: int | None = None
) -> dict[str, Any]:
    """A k-NN search body; a ``filter`` goes inside the knn clause (efficient filtering, lucene engine);
    ``ef_search`` widens HNSW's search beyond k (None: the engine's default, ef = k)."""
    clause: dict[str, Any] = {"vector": list(map(float, vector)), "k": k}
    if filter is not None:
        clause["filter"] = filter
    if ef_search is not None and ef_search > k:
        clause["method_parameters"] = {"ef_search": ef_search}
    return {"size": k, "_source": ["image_id", "cluster_id", "metadata"], "query": {"knn": {"embedding": clause}}}


def _candidates(resp: Mapping[str, Any]) -> list[Candidate]:
    return [
        Candidate(
            image_id=h["_id"],
            knn_score=float(h["_score"]),
            cluster_id=int(h["_source"].get("cluster_id", -1)),
            metadata=h["_source"].get("metadata") or {},
        )
        for h in resp["hits"]["hits"]
    ]


def model_slug(model_id: str) -> str:
    """An index-name-safe, collision-resistant form of a model id."""
    clean = re.sub(r"[^a-z0-9-]+", "-", model_id.lower()).strip("-")[:60]
    return f"{clean}-{hashlib.sha256(model_id.encode()).hexdigest()[:6]}"


def physical_name(alias: str, model_id: str) -> str:
    return f"{alias}.{model_slug(model_id)}"


class OpenSearchIndex:
    """One vector index. With ``model_id`` it is that model's physical index; without, the alias
    (reads, scans and partial updates go to whatever index the alias points at)."""

    def __init__(
        self,
        url: str,
        index: str,
        *,
        model_id: str | None = None,
        timeout_s: float = 10.0,
        client: AsyncOpenSearch | None = None,
        replicas: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        """``settings``: how to connect (TLS, basic auth, SigV4) and the replicas of an index this
        object creates (``replicas`` overrides; default: the built-in defaults, no auth, 0 replicas)."""
        settings = settings or default_settings()
        self.alias = index
        self.replicas = settings.index_replicas if replicas is None else replicas
        self.index = physical_name(index, model_id) if model_id else index
        self._filterable = False  # metadata_filterable()'s answer, once it was True
        self.ef_search = settings.knn_ef_search
        self.client = client or AsyncOpenSearch(
            hosts=[url], timeout=timeout_s, max_retries=0, retry_on_timeout=False, **opensearch_kwargs(settings, url)
        )

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, what: str, fn: Any, attempts: int | None = 8) -> Any:
        return await retry_async(fn, is_transient=is_transient, what=f"opensearch {what}", attempts=attempts)

    async def alias_targets(self) -> list[str]:
        try:
            # only among this alias's own physical indices (<alias>.<model>): a role limited to
            # imgsearch* indices may not look up an alias across all indices (403 with security on)
            # ignore=404: a missing alias is an answer, not a failure (opensearch-py would log a WARNING)
            resp = await self._call(
                "get_alias",
                lambda: self.client.indices.get_alias(index=f"{self.alias}.*", name=self.alias, ignore=404),
            )
        except NotFoundError:
            return []
        return sorted(name for name in resp if name not in ("error", "status"))  # a 404 body: error, status

    async def serve_this_index(self) -> None:
        """Point the alias at this physical index, atomically (searches never see no index)."""
        actions: list[dict[str, Any]] = [
            {"remove": {"index": t, "alias": self.alias}} for t in await self.alias_targets() if t != self.index
        ]
        actions.append({"add": {"index": self.index, "alias": self.alias}})
        await self._call("update_aliases", lambda: self.client.indices.update_aliases(body={"actions": actions}))
        log.info("alias %s now points at %s", self.alias, self.index)

    async def ensure(self, dimension: int, model_id: str) -> bool:
        """Create this model's index if missing (refusing one built for another model or dimension);
        point the alias at it if the alias does not exist yet. True if the alias points here."""
        await self._ensure_physical(dimension, model_id)
        if self.alias == self.index:
            return True
        targets = await self.alias_targets()
        if not targets:
            concrete = await self._call("exists", lambda: self.client.indices.exists(index=self.alias))
            if concrete:
                raise IndexMismatch(
                    f"{self.alias!r} is a concrete index from an older imgsearch, not an alias: "
                    "re-index into a new IMGSEARCH_INDEX or delete it"
                )
            await self.serve_this_index()
            return True
        return targets == [self.index]

    async def _ensure_physical(self, dimension: int, model_id: str) -> None:
        exists = await self._call(
            "exists", lambda: self.client.indices.exists(index=self.index), attempts=None
        )  # at start-up, wait for OpenSearch as long as it takes
        if not exists:
            body = mapping(dimension, model_id, replicas=self.replicas)
            try:
                await self._call(
                    "create",
                    lambda: self.client.indices.create(index=self.index, body=body),
                )
                log.info("created index %s (dim %d, model %s)", self.index, dimension, model_id)
                return
            except TransportError as exc:
                if "resource_already_exists_exception" not in str(exc):
                    raise
        meta = await self.meta()
        if meta.get("model_id") != model_id or int(meta.get("dimension", -1)) != dimension:
            raise IndexMismatch(
                f"index {self.index!r} holds vectors of model {meta.get('model_id')!r} "
                f"(dim {meta.get('dimension')}), but the embedder is {model_id!r} (dim {dimension}); "
                "use another IMGSEARCH_INDEX or re-index"
            )

    async def meta(self) -> dict[str, Any]:
        resp = await self._call("get_mapping", lambda: self.client.indices.get_mapping(index=self.index))
        for body in resp.values():
            return dict(body["mappings"].get("_meta", {}))
        return {}

    async def upsert(self, docs: Sequence[ImageDoc]) -> None:
        """Index (create or replace) documents, the image id being the document id."""
        if not docs:
            return
        body: list[dict[str, Any]] = []
        for d in docs:
            body.append({"index": {"_index": self.index, "_id": d.image_id}})
            body.append(d.source())

        async def bulk() -> Any:
            resp = await self.client.bulk(body=body)
            if resp.get("errors"):
                failed = [it["index"] for it in resp["items"] if it["index"].get("error")]
                statuses = {f.get("status") for f in failed}
                err = TransportError(max(statuses) if statuses else 500, "bulk item errors", failed[:3])
                raise err
            return resp

        # transient faults (an outage) are retried until they pass: a raise here would crash the
        # embedding agent, and faust acks a crashed agent's batch, so its images would be lost
        await self._call("bulk", bulk, attempts=None)

    async def update_clusters(self, assignments: dict[str, tuple[int, str]]) -> None:
        """Partial update of cluster id and centroid version (re-clustering); the search vectors and
        the index stay as they are, so searches keep working during a re-clustering."""
        body: list[dict[str, Any]] = []
        for image_id, (cluster, version) in assignments.items():
            body.append({"update": {"_index": self.index, "_id": image_id}})
            body.append({"doc": {"cluster_id": cluster, "centroid_version": version}})
        if not body:
            return

        async def bulk() -> Any:
            resp = await self.client.bulk(body=body)
            failed = [it["update"] for it in resp.get("items", []) if it["update"].get("error")]
            if failed:
                raise TransportError(max(f.get("status", 500) for f in failed), "bulk update errors", failed[:3])
            return resp

        await self._call("bulk-update", bulk)

    async def knn(
        self, vector: Sequence[float], k: int, *, attempts: int = 3, filter: dict[str, Any] | None = None
    ) -> list[Candidate]:
        """The ``k`` nearest documents; ``filter`` (an OpenSearch query) is applied inside the k-NN
        (lucene's efficient filtering: the k nearest among the documents that match it)."""
        query = knn_body(vector, k, filter, self.ef_search)
        resp = await self._call("knn", lambda: self.client.search(index=self.index, body=query), attempts)
        return _candidates(resp)

    async def knn_sources(
        self, vector: Sequence[float], sources: Sequence[tuple[int, dict[str, Any] | None]], *, attempts: int = 3
    ) -> list[list[Candidate]]:
        """Several k-NN searches with one vector, one (k, filter) per source, in one ``_msearch``
        (issue 15: the global candidates and the user's preferred styles' in one round trip)."""
        if len(sources) == 1:
            k, flt = sources[0]
            return [await self.knn(vector, k, attempts=attempts, filter=flt)]
        body: list[dict[str, Any]] = []
        for k, flt in sources:
            body.append({"index": self.index})
            body.append(knn_body(vector, k, flt, self.ef_search))

        async def msearch() -> Any:
            resp = await self.client.msearch(body=body)
            for item in resp["responses"]:
                if "error" in item:  # one failed search fails the whole answer (retried if transient)
                    raise TransportError(int(item.get("status", 500)), "msearch item error", item["error"])
            return resp

        resp = await self._call("msearch", msearch, attempts)
        return [_candidates(item) for item in resp["responses"]]

    async def vector_of(self, image_id: str) -> list[float] | None:
        """The stored search vector of an indexed image (similar_to), or None if it is not indexed."""
        try:
            resp = await self._call(
                "get", lambda: self.client.get(index=self.index, id=image_id, _source_includes="embedding"), 3
            )
        except NotFoundError:
            return None
        vec = resp.get("_source", {}).get("embedding")
        return None if vec is None else [float(x) for x in vec]

    async def scan(
        self, fields: Sequence[str], query: dict[str, Any] | None = None, batch: int = 500
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every document (id, selected source fields), read with a scroll."""
        body = {"query": query or {"match_all": {}}, "_source": list(fields)}
        async for hit in async_scan(self.client, query=body, index=self.index, size=batch, scroll="2m"):
            yield hit["_id"], hit["_source"]

    async def count_where(self, query: dict[str, Any]) -> int:
        resp = await self._call("count", lambda: self.client.count(index=self.index, body={"query": query}))
        return int(resp["count"])

    async def get(self, image_id: str) -> dict[str, Any] | None:
        try:
            resp = await self._call("get", lambda: self.client.get(index=self.index, id=image_id))
        except NotFoundError:
            return None
        return dict(resp["_source"])

    async def sources(
        self, image_ids: Sequence[str], fields: Sequence[str], *, attempts: int = 2, realtime: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Selected source fields of these documents, in one ``_mget`` (issue 15: the candidates' style
        and search vectors for the continuous affinity and MMR); missing documents are left out.
        ``realtime=False`` reads the refreshed segments only (enough for documents a search returned,
        and about a third cheaper here than a realtime read)."""
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            return {}
        resp = await self._call(
            "mget",
            lambda: self.client.mget(
                index=self.index,
                body={"ids": ids},
                _source_includes=",".join(fields),
                realtime="true" if realtime else "false",
            ),
            attempts,
        )
        return {d["_id"]: dict(d.get("_source") or {}) for d in resp.get("docs", []) if d.get("found")}

    async def metadata_filterable(self) -> bool:
        """True if the index maps ``metadata`` as ``flat_object`` (issue 15). An index created before
        keeps ``enabled: false`` there, where a metadata filter would silently match nothing; the query
        worker refuses filters on it instead. Only a True answer is kept (a re-index may swap the alias)."""
        if self._filterable:
            return True
        resp = await self._call("get_mapping", lambda: self.client.indices.get_mapping(index=self.index))
        types = [body["mappings"].get("properties", {}).get("metadata", {}).get("type") for body in resp.values()]
        self._filterable = bool(types) and all(t == "flat_object" for t in types)
        return self._filterable

    async def count(self) -> int:
        resp = await self._call("count", lambda: self.client.count(index=self.index))
        return int(resp["count"])

    async def refresh(self) -> None:
        await self._call("refresh", lambda: self.client.indices.refresh(index=self.index))

    async def searchable_count(self) -> int:
        """Documents searchable now (after a refresh); 0 while the index (or the alias) does not
        exist yet. Existence is asked with HEAD, whose 404 opensearch-py does not log: a refresh or
        count on a missing index would log a WARNING for every poll (the demo's ingest progress)."""
        exists = await self._call("exists", lambda: self.client.indices.exists(index=self.index))
        if not exists:
            return 0
        try:
            await self.refresh()
            return await self.count()
        except NotFoundError:  # deleted in between
            return 0

    async def delete_index(self) -> None:
        """Delete this index; for the alias, every model's physical index behind it (tests, demo reset)."""
        names = {self.index}
        if self.alias == self.index:
            names = set(await self.alias_targets()) | {f"{self.alias}.*"}
            if not names - {f"{self.alias}.*"}:
                names.add(self.alias)
        for name in names:
            with contextlib.suppress(NotFoundError):
                await self.client.indices.delete(index=name, ignore=404)  # already gone: fine, and not logged
