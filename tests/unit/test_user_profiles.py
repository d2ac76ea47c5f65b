"""imgsearch.domain.user_profiles: profiles on the current cluster model, pure (a dict as the store)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np

from imgsearch.domain.centroids import CentroidModel
from imgsearch.domain.profile import Profile
from imgsearch.domain.user_profiles import UserProfiles, aligned, event_shares
from schemas.events import EventType, PersonalizationEvent

DAY = 86400.0
V1 = CentroidModel("v1", "style", "f", np.eye(3, dtype=np.float32))
# v2 split v1's cluster 0 over clusters 1 and 2, and moved v1's cluster 1 to 0
V2 = CentroidModel("v2", "style", "f", np.eye(3, dtype=np.float32), {"v1": {0: {1: 0.75, 2: 0.25}, 1: {0: 1.0}}})


def profile_on(version: str, cluster: int = 0, score: float = 4.0) -> Profile:
    p = Profile(version=version)
    p.add("e1", cluster, score, 100.0, DAY, "img", "favorite")
    return p


def test_aligned_remaps_a_profile_of_an_earlier_model():
    moved = aligned(profile_on("v1"), V2, 100.0, DAY)
    assert moved.version == "v2" and moved.scores(100.0, DAY) == {1: 3.0, 2: 1.0}
    assert moved.recent == [["1", "img", "favorite"]]  # the explanation follows the largest share


def test_aligned_keeps_what_it_cannot_or_need_not_remap(caplog):
    same = profile_on("v2")
    assert aligned(same, V2, 100.0, DAY) is same
    assert aligned(profile_on("v1"), None, 100.0, DAY).version == "v1"  # no model loaded: as learnt
    empty = aligned(Profile(version="v0"), V2, 100.0, DAY)
    assert empty.version == "v2" and empty.clusters == {}
    with caplog.at_level(logging.DEBUG, logger="imgsearch.domain.user_profiles"):
        unknown = aligned(profile_on("v0"), V2, 100.0, DAY)  # no remap from v0: kept, with a warning
        none = aligned(profile_on("none"), V2, 100.0, DAY)  # learnt before any model: quietly
    assert unknown.version == none.version == "v2" and unknown.scores(100.0, DAY) == {0: 4.0}
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG]


def test_event_shares_of_an_earlier_models_event():
    assert event_shares(0, "v1", V2) == {1: 0.75, 2: 0.25}
    assert event_shares(0, "v2", V2) == {0: 1.0}
    assert event_shares(5, "v1", V2) == {}  # a cluster the remap does not know: counts nowhere
    assert event_shares(0, "v9", V2) == {0: 1.0} and event_shares(0, "v1", None) == {0: 1.0}


def event(n: int, cluster: int, version: str, user: str = "u") -> PersonalizationEvent:
    return PersonalizationEvent(
        event_id=f"e{n}", user_id=user, cluster_id=cluster, image_id=f"i{n}", event_type=EventType.FAVORITE,
        weight=3.0, timestamp=datetime.fromtimestamp(100.0, UTC), centroid_version=version,
    )  # fmt: skip


def test_user_profiles_learn_read_and_forget_on_the_current_model():
    store: dict = {}
    current = {"model": V1}
    profiles = UserProfiles(store, lambda: current["model"], DAY, clock=lambda: 100.0)
    assert profiles.get("u") is None
    assert profiles.learn(event(1, 0, "v1")) and not profiles.learn(event(1, 0, "v1"))  # redelivered: once
    assert store["u"]["version"] == "v1" and Profile.from_dict(profiles.get("u")).scores(100.0, DAY) == {0: 3.0}
    current["model"] = V2  # re-clustered: reads remap, the next event lands on the remapped profile
    assert Profile.from_dict(profiles.get("u")).scores(100.0, DAY) == {1: 2.25, 2: 0.75}
    assert store["u"]["version"] == "v1"  # a read writes nothing
    assert profiles.learn(event(2, 1, "v1"))  # an old-model event: v1 cluster 1 is v2 cluster 0
    assert store["u"]["version"] == "v2"
    assert Profile.from_dict(store["u"]).scores(100.0, DAY) == {1: 2.25, 2: 0.75, 0: 3.0}
    assert profiles.learn(event(3, 2, "v2", user="new")) and store["new"]["version"] == "v2"
    assert profiles.learn(event(4, 1, "none", user="style"), style=([1.0, 0.0], "style-m"))
    assert Profile.from_dict(store["style"]).medoids().model == "style-m"
    assert profiles.forget("u") and not profiles.forget("u") and "u" not in store
