import pytest

from imgsearch.domain.blend import Candidate, blend, minmax


def cands():
    return [
        Candidate("a", 0.90, 1),
        Candidate("b", 0.85, 2),
        Candidate("c", 0.80, 2),
        Candidate("d", 0.79, 3),
        Candidate("e", 0.70, 1),
    ]


def test_minmax():
    assert minmax([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]
    assert minmax([2.0, 2.0]) == [1.0, 1.0]
    assert minmax([]) == []


def test_weight_zero_is_relevance_order():
    ranked = blend(cands(), {2: 0.9, 3: 0.1}, 0.0, k=5)
    assert [r.candidate.image_id for r in ranked] == ["a", "b", "c", "d", "e"]


def test_weight_one_is_preference_order_then_relevance():
    ranked = blend(cands(), {2: 0.7, 3: 0.3}, 1.0, k=5, mode="linear")
    assert [r.candidate.image_id for r in ranked] == ["b", "c", "d", "a", "e"]


def test_mid_weight_promotes_preferred_cluster_but_keeps_relevance():
    ranked = blend(cands(), {3: 1.0}, 0.5, k=3, mode="linear")
    ids = [r.candidate.image_id for r in ranked]
    assert ids[0] == "d"  # 0.5 * 0.45 + 0.5 * 1.0 beats a's 0.5 * 1.0
    assert "a" in ids
    assert ranked[0].personal_score == 1.0 and ranked[0].blended_score == pytest.approx(0.5 * 0.45 + 0.5)


def test_no_signal_means_relevance_even_with_weight():
    ranked = blend(cands(), {}, 0.8, k=5)
    assert [r.candidate.image_id for r in ranked] == ["a", "b", "c", "d", "e"]


def test_cap_per_cluster():
    ranked = blend(cands(), {2: 1.0}, 1.0, k=4, max_per_cluster=1)
    assert [r.candidate.cluster_id for r in ranked] == [2, 1, 3]


def test_bad_weight():
    with pytest.raises(ValueError):
        blend(cands(), {}, 1.5, k=3)


def test_gated_blend_lifts_relevant_preferred_items_only():
    cs = [
        Candidate("best-other-style", 0.90, 1),
        Candidate("good-my-style", 0.86, 2),
        Candidate("weak-my-style", 0.70, 2),
        Candidate("ok-other", 0.80, 1),
    ]
    gated = [r.candidate.image_id for r in blend(cs, {2: 1.0}, 0.5, k=4)]
    linear = [r.candidate.image_id for r in blend(cs, {2: 1.0}, 0.5, k=4, mode="linear")]
    assert gated[0] == "good-my-style" and gated.index("weak-my-style") == 3
    assert linear.index("weak-my-style") < linear.index("ok-other")  # the article's mean lets it jump
    assert [r.candidate.image_id for r in blend(cs, {2: 1.0}, 0.0, k=4)] == [
        "best-other-style",
        "good-my-style",
        "ok-other",
        "weak-my-style",
    ]
    with pytest.raises(ValueError):
        blend(cs, {}, 0.5, k=2, mode="max")


def test_demotions_push_a_disliked_cluster_down_without_a_positive_signal():
    ranked = blend(cands(), {}, 0.5, k=5, demotions={1: 0.9})
    ids = [r.candidate.image_id for r in ranked]
    assert ids == ["b", "c", "d", "a", "e"]  # a (cluster 1, best match) falls behind every other style
    assert ranked[3].blended_score == pytest.approx(0.5 * 1.0 * 0.1)
    # weight 0 is relevance only: no demotion either
    assert blend(cands(), {}, 0.0, k=5, demotions={1: 0.9})[0].candidate.image_id == "a"
    with pytest.raises(ValueError, match="demotion"):
        blend(cands(), {}, 0.5, k=5, demotions={1: 1.5})
