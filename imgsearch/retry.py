"""Retry with exponential backoff and jitter, for transient faults at the edges."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


async def retry_async(
    fn: Callable[[], Awaitable[T]],
    *,
    is_transient: Callable[[BaseException], bool],
    what: str,
    attempts: int | None = 8,
    base_s: float = 0.2,
    max_s: float = 10.0,
) -> T:
    """Call ``fn`` until it succeeds; transient errors are retried with backoff, ``attempts`` times in
    all (``None``: until it succeeds — for writes that must not be skipped)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = min(max_s, base_s * 2 ** min(attempt - 1, 20)) * (0.5 + random.random() / 2)
            log.warning(
                "%s failed (%s: %s); retry %d/%s in %.2fs",
                what,
                type(exc).__name__,
                exc,
                attempt,
                attempts or "∞",
                delay,
            )
            await asyncio.sleep(delay)
