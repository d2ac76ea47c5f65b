"""Issue 16, users and images through Kafka: the real interactions → profiles path under load.

Everything runs on the real engines (scripts/engines.sh, started if needed) with two real worker
processes, the interaction mapper and the query worker, on topics and consumer groups of this run's
own (a unique prefix, deleted at the end). Stages:

1. ``--images`` image-indexed events (synthetic ids, ``--clusters`` styles) are published; the mapper's
   global table ``image-clusters`` absorbs them (its changelog is watched to count them). Its RSS
   before and after: the memory a million-image table costs a mapper.
2. ``--events`` interactions of ``--users`` users (heavy-tailed histories, the product's event mix;
   bench/profile_size.py's model) are published at ``--rate`` per second, keyed by user, in random
   order over the users. Every ``--probe-every`` seconds a probe user publishes one interaction.
   **Freshness** is the time from publishing a probe to the first record of its user on the
   ``profiles`` changelog (written when the query worker has stored the profile that the next search
   reads: an upper bound on when a search could reflect it). The stage ends when every user's
   profile counts all of its events (the last changelog value of each user; nothing counted twice).
3. The query worker is killed (SIGKILL) and a new one started: **recovery** is the time from the
   start of the new process to the first probe learnt (the probe is published right at the start;
   the worker reads its tables' changelogs before it consumes). No profile may count more events
   after the restart (redelivered events recognised by the event-id windows).
4. The same for the mapper with its global table (a probe goes through both workers).

Printed and written to ``bench-results/profiles_load.json``: rates, freshness p50/p95/p99/max,
RSS per worker (VmRSS and the peak VmHWM from /proc), changelog records and bytes written (before
compaction), recovery times. docs/benchmarks.md "Profiles through Kafka" has a run's figures.

    .venv/bin/python bench/profiles_load.py                               # 1M images, 100k users, 1M events
    .venv/bin/python bench/profiles_load.py --images 20000 --users 2000 --events 20000   # ~2 min
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, machine_facts, process_memory_kb, say, stats
from bench.profile_size import MIX, event_counts
from bench.speed_env import delete_prefixed_topics, isolated_settings, wait_group
from consumers.runner import WorkerProcess, Workers, ensure_engines
from imgsearch.config import Settings
from imgsearch.kafka.admin import ensure_topics
from imgsearch.progress import progress_bar
from schemas.events import ImageIndexed, Interaction

CENTROIDS = "bench-none"  # the image-indexed events' centroid version (no cluster model is published)
TICK_S = 0.02


def rss_mb(wp: WorkerProcess) -> dict[str, float]:
    """VmRSS and VmHWM (the peak) of a worker process, in MB."""
    return {key: round(kb / 1024, 1) for key, kb in process_memory_kb(wp.proc.pid).items()}


@dataclass
class Watcher:
    """Reads the run's changelogs from their beginning: records and bytes per topic, the last event
    count of every user's profile, the time each probe user's profile is first written, and the
    number of image-clusters records (the global table's updates)."""

    settings: Settings
    topics: dict[str, str]  # short name -> topic
    records: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # user -> events counted (the last profile)
    probes_seen: dict[str, float] = field(default_factory=dict)  # probe user -> perf_counter
    probes_mapped: dict[str, float] = field(default_factory=dict)  # probe user -> on personalization-events
    raised: list[str] = field(default_factory=list)  # non-probe users whose count grew after `freeze`
    frozen: dict[str, int] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from imgsearch.connections import kafka_security

        consumer = AIOKafkaConsumer(
            **kafka_security(self.settings),
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            max_partition_fetch_bytes=8 * 2**20,
        )
        await consumer.start()
        try:
            tps: list[Any] = []
            for name in self.topics.values():
                for _ in range(100):
                    parts = consumer.partitions_for_topic(name)
                    if parts:
                        break
                    await consumer._client.force_metadata_update()
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError(f"changelog {name} does not exist")
                tps += [TopicPartition(name, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            short = {v: k for k, v in self.topics.items()}
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100, max_records=5000)
                now = time.perf_counter()
                for tp, msgs in batch.items():
                    name = short[tp.topic]
                    self.records[name] = self.records.get(name, 0) + len(msgs)
                    self.sizes[name] = self.sizes.get(name, 0) + sum(
                        len(m.key or b"") + len(m.value or b"") for m in msgs
                    )
                    if name == "profiles":
                        for m in msgs:
                            self._profile(json.loads(m.key), m.value, now)
                    elif name == "personalization":
                        for m in msgs:
                            user = (m.key or b"").decode()
                            if user.startswith("probe-"):
                                self.probes_mapped.setdefault(user, now)
        finally:
            await consumer.stop()

    def _profile(self, user: str, value: bytes | None, now: float) -> None:
        n = int(json.loads(value).get("n", 0)) if value else 0
        if user.startswith("probe-"):
            self.probes_seen.setdefault(user, now)
        elif self.frozen is not None and n > self.frozen.get(user, 0):
            self.raised.append(user)
        self.counts[user] = n

    def freeze(self) -> None:
        """From now on a non-probe profile that counts more events is an event counted twice."""
        self.frozen = dict(self.counts)


async def wait_until(check: Any, timeout: float, what: str, workers: Workers, poll: float = 0.1) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers.check_alive()
        if check():
            return time.perf_counter()
        await asyncio.sleep(poll)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s")


class Load:
    """The run's producer: image-indexed events, interactions, probes."""

    def __init__(self, settings: Settings) -> None:
        from aiokafka import AIOKafkaProducer

        from imgsearch.connections import kafka_security

        self.settings = settings
        self.producer = AIOKafkaProducer(
            **kafka_security(settings),
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        self.probe_sent: dict[str, float] = {}
        self._probes = 0

    async def interaction(self, user: str, image: str, kind: Any) -> Any:
        ev = Interaction(user_id=user, image_id=image, event_type=kind)
        return await self.producer.send(
            self.settings.topics.interactions().name, key=user.encode(), value=ev.to_bytes()
        )

    async def probe(self, image: str) -> str:
        from schemas.events import EventType

        user = f"probe-{self._probes}"
        self._probes += 1
        self.probe_sent[user] = time.perf_counter()
        await self.interaction(user, image, EventType.FAVORITE)
        return user


def image_id(i: int) -> str:
    return f"img-{i:07d}"


async def seed_images(load: Load, watcher: Watcher, workers: Workers, n: int, clusters: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    ids = rng.integers(0, clusters, n)
    name = load.settings.topics.images_indexed().name
    t0 = time.perf_counter()
    last: Any = None
    with progress_bar(n, "image-indexed events", unit="ev") as bar:
        for i in range(n):
            ev = ImageIndexed(
                image_id=image_id(i), cluster_id=int(ids[i]), model_id="bench", centroid_version=CENTROIDS
            )
            last = await load.producer.send(name, key=ev.image_id.encode(), value=ev.to_bytes())
            if i % 5000 == 4999:
                bar.update(5000)
        bar.update(n % 5000)
    await last
    published = time.perf_counter()
    done = await wait_until(
        lambda: watcher.records.get("image-clusters", 0) >= n, max(120.0, n / 500), "image-clusters table", workers
    )
    return {
        "images": n,
        "publish_per_s": round(n / (published - t0), 1),
        "absorbed_per_s": round(n / (done - t0), 1),
        "seconds": round(done - t0, 1),
    }


async def interactions(load: Load, watcher: Watcher, workers: Workers, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    counts = event_counts(rng, args.users, args.events)
    order = np.repeat(np.arange(args.users), counts)
    rng.shuffle(order)
    kinds, probs = zip(*MIX, strict=True)
    picks = rng.choice(len(kinds), size=len(order), p=probs)
    images = rng.integers(0, args.images, len(order))
    per_tick = args.rate * TICK_S
    next_probe = time.perf_counter()
    probes: list[str] = []
    t0 = time.perf_counter()
    sent = 0
    owed = 0.0
    last: Any = None
    with progress_bar(len(order), "interactions", unit="ev") as bar:
        while sent < len(order):
            tick = time.perf_counter()
            owed += per_tick
            upto = min(len(order), sent + int(owed))
            owed -= upto - sent
            for j in range(sent, upto):
                last = await load.interaction(f"user-{int(order[j])}", image_id(int(images[j])), kinds[int(picks[j])])
            bar.update(upto - sent)
            sent = upto
            if tick >= next_probe:
                probes.append(await load.probe(image_id(int(rng.integers(0, args.images)))))
                next_probe += args.probe_every
            workers.check_alive()
            await asyncio.sleep(max(0.0, TICK_S - (time.perf_counter() - tick)))
    if last is not None:
        await last
    published = time.perf_counter()
    expected = {f"user-{u}": int(c) for u, c in enumerate(counts)}

    def all_counted() -> bool:
        return all(watcher.counts.get(u, 0) >= c for u, c in expected.items())

    done = await wait_until(all_counted, max(300.0, len(order) / 100), "every interaction counted", workers, poll=1.0)
    over = sorted(u for u, c in expected.items() if watcher.counts.get(u, 0) > c)
    fresh = [(watcher.probes_seen[p] - load.probe_sent[p]) * 1000 for p in probes if p in watcher.probes_seen]
    mapped = [(watcher.probes_mapped[p] - load.probe_sent[p]) * 1000 for p in probes if p in watcher.probes_mapped]
    return {
        "users": args.users,
        "interactions": len(order),
        "offered_per_s": args.rate,
        "published_per_s": round(len(order) / (published - t0), 1),
        "processed_per_s": round(len(order) / (done - t0), 1),
        "drain_after_publish_s": round(done - published, 1),
        "counted_exactly": not over,
        "counted_twice": len(over),
        "freshness_ms": stats(fresh),
        "mapped_ms": stats(mapped),  # publish -> the mapper's personalization event (the first hop)
        "probes": len(probes),
        "probes_seen": len(fresh),
    }


async def recovery(
    role: str, load: Load, watcher: Watcher, workers: Workers, wp: WorkerProcess, timeout: float
) -> tuple[WorkerProcess, dict[str, Any]]:
    """SIGKILL the worker, start a new one, publish probes from its start until one is learnt."""
    before = rss_mb(wp)
    workers.stop(wp, kill=True)
    workers.procs.remove(wp)
    started = time.perf_counter()
    new = workers.start(role)
    first = await load.probe(image_id(0))
    deadline = time.monotonic() + timeout
    while first not in watcher.probes_seen:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{role}: no probe learnt within {timeout:.0f}s of the restart")
        workers.check_alive()
        await asyncio.sleep(0.05)
    seconds = watcher.probes_seen[first] - started
    await asyncio.sleep(2.0)
    return new, {
        "role": role,
        "rss_mb_before_kill": before,
        "recovery_s": round(seconds, 2),
        "rss_mb_after": rss_mb(new),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    engines = ensure_engines()
    tag = f"pload{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    settings = isolated_settings(engines, tag, tmp, args.partitions)
    res: dict[str, Any] = {"config": vars(args), "machine": machine_facts(settings.opensearch_url), "tag": tag}
    say(f"{tag}: {args.images} images, {args.users} users, {args.events} interactions at {args.rate}/s")
    workers = Workers(tmp / "logs", settings.child_env())
    load = Load(settings)
    stop = asyncio.Event()
    watching: asyncio.Task[None] | None = None
    try:
        await ensure_topics(
            settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions, settings=settings
        )
        mapper = workers.start("interactions")
        query = workers.start("query")
        await wait_group(settings, settings.app_id("interactions"), 1, 180, workers)
        await wait_group(settings, settings.app_id("query"), 1, 180, workers)
        await load.producer.start()
        watcher = Watcher(
            settings,
            {
                "profiles": f"{settings.app_id('query')}-profiles-changelog",
                "event-ids": f"{settings.app_id('query')}-event-ids-changelog",
                "image-clusters": f"{settings.app_id('interactions')}-image-clusters-changelog",
                "personalization": settings.topics.personalization_events().name,
            },
        )
        watching = asyncio.create_task(watcher.run(stop))
        res["rss_mb_at_start"] = {"interactions": rss_mb(mapper), "query": rss_mb(query)}
        say("1. image-indexed events → the mapper's global table ...")
        res["images"] = await seed_images(load, watcher, workers, args.images, args.clusters)
        res["images"]["rss_mb"] = rss_mb(mapper)
        say(f"   {res['images']}")
        say("2. interactions → profiles, with freshness probes ...")
        res["interactions"] = await interactions(load, watcher, workers, args)
        res["interactions"]["rss_mb"] = {"query": rss_mb(query), "interactions": rss_mb(mapper)}
        say(f"   {res['interactions']}")
        watcher.freeze()
        say("3. kill -9 the query worker, start another ...")
        query, res["recovery_query"] = await recovery("query", load, watcher, workers, query, args.recovery_timeout)
        say(f"   {res['recovery_query']}")
        say("4. kill -9 the mapper, start another ...")
        mapper, res["recovery_interactions"] = await recovery(
            "interactions", load, watcher, workers, mapper, args.recovery_timeout
        )
        say(f"   {res['recovery_interactions']}")
        await asyncio.sleep(3.0)  # redelivered events after the kills have been seen by now
        res["counted_twice_after_restarts"] = len(set(watcher.raised))
        res["changelogs"] = {
            k: {"records": watcher.records.get(k, 0), "mb": round(watcher.sizes.get(k, 0) / 2**20, 1)}
            for k in watcher.topics
        }
        users = max(1, sum(1 for u in watcher.counts if not u.startswith("probe-")))
        res["changelogs"]["profiles_bytes_per_interaction"] = round(
            watcher.sizes.get("profiles", 0) / max(1, res["interactions"]["interactions"]), 1
        )
        res["profiles_users"] = users
    finally:
        stop.set()
        if watching is not None:
            with contextlib.suppress(Exception):
                await watching
        with contextlib.suppress(Exception):
            await load.producer.stop()
        workers.stop_all()
        with contextlib.suppress(Exception):
            await delete_prefixed_topics(settings, tag)
        shutil.rmtree(tmp, ignore_errors=True)
    res["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    res["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=1000.0, help="interactions offered per second")
    ap.add_argument("--probe-every", type=float, default=1.0, help="seconds between freshness probes")
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--recovery-timeout", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    res = asyncio.run(run(args))
    out = args.out or REPO / "bench-results" / "profiles_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
