"""Every user's profile on the current cluster model, kept in a key-value store (in the query worker:
its changelog-backed faust table ``profiles``; in a test: a dict).

A profile learnt on an earlier cluster model is remapped when it is read (``aligned``): each old
cluster's decayed score is shared out over the new clusters its images went to, so a re-clustering
does not restart personalization at zero. An event stamped with an earlier model's cluster id is
shared out the same way when it is learnt (``event_shares``). The ranker reads profiles through
``UserProfiles.get``; the query worker learns and forgets through the same object.

A second copy of an event (a new offset, the same id) is recognised in the window of recent event ids
of its source partition (``EventIdWindow``, in its own store: the query worker's table ``event-ids``),
a redelivery (the same offset) by the profile's source position.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from imgsearch.domain.centroids import NO_MODEL_VERSION, CentroidModel
from imgsearch.domain.event_ids import EventIdWindow
from imgsearch.domain.profile import Profile
from schemas.events import PersonalizationEvent

log = logging.getLogger(__name__)


def aligned(profile: Profile, model: CentroidModel | None, now: float, half_life_s: float) -> Profile:
    """The profile on ``model`` (remapped if it was learnt on an earlier one; as is without a model).
    A profile with no clusters, or one whose version has no remap to ``model`` (e.g. ``none``: learnt
    before any model was loaded), is taken as it is, on the model's version (it may be changed)."""
    if model is None or profile.version == model.version:
        return profile
    if not profile.clusters:
        profile.version = model.version
        return profile
    remap = model.remaps.get(profile.version)
    if remap is None:
        # "none": learnt before any model was loaded here (its ids are the model of its events)
        report = log.debug if profile.version == NO_MODEL_VERSION else log.warning
        report("profile on cluster model %s has no remap to %s; kept as is", profile.version, model.version)
        profile.version = model.version
        return profile
    return profile.remapped(remap, model.version, now, half_life_s)


def event_shares(cluster_id: int, centroid_version: str, model: CentroidModel | None) -> dict[int, float]:
    """An event's weight shares over the clusters of ``model``: its own cluster, or, for an event of an
    earlier model with a remap to this one, the clusters its old cluster's images went to."""
    if model is not None and centroid_version != model.version:
        remap = model.remaps.get(centroid_version)
        if remap is not None:
            return dict(remap.get(cluster_id, {}))
    return {cluster_id: 1.0}


class UserProfiles:
    def __init__(
        self,
        store: MutableMapping[str, Any],
        centroids: Callable[[], CentroidModel | None],
        half_life_s: float,
        *,
        event_ids: MutableMapping[str, Any] | None = None,
        session_decay: float = 0.7,
        affinity_merge_sim: float = 0.8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        # the recent event ids per source partition (a dict of its own unless a store is given)
        self._ids = EventIdWindow({} if event_ids is None else event_ids)
        self._centroids = centroids
        self._half_life = half_life_s
        self._session_decay = session_decay
        self._merge_sim = affinity_merge_sim
        self._clock = clock

    def get(self, user_id: str) -> dict[str, Any] | None:
        """The user's profile (as stored: a plain dict) on the current cluster model, or None."""
        raw = self._store.get(user_id)
        if raw is None:
            return None
        return aligned(Profile.from_dict(raw), self._centroids(), self._clock(), self._half_life).to_dict()

    def learn(
        self,
        ev: PersonalizationEvent,
        style: tuple[Sequence[float], str] | None = None,
        source: tuple[int, int] | None = None,
    ) -> bool:
        """Add one event (and its image's style vector and style model, for the continuous affinity);
        False (nothing changes) if it was counted already. ``source``: the event's (partition,
        offset) on the personalization topic, which recognises a redelivery."""
        partition = source[0] if source is not None else None
        if self._ids.seen(ev.event_id, partition):
            return False
        known = self.get(ev.user_id)
        model = self._centroids()
        # a new user's profile starts on the current cluster model (the shares below are in its ids)
        start = model.version if model is not None else NO_MODEL_VERSION
        profile = Profile.from_dict(known) if known is not None else Profile(version=start)
        at = ev.timestamp.timestamp()
        changed = profile.add_shares(
            ev.event_id,
            event_shares(ev.cluster_id, ev.centroid_version, model),
            ev.weight,
            at,
            self._half_life,
            ev.image_id,
            ev.event_type.value,
            self._session_decay,
            source,
        )
        if changed and style is not None:
            profile.add_style(style[0], ev.weight, at, self._half_life, style[1], self._merge_sim)
        if changed:
            self._store[ev.user_id] = profile.to_dict()
            self._ids.remember(ev.event_id, partition)
        return changed

    def forget(self, user_id: str) -> bool:
        """Delete the user's profile; True if there was one."""
        existed = user_id in self._store
        if existed:
            del self._store[user_id]
        return existed
