"""Issue 16, a million users: what the profiles table holds and writes per user, by simulation
through the real profile code (``UserProfiles.learn`` over plain dicts, exactly what the query
worker's faust tables ``profiles`` and ``event-ids`` get; Kafka and faust are not in the loop).

Users have heavy-tailed histories (log-normal event counts scaled to ``--events`` in all), a few
favourite styles each out of ``--clusters``, and the product's event mix, spread over
``--partitions`` source partitions. Printed and written to ``bench-results/profile_size.json``:
bytes per stored profile (p50 / p99 / max, and the table in all), the event-id windows (one per
partition, a fixed size), and the bytes written to the changelogs (every update rewrites the user's
profile and one bucket of its partition's window). The figures of the profile before the windows
(the last 512 id digests in each profile) are in docs/benchmarks.md, measured on main 12969ec.

    .venv/bin/python bench/profile_size.py                      # 1M users, 10M interactions
    .venv/bin/python bench/profile_size.py --users 10000 --events 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, pct, say
from imgsearch.domain.user_profiles import UserProfiles
from imgsearch.progress import progress_bar
from schemas.events import EventType, PersonalizationEvent

MIX = [(EventType.VIEW, 0.6), (EventType.CLICK, 0.2), (EventType.FAVORITE, 0.12), (EventType.DOWNLOAD, 0.05),
       (EventType.HIDE, 0.02), (EventType.NOT_MY_STYLE, 0.01)]  # fmt: skip
WEIGHTS = {EventType.VIEW: 1.0, EventType.CLICK: 1.0, EventType.FAVORITE: 3.0, EventType.DOWNLOAD: 5.0,
           EventType.HIDE: -1.0, EventType.NOT_MY_STYLE: -3.0}  # fmt: skip


def event_counts(rng: np.random.Generator, users: int, events: int) -> np.ndarray:
    """Heavy-tailed events per user (log-normal, sigma 1.2), at least one each, summing to ``events``."""
    raw = rng.lognormal(0.0, 1.2, users)
    counts = np.maximum(1, np.floor(raw / raw.sum() * events)).astype(np.int64)
    counts[np.argmax(counts)] += max(0, events - int(counts.sum()))
    return counts


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


class Changelogged(dict[str, Any]):
    """A table as its changelog sees it: every write sends the key and the whole value."""

    written = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.written += len(key) + compact(value)
        super().__setitem__(key, value)


def simulate(users: int, events: int, clusters: int, seed: int, partitions: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    counts = event_counts(rng, users, events)
    kinds, probs = zip(*MIX, strict=True)
    sizes = np.zeros(users, dtype=np.int64)
    profile_bytes_written = 0
    event_ids = Changelogged()  # every partition's window (keys "<partition>:<bucket>")
    t0 = time.perf_counter()
    offset = 0
    with progress_bar(int(counts.sum()), "interactions", unit="ev") as bar:
        for u in range(users):
            store = Changelogged()  # one user at a time: the table's entry for this user
            profiles = UserProfiles(store, lambda: None, 7 * 86400.0, event_ids=event_ids)
            styles = rng.choice(clusters, size=int(rng.integers(1, 6)), replace=False)
            n = int(counts[u])
            picks = rng.choice(len(kinds), size=n, p=probs)
            at = 1.7e9 + np.cumsum(rng.exponential(60.0, n))
            for i in range(n):
                kind = kinds[int(picks[i])]
                ev = PersonalizationEvent(
                    event_id=uuid.uuid4().hex, user_id=f"user-{u}", cluster_id=int(styles[i % len(styles)]),
                    image_id=f"images/{int(rng.integers(0, 10**7)):07d}", event_type=kind, weight=WEIGHTS[kind],
                    timestamp=datetime.fromtimestamp(float(at[i]), UTC), centroid_version="none",
                )  # fmt: skip
                offset += 1
                profiles.learn(ev, source=(u % partitions, offset))
            sizes[u] = compact(store[f"user-{u}"])
            profile_bytes_written += store.written
            bar.update(n)
    seconds = time.perf_counter() - t0
    window_bytes = sum(len(k) + compact(v) for k, v in event_ids.items())
    return {
        "profile": "issue 16: source position in the profile, the ids in per-partition windows",
        "users": users,
        "interactions": int(counts.sum()),
        "events_per_user": {"mean": round(float(counts.mean()), 2), **pct(counts, (50, 99)), "max": int(counts.max())},
        "bytes_per_profile": {"mean": round(float(sizes.mean()), 1), **pct(sizes, (50, 99)), "max": int(sizes.max())},
        "table_mb": round(float(sizes.sum()) / 2**20, 1),
        "event_id_windows": {
            "partitions": partitions,
            "mb": round(window_bytes / 2**20, 2),
            "mb_per_partition": round(window_bytes / partitions / 2**20, 2),
        },
        "changelog_mb_written": {
            "profiles": round(profile_bytes_written / 2**20, 1),
            "event_ids": round(event_ids.written / 2**20, 1),
            "per_interaction_bytes": round((profile_bytes_written + event_ids.written) / int(counts.sum()), 1),
        },
        "seconds": round(seconds, 1),
        "interactions_per_s": round(int(counts.sum()) / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--partitions", type=int, default=4, help="source partitions of the personalization topic")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    say(f"{args.users} users, {args.events} interactions, {args.clusters} styles, {args.partitions} partitions")
    res = simulate(args.users, args.events, args.clusters, args.seed, args.partitions)
    res["machine"] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    out = args.out or REPO / "bench-results" / "profile_size.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
