"""Issue 15, the retrieval side of a search: where the candidates come from, the k-NN filters, paging.

* Two-source candidates: the global k-NN top-N plus, for a user with a signal, a k-NN restricted to
  each of the user's top preferred style clusters (an efficient ``cluster_id`` filter inside the
  k-NN), all sent in one ``_msearch``; the union, de-duplicated, is what the blend ranks. The
  preferred clusters come from the ranker *before* the k-NN, asked while the query is embedded.
* Metadata filters (term / terms / range on ``metadata.<key>``) are put inside every k-NN of the
  search, so the k nearest are the k nearest that match (not k hits filtered down afterwards).
* Paging: a request's full ranking (up to ``page * k`` hits) is kept per ``ranking_id`` for a while;
  later pages of the same ranking are sliced from it, so neither a profile change (a click on page 1)
  nor new documents reorder pages 2.. of a ranking the user is reading.
* ``search_after``: a response's ``cursor`` names its ranking, the next offset and its last hit; the
  next page starts just after that hit. Where the ranking is still kept this is the same page as
  ``page + 1``; where it is not (expired, or another query worker took the user's partition) the
  ranking is made afresh and continues after the cursor's last hit wherever it now stands, so a
  small reordering neither repeats nor skips the hits at the page boundary.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from imgsearch.config import Settings
from imgsearch.domain.blend import Candidate
from imgsearch.ranker.base import RankerResult
from schemas.events import MAX_RESULT_WINDOW, MetadataFilter, PageCursor, SearchHit

MAX_CANDIDATES = 10_000  # OpenSearch's default index.max_result_window


def ranking_depth(window: int, k: int) -> int:
    """How deep a request's ranking is made: its ``window`` (the hits up to the end of the page asked
    for), and at least 5 pages (at no extra k-NN cost at k = 10): later pages are sliced from it."""
    return min(MAX_RESULT_WINDOW, max(window, 5 * k))


def global_candidates(settings: Settings, window: int, k: int) -> int:
    """The global k-NN's N for a request whose page ends at ``window``: the query worker's, and what
    the benchmarks use to rank as it does (k = 10, page 1: ``window = 10``)."""
    depth = ranking_depth(window, k)
    return min(MAX_CANDIDATES, max(window * settings.candidate_multiplier, settings.min_candidates, depth))


def probe_size(n: int) -> int:
    """What the global k-NN asks for to take ``n`` candidates: one more, so that a full answer says the
    index holds more than ``n`` (a page can promise more), up to what OpenSearch returns at all."""
    return min(n + 1, MAX_CANDIDATES)


def has_more(ranked: int, start: int, k: int, complete: bool) -> bool:
    """Whether a page of ``k`` hits at ``start`` of a ranking of ``ranked`` hits has a next page: the
    ranking goes on past it, or it is not ``complete`` (a deeper one would add hits); and the next page
    ends within MAX_RESULT_WINDOW (a request for it would be refused otherwise)."""
    if start + 2 * k > MAX_RESULT_WINDOW:
        return False
    return ranked > start + k or not complete


def preferred_clusters(result: RankerResult, n: int) -> list[int]:
    """The user's ``n`` highest-scored clusters with a positive score and no demotion (best first)."""
    if n <= 0 or not result.has_signal:
        return []
    liked = [
        (score, c) for c, score in result.scores.items() if score > 0 and c >= 0 and result.demotions.get(c, 0.0) <= 0.0
    ]
    liked.sort(key=lambda sc: (-sc[0], sc[1]))
    return [c for _, c in liked[:n]]


def metadata_filter(filters: Sequence[MetadataFilter]) -> dict[str, Any] | None:
    """The OpenSearch query of a request's metadata filters (all must hold), or None."""
    if not filters:
        return None
    clauses: list[dict[str, Any]] = []
    for f in filters:
        name = f"metadata.{f.field}"
        if f.term is not None:
            clauses.append({"term": {name: f.term}})
        elif f.terms is not None:
            clauses.append({"terms": {name: list(f.terms)}})
        else:
            bounds = {op: v for op, v in (("gt", f.gt), ("gte", f.gte), ("lt", f.lt), ("lte", f.lte)) if v is not None}
            clauses.append({"range": {name: bounds}})
    return {"bool": {"filter": clauses}}


def style_filter(cluster_id: int, base: dict[str, Any] | None) -> dict[str, Any]:
    """One preferred style, with the request's own filters if any."""
    term: dict[str, Any] = {"term": {"cluster_id": cluster_id}}
    if base is None:
        return {"bool": {"filter": [term]}}
    return {"bool": {"filter": [term, base]}}


def union(sources: Sequence[Sequence[Candidate]]) -> tuple[list[Candidate], int]:
    """The candidates of every source once (the first source wins a duplicate: the scores are the same
    cosine of the same vector), and how many came only from the later (style) sources."""
    seen: set[str] = set()
    out: list[Candidate] = []
    extra = 0
    for i, source in enumerate(sources):
        for c in source:
            if c.image_id in seen:
                continue
            seen.add(c.image_id)
            out.append(c)
            extra += i > 0
    return out, extra


class KeptRanking(BaseModel):
    """What a kept ranking holds: every hit ranked (as deep as the request's ranking went) and what its
    reply said about them."""

    hits: list[SearchHit]
    complete: bool  # every matching document was a candidate: no deeper page can add one
    personalized: bool
    ranker: str
    notes: list[str]


class Rankings:
    """Recent rankings by ``(user id, ranking id)``: an LRU with a time to live. In memory of the query
    worker that answered page 1; a user's requests are keyed by user id, so they reach that worker
    while the partition assignment holds (after a rebalance or restart a ranking is recomputed).

    Each ranking is kept as its JSON bytes, one object the garbage collector does not track: kept as
    models, 2000 rankings of 50 hits were ~440k tracked objects, and one full collection of them took
    ~220 ms, a stall of every request in flight (docs/benchmarks.md, Speed). A page from a kept ranking
    decodes it again (~0.2 ms for 50 hits)."""

    def __init__(self, max_entries: int, ttl_s: float, clock: Any = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    def put(self, user_id: str, ranking_id: str, value: KeptRanking) -> None:
        if self.max_entries <= 0:
            return
        key = (user_id, ranking_id)
        self._items[key] = (self._clock() + self.ttl_s, value.model_dump_json().encode())
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def get(self, user_id: str, ranking_id: str) -> KeptRanking | None:
        key = (user_id, ranking_id)
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self._clock() > expires:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return KeptRanking.model_validate_json(value)

    def __len__(self) -> int:
        return len(self._items)


def slice_of(hits: Sequence[SearchHit], start: int, k: int) -> list[SearchHit]:
    """``k`` hits from position ``start`` (0-based), ranks counted over the whole ranking."""
    return [h.model_copy(update={"rank": start + i + 1}) for i, h in enumerate(hits[start : start + k])]


def resume_at(hits: Sequence[SearchHit], after: PageCursor) -> int | None:
    """Where the page after ``after`` starts in ``hits``: just after the cursor's last hit, or None
    when the ranking no longer holds that hit (hidden since, deleted, or moved beyond its depth)."""
    for i, h in enumerate(hits):
        if h.image_id == after.image_id:
            return i + 1
    return None


def cursor_after(ranking_id: str, start: int, page: Sequence[SearchHit]) -> str:
    """The ``search_after`` token for the page after ``page`` (which starts at ``start``)."""
    return PageCursor(ranking_id=ranking_id, offset=start + len(page), image_id=page[-1].image_id).encode()


_OPS = (">=", "<=", ">", "<", "=")
_RANGE = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}


def parse_filter(text: str) -> MetadataFilter:
    """A filter from the command line / a query string: ``key=value``, ``key=a|b`` (one of),
    ``key>=v``, ``key>v``, ``key<=v``, ``key<v``; a range from two: give ``--filter`` twice."""
    for op in _OPS:
        key, sep, value = text.partition(op)
        if sep and key and not any(o in key for o in _OPS):
            if op == "=":
                values = value.split("|")
                if len(values) > 1:
                    return MetadataFilter(field=key.strip(), terms=values)
                return MetadataFilter(field=key.strip(), term=value)
            return MetadataFilter.model_validate({"field": key.strip(), _RANGE[op]: value})
    raise ValueError(f"a filter is key=value, key=a|b, key>=v, key>v, key<=v or key<v; got {text!r}")
