"""A user's real-time cluster profile: two views of the same weighted interactions per cluster.

- long-term: ``Σ_events weight · 2^(-(now - t)/half_life)`` (days): the user's lasting taste;
- session: every new event multiplies the earlier session scores by ``session_decay`` (e.g. 0.7)
  before adding its own weight, so the last few interactions dominate: when a user switches style
  mid-session (the article's designer), the next searches follow after a few interactions.

``affinity = (1-β)·long/Σlong + β·session/Σsession`` with β the recency weight. A profile is a
per-cluster distribution, not one averaged vector: a user who likes two styles keeps both
(multi-interest, as PinnerSage argues). Stored as plain dicts for a faust table (changelog-backed).

Negative feedback (``hide``, ``not_my_style``: negative weights) lands in the same signed scores, so a
style can go below zero and later likes can bring it back. ``affinity`` shares out the positive part
only; ``aversion`` is the negative part (long-term and session, mixed like the affinity), which the
ranker turns into a demotion. A hidden image is also remembered by id (the last MAX_HIDDEN) and left
out of that user's results.

De-duplication (issue 16): an event redelivered from the
personalization topic (a query worker restarted before it committed) is recognised by its source
position - ``applied`` keeps the partition, the highest offset and the newest event time applied, a
few bytes per user - however old it is. An event published twice (at two offsets: by the mapper after
a crash before its commit, or by an upstream app) is recognised by its id in its partition's window of
recent ids (``imgsearch.domain.event_ids``, beside the profiles: ``UserProfiles``), so a profile's
size does not grow with its user's history. A profile from before that change keeps the ids it held
(``seen``, read only: still recognised, never extended).
An older offset with a newer event time than any applied is taken as new (the topic was recreated),
so a reset topic does not freeze profiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from imgsearch.domain.affinity import StyleMedoids
from imgsearch.domain.event_ids import short_id

MAX_HIDDEN = 500
MAX_DRIVERS = 3  # the interactions named per cluster in an explanation
MAX_RECENT = 20  # the interactions kept for explanations, in all
# A session score below this (in event-weight units: a view is 1) is dropped: it weighs less than 0.1 %
# of one view, and with the default decay 0.7 a favorite leaves the session ~20 events later, so the
# session holds about as many clusters as the last ~20 events touched (it kept ~45 at 1e-6).
SESSION_FLOOR = 1e-3
K = TypeVar("K")  # a cluster id (int) or an image id (str, continuous affinity)


@dataclass
class Profile:
    # cluster id (as str for JSON) -> [score at ref time, ref time (epoch s)]
    clusters: dict[str, list[float]] = field(default_factory=dict)
    # a profile from before the partition windows (issue 16): the ids or digests it kept, read only
    seen: list[str] = field(default_factory=list)
    # recent (cluster, image id, event type) that drove the profile, newest last
    recent: list[list[str]] = field(default_factory=list)
    # the centroid model version the cluster ids belong to
    version: str = "none"
    # cluster id -> event-decayed session score
    session: dict[str, float] = field(default_factory=dict)
    # image ids the user hid, newest last
    hidden: list[str] = field(default_factory=list)
    # continuous style affinity (issue 15): interest medoids in style-vector space, see domain/affinity.py
    styles: dict[str, Any] = field(default_factory=dict)
    # [partition, offset, event time (epoch s)]: the newest source position applied, and the newest
    # event time among those applied (empty: none yet, or events without a source position)
    applied: list[float] = field(default_factory=list)
    # how many events were applied (counted once each): for operators and the fault tests
    count: int = 0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Profile:
        if not raw:
            return cls()
        return cls(
            clusters={str(k): [float(v[0]), float(v[1])] for k, v in dict(raw.get("clusters", {})).items()},
            seen=[str(x) for x in raw.get("seen", [])],
            recent=[[str(y) for y in x] for x in raw.get("recent", [])],
            version=str(raw.get("version", "none")),
            session={str(k): float(v) for k, v in dict(raw.get("session", {})).items()},
            hidden=[str(x) for x in raw.get("hidden", [])],
            styles=dict(raw.get("styles") or {}),
            applied=[float(x) for x in raw.get("applied", [])],
            count=int(raw.get("n", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored form (JSON in the changelog). Scores keep 6 significant digits and times
        milliseconds: a full float's 17 digits made up half of a profile's bytes (issue 16)."""
        return {
            "clusters": {k: [_sig(score), round(ref, 3)] for k, (score, ref) in self.clusters.items()},
            **({"seen": self.seen} if self.seen else {}),
            "recent": self.recent,
            "version": self.version,
            "session": {k: _sig(v) for k, v in self.session.items()},
            "hidden": self.hidden,
            **({"styles": self.styles} if self.styles else {}),
            **({"applied": self.applied} if self.applied else {}),
            "n": self.count,
        }

    def remapped(
        self, remap: Mapping[int, Mapping[int, float]], version: str, now: float, half_life_s: float
    ) -> Profile:
        """The same history on another cluster model: each old cluster's decayed score is shared
        out over the new clusters its images went to, so personalization does not restart at zero."""
        clusters: dict[str, list[float]] = {}
        for old, score in self.scores(now, half_life_s).items():
            for new, share in remap.get(old, {}).items():
                entry = clusters.setdefault(str(new), [0.0, now])
                entry[0] += score * share
        recent = [
            [str(max(remap.get(int(c), {0: 1.0}).items(), key=lambda kv: kv[1])[0]), img, et]
            for c, img, et in self.recent
            if int(c) in remap
        ]
        session: dict[str, float] = {}
        for old_key, score in self.session.items():
            for new, share in remap.get(int(old_key), {}).items():
                session[str(new)] = session.get(str(new), 0.0) + score * share
        return Profile(
            clusters=clusters,
            seen=list(self.seen),
            recent=recent,
            version=version,
            session=session,
            hidden=list(self.hidden),
            styles=dict(self.styles),  # style vectors do not depend on the cluster model
            applied=list(self.applied),
            count=self.count,
        )

    def add(
        self,
        event_id: str,
        cluster_id: int,
        weight: float,
        at: float,
        half_life_s: float,
        image_id: str = "",
        event_type: str = "",
        session_decay: float = 0.7,
        source: tuple[int, int] | None = None,
    ) -> bool:
        """Add one event; returns False (and changes nothing) if it was applied already."""
        return self.add_shares(
            event_id, {cluster_id: 1.0}, weight, at, half_life_s, image_id, event_type, session_decay, source
        )

    def applied_already(self, event_id: str, at: float, source: tuple[int, int] | None) -> bool:
        """A redelivery (at or below the applied offset of its partition, and no newer than every
        event applied), or an id a profile from before the partition windows still holds."""
        if self.seen and (short_id(event_id) in self.seen or event_id in self.seen):
            return True
        if source is None or len(self.applied) != 3:
            return False
        partition, offset, newest = int(self.applied[0]), int(self.applied[1]), self.applied[2]
        return source[0] == partition and source[1] <= offset and at <= newest

    def add_shares(
        self,
        event_id: str,
        shares: Mapping[int, float],
        weight: float,
        at: float,
        half_life_s: float,
        image_id: str = "",
        event_type: str = "",
        session_decay: float = 0.7,
        source: tuple[int, int] | None = None,
    ) -> bool:
        """Add one event whose weight is shared over clusters (an event from an earlier cluster
        model, remapped); False if it was applied already. ``source``: its (partition, offset) on
        the personalization topic."""
        if self.applied_already(event_id, at, source):
            return False
        if source is not None:
            newest = max(at, self.applied[2]) if len(self.applied) == 3 and int(self.applied[0]) == source[0] else at
            self.applied = [float(source[0]), float(source[1]), newest]
        self.session = {
            k: v * session_decay for k, v in self.session.items() if abs(v * session_decay) >= SESSION_FLOOR
        }
        for cluster_id, share in shares.items():
            self.session[str(cluster_id)] = self.session.get(str(cluster_id), 0.0) + weight * share
        for cluster_id, share in shares.items():
            key = str(cluster_id)
            score, ref = self.clusters.get(key, [0.0, at])
            if at >= ref:
                score = score * _decay(at - ref, half_life_s) + weight * share
                ref = at
            else:  # a late event: decay it to the reference time instead
                score = score + weight * share * _decay(ref - at, half_life_s)
            self.clusters[key] = [score, ref]
        self.count += 1
        if event_type == "hide" and image_id:
            if image_id in self.hidden:
                self.hidden.remove(image_id)
            self.hidden.append(image_id)
            del self.hidden[:-MAX_HIDDEN]
        if shares and weight > 0:  # the explanations ("because you liked ...") name positive events only
            top = str(max(shares.items(), key=lambda kv: kv[1])[0])
            self.recent.append([top, image_id, event_type])
            # what ``drivers`` can show: the newest few per cluster, so a busy style does not push the
            # others' explanations out, and the list is bounded by design (issue 16: <= 1 KB per user)
            mine = [i for i, r in enumerate(self.recent) if r[0] == top]
            for i in reversed(mine[:-MAX_DRIVERS]):
                del self.recent[i]
            del self.recent[:-MAX_RECENT]
        return True

    def scores(self, now: float, half_life_s: float) -> dict[int, float]:
        """Decayed affinity per cluster at time ``now``."""
        return {int(k): score * _decay(max(0.0, now - ref), half_life_s) for k, (score, ref) in self.clusters.items()}

    def affinity(self, now: float, half_life_s: float, recency_weight: float) -> dict[int, float]:
        """Long-term and session preferences (their positive parts), each as shares summing to 1,
        mixed by the recency weight."""
        long = {c: v for c, v in self.scores(now, half_life_s).items() if v > 0}
        session = {int(k): v for k, v in self.session.items() if v > 0}
        return _mix_shares(long, session, recency_weight)

    def aversion(self, now: float, half_life_s: float, recency_weight: float) -> dict[int, float]:
        """How strongly the user has turned against each cluster, in event-weight units (the negative
        parts of the long-term and session scores, mixed by the recency weight, not normalised: three
        "not my style" weigh more than one)."""
        long = {c: -v for c, v in self.scores(now, half_life_s).items() if v < 0}
        session = {int(k): -v for k, v in self.session.items() if v < 0}
        beta = recency_weight if session else 0.0
        if not long:
            beta = 1.0
        out: dict[int, float] = {}
        for c, v in long.items():
            out[c] = (1 - beta) * v
        for c, v in session.items():
            out[c] = out.get(c, 0.0) + beta * v
        return {c: v for c, v in out.items() if v > 0}

    def drivers(self, cluster_id: int) -> list[str]:
        """Recent interactions on this cluster, newest first ("favorite:img-12")."""
        key = str(cluster_id)
        return [f"{etype}:{img}" for c, img, etype in reversed(self.recent) if c == key][:MAX_DRIVERS]

    def medoids(self) -> StyleMedoids:
        """The continuous style interests (issue 15), a copy."""
        return StyleMedoids.from_dict(self.styles)

    def add_style(
        self,
        style: Sequence[float],
        weight: float,
        at: float,
        half_life_s: float,
        model: str,
        merge_sim: float = 0.8,
    ) -> None:
        """Learn an event's image style vector into the medoids (after ``add``/``add_shares`` accepted it)."""
        medoids = self.medoids()
        medoids.add(style, weight, at, half_life_s, model, merge_sim)
        self.styles = medoids.to_dict()


def _sig(x: float) -> float:
    """``x`` to 6 significant digits (its shortest JSON form is then at most ~12 characters)."""
    return float(f"{x:.6g}")


def _mix_shares(long: Mapping[int, float], session: Mapping[int, float], recency_weight: float) -> dict[int, float]:
    long_total = sum(long.values())
    session_total = sum(session.values())
    beta = recency_weight if session_total > 0 else 0.0
    if long_total <= 0:
        beta = 1.0 if session_total > 0 else 0.0
    out: dict[int, float] = {}
    if long_total > 0 and beta < 1.0:
        for c, v in long.items():
            out[c] = (1 - beta) * v / long_total
    if session_total > 0 and beta > 0:
        for c, v in session.items():
            out[c] = out.get(c, 0.0) + beta * v / session_total
    return out


def demotion(aversion: Mapping[K, float], scale: float) -> dict[K, float]:
    """Aversion (event-weight units) -> a demotion in [0, 1): ``1 - 2^(-aversion/scale)``. With the
    default weights (not_my_style -3) and scale 3: one "not my style" halves a style's scores, three
    cut them to 1/8."""
    if scale <= 0:
        return {c: 1.0 for c, v in aversion.items() if v > 0}
    return {c: 1.0 - math.pow(2.0, -v / scale) for c, v in aversion.items() if v > 0}


def _decay(dt: float, half_life_s: float) -> float:
    if half_life_s <= 0:
        return 1.0
    return math.pow(2.0, -dt / half_life_s)


def normalise(scores: Mapping[int, float], candidates: Iterable[int]) -> dict[int, float]:
    """Scores over the candidate clusters, summing to 1 (Personalize's contract); zeros if no signal."""
    cands = list(dict.fromkeys(candidates))
    total = sum(max(0.0, scores.get(c, 0.0)) for c in cands)
    if total <= 0:
        return {c: 0.0 for c in cands}
    return {c: max(0.0, scores.get(c, 0.0)) / total for c in cands}
