"""Issue 7, "bad input contained": random and near-valid payloads on every consumer's input topic,
and the image/query limits end to end. Every invalid payload ends in the dead-letter topic with its
reason and the original bytes, the workers stay up (no agent crash either), and a valid event sent
after them is processed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers import EventPublisher, SearchClient
from schemas.events import (
    MAX_K,
    MAX_QUERY_TEXT_CHARS,
    DeadLetter,
    Event,
    EventType,
    ImageIndexed,
    Interaction,
    InvalidEvent,
    NewImage,
    PersonalizationEvent,
    SearchRequest,
    SearchResponse,
    parse_event,
)
from schemas.topics import Topics
from streams.query import _reply_target
from tests.integration.faults_support import (
    FAST_FAILOVER,
    assert_no_agent_crash,
    bomb_png,
    noise_png,
    publish,
    read_to_end,
    styled_png,
)
from tests.support import Pipeline, ingest_all, search_until_ready, wait_for
from tests.support.fixtures import PipelineFactory

pytestmark = pytest.mark.integration

MAX_IMAGE_BYTES = 300_000  # this module's limit, so an oversize image still fits a Kafka message


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    p = await pipeline_factory(worker_env=FAST_FAILOVER, max_image_bytes=MAX_IMAGE_BYTES)
    await ingest_all(p)
    return p


async def letters_at(p: Pipeline, positions: set[tuple[str, int, int]]) -> dict[tuple[str, int, int], DeadLetter]:
    """The dead letters of the given (source topic, partition, offset), once all have arrived."""
    found: dict[tuple[str, int, int], DeadLetter] = {}

    async def all_there() -> bool:
        for m in await read_to_end(p.settings.kafka_bootstrap, p.settings.topics.dead_letters().name):
            dl = DeadLetter.from_bytes(m.value)
            assert dl.source_partition is not None and dl.source_offset is not None
            found[(dl.source_topic, dl.source_partition, dl.source_offset)] = dl
        return positions <= set(found)

    try:
        await wait_for(all_there, 60, "the dead letters", interval=1.0, workers=p.workers)
    except AssertionError as exc:
        missing = sorted(positions - set(found))
        raise AssertionError(f"{exc}; missing {len(missing)} of {len(positions)}: {missing[:10]}") from None
    return found


# ---------------------------------------------------------------- payloads

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
SPECIAL = st.sampled_from(
    [0, -1, 101, 10**9, 1e308, "", " ", "a b", "x" * 3000, "é/ü", "../..", "view ", "VIEW", [], {}, None, True]
)
DELETE = "<delete>"


def templates(topics: Topics, reply_topic: str, version: str) -> dict[str, tuple[type[Event], dict[str, Any]]]:
    """A valid event per input topic, as JSON: the base of the near-valid mutations."""
    now = datetime.now(UTC).isoformat()
    png = base64.b64encode(styled_png(0)).decode()
    return {
        topics.new_images().name: (
            NewImage,
            {"schema_version": 1, "type": "image.new", "image_id": "fz-img", "image_b64": png, "created_at": now},
        ),
        topics.interactions().name: (
            Interaction,
            {"type": "interaction", "event_id": "fz-ev", "user_id": "fz-u", "image_id": "fz-img",
             "event_type": "view", "timestamp": now},
        ),
        topics.search_requests().name: (
            SearchRequest,
            {"type": "search.request", "request_id": "fz-req", "user_id": "fz-u", "text": "cat", "k": 5,
             "reply_topic": reply_topic, "sent_at": now, "timeout_ms": 5000},
        ),
        topics.personalization_events().name: (
            PersonalizationEvent,
            {"type": "personalization", "event_id": "fz-pev", "user_id": "fz-u", "cluster_id": 0,
             "image_id": "fz-img", "event_type": "view", "weight": 1.0, "timestamp": now,
             "centroid_version": version},
        ),
        topics.images_indexed().name: (
            ImageIndexed,
            {"type": "image.indexed", "image_id": "fz-img", "cluster_id": 0, "model_id": "hash-v1-d64",
             "centroid_version": version, "indexed_at": now},
        ),
    }  # fmt: skip


def payloads(tpls: dict[str, tuple[type[Event], dict[str, Any]]]) -> st.SearchStrategy[tuple[str, Any, Any]]:
    def for_topic(name: str) -> st.SearchStrategy[tuple[str, Any, Any]]:
        template = tpls[name][1]

        def mutate(changes: list[tuple[str, Any]]) -> bytes:
            event = dict(template)
            for field, value in changes:
                if value == DELETE:
                    event.pop(field, None)
                else:
                    event[field] = value
            return json.dumps(event).encode()

        change = st.tuples(st.sampled_from([*template, "unexpected"]), JSON | SPECIAL | st.just(DELETE))
        value = st.one_of(
            st.none(),  # a message without a value
            st.binary(max_size=48),  # random bytes
            JSON.map(lambda v: json.dumps(v).encode()),  # random JSON
            st.lists(change, min_size=1, max_size=3).map(mutate),  # near-valid events
            st.lists(change, min_size=1, max_size=3).map(mutate),
        )
        # a message needs a key or a value
        return st.tuples(st.just(name), st.none() | st.binary(max_size=8), value).map(
            lambda t: (t[0], b"" if t[1] is None and t[2] is None else t[1], t[2])
        )

    return st.sampled_from(sorted(tpls)).flatmap(for_topic)


# ---------------------------------------------------------------- tests


async def test_fuzzed_payloads_on_every_input_topic_are_dead_lettered(pipeline: Pipeline):
    bootstrap = pipeline.settings.kafka_bootstrap
    idx = pipeline.index()
    try:
        doc = await idx.get("pastel/circle-0")
    finally:
        await idx.close()
    assert doc is not None
    version = doc["centroid_version"]
    async with SearchClient(bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings) as client:
        await search_until_ready(client, user_id="fz-u", text="warm up", k=1)
        tpls = templates(pipeline.settings.topics, client.reply_topic, version)
        for model, tpl in tpls.values():  # the templates themselves are valid
            parse_event(model, json.dumps(tpl))
        invalid: list[tuple[str, bytes | None, bytes | None, str]] = []
        skipped_valid = 0

        @settings(
            max_examples=200,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(payloads(tpls))
        def collect(item: tuple[str, bytes | None, bytes | None]) -> None:
            nonlocal skipped_valid
            name, key, value = item
            try:
                parse_event(tpls[name][0], value)
            except InvalidEvent as exc:
                invalid.append((name, key, value, exc.code))
            else:
                skipped_valid += 1  # a mutation that happens to be valid: not this test's subject

        collect()
        # invalid requests whose error reply cannot go where they ask: the worker must stay well
        template = tpls[pipeline.settings.topics.search_requests().name][1]
        for fields in ({"reply_topic": "no such topic!"}, {"request_id": "not an id"}, {"user_id": "not an id"}):
            value = json.dumps({**template, "k": 0, **fields}).encode()
            try:
                parse_event(SearchRequest, value)
            except InvalidEvent as exc:
                invalid.append((pipeline.settings.topics.search_requests().name, b"fz-u", value, exc.code))
        by_topic = {name: sum(1 for t, *_ in invalid if t == name) for name in tpls}
        print(f"{len(invalid)} invalid payloads ({skipped_valid} valid mutations not sent): {by_topic}")
        assert len(invalid) >= 150 and all(n >= 15 for n in by_topic.values()), by_topic
        positions = await publish(bootstrap, [(t, k, v) for t, k, v, _ in invalid])  # type: ignore[misc]

        # then one valid event per input topic, each observable downstream
        marker_img, marker_cluster = "fz-marker-image", 2
        interaction = Interaction(user_id="fz-mapped", image_id=marker_img, event_type=EventType.FAVORITE)
        learned = PersonalizationEvent(
            event_id="fz-learned",
            user_id="fz-learner",
            cluster_id=int(doc["cluster_id"]),
            image_id="pastel/circle-0",
            event_type=EventType.DOWNLOAD,
            weight=5.0,
            timestamp=datetime.now(UTC),
            centroid_version=version,
        )
        indexed = ImageIndexed(
            image_id=marker_img, cluster_id=marker_cluster, model_id="hash-v1-d64", centroid_version=version
        )
        await publish(
            bootstrap,
            [
                (
                    pipeline.settings.topics.new_images().name,
                    b"fz-last",
                    NewImage.inline("fz-last", styled_png(5)).to_bytes(),
                ),
                (pipeline.settings.topics.images_indexed().name, marker_img.encode(), indexed.to_bytes()),
                (pipeline.settings.topics.personalization_events().name, b"fz-learner", learned.to_bytes()),
            ],
        )
        async with EventPublisher(bootstrap, topics=pipeline.settings.topics) as pub:
            await pub.publish_interaction(interaction)
        resp = await client.search("fz-learner", image_b64=doc_b64(pipeline), k=5, timeout_s=10)
        assert resp.ok and resp.hits

        async def learned_applied() -> SearchResponse | None:
            r = await client.search("fz-learner", image_b64=doc_b64(pipeline), k=5, timeout_s=10)
            return r if any("download:pastel/circle-0" in h.drivers for h in r.hits) else None

        await wait_for(learned_applied, 30, "the valid personalization event", workers=pipeline.workers)

    async def mapped() -> bool:
        for m in await read_to_end(bootstrap, pipeline.settings.topics.personalization_events().name):
            if m.key == interaction.user_id.encode():  # the topic holds the fuzz too
                ev = PersonalizationEvent.from_bytes(m.value)
                return ev.event_id == interaction.event_id and ev.cluster_id == marker_cluster
        return False

    await wait_for(mapped, 30, "the valid interaction mapped through the valid image-indexed event")
    idx = pipeline.index()
    try:

        async def last_indexed() -> bool:
            return await idx.get("fz-last") is not None

        await wait_for(last_indexed, 30, "the valid image after the fuzz", workers=pipeline.workers)
    finally:
        await idx.close()

    letters = await letters_at(pipeline, {(t, p, o) for (t, *_), (p, o) in zip(invalid, positions, strict=True)})
    for (name, key, value, code), (part, offset) in zip(invalid, positions, strict=True):
        dl = letters[(name, part, offset)]
        assert dl.reason_code == code and dl.reason, (name, value, dl)
        assert dl.original_bytes() == (value or b"")
        assert dl.original_key_b64 == (None if key is None else base64.b64encode(key).decode())
    # invalid requests that still name this client get an error reply, not silence
    replies = [SearchResponse.from_bytes(m.value) for m in await read_to_end(bootstrap, client.reply_topic)]
    errors = Counter((r.request_id, r.error.code) for r in replies if r.error is not None)
    expected = Counter(
        (target[0], code)
        for name, _, value, code in invalid
        if name == pipeline.settings.topics.search_requests().name
        and (target := _reply_target(value, pipeline.settings.topics)) is not None
        and target[2] == client.reply_topic
    )
    assert expected and not expected - errors, expected - errors
    assert_no_agent_crash(pipeline.workers)


def doc_b64(p: Pipeline) -> str:
    return base64.b64encode((p.image_dir / "pastel/circle-0.png").read_bytes()).decode()


async def test_oversize_images_bombs_and_out_of_range_queries_are_dead_lettered(pipeline: Pipeline):
    bootstrap = pipeline.settings.kafka_bootstrap
    bomb = bomb_png()
    big = noise_png(MAX_IMAGE_BYTES + 50_000)
    assert len(bomb) < 200_000 and len(big) > MAX_IMAGE_BYTES
    (pipeline.image_dir / "bomb.png").write_bytes(bomb)
    (pipeline.image_dir / "big.png").write_bytes(big)
    uri = (pipeline.image_dir).resolve().as_uri()
    images = [
        (NewImage.inline("bomb-inline", bomb), "too_many_pixels"),
        (NewImage(image_id="bomb-file", source_uri=f"{uri}/bomb.png"), "too_many_pixels"),
        (NewImage.inline("big-inline", big), "image_too_large"),
        (NewImage(image_id="big-file", source_uri=f"{uri}/big.png"), "image_too_large"),
    ]
    async with SearchClient(bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings) as client:
        await search_until_ready(client, user_id="limits-user", text="warm up", k=1)

        def request(**fields: Any) -> bytes:
            raw = json.loads(
                SearchRequest(user_id="limits-user", text="cat", reply_topic=client.reply_topic).model_dump_json()
            )
            raw.update(fields)
            return json.dumps(raw).encode()

        queries = [
            (request(text="x" * (MAX_QUERY_TEXT_CHARS + 1)), "schema_violation"),
            (request(k=0), "schema_violation"),
            (request(k=MAX_K + 1), "schema_violation"),
            (request(text=None, image_b64=base64.b64encode(bomb).decode()), "too_many_pixels"),
        ]
        items = [(pipeline.settings.topics.new_images().name, e.image_id.encode(), e.to_bytes()) for e, _ in images]
        items += [(pipeline.settings.topics.search_requests().name, b"limits-user", q) for q, _ in queries]
        positions = await publish(bootstrap, items)
        # the streams go on: a valid image and a valid search after the bad ones
        await publish(
            bootstrap,
            [
                (
                    pipeline.settings.topics.new_images().name,
                    b"after-limits",
                    NewImage.inline("after-limits", styled_png(9)).to_bytes(),
                )
            ],
        )
        resp = await client.search("limits-user", image_b64=doc_b64(pipeline), k=3, timeout_s=10)
        assert resp.ok and len(resp.hits) == 3
    idx = pipeline.index()
    try:

        async def after_indexed() -> bool:
            return await idx.get("after-limits") is not None

        await wait_for(after_indexed, 30, "the valid image after the bad ones", workers=pipeline.workers)
        assert all([await idx.get(e.image_id) is None for e, _ in images])
    finally:
        await idx.close()
    codes = [c for _, c in images] + [c for _, c in queries]
    letters = await letters_at(pipeline, {(t, p, o) for (t, *_), (p, o) in zip(items, positions, strict=True)})
    for (name, _, value), (part, offset), code in zip(items, positions, codes, strict=True):
        dl = letters[(name, part, offset)]
        assert dl.reason_code == code, (name, code, dl.reason_code, dl.reason)
        # a big payload is kept as its first bytes, with its size and hash (issue 14, item 1)
        assert dl.reason and dl.original_size == len(value) and dl.original_bytes() == value[: len(dl.original_bytes())]
        assert dl.original_sha256 == hashlib.sha256(value).hexdigest()
        assert dl.original_truncated == (len(dl.original_bytes()) < len(value))
    replies = {
        r.request_id: r
        for r in (SearchResponse.from_bytes(m.value) for m in await read_to_end(bootstrap, client.reply_topic))
    }
    for q, code in queries:
        reply = replies.get(json.loads(q)["request_id"])
        assert reply is not None and reply.error is not None and reply.error.code == code, (code, reply)
    assert_no_agent_crash(pipeline.workers)
