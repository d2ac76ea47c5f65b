"""The personal ranker contract (Amazon Personalize's Personalized-Ranking, at cluster level).

Given a user and the candidate cluster ids, return a score per cluster. Scores are non-negative and
sum to 1 over the input when the ranker has a signal for the user (as Personalize's do), or are all
zero when it has none (a new user). Negative feedback comes back beside them: ``demotions`` (cluster
-> share in [0, 1] taken off its candidates' blended scores) and ``hidden`` image ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class RankerResult:
    scores: dict[int, float]
    has_signal: bool
    ranker: str
    drivers: dict[int, list[str]] = field(default_factory=dict)  # cluster -> recent interactions
    demotions: dict[int, float] = field(default_factory=dict)  # cluster -> demotion in [0, 1]
    hidden: frozenset[str] = frozenset()  # image ids the user hid
    # issue 15, continuous style affinity (local ranker only): per-image scores replacing the cluster
    # scores in the blend, and per-image demotions from the user's negative style medoids
    item_scores: dict[str, float] | None = None
    item_demotions: dict[str, float] = field(default_factory=dict)

    @property
    def has_feedback(self) -> bool:
        """Anything to personalize with: a positive signal, a demoted style or a hidden image."""
        return self.has_signal or any(v > 0 for v in self.demotions.values()) or bool(self.hidden)


class PersonalRanker(Protocol):
    name: str

    async def rank(self, user_id: str, cluster_ids: Sequence[int]) -> RankerResult: ...


class RankerUnavailable(RuntimeError):
    """The ranker failed or timed out; the search falls back to pure relevance and says so."""
