"""Issue 7, "nothing lost, nothing duplicated": faults injected into the real pipeline.

kill -9 of an embedding worker mid-ingest and of the query worker mid-stream, an OpenSearch outage,
a Kafka broker restart, and adding/removing workers while traffic flows. The engines are the ones
scripts/engines.sh runs (stopped and started through it); every test leaves them running.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opensearchpy.exceptions import NotFoundError

from consumers.runner import WorkerProcess
from imgsearch.config import Settings
from imgsearch.domain.profile import Profile
from imgsearch.embedding.factory import make_embedder
from imgsearch.index.opensearch import model_slug
from producers import EventPublisher, SearchClient
from schemas.events import EventType, ImageIndexed, Interaction, NewImage, SearchResponse
from schemas.topics import Topics
from tests.integration.faults_support import (
    FAST_FAILOVER,
    assert_no_agent_crash,
    committed_offsets,
    count_ids,
    engines_sh,
    ensure_engines_up,
    kill9,
    log_text,
    only,
    present_ids,
    publish,
    read_to_end,
    retire,
    styled_png,
    why_not_controllable,
)
from tests.support import Pipeline, ingest_all, search_until_ready, wait_for
from tests.support.fixtures import PipelineFactory

pytestmark = pytest.mark.integration

N_KILL = 1000
KILL_IDS = [f"k9-{i:04d}" for i in range(N_KILL)]


@pytest.fixture(scope="module", autouse=True)
def engines_stay_up(engines: dict[str, str]) -> Iterator[None]:
    """Afterwards the engines are running, whatever happened."""
    try:
        yield
    finally:
        ensure_engines_up()


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    """A pipeline with the fixtures' 36 drawings indexed (the index exists; searches answer), whose
    workers leave their group 6 s after a kill -9 instead of 60 s (FAST_FAILOVER)."""
    p = await pipeline_factory(worker_env=FAST_FAILOVER)
    await ingest_all(p)
    return p


@pytest.fixture
def engine_control(engines: dict[str, str]) -> None:
    reason = why_not_controllable(engines)
    if reason:
        pytest.skip(reason)


def image_events(topics: Topics, ids: list[str], offset: int = 0) -> list[tuple[str, bytes, bytes]]:
    name = topics.new_images().name
    return [
        (name, image_id.encode(), NewImage.inline(image_id, styled_png(offset + i)).to_bytes())
        for i, image_id in enumerate(ids)
    ]


async def wait_indexed(p: Pipeline, ids: list[str], timeout: float, what: str) -> None:
    idx = p.index()
    try:

        async def done() -> bool:
            try:
                return await count_ids(idx, ids) == len(ids)
            except Exception:  # OpenSearch restarting
                return False

        await wait_for(done, timeout, what, interval=0.5, workers=p.workers)
    finally:
        await idx.close()


async def total_docs(p: Pipeline) -> int:
    idx = p.index()
    try:
        await idx.refresh()
        return await idx.count()
    except NotFoundError:
        return 0
    finally:
        await idx.close()


async def assert_exactly_indexed(p: Pipeline, before: int, ids: list[str]) -> None:
    """Every id is a document, and the index grew by exactly these documents (ids are document ids:
    a repeated event must overwrite, never add)."""
    idx = p.index()
    try:
        present = await present_ids(idx, ids)
        assert present == set(ids), f"missing: {sorted(set(ids) - present)[:20]}"
        assert await idx.count() == before + len(ids)
    finally:
        await idx.close()


def embedder_group(settings: Settings) -> str:
    return settings.app_id(f"embedder-{model_slug(make_embedder(settings).model_id)}")


# ---------------------------------------------------------------- 1. kill -9


async def test_embedder_kill9_mid_ingest_indexes_every_image_exactly_once(pipeline: Pipeline):
    settings = pipeline.settings
    bootstrap = settings.kafka_bootstrap
    docs_before = await total_docs(pipeline)
    positions = await publish(bootstrap, image_events(pipeline.settings.topics, KILL_IDS))
    at = {pos: image_id for pos, image_id in zip(positions, KILL_IDS, strict=True)}
    idx = pipeline.index()
    try:
        group = embedder_group(settings)

        first = {p: min(o for q, o in positions if q == p) for p, _ in positions}

        async def started() -> bool:
            # mid-ingest: the offsets of some of these images committed already, most still to do
            committed = await committed_offsets(bootstrap, group, pipeline.settings.topics.new_images().name)
            return any(committed.get(p, 0) > o for p, o in first.items())

        await wait_for(started, 90, "the embedder's first offset commit", interval=0.1, workers=pipeline.workers)
        victim = only(pipeline.workers, "embedder")
        kill9(pipeline.workers, victim)
        # the dead worker commits nothing more: its group's committed offsets are final until a restart
        committed = await committed_offsets(bootstrap, group, pipeline.settings.topics.new_images().name)
        present = await present_ids(idx, KILL_IDS)
        print(f"killed the embedder at {len(present)}/{N_KILL} indexed; committed {committed}, batch from {first}")
        assert len(present) < N_KILL, "the kill came after the whole ingest: nothing was interrupted"
        # offsets never advance past unprocessed work: every event below a committed offset is indexed
        skipped = [at[(p, o)] for (p, o) in at if o < committed.get(p, 0) and at[(p, o)] not in present]
        assert not skipped, f"committed past {len(skipped)} images that are not indexed: {skipped[:10]}"
    finally:
        await idx.close()

    pipeline.workers.start("embedder")
    await wait_indexed(pipeline, KILL_IDS, 120, f"all {N_KILL} images indexed after the restart")
    await assert_exactly_indexed(pipeline, docs_before, KILL_IDS)
    # at-least-once upstream of the index: the topic may repeat an image, never miss one
    indexed = [
        e.image_id
        for e in (
            ImageIndexed.from_bytes(m.value)
            for m in await read_to_end(bootstrap, pipeline.settings.topics.images_indexed().name)
        )
        if e.image_id.startswith("k9-")
    ]
    assert set(indexed) == set(KILL_IDS)
    print(f"images.indexed holds {len(indexed)} events for {N_KILL} images ({len(indexed) - N_KILL} repeats)")


async def _personal_view(client: SearchClient, user: str, query_b64: str) -> SearchResponse:
    return await client.search(
        user, image_b64=query_b64, k=100, max_per_cluster=2, personalization_weight=0.5, timeout_s=10
    )


CLUSTER_OF: dict[str, int] = {}  # image id -> cluster, filled by the query-worker test


def _expected_profile(events: list[Interaction], settings: Settings) -> Profile:
    """Each interaction applied exactly once, in order (the domain's own definition)."""
    profile = Profile()
    for ev in events:
        assert profile.add(
            ev.event_id,
            CLUSTER_OF[ev.image_id],
            settings.event_weights[ev.event_type],
            ev.timestamp.timestamp(),
            settings.profile_half_life_s,
            ev.image_id,
            ev.event_type.value,
            settings.session_decay,
        )
    return profile


def _mismatch(resp: SearchResponse, expected: Profile, settings: Settings) -> str | None:
    """None if the reply's personal scores and drivers are those of ``expected``; else why not."""
    if not resp.ok or not resp.personalized:
        return f"not personalized: {resp.error} {resp.notes}"
    affinity = expected.affinity(time.time(), settings.profile_half_life_s, settings.recency_weight)
    by_cluster = {h.cluster_id: h for h in resp.hits}
    scored = [c for c in by_cluster if affinity.get(c, 0.0) > 0]
    if len(scored) < 2:
        return f"the reply shows fewer than two liked clusters: {sorted(by_cluster)}"
    ref = scored[0]
    for c, hit in by_cluster.items():
        want = affinity.get(c, 0.0) / affinity[ref] * by_cluster[ref].personal_score
        if abs(hit.personal_score - want) > 1e-6 * max(1.0, want):
            return f"cluster {c}: personal score {hit.personal_score:.9f}, expected {want:.9f}"
        if hit.drivers != expected.drivers(c):
            return f"cluster {c}: drivers {hit.drivers}, expected {expected.drivers(c)}"
    return None


async def test_query_worker_kill9_mid_stream_counts_each_interaction_once(pipeline: Pipeline):
    settings = pipeline.settings
    idx = pipeline.index()
    try:
        async for image_id, src in idx.scan(["cluster_id"], {"ids": {"values": KILL_IDS[:400]}}):
            CLUSTER_OF[image_id] = int(src["cluster_id"])
    finally:
        await idx.close()
    by_cluster: dict[int, list[str]] = {}
    for image_id, c in sorted(CLUSTER_OF.items()):
        by_cluster.setdefault(c, []).append(image_id)
    clusters = sorted(by_cluster, key=lambda c: -len(by_cluster[c]))[:3]
    print("images per cluster:", {c: len(v) for c, v in by_cluster.items()})
    assert len(clusters) >= 2, f"the test images fell into one cluster: {by_cluster.keys()}"
    kinds = [EventType.VIEW, EventType.FAVORITE, EventType.DOWNLOAD, EventType.VIEW]
    t0 = datetime.now(UTC) - timedelta(seconds=60)
    user = "kill9-user"

    def pick(cluster: int, i: int) -> str:
        return by_cluster[cluster][i % len(by_cluster[cluster])]

    events = [
        Interaction(
            event_id=f"kill9-ev-{i}",
            user_id=user,
            image_id=pick(clusters[i % len(clusters) if i % 5 else 0], i),
            event_type=kinds[i % len(kinds)],
            timestamp=t0 + timedelta(milliseconds=10 * i),
        )
        for i in range(100)
    ]
    marker = Interaction(
        event_id="kill9-marker",
        user_id=user,
        image_id=by_cluster[clusters[1]][-1],
        event_type=EventType.CLICK,
        timestamp=t0 + timedelta(seconds=1),
    )
    query_b64 = base64.b64encode(styled_png(4)).decode()
    async with (
        EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub,
        SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client,
    ):
        for ev in events[:20]:
            await pub.publish_interaction(ev)
        first = _expected_profile(events[:20], settings)
        await search_until_ready(client, user_id=user, image_b64=query_b64, k=1)

        why: list[str | None] = []

        async def phase_one() -> bool:
            why.append(_mismatch(await _personal_view(client, user, query_b64), first, settings))
            return why[-1] is None

        try:
            await wait_for(phase_one, 30, "the first 20 interactions in the profile", workers=pipeline.workers)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {why[-1]}") from None

        # the query worker dies while it learns the other 80: once the first of them shows in a reply
        second = {f"{ev.event_type.value}:{ev.image_id}" for ev in events[20:]}
        await publish(
            settings.kafka_bootstrap,
            [(pipeline.settings.topics.interactions().name, user.encode(), ev.to_bytes()) for ev in events[20:]],
        )

        async def learning() -> bool:
            resp = await _personal_view(client, user, query_b64)
            return any(d in second for h in resp.hits for d in h.drivers)

        await wait_for(learning, 30, "the query worker learning the second part", interval=0.0)
        victim = only(pipeline.workers, "query")
        kill9(pipeline.workers, victim)
        committed = await committed_offsets(
            settings.kafka_bootstrap, settings.app_id("query"), pipeline.settings.topics.personalization_events().name
        )
        print(f"killed the query worker; committed offsets on personalization events: {committed}")
        pipeline.workers.start("query")
        # some events of both parts are delivered again (the same event ids), then one new event; the
        # others must come from the table's changelog or from redelivery after the last commit
        for ev in events[:20:4] + events[20::3]:
            await pub.publish_interaction(ev)
        await pub.publish_interaction(marker)
        expected = _expected_profile([*events, marker], settings)

        async def marker_applied() -> SearchResponse | None:
            resp = await _personal_view(client, user, query_b64)
            return resp if any(f"click:{marker.image_id}" in h.drivers for h in resp.hits) else None

        await search_until_ready(client, user_id=user, image_b64=query_b64, k=1)
        resp = await wait_for(marker_applied, 60, "the marker interaction after the restart", workers=pipeline.workers)
    problem = _mismatch(resp, expected, settings)
    assert problem is None, f"the profile is not each interaction once: {problem}"


# ---------------------------------------------------------------- 2. OpenSearch outage

OUTAGE_S = 25.0  # longer than the retry budget of a bounded retry (8 attempts, ≤ 22.6 s of backoff)


async def test_opensearch_outage_delays_ingest_loses_nothing_and_searches_get_an_error(
    pipeline: Pipeline, engine_control: None
):
    settings = pipeline.settings
    before = [f"os-a-{i:03d}" for i in range(100)]
    during = [f"os-b-{i:03d}" for i in range(200)]
    embedder = only(pipeline.workers, "embedder")
    docs_before = await total_docs(pipeline)
    log_start = len(log_text(embedder))
    async with SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client:
        await publish(settings.kafka_bootstrap, image_events(pipeline.settings.topics, before))
        await wait_indexed(pipeline, before[:20], 60, "ingest under way before the outage")
        await search_until_ready(client, user_id="outage-user", text="warm up", k=1)
        t_stop = time.monotonic()
        engines_sh("stop", "opensearch")
        try:
            # traffic goes on: new images arrive while the index is down
            await publish(settings.kafka_bootstrap, image_events(pipeline.settings.topics, during, offset=100))
            t0 = time.monotonic()
            resp = await client.search("outage-user", text="a printer", k=5, timeout_s=10, raise_on_error=False)
            answered_in = time.monotonic() - t0
            assert resp.error is not None and resp.error.code == "index_unavailable", resp
            assert answered_in < 5, f"the error reply took {answered_in:.1f}s"
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_stop)))
            assert embedder.alive(), f"the embedder died in the outage:\n{embedder.log_tail()}"
            pipeline.workers.check_alive()
        finally:
            engines_sh("start", "opensearch")
        print(f"OpenSearch was down {time.monotonic() - t_stop:.1f}s")
        await wait_indexed(pipeline, before + during, 90, "every image after the outage")
        assert embedder.alive() and only(pipeline.workers, "embedder") is embedder, "the embedder was restarted"
        log = log_text(embedder)[log_start:]
        assert "opensearch bulk failed" in log and "retry" in log, "the embedder did not retry with backoff"
        resp = await client.search("outage-user", text="a printer", k=5, timeout_s=10)
        assert resp.ok and len(resp.hits) == 5
    assert_no_agent_crash(pipeline.workers)
    await assert_exactly_indexed(pipeline, docs_before, before + during)


# ---------------------------------------------------------------- 3. Kafka broker restart


async def test_kafka_restart_workers_reconnect_and_resume(pipeline: Pipeline, engine_control: None):
    settings = pipeline.settings
    before = [f"kr-a-{i:03d}" for i in range(200)]
    after = [f"kr-b-{i:03d}" for i in range(100)]
    docs_before = await total_docs(pipeline)
    await publish(settings.kafka_bootstrap, image_events(pipeline.settings.topics, before))
    t_stop = time.monotonic()
    engines_sh("stop", "kafka")
    try:
        await asyncio.sleep(2)
        pipeline.workers.check_alive()
    finally:
        engines_sh("start", "kafka")
    print(f"Kafka was down {time.monotonic() - t_stop:.1f}s")
    await publish(settings.kafka_bootstrap, image_events(pipeline.settings.topics, after, offset=200))
    await wait_indexed(pipeline, before + after, 120, "every image after the broker restart")
    # every role works again: an interaction reaches the profile and a search is answered
    user = "kafka-restart-user"
    liked = before[7]
    query_b64 = base64.b64encode(styled_png(7)).decode()
    async with (
        EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub,
        SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client,
    ):
        await search_until_ready(client, user_id=user, image_b64=query_b64, k=1)
        await pub.publish_interaction(Interaction(user_id=user, image_id=liked, event_type=EventType.FAVORITE))

        async def applied() -> SearchResponse | None:
            r = await client.search(user, image_b64=query_b64, k=10, timeout_s=10)
            return r if any(f"favorite:{liked}" in h.drivers for h in r.hits) else None

        await wait_for(applied, 60, "an interaction applied after the broker restart", workers=pipeline.workers)
    assert_no_agent_crash(pipeline.workers)
    await assert_exactly_indexed(pipeline, docs_before, before + after)


# ---------------------------------------------------------------- 5. scaling under traffic


async def wait_assigned(p: Pipeline, wp: WorkerProcess, topic: str, timeout: float = 60) -> None:
    """Until the worker's log shows it was assigned partitions of ``topic`` (faust's assignment table)."""
    pattern = re.compile(rf"\|\s*{re.escape(topic)}\s*\|\s*\{{[0-9][^}}]*\}}")

    async def assigned() -> bool:
        return bool(pattern.search(log_text(wp)))

    await wait_for(assigned, timeout, f"a {wp.role} worker assigned partitions of {topic}", workers=p.workers)


async def test_adding_and_removing_workers_under_traffic_loses_nothing(pipeline: Pipeline):
    settings = pipeline.settings
    ids = [f"sc-{i:03d}" for i in range(400)]
    docs_before = await total_docs(pipeline)
    query_b64 = base64.b64encode(styled_png(11)).decode()
    done = asyncio.Event()
    answered: list[tuple[float, float]] = []  # (when, latency)
    failures: list[str] = []

    async def feed() -> None:
        async with EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub:
            for i in range(0, len(ids), 10):
                await pub.publish_images(NewImage.inline(x, styled_png(i + j)) for j, x in enumerate(ids[i : i + 10]))
                await asyncio.sleep(0.5)

    async def search(client: SearchClient) -> None:
        n = 0
        while not done.is_set():
            t0 = time.monotonic()
            try:  # users spread over both partitions
                r = await client.search(f"scale-user-{n % 8}", image_b64=query_b64, k=5, timeout_s=30)
                assert len(r.hits) == 5
                answered.append((t0, time.monotonic() - t0))
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            n += 1

    async with SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client:
        await search_until_ready(client, user_id="scale-user-0", image_b64=query_b64, k=5)
        feeder = asyncio.create_task(feed())
        searcher = asyncio.create_task(search(client))
        try:
            await asyncio.sleep(2)
            first_query, first_embedder = only(pipeline.workers, "query"), only(pipeline.workers, "embedder")
            second_query, second_embedder = pipeline.workers.start("query"), pipeline.workers.start("embedder")
            await wait_assigned(pipeline, second_embedder, pipeline.settings.topics.new_images().name)
            await wait_assigned(pipeline, second_query, pipeline.settings.topics.search_requests().name)
            await asyncio.sleep(2)
            t_removed = time.monotonic()
            retire(pipeline.workers, first_query)
            retire(pipeline.workers, first_embedder)
            await feeder
            await asyncio.sleep(3)
        finally:
            done.set()
            feeder.cancel()
            await asyncio.gather(feeder, searcher, return_exceptions=True)
    await wait_indexed(pipeline, ids, 60, "every image fed while workers came and went")
    await assert_exactly_indexed(pipeline, docs_before, ids)
    worst = max(lat for _, lat in answered)
    print(f"{len(answered)} searches answered, slowest {worst:.2f}s; {len(failures)} failed")
    assert not failures, failures[:5]
    assert any(t > t_removed for t, _ in answered), "no search was answered after the scale-down"
    assert_no_agent_crash(pipeline.workers)
