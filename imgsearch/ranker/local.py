"""The local personal ranker: a real-time, time-decayed cluster profile per user.

Profiles live in the query worker's faust table (changelog-backed, co-partitioned with search
requests by user id), so the ranker reads them locally (through
``imgsearch.domain.user_profiles.UserProfiles.get``, which also remaps a profile learnt on an earlier
cluster model); this class only turns a profile into the ranker contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from imgsearch.domain.cooccurrence import CooccurrenceModel
from imgsearch.domain.profile import Profile, demotion, normalise
from imgsearch.ranker.base import RankerResult

if TYPE_CHECKING:
    from imgsearch.config import Settings


class LocalProfileRanker:
    name = "local-profile"

    def __init__(
        self,
        get_profile: Callable[[str], Mapping[str, Any] | None],
        half_life_s: float,
        clock: Callable[[], float] = time.time,
        recency_weight: float = 0.6,
        model: Callable[[], CooccurrenceModel | None] = lambda: None,
        neighbour_strength: float = 0.5,
        new_user: str = "relevance",
        dislike_scale: float = 3.0,
        affinity_mode: str = "cluster",
        affinity_bandwidth: float = 0.1,
    ) -> None:
        if affinity_mode not in ("cluster", "continuous"):
            raise ValueError(f"affinity mode must be cluster or continuous, got {affinity_mode!r}")
        if new_user not in ("relevance", "popularity"):
            raise ValueError(f"new-user policy must be relevance or popularity, got {new_user!r}")
        self._get = get_profile
        self._half_life = half_life_s
        self._recency = recency_weight
        self._model = model
        self._strength = neighbour_strength
        self._new_user = new_user
        self._clock = clock
        self._dislike_scale = dislike_scale
        self.affinity_mode = affinity_mode
        self._bandwidth = affinity_bandwidth

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        get_profile: Callable[[str], Mapping[str, Any] | None],
        model: Callable[[], CooccurrenceModel | None] = lambda: None,
    ) -> LocalProfileRanker:
        """The query worker's local ranker: profiles from ``get_profile`` (``UserProfiles.get``), the
        offline model from ``model`` (the newest one published), the rest from the settings."""
        return cls(
            get_profile,
            settings.profile_half_life_s,
            recency_weight=settings.recency_weight,
            model=model,
            neighbour_strength=settings.neighbour_strength,
            new_user=settings.new_user_policy,
            dislike_scale=settings.dislike_scale,
            affinity_mode=settings.affinity_mode,
            affinity_bandwidth=settings.affinity_bandwidth,
        )

    async def rank(self, user_id: str, cluster_ids: Sequence[int]) -> RankerResult:
        profile = Profile.from_dict(self._get(user_id))
        now = self._clock()
        raw = profile.affinity(now, self._half_life, self._recency)
        model = self._model()
        name = self.name
        if model is not None and raw and model.centroid_version == profile.version:
            raw = model.neighbours(raw, self._strength)
            name = f"{self.name}+cooccurrence"
        elif model is not None and not raw and self._new_user == "popularity":
            raw = model.popular()
            name = "local-popularity"
        scores = normalise(raw, cluster_ids)
        has_signal = any(v > 0 for v in scores.values())
        drivers = {c: profile.drivers(c) for c in scores if scores[c] > 0}
        wanted = set(cluster_ids)
        demotions = {
            c: v
            for c, v in demotion(profile.aversion(now, self._half_life, self._recency), self._dislike_scale).items()
            if c in wanted
        }
        return RankerResult(
            scores=scores,
            has_signal=has_signal,
            ranker=name,
            drivers=drivers,
            demotions=demotions,
            hidden=frozenset(profile.hidden),
        )

    def style_model(self, user_id: str) -> str:
        """Issue 15: the style model of the user's interest medoids if the continuous mode is on and the
        user has any ("" otherwise: nothing to fetch)."""
        if self.affinity_mode != "continuous":
            return ""
        medoids = Profile.from_dict(self._get(user_id)).medoids()
        return medoids.model if medoids else ""

    def style_affinity(
        self, user_id: str, styles: Mapping[str, Sequence[float]]
    ) -> tuple[dict[str, float] | None, dict[str, float]]:
        """Per-candidate (image id -> style vector) affinity scores (None: no positive medoids, the
        cluster scores stay) and demotions from the negative medoids."""
        medoids = Profile.from_dict(self._get(user_id)).medoids()
        now = self._clock()
        scores = medoids.scores(styles, now, self._half_life, self._bandwidth)
        aversion = medoids.aversion(styles, now, self._half_life, self._bandwidth)
        return (scores or None), demotion(aversion, self._dislike_scale)
