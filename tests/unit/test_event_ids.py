"""imgsearch.domain.event_ids: the per-partition window of recent event ids (issue 16), and
UserProfiles counting a second copy of an event (a new offset, the same id) once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from imgsearch.domain.event_ids import EventIdWindow, short_id
from imgsearch.domain.user_profiles import UserProfiles
from schemas.events import EventType, PersonalizationEvent

DAY = 86400.0


def interaction(event_id: str, user: str = "u", at: float = 100.0) -> PersonalizationEvent:
    return PersonalizationEvent(
        event_id=event_id, user_id=user, cluster_id=0, image_id="i", event_type=EventType.VIEW,
        weight=1.0, timestamp=datetime.fromtimestamp(at, UTC), centroid_version="none",
    )  # fmt: skip


def test_a_second_copy_at_a_new_offset_counts_once_and_the_profile_holds_no_ids():
    store: dict = {}
    ids: dict = {}
    profiles = UserProfiles(store, lambda: None, DAY, event_ids=ids, clock=lambda: 100.0)
    assert profiles.learn(interaction("a"), source=(0, 7))
    assert profiles.learn(interaction("b"), source=(0, 8))
    assert not profiles.learn(interaction("a"), source=(0, 9))  # the mapper published "a" again
    assert store["u"]["n"] == 2 and "seen" not in store["u"]
    # the same id on another partition is another partition's business (its window is its own)
    assert profiles.learn(interaction("a", user="v"), source=(1, 0))
    assert {key.split(":")[0] for key in ids} == {"0", "1"}  # keyed "<partition>:<bucket>"
    assert sorted(d for digests in ids.values() for d in digests) == sorted(map(short_id, "aba"))


def test_an_upstream_copy_hundreds_of_events_later_is_still_caught():
    store: dict = {}
    profiles = UserProfiles(store, lambda: None, DAY, event_ids={}, clock=lambda: 100.0)
    for n in range(2000):  # one heavy user, then the first 600 published again at new offsets
        assert profiles.learn(interaction(f"e{n}", at=100.0 + n), source=(3, n))
    for n in range(600):
        assert not profiles.learn(interaction(f"e{n}", at=100.0 + n), source=(3, 2000 + n))
    assert store["u"]["n"] == 2000


def test_the_window_is_bounded_by_design_and_forgets_the_oldest_first():
    store: dict = {}
    window = EventIdWindow(store, buckets=4, per_bucket=3)
    assert window.window() == 12
    for n in range(100):
        window.remember(f"e{n}", 0)
    assert len(store) == 4 and all(len(v) == 3 for v in store.values())
    assert sum(window.seen(f"e{n}", 0) for n in range(100)) == 12
    assert window.seen("e99", 0) and not window.seen("e0", 0) and not window.seen("e99", 1)
    window.remember("e99", 0)  # remembering it again changes nothing
    assert sum(len(v) for v in store.values()) == 12


def test_the_default_window_holds_about_131k_events_per_partition_in_about_2_mb():
    store: dict = {}
    window = EventIdWindow(store)
    for n in range(window.window()):
        window.remember(f"{n:032x}", 5)
    kept = sum(window.seen(f"{n:032x}", 5) for n in range(window.window()))
    assert window.window() == 131_072 and kept > 0.9 * window.window()
    size = sum(len(k) + len(json.dumps(v, separators=(",", ":"))) for k, v in store.items())
    assert size < 2.2e6, size


def test_an_empty_window_is_refused():
    with pytest.raises(ValueError, match="buckets >= 1"):
        EventIdWindow({}, buckets=0)
