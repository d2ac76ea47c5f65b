import asyncio

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
    assert p.add("e1", 1, 3.0, at=10.0, half_life_s=DAY)
    assert not p.add("e1", 1, 3.0, at=10.0, half_life_s=DAY)
    assert p.scores(10.0, DAY)[1] == pytest.approx(3.0)


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
