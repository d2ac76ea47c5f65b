"""Issue 15: continuous style affinity (interest medoids) and MMR, pure domain code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imgsearch.domain.affinity import MAX_MEDOIDS, MAX_NEGATIVE, StyleMedoids
from imgsearch.domain.blend import Candidate, Ranked, blend
from imgsearch.domain.mmr import mmr, validate_lambda
from imgsearch.domain.profile import Profile

DAY = 86400.0


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=float)
    return v / np.linalg.norm(v)


def test_near_events_merge_into_one_medoid_and_far_ones_open_another() -> None:
    m = StyleMedoids()
    m.add(unit(1, 0, 0), 1.0, 0.0, DAY, "s1")
    m.add(unit(1, 0.1, 0), 3.0, 1.0, DAY, "s1")
    m.add(unit(0, 1, 0), 1.0, 2.0, DAY, "s1")
    assert len(m.positive) == 2
    assert m.positive[0].weight == pytest.approx(4.0, rel=1e-3)
    # the medoid is one of the real vectors: the heavier, later one lies nearer the weighted mean
    assert np.allclose(m.positive[0].vector, unit(1, 0.1, 0))


def test_a_border_image_scores_for_both_neighbours_by_nearness() -> None:
    m = StyleMedoids()
    for t in range(3):
        m.add(unit(1, 0), 1.0, float(t), DAY, "s1")
    styles = {"mine": unit(1, 0), "border": unit(1, 1), "other": unit(0, 1), "opposite": unit(-1, 0)}
    s = m.scores(styles, 3.0, DAY, bandwidth=0.5)
    assert s["mine"] == pytest.approx(1.0)
    assert s["mine"] > s["border"] > s["other"] > s["opposite"] > 0


def test_importance_decays_so_a_recent_interest_dominates() -> None:
    m = StyleMedoids()
    m.add(unit(1, 0), 5.0, 0.0, DAY, "s1")
    m.add(unit(0, 1), 1.0, 10 * DAY, DAY, "s1")
    s = m.scores({"old": unit(1, 0), "new": unit(0, 1)}, 10 * DAY, DAY, bandwidth=0.1)
    assert s["new"] > s["old"]


def test_bounded_medoids_evict_the_least_important() -> None:
    m = StyleMedoids()
    rng = np.random.default_rng(0)
    for t in range(40):
        m.add(rng.normal(size=16), 1.0 + t, float(t), DAY, "s1", merge_sim=0.99)
    for t in range(10):
        m.add(rng.normal(size=16), -3.0, 100.0 + t, DAY, "s1", merge_sim=0.99)
    assert len(m.positive) == MAX_MEDOIDS and len(m.negative) == MAX_NEGATIVE
    assert sorted(x.weight for x in m.positive) == pytest.approx([36.0, 37.0, 38.0, 39.0, 40.0])
    raw = json.dumps(Profile(styles=m.to_dict()).to_dict())
    assert len(raw) < 4000  # 8 medoids (5 with a mean) x 16 dims, rounded
    back = Profile.from_dict(json.loads(raw)).medoids()
    assert len(back.positive) == MAX_MEDOIDS and back.model == "s1"


def test_negative_events_weaken_the_near_interest_and_demote_its_look() -> None:
    m = StyleMedoids()
    m.add(unit(1, 0), 3.0, 0.0, DAY, "s1")
    m.add(unit(0, 1), 3.0, 0.0, DAY, "s1")
    m.add(unit(1, 0.05), -1.0, 1.0, DAY, "s1")
    assert len(m.positive) == 2 and m.positive[0].weight < 3.0
    av = m.aversion({"disliked": unit(1, 0), "liked": unit(0, 1)}, 1.0, DAY, bandwidth=0.1)
    assert av["disliked"] > 0.9 and av.get("liked", 0.0) < 1e-3
    for t in range(3):
        m.add(unit(1, 0), -3.0, 2.0 + t, DAY, "s1")
    assert len(m.positive) == 1  # the disliked interest is gone
    assert np.allclose(m.positive[0].vector, unit(0, 1))


def test_another_style_model_starts_afresh() -> None:
    m = StyleMedoids()
    m.add(unit(1, 0), 1.0, 0.0, DAY, "s1")
    m.add(unit(0, 1, 0), 1.0, 1.0, DAY, "s2")
    assert m.model == "s2" and len(m.positive) == 1
    assert m.scores({"a": unit(1, 0)}, 1.0, DAY) == {}  # dimensions differ: nothing scored


def test_profile_keeps_medoids_through_a_cluster_remap() -> None:
    p = Profile(version="v1")
    p.add("e1", 0, 1.0, 0.0, DAY, image_id="a")
    p.add_style(list(unit(1, 0)), 1.0, 0.0, DAY, "s1")
    q = p.remapped({0: {3: 1.0}}, "v2", 1.0, DAY)
    assert q.medoids().to_dict() == p.medoids().to_dict()


def test_blend_uses_item_scores_and_item_demotions() -> None:
    cands = [Candidate("a", 0.9, 0), Candidate("b", 0.8, 0), Candidate("c", 0.7, 1)]
    by_cluster = blend(cands, {0: 1.0, 1: 0.0}, 1.0, 3)
    assert [r.candidate.image_id for r in by_cluster][:2] == ["a", "b"]
    by_item = blend(cands, {0: 1.0, 1: 0.0}, 1.0, 3, item_scores={"a": 0.1, "b": 1.0, "c": 0.9})
    assert next(r.candidate.image_id for r in by_item) == "b"
    down = blend(cands, {}, 0.5, 3, item_demotions={"a": 0.9})
    assert [r.candidate.image_id for r in down][:2] == ["b", "a"]


def ranked(n: int, clusters: list[int] | None = None) -> list[Ranked]:
    return [Ranked(Candidate(f"i{i}", 1.0 - i / 10, (clusters or [0] * n)[i]), 0.0, 1.0 - i / 10) for i in range(n)]


def test_mmr_lambda_one_is_the_input_order() -> None:
    r = ranked(6)
    assert mmr(r, {}, 1.0, 4) == r[:4]


def test_mmr_skips_near_duplicates_as_lambda_falls() -> None:
    r = ranked(4)
    vectors = {"i0": unit(1, 0), "i1": unit(1, 0.01), "i2": unit(0, 1), "i3": unit(-1, 0.2)}
    assert [x.candidate.image_id for x in mmr(r, vectors, 0.9, 3)] == ["i0", "i1", "i2"]
    assert [x.candidate.image_id for x in mmr(r, vectors, 0.5, 3)] == ["i0", "i2", "i3"]


def test_mmr_keeps_the_per_style_cap() -> None:
    r = ranked(5, [0, 0, 0, 1, 1])
    vectors = {f"i{i}": unit(1, i / 100) for i in range(5)}
    out = mmr(r, vectors, 0.3, 4, max_per_cluster=2)
    assert sorted(x.candidate.cluster_id for x in out) == [0, 0, 1, 1]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_mmr_lambda_is_validated(bad: float) -> None:
    with pytest.raises(ValueError):
        validate_lambda(bad)


async def test_local_ranker_offers_both_modes() -> None:
    from imgsearch.ranker.local import LocalProfileRanker

    p = Profile(version="v1")
    p.add("e1", 0, 3.0, 0.0, DAY, image_id="a")
    p.add_style(list(unit(1, 0)), 3.0, 0.0, DAY, "s1")
    p.add("e2", 1, -3.0, 1.0, DAY, image_id="b", event_type="not_my_style")
    p.add_style(list(unit(0, 1)), -3.0, 1.0, DAY, "s1")
    stored = p.to_dict()
    cluster = LocalProfileRanker(lambda _: stored, DAY, clock=lambda: 2.0)
    assert cluster.style_model("u") == ""  # the cluster mode fetches no style vectors
    continuous = LocalProfileRanker(lambda _: stored, DAY, clock=lambda: 2.0, affinity_mode="continuous")
    assert continuous.style_model("u") == "s1"
    scores, down = continuous.style_affinity("u", {"liked": unit(1, 0), "disliked": unit(0, 1), "mid": unit(1, 1)})
    assert scores is not None and scores["liked"] > scores["mid"] > scores["disliked"]
    assert down["disliked"] > 0.4 and down.get("liked", 0.0) < 0.01
    r = await continuous.rank("u", [0, 1])  # the cluster contract is unchanged
    assert r.scores[0] == 1.0 and r.demotions[1] > 0
    with pytest.raises(ValueError):
        LocalProfileRanker(lambda _: None, DAY, affinity_mode="vector")
