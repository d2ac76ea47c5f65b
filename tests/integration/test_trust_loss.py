"""Issue 14, items 1-4 and 8, on the real servers: nothing lost at any size, no request that stalls
the rest, publishers with deadlines, a clean stop.

- 1: a dead letter of a big invalid event fits in a message (truncated copy + size + sha256); a
  search with a 700 KB undecodable image gets an error reply, not a timeout;
- 2: one size-limit chain: a 2 MB image is ingested and searched with through every link, a too-big
  one is refused with a clear error (HTTP 413 at the gateway);
- 3: a request naming a reply topic that does not exist is refused at once, creates nothing, and does
  not hold up the searches after it; the broker creates no topic on its own;
- 4: a NUL byte in a URI is that event's dead letter, not its batch's;
- 8: publishers and search clients fail clearly at their deadline; workers stop cleanly on SIGTERM;
  a new user's events log no warning.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from producers import (
    ClientStartTimeout,
    EventPublisher,
    SearchClient,
    SearchError,
    TopicMissing,
)
from schemas.events import DeadLetter, EventType, Interaction, NewImage, SearchRequest, SearchResponse
from schemas.limits import (
    DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_MAX_ORIGINAL_BYTES,
    MAX_INLINE_IMAGE_BYTES,
    MAX_MESSAGE_BYTES,
)
from schemas.topics import Topics
from tests.integration.faults_support import (
    FAST_FAILOVER,
    assert_no_agent_crash,
    log_text,
    noise_png,
    publish,
    read_to_end,
    styled_png,
)
from tests.support import Pipeline, ingest_all, search_until_ready, wait_for
from tests.support.fixtures import PipelineFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    p = await pipeline_factory(worker_env=FAST_FAILOVER)
    await ingest_all(p)
    return p


async def letters(p: Pipeline, want: int = 1, **match: Any) -> list[DeadLetter]:
    """The dead letters whose fields equal ``match``, once at least ``want`` have arrived."""
    found: list[DeadLetter] = []

    async def there() -> bool:
        found.clear()
        for m in await read_to_end(p.settings.kafka_bootstrap, p.settings.topics.dead_letters().name):
            assert len(m.value) <= DEAD_LETTER_MAX_BYTES
            dl = DeadLetter.from_bytes(m.value)
            if all(getattr(dl, k) == v for k, v in match.items()):
                found.append(dl)
        return len(found) >= want

    await wait_for(there, 60, f"{want} dead letter(s) with {match}", interval=1.0, workers=p.workers)
    return found


async def indexed(p: Pipeline, image_id: str, timeout: float = 60) -> None:
    idx = p.index()
    try:

        async def there() -> bool:
            # searchable, not only stored: a GET by id is real-time, a search sees the doc after a refresh
            if await idx.get(image_id) is None:
                return False
            return await idx.count_where({"ids": {"values": [image_id]}}) == 1

        await wait_for(there, timeout, f"{image_id} indexed", workers=p.workers)
    finally:
        await idx.close()


# ---------------------------------------------------------------- item 1


async def test_big_invalid_events_are_dead_lettered_whole_size_and_hash(pipeline: Pipeline):
    bootstrap = pipeline.settings.kafka_bootstrap
    junk = b"\x89PNG\r\n\x1a\n" + noise_png(700_000)[8:][::-1]  # a PNG signature, then garbage: undecodable
    assert len(junk) > 700_000
    big_event = NewImage.inline("big-undecodable", junk).to_bytes()  # ~930 KB: its letter used to be ~1.25 MB
    ((part, offset),) = await publish(
        bootstrap, [(pipeline.settings.topics.new_images().name, b"big-undecodable", big_event)]
    )
    await publish(
        bootstrap,
        [
            (
                pipeline.settings.topics.new_images().name,
                b"after-big",
                NewImage.inline("after-big", styled_png(3)).to_bytes(),
            )
        ],
    )
    async with SearchClient(bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings) as client:
        await search_until_ready(client, user_id="big-user", text="warm up", k=1)
        t0 = time.monotonic()
        with pytest.raises(SearchError) as err:
            await client.search("big-user", image_b64=base64.b64encode(junk).decode(), k=3, timeout_s=15)
        took = time.monotonic() - t0
        assert err.value.code == "undecodable_image", err.value  # an error reply, not a timeout
        assert took < 10, took
        ok = await client.search("big-user", "circle", k=3, timeout_s=10)  # the agent is still there
        assert ok.ok and ok.hits
    await indexed(pipeline, "after-big")
    (letter,) = await letters(
        pipeline, source_topic=pipeline.settings.topics.new_images().name, source_partition=part, source_offset=offset
    )
    assert letter.reason_code == "undecodable_image"
    assert letter.original_truncated and letter.original_size == len(big_event)
    assert letter.original_sha256 == hashlib.sha256(big_event).hexdigest()
    assert letter.original_bytes() == big_event[:DEAD_LETTER_MAX_ORIGINAL_BYTES]
    (query_letter,) = await letters(
        pipeline, source_topic=pipeline.settings.topics.search_requests().name, reason_code="undecodable_image"
    )
    assert query_letter.original_truncated and query_letter.original_size > 900_000
    assert_no_agent_crash(pipeline.workers)


# ---------------------------------------------------------------- item 2


async def test_topics_are_created_with_the_chains_message_size(pipeline: Pipeline):
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.settings.kafka_bootstrap)
    await admin.start()
    try:
        names = [s.name for s in pipeline.settings.topics.all_shared()]
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    sizes = {}
    for response in described:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            # (name, value, read only, config source, ...): source 1 is the topic's own config, not
            # an inherited broker default (which a broker configured elsewhere may not have)
            sizes[name] = next((int(e[1]), e[3]) for e in entries if e[0] == "max.message.bytes")
    assert set(sizes) == set(names)
    assert all(size >= MAX_MESSAGE_BYTES and source == 1 for size, source in sizes.values()), sizes


async def test_a_2mb_image_passes_every_link_of_the_chain(pipeline: Pipeline):
    bootstrap = pipeline.settings.kafka_bootstrap
    big = noise_png(2 * 2**20)
    assert 2 * 2**20 < len(big) < MAX_INLINE_IMAGE_BYTES
    async with EventPublisher(bootstrap, topics=pipeline.settings.topics) as pub:
        await pub.publish_image(NewImage.inline("big-valid", big))  # ~2.8 MB on the wire
    await indexed(pipeline, "big-valid")
    async with SearchClient(bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings) as client:
        await search_until_ready(client, user_id="big-user", text="warm up", k=1)
        resp = await client.search("big-user", image_b64=base64.b64encode(big).decode(), k=3, timeout_s=15)
    assert resp.ok and resp.hits[0].image_id == "big-valid"


async def test_the_gateway_says_413_for_a_too_big_image_and_serves_a_big_one(pipeline: Pipeline):
    from aiohttp.test_utils import TestClient, TestServer

    from apps.gateway.app import create_app

    client = TestClient(TestServer(create_app(pipeline.settings.replace(gateway_auth="demo"))))
    await client.start_server()
    try:
        big = base64.b64encode(noise_png(1_000_000)).decode()  # 942 KB used to be HTTP 500
        deadline = time.monotonic() + 60
        while True:  # the gateway's first search waits for the query worker like any client
            r = await client.post("/api/search", json={"user": "gw-user", "image_b64": big, "k": 3})
            if r.status != 504 or time.monotonic() > deadline:
                break
        assert r.status == 200, await r.text()
        assert (await r.json())["hits"]
        over = base64.b64encode(b"\0" * (MAX_INLINE_IMAGE_BYTES + 1)).decode()
        r = await client.post("/api/search", json={"user": "gw-user", "image_b64": over})
        assert r.status == 413 and (await r.json())["error"]["code"] == "image_too_large", await r.text()
        r = await client.post(
            "/api/search", data=b'{"user": "gw-user", "q": "' + b"x" * (13 * 2**20) + b'"}',
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert r.status == 413, await r.text()
    finally:
        await client.close()


# ---------------------------------------------------------------- item 3


async def test_the_broker_does_not_create_topics_on_its_own(engines: dict[str, str]):
    name = f"nobody-created-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=engines["KAFKA_BOOTSTRAP"], request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017  aiokafka's KafkaTimeoutError / UnknownTopicOrPartitionError
            await producer.send_and_wait(name, b"x")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=engines["KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        assert name not in await admin.list_topics()
    finally:
        await admin.close()


async def test_unknown_reply_topics_are_refused_at_once_and_stall_nobody(pipeline: Pipeline):
    bootstrap = pipeline.settings.kafka_bootstrap
    bogus = [f"{pipeline.settings.topics.reply_prefix()}nobody-{uuid.uuid4().hex[:8]}-{i}" for i in range(5)]
    async with SearchClient(bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings) as client:
        await search_until_ready(client, user_id="stall-user", text="warm up", k=1)
        requests = [SearchRequest(user_id="stall-user", text="cat", reply_topic=t) for t in bogus]
        items = [(pipeline.settings.topics.search_requests().name, b"stall-user", r.to_bytes()) for r in requests]
        await publish(bootstrap, items)  # the same partition as the search below: the same agent, in order
        t0 = time.monotonic()
        resp = await client.search("stall-user", "circle", k=3, timeout_s=20)
        took = time.monotonic() - t0
    assert resp.ok and took < 5, took  # on main: the first bogus reply alone waits faust's 1,200 s
    found = await letters(pipeline, want=5, reason_code="reply_topic_unknown")
    assert {json.loads(base64.b64decode(dl.original_b64))["reply_topic"] for dl in found} >= set(bogus)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert not set(bogus) & set(await admin.list_topics())
    finally:
        await admin.close()
    assert_no_agent_crash(pipeline.workers)


# ---------------------------------------------------------------- item 4


async def test_a_nul_byte_uri_does_not_poison_its_batch(pipeline: Pipeline):
    root = pipeline.image_dir.resolve()
    names = [f"nul-batch-{i}" for i in range(3)]
    for i, n in enumerate(names):
        (root / f"{n}.png").write_bytes(styled_png(10 + i))
    events = [NewImage(image_id=n, source_uri=(root / f"{n}.png").as_uri()) for n in names[:2]]
    events.append(NewImage(image_id="nul-uri", source_uri=f"file://{root}/x%00y.png"))
    events.append(NewImage(image_id=names[2], source_uri=(root / f"{names[2]}.png").as_uri()))
    async with EventPublisher(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as pub:
        await pub.publish_images(events)  # one producer batch: the embedder takes them as one batch
    for n in names:
        await indexed(pipeline, n)
    found = await letters(pipeline, reason_code="uri_invalid")
    assert [json.loads(dl.original_bytes())["image_id"] for dl in found] == ["nul-uri"]
    bad = [dl for dl in await letters(pipeline, want=0, reason_code="processing_failed")]
    assert not [dl for dl in bad if json.loads(dl.original_bytes()).get("image_id") in names]
    assert_no_agent_crash(pipeline.workers)


# ---------------------------------------------------------------- item 8


class SilentBroker:
    """A TCP port that accepts connections and never answers (a hung broker)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


async def test_publishers_and_search_clients_fail_clearly_at_their_deadline(engines: dict[str, str]):
    silent = SilentBroker()
    try:
        t0 = time.monotonic()
        with pytest.raises(ClientStartTimeout, match="within 2s"):
            await asyncio.wait_for(EventPublisher(f"127.0.0.1:{silent.port}", topics=Topics(), timeout_s=2).start(), 30)
        with pytest.raises(ClientStartTimeout, match="within 2s"):
            await asyncio.wait_for(
                SearchClient(f"127.0.0.1:{silent.port}", topics=Topics(), start_timeout_s=2).start(), 30
            )
        assert time.monotonic() - t0 < 10
    finally:
        silent.close()
    missing = Topics(prefix=f"t-missing-{uuid.uuid4().hex[:6]}")  # no topics at all
    async with EventPublisher(engines["KAFKA_BOOTSTRAP"], topics=missing, timeout_s=20) as pub:
        t0 = time.monotonic()
        with pytest.raises(TopicMissing, match=r"interactions does not exist.*imgsearch topics"):
            await pub.publish_interaction(Interaction(user_id="u", image_id="i", event_type=EventType.VIEW))
        assert time.monotonic() - t0 < 5  # on main: aiokafka waits for the topic (minutes observed)
    async with SearchClient(engines["KAFKA_BOOTSTRAP"], topics=missing) as client:
        t0 = time.monotonic()
        with pytest.raises(TopicMissing, match=r"search\.requests does not exist"):
            await client.search("u", "cat", timeout_s=20)
        assert time.monotonic() - t0 < 5


async def test_new_users_log_no_warning_and_workers_stop_cleanly(pipeline: Pipeline):
    bootstrap = pipeline.settings.kafka_bootstrap
    async with EventPublisher(bootstrap, topics=pipeline.settings.topics) as pub:
        for n, image in enumerate(["pastel/circle-0", "pastel/square-1", "neon/bar-2"]):
            await pub.publish_interaction(
                Interaction(user_id=f"newcomer-{n}", image_id=image, event_type=EventType.FAVORITE, event_id=f"nc-{n}")
            )
            await pub.publish_interaction(
                Interaction(user_id=f"newcomer-{n}", image_id=image, event_type=EventType.VIEW, event_id=f"nc-{n}-b")
            )
    async with SearchClient(bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings) as client:

        async def personalized() -> SearchResponse | None:
            r = await client.search("newcomer-0", "circle", k=5, personalization_weight=0.5, timeout_s=10)
            return r if r.personalized else None

        await wait_for(personalized, 60, "newcomer-0's profile applied", workers=pipeline.workers)
        for n in (1, 2):
            await client.search(f"newcomer-{n}", "circle", k=5, timeout_s=10)
    assert_no_agent_crash(pipeline.workers)
    for wp in list(pipeline.workers.procs):
        pipeline.workers.stop(wp, timeout=30)  # SIGTERM
        assert wp.proc.returncode == 0, f"{wp.role} exited {wp.proc.returncode}:\n{wp.log_tail()}"
    for wp in pipeline.workers.procs:
        text = log_text(wp)
        assert "Unclosed client session" not in text and "Unclosed connector" not in text, (wp.role, wp.log_tail(60))
        assert "has no remap" not in text, (wp.role, [line for line in text.splitlines() if "has no remap" in line][:3])


async def test_an_existing_topic_with_a_smaller_limit_is_reported(engines: dict[str, str], caplog):
    """Topics made before the chain keep their limit (configs are not rewritten), and ensure_topics says so."""
    from aiokafka.admin import NewTopic

    from imgsearch.kafka.admin import ensure_topics
    from schemas.topics import TopicSpec

    name = f"t-small-{uuid.uuid4().hex[:8]}.images.new"
    admin = AIOKafkaAdminClient(bootstrap_servers=engines["KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs={"max.message.bytes": "1048588"})])
    finally:
        await admin.close()
    caplog.set_level("WARNING", logger="imgsearch.kafka.admin")
    assert await ensure_topics(engines["KAFKA_BOOTSTRAP"], [TopicSpec(name, "k", "old topic")], 1) == []
    assert f"topic {name} takes records of at most 1048588 bytes" in caplog.text, caplog.text
    assert f"max.message.bytes={MAX_MESSAGE_BYTES}" in caplog.text
