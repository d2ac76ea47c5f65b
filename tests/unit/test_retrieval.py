"""Issue 15, the pure parts of retrieval: preferred clusters, k-NN filters, the union of sources,
the ranking cache, paging, and the request schema's bounds."""

from __future__ import annotations

import gc

import pytest
from pydantic import ValidationError

from imgsearch.domain.blend import Candidate
from imgsearch.index.opensearch import knn_body
from imgsearch.ranker.base import RankerResult
from schemas.events import MAX_RESULT_WINDOW, InvalidEvent, MetadataFilter, SearchHit, SearchRequest, parse_event
from streams import retrieval


def test_preferred_clusters_best_first_positive_only_and_not_demoted() -> None:
    result = RankerResult({0: 0.1, 1: 0.5, 2: 0.0, 3: 0.4}, True, "t", demotions={3: 0.2})
    assert retrieval.preferred_clusters(result, 2) == [1, 0]
    assert retrieval.preferred_clusters(result, 5) == [1, 0]
    assert retrieval.preferred_clusters(result, 0) == []
    assert retrieval.preferred_clusters(RankerResult({0: 0.0}, False, "t"), 2) == []


def test_metadata_filter_builds_term_terms_and_range_clauses() -> None:
    flt = retrieval.metadata_filter(
        [
            MetadataFilter(field="license", term="cc0"),
            MetadataFilter(field="theme", terms=["papirus", "moka"]),
            MetadataFilter(field="year", gte="2020", lt="2025"),
        ]
    )
    assert flt == {
        "bool": {
            "filter": [
                {"term": {"metadata.license": "cc0"}},
                {"terms": {"metadata.theme": ["papirus", "moka"]}},
                {"range": {"metadata.year": {"gte": "2020", "lt": "2025"}}},
            ]
        }
    }
    assert retrieval.metadata_filter([]) is None


def test_style_filter_keeps_the_request_filters_inside() -> None:
    base = {"bool": {"filter": [{"term": {"metadata.license": "cc0"}}]}}
    assert retrieval.style_filter(4, None) == {"bool": {"filter": [{"term": {"cluster_id": 4}}]}}
    assert retrieval.style_filter(4, base) == {"bool": {"filter": [{"term": {"cluster_id": 4}}, base]}}


def test_knn_body_puts_the_filter_inside_the_knn_clause() -> None:
    body = knn_body([1.0, 0.0], 7, {"term": {"cluster_id": 1}})
    assert body["size"] == 7
    assert body["query"]["knn"]["embedding"] == {"vector": [1.0, 0.0], "k": 7, "filter": {"term": {"cluster_id": 1}}}
    assert "filter" not in knn_body([1.0], 3)["query"]["knn"]["embedding"]


def test_knn_body_widens_the_hnsw_search_only_beyond_k() -> None:
    clause = knn_body([1.0], 50, None, ef_search=200)["query"]["knn"]["embedding"]
    assert clause["method_parameters"] == {"ef_search": 200} and clause["k"] == 50
    assert "method_parameters" not in knn_body([1.0], 50, None, ef_search=20)["query"]["knn"]["embedding"]
    assert "method_parameters" not in knn_body([1.0], 50)["query"]["knn"]["embedding"]


def test_union_deduplicates_and_counts_what_only_the_style_sources_brought() -> None:
    a, b, c = Candidate("a", 0.9, 0), Candidate("b", 0.8, 1), Candidate("c", 0.5, 1)
    merged, extra = retrieval.union([[a, b], [b, c], [c]])
    assert [x.image_id for x in merged] == ["a", "b", "c"]
    assert extra == 1


def kept(n: int) -> retrieval.KeptRanking:
    hit = SearchHit(image_id=f"i{n}", rank=1, cluster_id=0, knn_score=1, personal_score=0, blended_score=1)
    return retrieval.KeptRanking(hits=[hit], complete=False, personalized=True, ranker="local", notes=[f"n{n}"])


def test_rankings_cache_expires_and_evicts_the_least_recent() -> None:
    now = [0.0]
    cache = retrieval.Rankings(2, ttl_s=10, clock=lambda: now[0])
    cache.put("u", "r1", kept(1))
    cache.put("u", "r2", kept(2))
    assert cache.get("u", "r1") == kept(1)  # r1 is now the most recent
    cache.put("u", "r3", kept(3))
    assert cache.get("u", "r2") is None and cache.get("u", "r1") == kept(1)
    assert cache.get("other-user", "r1") is None  # keyed by user too: no reading another user's ranking
    now[0] = 11.0
    assert cache.get("u", "r1") is None
    off = retrieval.Rankings(0, ttl_s=10)
    off.put("u", "r", kept(0))
    assert off.get("u", "r") is None and len(off) == 0


def test_kept_rankings_are_out_of_the_garbage_collectors_reach() -> None:
    """Kept as bytes: 100 rankings of 50 hits add no object the collector tracks (as models they
    were ~150 objects each, and a full cache of them made every full collection a stall)."""
    cache = retrieval.Rankings(100, ttl_s=60)
    hits = [
        SearchHit(image_id=f"i{n}", rank=n + 1, cluster_id=n % 4, knn_score=1, personal_score=0, blended_score=1,
                  metadata={"folder": "a"}, drivers=["favorite x"])
        for n in range(50)
    ]  # fmt: skip
    gc.collect()
    before = len(gc.get_objects())
    for r in range(100):
        cache.put(
            "u", f"r{r}", retrieval.KeptRanking(hits=hits, complete=False, personalized=True, ranker="x", notes=[])
        )
    gc.collect()
    assert len(gc.get_objects()) - before < 50
    back = cache.get("u", "r7")
    assert back is not None and back.hits == hits


def test_slice_of_numbers_ranks_over_the_whole_ranking() -> None:
    hits = [
        SearchHit(image_id=f"i{n}", rank=n + 1, cluster_id=0, knn_score=1, personal_score=0, blended_score=1)
        for n in range(7)
    ]
    page2 = retrieval.slice_of(hits, 3, 3)  # page 2 of 3 hits
    assert [(h.image_id, h.rank) for h in page2] == [("i3", 4), ("i4", 5), ("i5", 6)]
    assert [h.rank for h in retrieval.slice_of(hits, 6, 3)] == [7]
    assert retrieval.slice_of(hits, 9, 3) == []


@pytest.mark.parametrize(
    ("ranked", "start", "k", "complete", "more"),
    [
        (50, 30, 10, False, True),  # the ranking goes on past the page
        (50, 30, 10, True, True),
        (50, 40, 10, True, False),  # its last page, and nothing deeper: the catalog is exhausted
        (50, 40, 10, False, True),  # its last page, but a deeper ranking would add hits (issue 15 review)
        (500, 480, 10, False, True),  # the next page ends at 500: it may be asked for
        (500, 490, 10, False, False),  # the next page would end past 500 and be refused
        (500, 450, 30, False, False),
    ],
)
def test_has_more_promises_only_a_page_that_exists_and_may_be_asked_for(
    ranked: int, start: int, k: int, complete: bool, more: bool
) -> None:
    assert retrieval.has_more(ranked, start, k, complete) is more


def test_the_global_knn_asks_one_more_than_it_keeps_up_to_the_result_window() -> None:
    assert retrieval.probe_size(100) == 101
    assert retrieval.probe_size(retrieval.MAX_CANDIDATES) == retrieval.MAX_CANDIDATES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("license=cc0", {"field": "license", "term": "cc0"}),
        ("theme=papirus|moka", {"field": "theme", "terms": ["papirus", "moka"]}),
        ("year>=2020", {"field": "year", "gte": "2020"}),
        ("year>2020", {"field": "year", "gt": "2020"}),
        ("year<=2020", {"field": "year", "lte": "2020"}),
        ("year<2020", {"field": "year", "lt": "2020"}),
        ("note=a=b", {"field": "note", "term": "a=b"}),
    ],
)
def test_parse_filter(text: str, expected: dict[str, object]) -> None:
    assert retrieval.parse_filter(text) == MetadataFilter.model_validate(expected)


@pytest.mark.parametrize("text", ["license", "=cc0", "bad key=x", "year>="])
def test_parse_filter_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        retrieval.parse_filter(text)


@pytest.mark.parametrize(
    "raw",
    [
        {"field": "year"},  # no condition
        {"field": "year", "term": "1", "gte": "1"},  # two kinds
        {"field": "year", "gt": "1", "gte": "1"},  # two lower bounds
        {"field": "year", "terms": []},
        {"field": "year", "terms": [str(i) for i in range(33)]},
        {"field": "year", "term": "x" * 257},
        {"field": "a.b", "term": "x"},  # no dotted paths
        {"field": "year", "term": "x", "boost": 2},  # unknown key
    ],
)
def test_metadata_filter_schema_refuses(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MetadataFilter.model_validate(raw)


def test_search_request_bounds_paging_filters_and_accepts_similar_to_alone() -> None:
    req = SearchRequest(user_id="u", similar_to="papirus/printer/printer", reply_topic="imgsearch.replies.x")
    assert req.page == 1 and req.filters == []
    with pytest.raises(ValidationError, match="needs text or image_b64 \\(or both\\), or similar_to"):
        SearchRequest(user_id="u", reply_topic="imgsearch.replies.x")
    with pytest.raises(ValidationError, match="page \\* k"):
        SearchRequest(
            user_id="u", text="a", k=100, page=MAX_RESULT_WINDOW // 100 + 1, reply_topic="imgsearch.replies.x"
        )
    with pytest.raises(ValidationError):
        SearchRequest(user_id="u", text="a", page=0, reply_topic="imgsearch.replies.x")
    many = [{"field": f"f{i}", "term": "x"} for i in range(9)]
    with pytest.raises(InvalidEvent) as exc:
        parse_event(
            SearchRequest,
            SearchRequest(user_id="u", text="a", reply_topic="imgsearch.replies.x")
            .model_dump_json()
            .replace('"filters":[]', f'"filters":{str(many).replace(chr(39), chr(34))}'),
        )
    assert exc.value.code == "schema_violation" and "filters" in exc.value.message


def test_bench_distractors_are_unit_vectors_like_the_real_ones_and_reproducible() -> None:
    import numpy as np

    from bench.two_source_eval import distractors

    rng = np.random.default_rng(3)
    real = rng.normal(size=(400, 8)).astype(np.float32) + np.array([3, 0, 0, 0, 0, 0, 0, 0], np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    fake = distractors(real, 300, seed=0)
    assert fake.shape == (300, 8)
    assert np.allclose(np.linalg.norm(fake, axis=1), 1.0, atol=1e-5)
    assert float((fake @ real.mean(axis=0)).mean()) > 0.5  # drawn around the real vectors' mean
    assert np.array_equal(distractors(real, 100, seed=0), fake[:100])  # a smaller catalog is a prefix
