import asyncio
import json

import pytest

from imgsearch.domain.profile import Profile, normalise
from imgsearch.ranker.local import LocalProfileRanker

DAY = 86400.0


def test_decay_and_weights():
    p = Profile()
    assert p.add("e1", 4, 5.0, at=0.0, half_life_s=DAY)
    assert p.add("e2", 7, 1.0, at=DAY, half_life_s=DAY)
    s = p.scores(now=DAY, half_life_s=DAY)
    assert s[4] == pytest.approx(2.5) and s[7] == pytest.approx(1.0)


def test_redelivered_event_counts_once():
    p = Profile()
    assert p.add("e1", 1, 3.0, at=10.0, half_life_s=DAY, source=(0, 5))
    assert not p.add("e1", 1, 3.0, at=10.0, half_life_s=DAY, source=(0, 5))  # the same source position
    assert p.scores(10.0, DAY)[1] == pytest.approx(3.0) and p.count == 1


def test_late_event_is_decayed_to_reference_time():
    p = Profile()
    p.add("e1", 1, 1.0, at=DAY, half_life_s=DAY)
    p.add("e0", 1, 1.0, at=0.0, half_life_s=DAY)
    assert p.scores(DAY, DAY)[1] == pytest.approx(1.5)


def test_round_trip_and_drivers():
    p = Profile()
    p.add("e1", 2, 1.0, 0.0, DAY, image_id="img-9", event_type="favorite")
    q = Profile.from_dict(p.to_dict())
    assert q.drivers(2) == ["favorite:img-9"] and q.scores(0.0, DAY) == p.scores(0.0, DAY)


def test_normalise_sums_to_one_over_candidates():
    out = normalise({1: 3.0, 2: 1.0, 9: 100.0}, [1, 2, 3, 1])
    assert out == {1: 0.75, 2: 0.25, 3: 0.0}
    assert normalise({}, [1, 2]) == {1: 0.0, 2: 0.0}


def test_local_ranker_contract():
    store = {}
    p = Profile()
    p.add("e1", 5, 2.0, 100.0, DAY)
    store["u"] = p.to_dict()
    ranker = LocalProfileRanker(store.get, DAY, clock=lambda: 100.0)
    res = asyncio.run(ranker.rank("u", [5, 6]))
    assert res.has_signal and res.scores == {5: 1.0, 6: 0.0}
    new = asyncio.run(ranker.rank("nobody", [5, 6]))
    assert not new.has_signal and new.scores == {5: 0.0, 6: 0.0}


def test_style_switch_mid_session_takes_over_after_a_few_interactions():
    """The article's designer: a long history in style A, then a switch to style B."""
    p = Profile()
    t = 1000.0
    for i in range(8):
        p.add(f"a{i}", 1, 3.0, t + i, DAY)
    assert max(p.affinity(t + 8, DAY, 0.6).items(), key=lambda kv: kv[1])[0] == 1
    for i in range(3):
        p.add(f"b{i}", 2, 3.0, t + 10 + i, DAY)
    aff = p.affinity(t + 13, DAY, 0.6)
    assert aff[2] > aff[1]  # the new style leads...
    assert aff[1] > 0.3  # ...and the lasting taste is not forgotten
    assert sum(aff.values()) == pytest.approx(1.0)


def test_multi_interest_keeps_both_styles():
    p = Profile()
    for i in range(6):
        p.add(f"e{i}", 1 if i % 2 else 2, 1.0, 100.0 + i, DAY)
    aff = p.affinity(106.0, DAY, 0.6)
    assert aff[1] == pytest.approx(aff[2], rel=0.3) and aff.get(3, 0.0) == 0.0


def test_recency_weight_zero_is_long_term_only():
    p = Profile()
    p.add("a", 1, 1.0, 0.0, DAY)
    p.add("b", 2, 1.0, 0.0, DAY)
    assert p.affinity(0.0, DAY, 0.0) == {1: 0.5, 2: 0.5}


def test_remap_carries_long_term_and_session():
    p = Profile(version="v1")
    p.add("a", 1, 4.0, 0.0, DAY, source=(2, 3))
    q = p.remapped({1: {7: 0.75, 8: 0.25}}, "v2", 0.0, DAY)
    assert q.version == "v2" and q.scores(0.0, DAY) == {7: 3.0, 8: 1.0}
    assert q.session == {"7": 3.0, "8": 1.0} and not q.add("a", 7, 1.0, 0.0, DAY, source=(2, 3))
    assert q.count == 1


def test_local_ranker_uses_cooccurrence_and_popularity():
    from imgsearch.domain.cooccurrence import train

    rows = [(f"a{u}", 1, 3.0) for u in range(5)] + [(f"a{u}", 2, 3.0) for u in range(5)] + [("b", 3, 50.0)]
    model = train(rows, "v1")
    p = Profile(version="v1")
    p.add("e1", 1, 3.0, 100.0, DAY)
    store = {"u": p.to_dict()}
    ranker = LocalProfileRanker(store.get, DAY, clock=lambda: 100.0, model=lambda: model)
    res = asyncio.run(ranker.rank("u", [1, 2, 3]))
    assert res.ranker == "local-profile+cooccurrence"
    assert res.scores[1] > res.scores[2] > 0 and res.scores[3] == 0.0
    # a profile on another cluster model does not mix with this one
    store["old"] = Profile(version="v0", clusters={"1": [1.0, 100.0]}).to_dict()
    assert asyncio.run(ranker.rank("old", [1, 2])).scores[2] == 0.0
    # new users: relevance by default, popularity when configured
    assert not asyncio.run(ranker.rank("new", [1, 2, 3])).has_signal
    popular = LocalProfileRanker(store.get, DAY, model=lambda: model, new_user="popularity")
    res = asyncio.run(popular.rank("new", [1, 2, 3]))
    assert res.has_signal and res.ranker == "local-popularity" and max(res.scores, key=res.scores.get) == 3
    with pytest.raises(ValueError):
        LocalProfileRanker(store.get, DAY, new_user="random")


def test_negative_feedback_goes_below_zero_and_comes_back_as_aversion():
    from imgsearch.domain.profile import demotion

    p = Profile()
    p.add("a", 1, 3.0, 0.0, DAY, image_id="i1", event_type="favorite")
    for n in range(3):
        p.add(f"n{n}", 2, -3.0, 1.0 + n, DAY, image_id=f"j{n}", event_type="not_my_style")
    aff = p.affinity(10.0, DAY, 0.6)
    assert set(aff) == {1} and abs(aff[1] - 1.0) < 1e-9  # a disliked style takes no share of the affinity
    av = p.aversion(10.0, DAY, 0.6)
    assert set(av) == {2} and av[2] > 3.0
    d = demotion(av, 3.0)
    assert 0.75 < d[2] < 1.0  # three "not my style" at the default weight and scale
    assert demotion({2: 3.0}, 3.0)[2] == pytest.approx(0.5)
    assert p.drivers(2) == []  # explanations name positive events only
    p.add("b", 2, 5.0, 20.0, DAY, image_id="k", event_type="download")
    p.add("c", 2, 5.0, 21.0, DAY, image_id="k2", event_type="download")
    assert 2 not in p.aversion(22.0, DAY, 0.6)  # later likes bring the style back


def test_hidden_images_are_remembered_once_and_survive_a_round_trip():
    p = Profile()
    p.add("h1", 3, -1.0, 0.0, DAY, image_id="img-9", event_type="hide")
    p.add("h2", 3, -1.0, 1.0, DAY, image_id="img-9", event_type="hide")
    assert p.hidden == ["img-9"]
    q = Profile.from_dict(p.to_dict())
    assert q.hidden == ["img-9"] and q.aversion(2.0, DAY, 0.6)[3] > 0
    assert q.remapped({3: {5: 1.0}}, "v2", 2.0, DAY).hidden == ["img-9"]


def test_local_ranker_returns_demotions_and_hidden_images_for_the_candidates():
    p = Profile()
    for n in range(3):
        p.add(f"n{n}", 2, -3.0, 10.0 + n, DAY, image_id=f"j{n}", event_type="not_my_style")
    p.add("h", 4, -1.0, 20.0, DAY, image_id="img-h", event_type="hide")
    store = {"u": p.to_dict()}
    ranker = LocalProfileRanker(store.get, DAY, clock=lambda: 30.0, dislike_scale=3.0)
    res = asyncio.run(ranker.rank("u", [1, 2]))
    assert not res.has_signal and res.has_feedback  # only dislikes: still personalized (demoted)
    assert set(res.demotions) == {2} and res.demotions[2] > 0.75  # cluster 4 is not a candidate
    assert res.hidden == frozenset({"img-h"})
    assert not asyncio.run(ranker.rank("nobody", [1, 2])).has_feedback


# ---------------------------------------------------------------- issue 16: bounded de-duplication
def _uuid(n: int) -> str:
    return f"{n:032x}"


def test_a_redelivery_is_recognised_by_its_source_position_however_old():
    p = Profile()
    for n in range(700):
        assert p.add(_uuid(n), n % 5, 1.0, 1000.0 + n, DAY, f"img{n}", "view", source=(3, 500 + n))
    before = p.to_dict()
    # a query worker restarted before committing: the topic replays offsets 500..1199 of partition 3
    for n in range(700):
        assert not p.add(_uuid(n), n % 5, 1.0, 1000.0 + n, DAY, f"img{n}", "view", source=(3, 500 + n))
    assert p.to_dict() == before
    assert p.add(_uuid(700), 0, 1.0, 1700.0, DAY, "img700", "view", source=(3, 1200))  # the next one counts


def test_a_late_event_at_a_later_offset_counts_and_a_recreated_topic_does_not_freeze_the_profile():
    p = Profile()
    assert p.add("a", 0, 1.0, 500.0, DAY, source=(1, 40))
    assert p.add("late", 0, 1.0, 100.0, DAY, source=(1, 41))  # an older event time, a newer offset
    assert p.applied == [1.0, 41.0, 500.0]
    # the topic was deleted and created again: offsets restart, event times go on
    assert p.add("fresh", 0, 1.0, 900.0, DAY, source=(1, 0))
    assert p.applied == [1.0, 0.0, 900.0]
    assert Profile.from_dict(p.to_dict()).applied == p.applied  # stored with the profile


def test_a_profile_stays_small_however_long_the_history():
    p = Profile()
    for n in range(10_000):
        p.add(_uuid(n), n % 7, 1.0, 1000.0 + n, DAY, f"image-{n:07d}", "favorite", source=(2, n))
    size = len(json.dumps(p.to_dict(), separators=(",", ":")))
    # 7 clusters (long-term and session), 3 explanations each up to 20, one source position, the count
    assert p.seen == [] and p.count == 10_000 and len(p.recent) == 20
    assert size < 1500, size


def test_explanations_keep_the_newest_three_per_cluster_so_a_busy_style_does_not_push_out_the_rest():
    p = Profile()
    p.add("quiet", 5, 1.0, 0.0, DAY, "img-quiet", "favorite")
    for n in range(30):  # thirty events on one style after the quiet one
        p.add(f"busy-{n}", 1, 1.0, 1.0 + n, DAY, f"img-{n}", "view")
    assert p.drivers(5) == ["favorite:img-quiet"]  # still explained (20 newest overall would drop it)
    assert p.drivers(1) == ["view:img-29", "view:img-28", "view:img-27"]
    assert len(p.recent) == 4
    for c in range(25):  # and the list stays bounded in all, the oldest clusters' going first
        p.add(f"wide-{c}", 100 + c, 1.0, 100.0 + c, DAY, f"w-{c}", "click")
    assert len(p.recent) == 20 and p.drivers(5) == [] and p.drivers(124) == ["click:w-24"]


def test_a_profile_from_before_issue_16_still_recognises_its_full_ids():
    old = Profile.from_dict({"seen": ["e-full-id"], "clusters": {"0": [1.0, 10.0]}})
    assert not old.add("e-full-id", 0, 1.0, 10.0, DAY)


def test_the_stored_form_keeps_six_digits_and_a_short_session():
    # issue 16: full floats (17 digits) and session scores kept down to 1e-6 made up half a profile
    p = Profile()
    for n in range(60):
        p.add(_uuid(n), n, 1.0 + (n % 3) / 7, 1_796_421_355.123456 + 7.3 * n, DAY, f"image-{n:07d}", "view")
    stored = json.loads(json.dumps(p.to_dict()))
    back = Profile.from_dict(stored)
    now = 1_796_421_355.0 + 600
    for c, score in p.scores(now, DAY).items():
        assert back.scores(now, DAY)[c] == pytest.approx(score, rel=1e-5)
    assert all(len(repr(v)) <= 12 for v in stored["session"].values())
    assert all(ref == round(ref, 3) for _, ref in stored["clusters"].values())
    # a view decays below 1e-3 of itself in the session after ~20 more events (0.7 ** 20 = 8e-4)
    assert 15 <= len(stored["session"]) <= 21, sorted(stored["session"])
    assert back.affinity(now, DAY, 0.5) == pytest.approx(p.affinity(now, DAY, 0.5), abs=1e-4)
