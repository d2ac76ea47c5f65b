"""Continuous style affinity (issue 15): a few interest medoids per user in style-vector space.

PinnerSage (Pal et al., KDD 2020) represents a user by a few medoids of the embeddings of their recent
actions, each with an importance (a time-decayed count), instead of one averaged vector or a set of
discrete clusters. Here the same idea runs online and bounded, on the style vector of each interacted
image:

- **positive** events (view, click, favorite, download): the nearest medoid within ``merge_sim``
  (cosine) absorbs the event (its importance decays to the event time, then adds the weight; its
  running weighted mean moves; the medoid becomes the new image's vector if that lies closer to the
  mean than the current medoid, so the representative is always a real interacted image, as a medoid
  is); otherwise the event opens a medoid of its own, evicting the least important one beyond
  ``MAX_MEDOIDS`` (recent interests always get in);
- **negative** events (hide, not_my_style): they push away twice. Positive medoids within
  ``merge_sim`` of the disliked image lose importance (``|weight| · similarity``; at zero they go),
  and the image joins the user's negative medoids (at most ``MAX_NEGATIVE``, same merge rule), whose
  similarity to a candidate becomes that candidate's demotion.

A candidate with style vector ``x`` scores ``Σ_j share_j · exp((cos(x, m_j) - 1) / bandwidth)`` over the
positive medoids (shares: importance / total, decayed to query time), in (0, 1]: an image near a
cluster border scores for both neighbours by how near it is, not all-or-nothing. Its aversion is
``Σ_n importance_n · exp((cos(x, n_n) - 1) / bandwidth)`` in event-weight units, turned into a demotion
as the cluster profile's is (``imgsearch.domain.profile.demotion``).

Bounded: at most MAX_MEDOIDS + MAX_NEGATIVE medoids, each one style vector (+ the running mean for the
positive ones) of the style model's dimension, rounded to 4 decimals in the JSON profile. With the
shipped 16-dim style head that is at most 1.9 KB of JSON per user (832 bytes as float32); with the
96-dim Gram-PCA vector 10.7 KB (5.0 KB as float32), measured on full medoid sets.
The vectors belong to one style model (``model``): an event of another style model starts the
medoids afresh (vectors of two models are not comparable).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAX_MEDOIDS = 5
MAX_NEGATIVE = 3
DECIMALS = 4


def _unit(v: Sequence[float] | NDArray[np.floating]) -> NDArray[np.float64]:
    a = np.asarray(v, dtype=np.float64).ravel()
    n = float(np.linalg.norm(a))
    return a / n if n > 1e-12 else a


def _decay(dt: float, half_life_s: float) -> float:
    if half_life_s <= 0:
        return 1.0
    return math.pow(2.0, -max(0.0, dt) / half_life_s)


def _rounded(v: NDArray[np.floating]) -> list[float]:
    return [round(float(x), DECIMALS) for x in v]


@dataclass
class Medoid:
    vector: NDArray[np.float64]  # unit: the style vector of one interacted image
    weight: float  # importance at ``at`` (event-weight units)
    at: float  # reference time, epoch s
    mean: NDArray[np.float64] | None = None  # weighted running sum of the absorbed vectors (positive only)

    def importance(self, now: float, half_life_s: float) -> float:
        return self.weight * _decay(now - self.at, half_life_s)

    def absorb(self, v: NDArray[np.float64], weight: float, at: float, half_life_s: float) -> None:
        d = _decay(at - self.at, half_life_s) if at >= self.at else 1.0
        late = 1.0 if at >= self.at else _decay(self.at - at, half_life_s)
        self.weight = self.weight * d + weight * late
        if self.mean is not None:
            self.mean = self.mean * d + weight * late * v
            centre = _unit(self.mean)
            if float(v @ centre) > float(self.vector @ centre):
                self.vector = v
        self.at = max(self.at, at)

    def to_list(self) -> list[Any]:
        out: list[Any] = [_rounded(self.vector), round(self.weight, 6), self.at]
        if self.mean is not None:
            out.append(_rounded(self.mean))
        return out

    @classmethod
    def from_list(cls, raw: Sequence[Any]) -> Medoid:
        mean = np.asarray(raw[3], dtype=np.float64) if len(raw) > 3 else None
        return cls(_unit(raw[0]), float(raw[1]), float(raw[2]), mean)


@dataclass
class StyleMedoids:
    model: str = ""  # the style model the vectors belong to
    positive: list[Medoid] = field(default_factory=list)
    negative: list[Medoid] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> StyleMedoids:
        if not raw:
            return cls()
        return cls(
            model=str(raw.get("model", "")),
            positive=[Medoid.from_list(x) for x in raw.get("pos", [])],
            negative=[Medoid.from_list(x) for x in raw.get("neg", [])],
        )

    def to_dict(self) -> dict[str, Any]:
        if not self.positive and not self.negative:
            return {}
        return {
            "model": self.model,
            "pos": [m.to_list() for m in self.positive],
            "neg": [m.to_list() for m in self.negative],
        }

    def __bool__(self) -> bool:
        return bool(self.positive or self.negative)

    def add(
        self,
        style: Sequence[float] | NDArray[np.floating],
        weight: float,
        at: float,
        half_life_s: float,
        model: str,
        merge_sim: float = 0.8,
    ) -> None:
        """Learn one event on an image with this style vector (from style model ``model``)."""
        if model != self.model:
            self.model, self.positive, self.negative = model, [], []
        v = _unit(style)
        if not np.isfinite(v).all() or float(np.linalg.norm(v)) < 0.5 or weight == 0:
            return
        if weight > 0:
            self._merge(self.positive, v, weight, at, half_life_s, merge_sim, MAX_MEDOIDS, with_mean=True)
            return
        # negative: weaken the positive interests near the disliked image, remember it as a negative one
        kept = []
        for m in self.positive:
            sim = float(m.vector @ v)
            if sim >= merge_sim:  # the medoid itself does not move: it only loses importance
                d = _decay(at - m.at, half_life_s) if at >= m.at else 1.0
                m.weight = m.weight * d + weight * sim
                m.mean = None if m.mean is None else m.mean * d
                m.at = max(m.at, at)
            if m.weight > 1e-9:
                kept.append(m)
        self.positive = kept
        self._merge(self.negative, v, -weight, at, half_life_s, merge_sim, MAX_NEGATIVE, with_mean=False)

    @staticmethod
    def _merge(
        medoids: list[Medoid],
        v: NDArray[np.float64],
        weight: float,
        at: float,
        half_life_s: float,
        merge_sim: float,
        limit: int,
        with_mean: bool,
    ) -> None:
        if medoids:
            sims = [float(m.vector @ v) for m in medoids]
            j = int(np.argmax(sims))
            if sims[j] >= merge_sim:
                medoids[j].absorb(v, weight, at, half_life_s)
                return
        if len(medoids) >= limit:  # evict the least important at this event's time
            weakest = min(range(len(medoids)), key=lambda i: (medoids[i].importance(at, half_life_s), medoids[i].at))
            del medoids[weakest]
        medoids.append(Medoid(v, weight, at, weight * v if with_mean else None))

    def scores(
        self,
        styles: Mapping[str, Sequence[float] | NDArray[np.floating]],
        now: float,
        half_life_s: float,
        bandwidth: float = 0.1,
    ) -> dict[str, float]:
        """Affinity in (0, 1] per candidate (image id -> style vector); {} without positive medoids."""
        imp = np.array([max(0.0, m.importance(now, half_life_s)) for m in self.positive])
        if not styles or imp.sum() <= 0:
            return {}
        shares = imp / imp.sum()
        ids, x = _matrix(styles)
        if x is None:
            return {}
        med = np.stack([m.vector for m in self.positive])
        if med.shape[1] != x.shape[1]:
            return {}
        k = np.exp((x @ med.T - 1.0) / max(bandwidth, 1e-6))
        return dict(zip(ids, (k @ shares).tolist(), strict=True))

    def aversion(
        self,
        styles: Mapping[str, Sequence[float] | NDArray[np.floating]],
        now: float,
        half_life_s: float,
        bandwidth: float = 0.1,
    ) -> dict[str, float]:
        """Aversion per candidate in event-weight units (> 0 only); {} without negative medoids."""
        if not styles or not self.negative:
            return {}
        ids, x = _matrix(styles)
        if x is None:
            return {}
        med = np.stack([m.vector for m in self.negative])
        if med.shape[1] != x.shape[1]:
            return {}
        imp = np.array([max(0.0, m.importance(now, half_life_s)) for m in self.negative])
        k = np.exp((x @ med.T - 1.0) / max(bandwidth, 1e-6))
        return {i: float(a) for i, a in zip(ids, (k @ imp).tolist(), strict=True) if a > 1e-9}


def _matrix(styles: Mapping[str, Sequence[float] | NDArray[np.floating]]) -> tuple[list[str], NDArray[Any] | None]:
    ids = list(styles)
    try:
        x = np.stack([_unit(styles[i]) for i in ids])
    except ValueError:  # vectors of different lengths
        return ids, None
    return ids, x
