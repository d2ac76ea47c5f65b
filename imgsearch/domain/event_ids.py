"""The event ids applied lately, per source partition: a second copy of an event counts once (issue 16).

A profile recognises a *redelivery* by its source position (``Profile.applied``: a few bytes per
user). A *second copy* at a new offset - the mapper published it again after a crash before its
commit, or an upstream app sent it again - has a new position and is recognised by its id here. Until
issue 16's last step each profile kept the last 512 ids itself (7.7 KB for an active user, rewritten to
the changelog with every interaction); now the window belongs to the partition, not the user, so its
size is set by design, not by anyone's history:

- a partition's window is ``buckets`` small lists of id digests (``short_id``, 48 bits), an id's
  bucket chosen by its digest; each list keeps its last ``per_bucket`` digests. With the defaults
  (8,192 × 16) a partition remembers about its last 131,072 events - far more than the "hundreds of
  events later" an upstream app republishes after a crash (tests/integration/test_faults.py) - in
  about 2 MB, however many users it serves;
- one event rewrites one bucket (16 digests, ~0.25 KB) in the store, not a whole history (fewer,
  larger buckets would hold the window more evenly and write more per event: 4,096 × 32 wrote
  ~350 B per event in bench/profile_size.py);
- keyed ``"<partition>:<bucket>"`` in the query worker's faust table ``event-ids``, whose changelog
  records go to the partition of the event being processed (faust's default), so the window moves
  with its partition on a rebalance and is restored with it.

Eviction is per bucket, oldest first: a bucket that fills faster than the others forgets sooner, so
the guaranteed window is a little below ``buckets × per_bucket`` (``window()`` is the nominal size).
With 8,192 buckets, a bucket has forgotten an id after 16 more ids landed in it: at 50,000 events
later that has happened to 0.06 % of the ids (Poisson, mean 6.1). A false duplicate needs a new id's
48-bit digest to equal one of the 16 in its bucket: about 1 in 2 × 10^13 per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from typing import Any

BUCKETS = 8192
PER_BUCKET = 16
NO_PARTITION = "-"  # events learnt without a source position (a test, a direct call)


def short_id(event_id: str) -> str:
    """A 48-bit digest of an event id: 12 hex characters instead of a uuid's 32."""
    return hashlib.blake2b(event_id.encode(), digest_size=6).hexdigest()


class EventIdWindow:
    def __init__(self, store: MutableMapping[str, Any], buckets: int = BUCKETS, per_bucket: int = PER_BUCKET) -> None:
        if buckets < 1 or per_bucket < 1:
            raise ValueError(f"an event id window needs buckets >= 1 and per_bucket >= 1, not {buckets}, {per_bucket}")
        self._store = store
        self._buckets = buckets
        self._per_bucket = per_bucket

    def window(self) -> int:
        """The nominal number of recent events a partition remembers."""
        return self._buckets * self._per_bucket

    def _key(self, digest: str, partition: int | None) -> str:
        where = NO_PARTITION if partition is None else str(partition)
        return f"{where}:{int(digest, 16) % self._buckets}"

    def seen(self, event_id: str, partition: int | None) -> bool:
        """Whether this id is among the partition's recent ones."""
        digest = short_id(event_id)
        return digest in (self._store.get(self._key(digest, partition)) or ())

    def remember(self, event_id: str, partition: int | None) -> None:
        """Add an applied event's id (its bucket is rewritten: the oldest digest beyond the cap goes)."""
        digest = short_id(event_id)
        key = self._key(digest, partition)
        ids = [str(x) for x in self._store.get(key) or ()]
        if digest in ids:
            return
        ids.append(digest)
        self._store[key] = ids[-self._per_bucket :]
