"""The personal ranker contract (Amazon Personalize's Personalized-Ranking, at cluster level).

Given a user and the candidate cluster ids, return a score per cluster. Scores are non-negative and
sum to 1 over the input when the ranker has a signal for the user (as Personalize's do), or are all
zero when it has none (a new user).
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


class PersonalRanker(Protocol):
    name: str

    async def rank(self, user_id: str, cluster_ids: Sequence[int]) -> RankerResult: ...


class RankerUnavailable(RuntimeError):
    """The ranker failed or timed out; the search falls back to pure relevance and says so."""
