"""Role 3, the query worker: answers search requests over request/reply topics.

It also owns the per-user profile table (changelog-backed), fed by personalization events. Both
topics are keyed by user id with the same partition count, so faust assigns them co-partitioned
and a user's profile is always local to the worker that serves that user's searches.

search request → query embedding → k-NN candidates → personal scores per candidate cluster →
blended ranking → reply on the client's reply topic, keyed by request id. Every request gets a
reply: an error reply when the query is invalid, the request has expired or the index is down; a
ranker failure falls back to pure relevance and says so in the reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import faust
import numpy as np
from pydantic import TypeAdapter

from imgsearch import metrics
from imgsearch.config import Settings
from imgsearch.connections import kafka_security
from imgsearch.domain.blend import Candidate, Ranked, blend
from imgsearch.domain.centroids import CentroidModel
from imgsearch.domain.mmr import mmr
from imgsearch.domain.user_profiles import UserProfiles
from imgsearch.embedding.base import Embedder
from imgsearch.images import ImageRejected, decode
from imgsearch.index.opensearch import OpenSearchIndex
from imgsearch.kafka.deadlines import KnownTopics
from imgsearch.kafka.model_topics import CentroidWatcher, RankerModelWatcher
from imgsearch.ranker.base import PersonalRanker, RankerResult
from imgsearch.ranker.local import LocalProfileRanker
from schemas.events import (
    ErrorInfo,
    ForgetUser,
    Id,
    InvalidEvent,
    PageCursor,
    PersonalizationEvent,
    SearchHit,
    SearchRequest,
    SearchResponse,
    event_type_of,
)
from schemas.reasons import Reason
from schemas.topics import Topics
from streams import retrieval
from streams.common import DeadLetters, Offload, TextBatcher, json_schema, make_app, topic, valid
from streams.interactions import future_skew_s
from streams.ports import ModelSource, ReplySender, SearchIndex

log = logging.getLogger(__name__)
ROLE = "query"
RANKER_TIMEOUT_S = 0.5
# the single answering agent must never wait long on one reply (faust's producer would wait up to its
# 1,200 s request timeout for a topic that does not exist): the metadata check and the send are bounded
REPLY_CHECK_TIMEOUT_S = 2.0
REPLY_SEND_TIMEOUT_S = 5.0
STYLE_CACHE = 4096  # interacted images' style vectors kept by the learn path (issue 15)


_ID = TypeAdapter(Id)
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def _reply_allowed(topic: str, topics: Topics) -> bool:
    """Replies go only to reply topics: a request must not make the worker write into images.new or
    any other topic it can write to."""
    prefix = topics.reply_prefix()
    return topic.startswith(prefix) and len(topic) > len(prefix)


def _reply_target(payload: bytes | None, topics: Topics) -> tuple[str, str, str] | None:
    """Best effort (request id, user id, reply topic) from an invalid request, to send it an error.
    Only ids a response can carry and a legal topic name: an error reply that cannot be built or
    sent would crash the agent or stall it (the producer retries an illegal topic name forever)."""
    try:
        raw = json.loads(payload or b"")
        rid, uid, rt = raw.get("request_id"), raw.get("user_id"), raw.get("reply_topic")
        _ID.validate_python(rid)
        _ID.validate_python(uid)
        if isinstance(rt, str) and _TOPIC_NAME.fullmatch(rt) and _reply_allowed(rt, topics):
            return rid, uid, rt
    except (ValueError, AttributeError):  # pydantic's ValidationError is a ValueError
        pass
    return None


class KafkaReplies:
    """The reply port on Kafka: sends through the faust app's producer; whether a reply topic exists is
    asked of the broker's metadata by an aiokafka client of its own (made on first use), never by
    creating the topic."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._metadata_client: Any = None
        self._known: KnownTopics | None = None

    async def exists(self, topic: str) -> bool:
        if self._known is None:
            from aiokafka.client import AIOKafkaClient

            client = AIOKafkaClient(
                **kafka_security(self._settings),
                bootstrap_servers=self._settings.kafka_bootstrap,
                client_id="imgsearch-query-meta",
            )
            try:
                await asyncio.wait_for(client.bootstrap(), REPLY_CHECK_TIMEOUT_S * 5)
            except BaseException:
                await client.close()
                raise
            self._metadata_client = client
            self._known = KnownTopics(client)
        return await self._known.exists(topic, REPLY_CHECK_TIMEOUT_S)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        await self._app.topic(topic, key_type=bytes, value_type=bytes).send(key=key, value=value)

    async def close(self) -> None:
        if self._metadata_client is not None:
            await self._metadata_client.close()
            self._metadata_client = None
            self._known = None


class QueryService:
    """The query worker's handler, behind its ports: ``index`` (k-NN and stored vectors),
    ``ranker`` (personal scores), ``profiles`` (learnt from personalization events; the local ranker
    reads the same), ``centroids`` (the current cluster model), ``replies`` (reply topics), ``dlq``
    (dead letters)."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        index: SearchIndex,
        ranker: PersonalRanker,
        profiles: UserProfiles,
        centroids: ModelSource[CentroidModel],
        replies: ReplySender,
        dlq: DeadLetters,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index = index
        self.ranker = ranker
        self.profiles = profiles
        self.centroids = centroids
        self.replies = replies
        self.dlq = dlq
        self.offload = Offload()
        self.texts = TextBatcher(self.embedder.embed_texts, self.offload)
        self.rankings = retrieval.Rankings(settings.ranking_cache_entries, settings.ranking_cache_ttl_s)
        self._styles: OrderedDict[str, tuple[list[float], str] | None] = OrderedDict()  # image id -> (style, model)

    async def close(self) -> None:
        """Release the clients that hold sockets (a clean stop: no 'Unclosed client session')."""
        await self.replies.close()
        await self.index.close()

    def _current(self) -> CentroidModel | None:
        return self.centroids.current

    async def style_of(self, image_id: str) -> tuple[list[float], str] | None:
        """Issue 15: the indexed style vector (and style model) of an interacted image, for the
        continuous affinity; None if it has none or the index does not answer (the event then still
        counts for the cluster profile). A small LRU: an image's style vector never changes."""
        if image_id in self._styles:
            self._styles.move_to_end(image_id)
            return self._styles[image_id]
        try:
            doc = (await self.index.sources([image_id], ["style", "style_model_id"])).get(image_id)
        except Exception as exc:
            log.warning("style vector of %s not read (%s): learnt for its cluster only", image_id, exc)
            return None
        found = (list(doc["style"]), str(doc.get("style_model_id", ""))) if doc and doc.get("style") else None
        self._styles[image_id] = found
        while len(self._styles) > STYLE_CACHE:
            self._styles.popitem(last=False)
        return found

    def learn(
        self,
        ev: PersonalizationEvent,
        style: tuple[list[float], str] | None = None,
        source: tuple[int, int] | None = None,
    ) -> bool:
        return self.profiles.learn(ev, style, source)

    def forget(self, request: ForgetUser) -> bool:
        """Delete the user's profile (issue 14 item 15). faust writes a tombstone (the key with no
        value) to the table's compacted changelog, so the profile stays gone when a worker restores
        the table after a restart, and compaction erases the earlier records. True if there was one."""
        existed = self.profiles.forget(request.user_id)
        log.info("forget request %s: profile %s", request.event_id, "deleted" if existed else "absent")
        return existed

    async def handle_personalization(self, event: Any) -> None:
        """One event of the personalization topic: a ForgetUser request, or an interaction mapped to
        its cluster, learnt into the user's profile; a bad event is dead-lettered, the stream goes on."""
        try:
            if event_type_of(event.message.value) == "user.forget":
                if (request := await valid(event, ForgetUser, self.dlq)) is not None:
                    self.forget(request)
                return
            ev = await valid(event, PersonalizationEvent, self.dlq)
            if ev is None:
                return
            ahead = future_skew_s(ev.timestamp, self.settings.max_clock_skew_s)
            if ahead is not None:  # the mapper refuses these already; one written here directly is refused too
                await self.dlq.from_event(
                    event, Reason.TIMESTAMP_IN_FUTURE, f"timestamp {ev.timestamp.isoformat()} is {ahead:.0f} s ahead"
                )
                return
            # issue 15: the interacted image's style vector, for the continuous affinity only (the
            # default cluster mode makes no extra OpenSearch read per interaction)
            continuous = self.settings.ranker == "local" and self.settings.affinity_mode == "continuous"
            source = (int(event.message.partition), int(event.message.offset))
            self.learn(ev, await self.style_of(ev.image_id) if continuous else None, source)
        except Exception as exc:  # one bad event is dead-lettered; the stream goes on
            log.exception("personalization event failed")
            await self.dlq.failed(event, exc)

    async def _embed_query(self, req: SearchRequest, stored: list[float] | None = None) -> np.ndarray:
        """The query's search vector: the mean of its parts (a text, an image, a ``similar_to``
        image's stored vector), unit length. The text goes through the batcher (issue 16: shared with
        overlapping requests), an image is decoded and embedded on the offload thread."""
        vectors = []
        if stored is not None:  # similar_to: the indexed image's own search vector
            vectors.append(np.asarray(stored, dtype=np.float32))
        if req.text is not None:
            vectors.append(await self.texts.embed(req.text))
        if req.image_b64 is not None:
            vectors.append(await self.offload.run(self._embed_image, req))
        v = np.mean(vectors, axis=0)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def _embed_image(self, req: SearchRequest) -> np.ndarray:
        """The query image's vector (base64, decode and embedding all off the event loop)."""
        img = decode(
            req.image_bytes() or b"",
            self.settings.max_image_bytes,
            self.settings.max_image_pixels,
            max_side=self.settings.decode_max_side,
        )
        return self.embedder.embed_images([img])[0]

    async def _preferred_clusters(self, user_id: str) -> list[int]:
        """Issue 15: the user's best style clusters, asked of the ranker over every cluster of the
        current model (run while the query is embedded, so it adds no latency unless the ranker is
        slower than the embedding); none without a model, a signal or an answer in time."""
        model = self._current()
        if model is None or self.settings.style_sources <= 0:
            return []
        try:
            result = await asyncio.wait_for(self.ranker.rank(user_id, list(range(model.k))), RANKER_TIMEOUT_S)
        except Exception as exc:
            log.debug("no preferred clusters for %s: %s", user_id, exc)
            return []
        return retrieval.preferred_clusters(result, self.settings.style_sources)

    async def answer(self, req: SearchRequest, event: Any = None) -> SearchResponse:
        """The response to a valid request; a refused query image (``event`` given) is also
        dead-lettered, like every other invalid input."""
        timings: dict[str, float] = {}
        notes: list[str] = []
        weight = (
            self.settings.personalization_weight if req.personalization_weight is None else req.personalization_weight
        )
        after = req.after()  # search_after: a cursor names its ranking and where its page ended
        asked = req.ranking_id or (after.ranking_id if after else None)
        ranking_id = asked or req.request_id
        start = after.offset if after else (req.page - 1) * req.k
        base: dict[str, Any] = {
            "request_id": req.request_id,
            "user_id": req.user_id,
            "personalization_weight": weight,
            "page": start // req.k + 1,
            "ranking_id": ranking_id,
        }
        kept = self.rankings.get(req.user_id, asked) if asked else None
        if kept is not None and (len(kept.hits) >= start + req.k or kept.complete):
            # a later page of a ranking the user is reading: the same order, whatever changed since
            return self._page(
                base,
                kept.hits,
                start,
                req,
                after,
                personalized=kept.personalized,
                ranker=kept.ranker,
                notes=list(kept.notes),
                complete=kept.complete,
                timings_ms={"cached": 0.0},
            )
        if asked and kept is None:
            notes.append("ranking_id unknown or expired; ranked afresh (earlier pages may differ)")
        t0 = time.perf_counter()
        stored = None
        if req.similar_to is not None:
            try:
                stored = await self.index.vector_of(req.similar_to)
            except Exception as exc:
                return SearchResponse(
                    **base,
                    error=ErrorInfo(code=Reason.INDEX_UNAVAILABLE, message=f"the vector index did not answer: {exc}"),
                )
            if stored is None:
                return SearchResponse(
                    **base,
                    error=ErrorInfo(
                        code=Reason.UNKNOWN_IMAGE, message=f"similar_to: {req.similar_to!r} is not indexed"
                    ),
                )
        preferred = (
            asyncio.ensure_future(self._preferred_clusters(req.user_id))
            if weight > 0 and self.settings.style_sources > 0
            else None
        )
        try:
            vector = await self._embed_query(req, stored)
        except ImageRejected as exc:
            if preferred is not None:
                preferred.cancel()
            if event is not None:
                await self.dlq.from_event(event, exc.code, str(exc))
            return SearchResponse(**base, error=ErrorInfo(code=exc.code, message=str(exc)))
        styles = await preferred if preferred is not None else []
        t1 = time.perf_counter()
        timings["embed"] = (t1 - t0) * 1000
        # a cursor's hit may have moved down in a fresh ranking: rank one page deeper than its offset
        window = start + req.k * (2 if after else 1)
        depth = retrieval.ranking_depth(window, req.k)
        n = retrieval.global_candidates(self.settings, window, req.k)
        probe = retrieval.probe_size(n)  # one more than N: whether the index holds more than N
        if req.filters:
            try:
                filterable = await self.index.metadata_filterable()
            except Exception as exc:
                return SearchResponse(
                    **base,
                    error=ErrorInfo(code=Reason.INDEX_UNAVAILABLE, message=f"the vector index did not answer: {exc}"),
                )
            if not filterable:
                return SearchResponse(
                    **base,
                    error=ErrorInfo(
                        code=Reason.FILTERS_UNSUPPORTED,
                        message="this index was created before metadata filters (its metadata is not indexed): "
                        "re-index into a new IMGSEARCH_INDEX to filter (docs/operations.md)",
                    ),
                )
        flt = retrieval.metadata_filter(req.filters)
        sources: list[tuple[int, dict[str, Any] | None]] = [(probe, flt)]
        sources += [(self.settings.style_candidates, retrieval.style_filter(c, flt)) for c in styles]
        try:
            found = await self.index.knn_sources(vector.tolist(), sources)
        except Exception as exc:
            log.error("k-NN failed for %s: %s", req.request_id, exc)
            return SearchResponse(
                **base,
                error=ErrorInfo(code=Reason.INDEX_UNAVAILABLE, message=f"the vector index did not answer: {exc}"),
            )
        exhausted = len(found[0]) < probe  # every matching document is a candidate
        found[0] = found[0][:n]
        candidates, extra = retrieval.union(found)
        if req.similar_to is not None:
            candidates = [c for c in candidates if c.image_id != req.similar_to]
        if styles:
            notes.append(f"{extra} more candidates from the preferred styles {styles}")
        t2 = time.perf_counter()
        timings["knn"] = (t2 - t1) * 1000
        result = RankerResult({}, False, "none")
        if weight > 0 and candidates:
            clusters = sorted({c.cluster_id for c in candidates if c.cluster_id >= 0})
            try:
                result = await asyncio.wait_for(self.ranker.rank(req.user_id, clusters), RANKER_TIMEOUT_S)
            except Exception as exc:
                notes.append(f"personalization unavailable ({type(exc).__name__}); ranked by relevance only")
            if not result.has_feedback and not notes:
                notes.append("no interactions for this user yet; ranked by relevance only")
        if result.hidden:
            candidates = [c for c in candidates if c.image_id not in result.hidden]
        # issue 15: the candidates' indexed style vectors (continuous affinity) and search vectors (MMR),
        # in one _mget for both steps
        model = self._affinity_model(req.user_id, candidates, result)
        lam = self.settings.mmr_lambda if req.mmr_lambda is None else req.mmr_lambda
        mmr_on = lam < 1.0 and len(candidates) > 1
        fields = (["style", "style_model_id"] if model else []) + (["embedding"] if mmr_on else [])
        docs = await self._candidate_sources(candidates, fields)
        if model:
            result = self._style_affinity(req.user_id, model, docs, result, notes)
        ranked = blend(
            candidates,
            result.scores,
            weight if result.has_feedback else 0.0,
            depth,
            req.max_per_cluster,
            self.settings.blend_mode,
            demotions=result.demotions,
            item_scores=result.item_scores,
            item_demotions=result.item_demotions,
        )
        if mmr_on:
            ranked = self._diversify(req, lam, candidates, result, weight, ranked, docs, notes)  # issue 15: MMR
        timings["rank"] = (time.perf_counter() - t2) * 1000
        hits = [
            SearchHit(
                image_id=r.candidate.image_id,
                rank=i + 1,
                cluster_id=r.candidate.cluster_id,
                knn_score=r.candidate.knn_score,
                personal_score=r.personal_score,
                blended_score=r.blended_score,
                metadata=dict(r.candidate.metadata or {}),
                drivers=result.drivers.get(r.candidate.cluster_id, []),
            )
            for i, r in enumerate(ranked)
        ]
        # no deeper ranking can add a hit: the index had no more and the blend ranked every candidate
        complete = exhausted and (len(ranked) < depth or len(ranked) >= len(candidates))
        if kept is not None:  # a deeper page than was kept: the kept order first, then the new ranking's rest
            known = {h.image_id for h in kept.hits}
            hits = list(kept.hits) + [h for h in hits if h.image_id not in known]
        self.rankings.put(
            req.user_id,
            ranking_id,
            retrieval.KeptRanking(
                hits=hits,
                complete=complete,
                personalized=result.has_feedback,
                ranker=result.ranker,
                notes=notes,
            ),
        )
        return self._page(
            base, hits, start, req, after, personalized=result.has_feedback, ranker=result.ranker, notes=notes,
            complete=complete, timings_ms=timings,
        )  # fmt: skip

    @staticmethod
    def _page(
        base: dict[str, Any],
        hits: list[SearchHit],
        start: int,
        req: SearchRequest,
        after: PageCursor | None,
        complete: bool,
        **fields: Any,
    ) -> SearchResponse:
        """The page of ``hits`` a request asked for: from ``start``, or just after a cursor's last hit
        where the ranking still holds it; with the cursor of the page after it. There is more when the
        ranking goes on past this page or, at its end, when it is not ``complete`` (a deeper ranking
        would add hits), and the next page is one a request may ask for."""
        if after is not None:
            resumed = retrieval.resume_at(hits, after)
            if resumed is None:
                fields["notes"] = [
                    *fields["notes"],
                    "search_after: its last hit is no longer ranked; went on at its offset",
                ]
            else:
                start = resumed
        page = retrieval.slice_of(hits, start, req.k)
        more = retrieval.has_more(len(hits), start, req.k, complete)
        return SearchResponse(
            **{**base, "page": start // req.k + 1},
            **fields,
            hits=page,
            has_more=more,
            cursor=retrieval.cursor_after(base["ranking_id"], start, page) if more and page else None,
        )

    def _affinity_model(self, user_id: str, candidates: list[Candidate], result: RankerResult) -> str:
        """The style model of the user's interest medoids when continuous affinity applies (a local
        ranker, IMGSEARCH_AFFINITY=continuous, a user with feedback and medoids), else ''."""
        ranker = self.ranker
        if not isinstance(ranker, LocalProfileRanker) or not candidates or not result.has_feedback:
            return ""
        return ranker.style_model(user_id)

    async def _candidate_sources(
        self, candidates: list[Candidate], fields: list[str]
    ) -> dict[str, dict[str, Any]] | Exception:
        """These source fields of the candidates in one non-realtime ``_mget`` ({} without fields);
        the exception if the index did not answer (each step then says what it could not do)."""
        if not fields:
            return {}
        try:
            return await self.index.sources([c.image_id for c in candidates], fields, realtime=False)
        except Exception as exc:
            return exc

    def _style_affinity(
        self,
        user_id: str,
        model: str,
        docs: dict[str, dict[str, Any]] | Exception,
        result: RankerResult,
        notes: list[str],
    ) -> RankerResult:
        """Issue 15, continuous style affinity: the candidates' indexed style vectors of the user's
        medoids' style ``model`` are scored against them; those scores replace the cluster scores in
        the blend."""
        if isinstance(docs, Exception):
            notes.append(f"style vectors unavailable ({type(docs).__name__}); ranked by style clusters")
            return result
        assert isinstance(self.ranker, LocalProfileRanker)  # _affinity_model() gave a model
        styles = {i: d["style"] for i, d in docs.items() if d.get("style") and d.get("style_model_id") == model}
        scores, down = self.ranker.style_affinity(user_id, styles)
        if scores is None and not down:
            return result
        return replace(
            result,
            item_scores=scores,
            item_demotions=down,
            has_signal=result.has_signal or scores is not None,
            ranker=f"{result.ranker}+styles",
        )

    def _diversify(
        self,
        req: SearchRequest,
        lam: float,
        candidates: list[Candidate],
        result: RankerResult,
        weight: float,
        ranked: list[Ranked],
        docs: dict[str, dict[str, Any]] | Exception,
        notes: list[str],
    ) -> list[Ranked]:
        """Issue 15, MMR (λ < 1: the request's, else IMGSEARCH_MMR_LAMBDA): the whole blended candidate
        list is re-selected by maximal marginal relevance over the candidates' search vectors. The
        per-style cap applies inside the selection."""
        if isinstance(docs, Exception):
            notes.append(f"search vectors unavailable ({type(docs).__name__}); not diversified")
            return ranked
        pool = blend(
            candidates,
            result.scores,
            weight if result.has_feedback else 0.0,
            len(candidates),
            None,
            self.settings.blend_mode,
            demotions=result.demotions,
            item_scores=result.item_scores,
            item_demotions=result.item_demotions,
        )
        vectors = {i: d["embedding"] for i, d in docs.items() if d.get("embedding")}
        # as deep as the blended ranking (later pages of a ranking_id are sliced from it)
        return mmr(pool, vectors, lam, max(len(ranked), req.k), req.max_per_cluster)

    async def reply(self, reply_topic: str, response: SearchResponse, event: Any = None) -> bool:
        """Send the response, bounded in time; a reply topic that does not exist is refused without
        being created, and that request (``event``) is dead-lettered. False if it was not sent."""
        why: tuple[Reason, str] | None = None
        try:
            exists = await self.replies.exists(reply_topic)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no answer about the topic is no refusal: the bounded send decides
            log.warning("could not check reply topic %s (%s: %s)", reply_topic, type(exc).__name__, exc)
            exists = True
        try:
            if not exists:
                why = (Reason.REPLY_TOPIC_UNKNOWN, f"reply topic {reply_topic} does not exist; replies create no topic")
            else:
                await asyncio.wait_for(
                    self.replies.send(reply_topic, response.request_id.encode(), response.to_bytes()),
                    REPLY_SEND_TIMEOUT_S,
                )
        except TimeoutError:
            why = (
                Reason.REPLY_TIMEOUT,
                f"the reply to {reply_topic} could not be sent within {REPLY_SEND_TIMEOUT_S:g}s",
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            why = (Reason.REPLY_FAILED, f"the reply to {reply_topic} failed: {type(exc).__name__}: {exc}")
        if why is not None:
            log.warning("search %s not answered: %s", response.request_id, why[1])
            if event is not None:
                await self.dlq.from_event(event, *why)
            return False
        metrics.observe_search(ROLE, response)
        return True

    async def handle(self, event: Any) -> None:
        """One request, whatever happens: an unexpected error dead-letters it (``processing_failed``)
        and answers it with that error when its reply topic can be read; the stream goes on."""
        try:
            await self._handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "search request at %s[%s]@%s failed", event.message.topic, event.message.partition, event.message.offset
            )
            why = await self.dlq.failed(event, exc)
            target = _reply_target(event.message.value, self.settings.topics)
            if target:
                rid, uid, rt = target
                await self.reply(
                    rt,
                    SearchResponse(
                        request_id=rid, user_id=uid, error=ErrorInfo(code=Reason.PROCESSING_FAILED, message=why)
                    ),
                )

    async def _handle(self, event: Any) -> None:

        async def answer_invalid(exc: InvalidEvent) -> None:  # an error reply, if its reply topic can be read
            target = _reply_target(event.message.value, self.settings.topics)
            if target:
                rid, uid, rt = target
                await self.reply(
                    rt,
                    SearchResponse(request_id=rid, user_id=uid, error=ErrorInfo(code=exc.code, message=exc.message)),
                )

        req = await valid(event, SearchRequest, self.dlq, answer_invalid)
        if req is None:
            return
        if not _reply_allowed(req.reply_topic, self.settings.topics):
            await self.dlq.from_event(
                event,
                Reason.REPLY_TOPIC_NOT_ALLOWED,
                f"replies go only to topics starting with {self.settings.topics.reply_prefix()!r}",
            )
            return
        age_ms = (datetime.now(UTC) - req.sent_at).total_seconds() * 1000
        if age_ms > req.timeout_ms:
            response = SearchResponse(
                request_id=req.request_id,
                user_id=req.user_id,
                error=ErrorInfo(
                    code=Reason.EXPIRED,
                    message=f"the request waited {age_ms:.0f} ms, over its {req.timeout_ms} ms",
                ),
            )
        else:
            response = await self.answer(req, event)
        await self.reply(req.reply_topic, response, event)


def build(
    settings: Settings,
    embedder: Embedder,
    ranker: PersonalRanker | None = None,
) -> tuple[faust.App, QueryService]:
    app = make_app(ROLE, settings)
    # searches go to this worker's own model's index: query vectors and indexed vectors always match
    index = OpenSearchIndex(settings.opensearch_url, settings.index_name, model_id=embedder.model_id, settings=settings)
    centroids = CentroidWatcher(settings)
    ranker_model = RankerModelWatcher(settings)
    profiles = UserProfiles(
        app.Table("profiles", schema=json_schema(), partitions=settings.partitions),
        lambda: centroids.current,
        settings.profile_half_life_s,
        # the recent event ids of each partition (a second copy of an event counts once; issue 16)
        event_ids=app.Table("event-ids", schema=json_schema(), partitions=settings.partitions),
        session_decay=settings.session_decay,
        affinity_merge_sim=settings.affinity_merge_sim,
    )
    service = QueryService(
        settings,
        embedder,
        index,
        ranker or LocalProfileRanker.from_settings(settings, profiles.get, lambda: ranker_model.current),
        profiles,
        centroids,
        KafkaReplies(app, settings),
        DeadLetters(topic(app, settings.topics.dead_letters(), settings), ROLE),
    )
    requests = topic(app, settings.topics.search_requests(), settings)

    @app.task
    async def watch_centroids() -> None:
        await centroids.run()

    async def close_clients(app: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await service.close()

    app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]  # faust's stub wants a sync callable

    @app.task
    async def watch_ranker_model() -> None:
        await ranker_model.run()

    events = topic(app, settings.topics.personalization_events(), settings)

    @app.agent(events, name="learn-profiles")
    async def learn_profiles(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await service.handle_personalization(event)

    # several requests in flight (settings.query_concurrency actors on one stream): faust acks each
    # event when its actor is done and commits only the offsets below the oldest one still in flight
    @app.agent(requests, name="answer-searches", concurrency=settings.query_concurrency)
    async def answer_searches(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await service.handle(event)

    return app, service
