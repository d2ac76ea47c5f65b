"""The query worker's handler (streams.query.QueryService) on in-memory fakes of its ports: no
Kafka, no OpenSearch. Every request gets a reply or a dead letter: expiry, reply-topic refusal,
invalid requests, the index down; a ranker failure falls back to relevance; profiles learnt on an
earlier cluster model are remapped onto the current one."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from imgsearch.config import Settings
from imgsearch.domain.blend import Candidate
from imgsearch.domain.centroids import CentroidModel
from imgsearch.domain.event_ids import short_id
from imgsearch.domain.user_profiles import UserProfiles
from imgsearch.embedding.hashing import HashEmbedder
from imgsearch.ranker.base import PersonalRanker
from imgsearch.ranker.local import LocalProfileRanker
from schemas.events import EventType, ForgetUser, PersonalizationEvent, SearchRequest, SearchResponse, utcnow
from streams.ports import FixedModel
from streams.query import QueryService
from tests.support.fakes import Letters, Replies, SearchIndex, event

REPLY = "imgsearch.search.replies.c1"
# two styles, three candidates each; cosine order is the list's order (style 0 first)
CANDIDATES = [Candidate(f"s{c}-{i}", 0.9 - 0.01 * (3 * c + i), c) for c in (0, 1) for i in range(3)]


class Wired:
    """A QueryService on fakes, and what it wrote."""

    def __init__(
        self,
        tmp_path: Any,
        *,
        embedder: Any = None,
        index: SearchIndex | None = None,
        ranker: PersonalRanker | None = None,
        model: CentroidModel | None = None,
        replies: Replies | None = None,
        **settings: Any,
    ) -> None:
        self.settings = Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1", **settings)
        self.index = index if index is not None else SearchIndex(CANDIDATES)
        self.centroids = FixedModel(model)
        self.store: dict[str, Any] = {}
        self.event_ids: dict[str, Any] = {}
        self.profiles = UserProfiles(
            self.store,
            lambda: self.centroids.current,
            self.settings.profile_half_life_s,
            event_ids=self.event_ids,
            clock=lambda: 1000.0,
        )
        self.replies = replies if replies is not None else Replies([REPLY])
        self.dead = Letters("query")
        self.service = QueryService(
            self.settings,
            embedder or HashEmbedder(),
            self.index,
            ranker or LocalProfileRanker.from_settings(self.settings, self.profiles.get),
            self.profiles,
            self.centroids,
            self.replies,
            self.dead.dlq,
        )

    def handle(self, value: bytes | None, offset: int = 0) -> None:
        asyncio.run(self.service.handle(event(value, offset, topic="t.search.requests", key=b"u")))

    def learn(self, cluster: int, *, version: str = "none", n: int = 3, user: str = "u") -> None:
        for i in range(n):
            ev = PersonalizationEvent(
                event_id=f"e-{user}-{cluster}-{version}-{i}",
                user_id=user,
                cluster_id=cluster,
                image_id=f"liked-{i}",
                event_type=EventType.FAVORITE,
                weight=3.0,
                timestamp=utcnow(),
                centroid_version=version,
            )
            asyncio.run(self.service.handle_personalization(event(ev.to_bytes(), i, topic="t.personalization")))

    @property
    def reply(self) -> SearchResponse:
        ((topic, response),) = self.replies.sent
        assert topic == REPLY
        return response


def request(**kw: Any) -> SearchRequest:
    return SearchRequest(**{"user_id": "u", "text": "a printer", "reply_topic": REPLY, "k": 3, **kw})


def answer(w: Wired, req: SearchRequest) -> SearchResponse:
    return asyncio.run(w.service.answer(req))


def test_a_new_user_gets_the_relevance_order(tmp_path):
    w = Wired(tmp_path)
    w.handle(request().to_bytes())
    resp = w.reply
    assert resp.ok and [h.image_id for h in resp.hits] == ["s0-0", "s0-1", "s0-2"]
    assert not resp.personalized and resp.ranker == "local-profile" and resp.has_more
    assert resp.notes == ["no interactions for this user yet; ranked by relevance only"]
    assert w.dead.codes == []


def test_a_learnt_profile_personalizes_the_ranking(tmp_path):
    w = Wired(tmp_path)
    w.learn(cluster=1)
    resp = answer(w, request(personalization_weight=1.0))
    assert resp.personalized and [h.cluster_id for h in resp.hits][:2] == [1, 1]  # style 1 first
    assert resp.hits[0].drivers == ["favorite:liked-2", "favorite:liked-1", "favorite:liked-0"]


def test_an_expired_request_is_answered_with_expired(tmp_path):
    w = Wired(tmp_path)
    w.handle(request(sent_at=utcnow() - timedelta(seconds=10), timeout_ms=1000).to_bytes())
    resp = w.reply
    assert resp.error is not None and resp.error.code == "expired" and resp.hits == []
    assert w.index.knn_calls == [] and w.dead.codes == []  # no search made for nobody


def test_a_reply_topic_outside_the_reply_prefix_is_refused(tmp_path):
    w = Wired(tmp_path, replies=Replies(["imgsearch.images.new"]))
    w.handle(request(reply_topic="imgsearch.images.new").to_bytes(), offset=4)
    assert w.replies.sent == [] and w.index.knn_calls == []
    (letter,) = w.dead.letters
    assert letter.reason_code == "reply_topic_not_allowed" and letter.source_offset == 4


def test_a_reply_topic_that_does_not_exist_is_dead_lettered(tmp_path):
    w = Wired(tmp_path, replies=Replies([]))
    w.handle(request().to_bytes())
    assert w.replies.sent == [] and w.dead.codes == ["reply_topic_unknown"]


def test_no_answer_about_the_reply_topic_is_no_refusal(tmp_path):
    w = Wired(tmp_path, replies=Replies(unknown=True))
    w.handle(request().to_bytes())
    assert w.reply.ok and w.dead.codes == []


def test_an_invalid_request_is_dead_lettered_and_answered_when_it_names_a_reply_topic(tmp_path):
    w = Wired(tmp_path)
    w.handle(
        b'{"type": "search.request", "request_id": "r1", "user_id": "u", "reply_topic": "%s", "k": 0}' % REPLY.encode()
    )
    assert w.dead.codes == ["schema_violation"]
    assert w.reply.request_id == "r1" and w.reply.error is not None and w.reply.error.code == "schema_violation"
    w.replies.sent.clear()
    w.handle(b"{not json")
    assert w.dead.codes == ["schema_violation", "malformed_json"] and w.replies.sent == []  # nowhere to answer


def test_the_index_down_is_an_index_unavailable_reply(tmp_path):
    w = Wired(tmp_path, index=SearchIndex(CANDIDATES, down=True))
    w.handle(request().to_bytes())
    assert w.reply.error is not None and w.reply.error.code == "index_unavailable"
    resp = answer(w, request(similar_to="s0-0", text=None))
    assert resp.error is not None and resp.error.code == "index_unavailable"


def test_similar_to_an_image_not_indexed_is_unknown_image(tmp_path):
    w = Wired(tmp_path, index=SearchIndex(CANDIDATES, vectors={"s0-0": [1.0] + [0.0] * 63}))
    resp = answer(w, request(similar_to="nope", text=None))
    assert resp.error is not None and resp.error.code == "unknown_image"
    resp = answer(w, request(similar_to="s0-0", text=None))
    assert resp.ok and "s0-0" not in [h.image_id for h in resp.hits]  # the query image itself is left out


def test_filters_on_an_index_without_filterable_metadata_are_refused(tmp_path):
    w = Wired(tmp_path, index=SearchIndex(CANDIDATES, filterable=False))
    resp = answer(w, request(filters=[{"field": "folder", "term": "x"}]))
    assert resp.error is not None and resp.error.code == "filters_unsupported"


def test_a_ranker_failure_falls_back_to_relevance(tmp_path):
    class Broken:
        name = "broken"

        async def rank(self, user_id: str, cluster_ids: Any) -> Any:
            raise RuntimeError("Personalize is down")

    w = Wired(tmp_path, ranker=Broken())
    w.handle(request(personalization_weight=1.0).to_bytes())
    resp = w.reply
    assert resp.ok and [h.image_id for h in resp.hits] == ["s0-0", "s0-1", "s0-2"] and not resp.personalized
    assert resp.notes == ["personalization unavailable (RuntimeError); ranked by relevance only"]


def test_a_slow_ranker_falls_back_to_relevance_in_time(tmp_path, monkeypatch):
    import streams.query as q

    monkeypatch.setattr(q, "RANKER_TIMEOUT_S", 0.05)

    class Slow:
        name = "slow"

        async def rank(self, user_id: str, cluster_ids: Any) -> Any:
            await asyncio.sleep(3600)

    w = Wired(tmp_path, ranker=Slow())
    resp = answer(w, request(personalization_weight=1.0))
    assert resp.ok and not resp.personalized and resp.notes[0].startswith("personalization unavailable (TimeoutError)")


def test_a_profile_on_an_earlier_cluster_model_is_remapped(tmp_path):
    """Learnt on v1, where cluster 0 held today's style 1: after re-clustering into v2 (remap 0 -> 1),
    the user's ranking follows the style, not the old id."""
    v1 = CentroidModel("v1", "style", "f", np.eye(2, dtype=np.float32))
    v2 = CentroidModel("v2", "style", "f", np.eye(2, dtype=np.float32)[::-1].copy(), {"v1": {0: {1: 1.0}, 1: {0: 1.0}}})
    w = Wired(tmp_path, model=v1)
    w.learn(cluster=0, version="v1")
    assert answer(w, request(personalization_weight=1.0)).hits[0].cluster_id == 0
    w.centroids.current = v2  # a new cluster model is published
    resp = answer(w, request(personalization_weight=1.0))
    assert resp.personalized and [h.cluster_id for h in resp.hits][:2] == [1, 1]
    assert w.profiles.get("u")["version"] == "v2"  # type: ignore[index]
    # an event still stamped with the old model is shared out the same way
    w.learn(cluster=1, version="v1", n=1, user="late")
    assert list(w.store["late"]["clusters"]) == ["0"]


def test_a_later_page_of_a_kept_ranking_keeps_its_order(tmp_path):
    w = Wired(tmp_path)
    first = answer(w, request(k=2))
    w.learn(cluster=1)  # a click on page 1 changes the profile
    second = answer(w, request(k=2, page=2, ranking_id=first.ranking_id))
    assert [h.image_id for h in second.hits] == ["s0-2", "s1-0"] and [h.rank for h in second.hits] == [3, 4]
    assert second.timings_ms == {"cached": 0.0}


def test_a_catalog_deeper_than_the_kept_ranking_pages_on_past_it(tmp_path):
    """The review of issue 15: a ranking is kept 5 pages deep; its 5th page must still say there is
    more when the index holds more, and the 6th page (by number or by cursor) must bring it."""
    many = [Candidate(f"d{i}", 0.9 - 0.001 * i, i % 2) for i in range(80)]
    w = Wired(tmp_path, index=SearchIndex(many), min_candidates=50, candidate_multiplier=1)
    first = answer(w, request(k=10))
    fifth = answer(w, request(k=10, page=5, ranking_id=first.ranking_id))
    assert fifth.timings_ms == {"cached": 0.0} and [h.rank for h in fifth.hits] == list(range(41, 51))
    assert fifth.has_more and fifth.cursor
    by_page = answer(w, request(k=10, page=6, ranking_id=first.ranking_id))
    by_cursor = answer(w, request(k=10, search_after=fifth.cursor))
    for sixth in (by_page, by_cursor):
        assert [h.image_id for h in sixth.hits] == [f"d{i}" for i in range(50, 60)]
        assert sixth.has_more
    last = answer(w, request(k=10, page=8, ranking_id=first.ranking_id))
    assert [h.image_id for h in last.hits] == [f"d{i}" for i in range(70, 80)]
    assert not last.has_more and last.cursor is None  # 80 documents: nothing after the 8th page


def test_a_catalog_of_exactly_the_asked_candidates_promises_no_empty_page(tmp_path):
    w = Wired(tmp_path, index=SearchIndex(CANDIDATES), min_candidates=6, candidate_multiplier=1)
    first = answer(w, request(k=3))
    second = answer(w, request(k=3, page=2, ranking_id=first.ranking_id))
    assert first.has_more and len(second.hits) == 3 and not second.has_more


def test_search_after_a_cursor_gives_the_same_pages_as_page_numbers(tmp_path):
    w = Wired(tmp_path)
    first = answer(w, request(k=2))
    assert first.has_more and first.cursor and first.page == 1
    w.learn(cluster=1)  # a click on page 1 changes the profile: the kept ranking's order still holds
    second = answer(w, request(k=2, search_after=first.cursor))
    assert [h.image_id for h in second.hits] == ["s0-2", "s1-0"] and [h.rank for h in second.hits] == [3, 4]
    assert second.timings_ms == {"cached": 0.0} and second.page == 2 and second.ranking_id == first.ranking_id
    third = answer(w, request(k=2, search_after=second.cursor))
    assert [h.image_id for h in third.hits] == ["s1-1", "s1-2"] and not third.has_more and third.cursor is None
    assert third == answer(w, request(k=2, page=3, ranking_id=first.ranking_id)).model_copy(
        update={"request_id": third.request_id, "answered_at": third.answered_at}
    )


def test_search_after_a_ranking_no_longer_kept_goes_on_after_its_last_hit(tmp_path):
    """Another query worker (or an expired ranking): the ranking is made afresh; an image indexed
    meanwhile above the boundary would make page 2 repeat page 1's last hit, the cursor does not."""
    index = SearchIndex(CANDIDATES)
    w = Wired(tmp_path, index=index)
    first = answer(w, request(k=2, personalization_weight=0.0))
    assert [h.image_id for h in first.hits] == ["s0-0", "s0-1"]
    index.candidates.insert(0, Candidate("new", 0.95, 0))
    other = Wired(tmp_path, index=index)  # nothing kept there
    by_page = answer(other, request(k=2, page=2, ranking_id=first.ranking_id, personalization_weight=0.0))
    assert [h.image_id for h in by_page.hits] == ["s0-1", "s0-2"]  # s0-1 again
    resumed = answer(other, request(k=2, search_after=first.cursor, personalization_weight=0.0))
    assert [h.image_id for h in resumed.hits] == ["s0-2", "s1-0"] and [h.rank for h in resumed.hits] == [4, 5]
    assert resumed.notes[0].startswith("ranking_id unknown or expired")
    # its last hit gone (hidden, deleted): it goes on at the cursor's offset, and says so
    index.candidates = [c for c in index.candidates if c.image_id != "s0-1"]
    gone = answer(Wired(tmp_path, index=index), request(k=2, search_after=first.cursor, personalization_weight=0.0))
    assert [h.image_id for h in gone.hits] == ["s0-2", "s1-0"] and [h.rank for h in gone.hits] == [3, 4]
    assert any(n.startswith("search_after: its last hit is no longer ranked") for n in gone.notes)


def test_search_after_is_validated(tmp_path):
    w = Wired(tmp_path)
    cursor = answer(w, request(k=2)).cursor
    assert cursor is not None
    for bad, why in (
        ({"search_after": "not-a-cursor"}, "not a cursor of this service"),
        ({"search_after": cursor, "page": 2}, "page or search_after, not both"),
        ({"search_after": cursor, "ranking_id": "another"}, "another ranking_id"),
    ):
        with pytest.raises(ValidationError, match=why):
            request(k=2, **bad)
    body = {**json.loads(request(k=2, request_id="r-bad").to_bytes()), "search_after": "zzz"}
    w.handle(json.dumps(body).encode())
    assert w.dead.codes == ["schema_violation"]
    assert w.reply.request_id == "r-bad" and w.reply.error is not None and "search_after" in w.reply.error.message


def test_personalization_events_are_learnt_forgotten_and_refused_from_the_future(tmp_path):
    w = Wired(tmp_path)
    w.learn(cluster=1, n=2)
    assert set(w.store) == {"u"} and w.store["u"]["n"] == 2 and "seen" not in w.store["u"]
    # the ids are in their partition's window (partition 0), not in the profile
    assert sorted(d for ids in w.event_ids.values() for d in ids) == sorted(
        [short_id("e-u-1-none-0"), short_id("e-u-1-none-1")]
    ) and all(key.startswith("0:") for key in w.event_ids)
    assert w.store["u"]["applied"][:2] == [0.0, 1.0]  # partition 0, offset 1: the last event's position
    before = w.store["u"]
    w.learn(cluster=1, n=2)  # redelivered: counted once
    assert w.store["u"] == before
    future = PersonalizationEvent(
        event_id="f", user_id="u", cluster_id=0, image_id="x", event_type=EventType.VIEW, weight=1.0,
        timestamp=utcnow() + timedelta(days=1), centroid_version="none",
    )  # fmt: skip
    asyncio.run(w.service.handle_personalization(event(future.to_bytes(), 9)))
    asyncio.run(w.service.handle_personalization(event(b"[]", 10)))
    assert w.dead.codes == ["timestamp_in_future", "schema_violation"]
    asyncio.run(w.service.handle_personalization(event(ForgetUser(user_id="u").to_bytes(), 11)))
    assert w.store == {}
