"""Issue 14, items 1, 2, 4 and 8 without servers: dead letters always fit in a message, the inline
image limit has its own error code, one bad event never takes its batch or its agent down, a new
user's profile starts on the current cluster model."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from imgsearch.config import Settings
from imgsearch.domain.centroids import CentroidModel
from imgsearch.embedding.hashing import HashEmbedder
from imgsearch.images import ImageRejected, fetch_uri
from schemas.events import (
    DeadLetter,
    EventType,
    InvalidEvent,
    NewImage,
    PersonalizationEvent,
    SearchRequest,
    SearchResponse,
    parse_event,
    utcnow,
)
from schemas.limits import (
    DEAD_LETTER_MAX_BYTES,
    DEAD_LETTER_MAX_ORIGINAL_BYTES,
    GATEWAY_MAX_BODY_BYTES,
    MAX_EVENT_BYTES,
    MAX_INLINE_IMAGE_BYTES,
    MAX_MESSAGE_BYTES,
)
from streams.common import DeadLetters
from tests.support.fakes import Letters, Replies, Sink, event
from tests.unit.test_embedding_pipeline import Wired, png


def settings(tmp_path: Any) -> Settings:
    return Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1")


# ---------------------------------------------------------------- item 1: dead letters always fit


@pytest.mark.parametrize("size", [0, 1000, DEAD_LETTER_MAX_ORIGINAL_BYTES, 2 * 2**20, MAX_MESSAGE_BYTES])
def test_a_dead_letter_always_fits_in_a_message(tmp_path, size):
    sent = Sink()
    dlq = DeadLetters(sent, "test")
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    asyncio.run(dlq.send(payload, "undecodable_image", "r" * 5000, source_topic="t.images.new", partition=1, offset=7))
    (value,) = sent.values
    assert len(value) <= DEAD_LETTER_MAX_BYTES
    dl = DeadLetter.from_bytes(value)
    assert dl.original_size == size and dl.original_sha256 == hashlib.sha256(payload).hexdigest()
    assert dl.original_truncated == (size > DEAD_LETTER_MAX_ORIGINAL_BYTES)
    assert dl.original_bytes() == payload[:DEAD_LETTER_MAX_ORIGINAL_BYTES]
    if not dl.original_truncated:
        assert dl.original_bytes() == payload  # small payloads are kept whole, as before


# ---------------------------------------------------------------- item 2: the chain


def test_the_size_limit_chain_is_consistent():
    b64 = 4 * -(-MAX_INLINE_IMAGE_BYTES // 3)
    assert b64 + 64 * 1024 < MAX_EVENT_BYTES <= GATEWAY_MAX_BODY_BYTES < MAX_MESSAGE_BYTES
    from imgsearch.kafka.admin import topic_configs
    from schemas.topics import Topics

    topics = Topics()
    for spec in [*topics.all_shared(), topics.reply_topic("c")]:
        assert int(topic_configs(spec)["max.message.bytes"]) >= MAX_MESSAGE_BYTES, spec.name
    assert Settings().max_image_bytes == MAX_INLINE_IMAGE_BYTES
    # the broker templates and docker-compose say the same
    from imgsearch.config import REPO_ROOT

    for name in ("ops/kafka/server.properties.template", "ops/kafka/server-secure.properties.template"):
        text = (REPO_ROOT / name).read_text()
        assert f"message.max.bytes={MAX_MESSAGE_BYTES}" in text and "auto.create.topics.enable=false" in text
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert f"KAFKA_MESSAGE_MAX_BYTES: {MAX_MESSAGE_BYTES}" in compose
    assert 'KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false"' in compose


@pytest.mark.parametrize("over", [1, 10, 10**6])
def test_an_inline_image_over_the_limit_is_image_too_large(over):
    big = base64.b64encode(b"\0" * (MAX_INLINE_IMAGE_BYTES + over)).decode()
    with pytest.raises(ValidationError) as e:
        SearchRequest(user_id="u", image_b64=big, reply_topic="r")
    assert [err["type"] for err in e.value.errors()] == ["image_too_large"]
    raw = NewImage(image_id="i", source_uri="file:///x").model_dump(mode="json")
    raw.update(source_uri=None, image_b64=big)

    with pytest.raises(InvalidEvent) as ie:
        parse_event(NewImage, json.dumps(raw))
    assert ie.value.code == "image_too_large"
    at_limit = base64.b64encode(b"\0" * MAX_INLINE_IMAGE_BYTES).decode()
    assert len(SearchRequest(user_id="u", image_b64=at_limit, reply_topic="r").image_bytes()) == MAX_INLINE_IMAGE_BYTES


# ---------------------------------------------------------------- item 4: one event, not its batch


def test_a_nul_byte_in_a_uri_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ImageRejected) as e:
        fetch_uri(f"file://{tmp_path}/a\x00.png", [str(tmp_path)], 10**6)
    assert e.value.code == "uri_invalid"
    with pytest.raises(ImageRejected) as e:
        fetch_uri(f"file://{tmp_path}/a%00.png", [str(tmp_path)], 10**6)
    assert e.value.code == "uri_invalid"


def test_a_nul_byte_uri_does_not_poison_its_batch(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        (images / f"ok-{i}.png").write_bytes(png())
    w = Wired(tmp_path)
    p, index = w.pipeline, w.index
    p.roots = [str(images)]
    events = [
        event(NewImage(image_id=f"ok-{i}", source_uri=(images / f"ok-{i}.png").as_uri()).to_bytes(), i)
        for i in range(2)
    ]
    events.append(event(NewImage(image_id="nul", source_uri=f"file://{images}/x\x00.png").to_bytes(), 2))
    events.append(event(NewImage(image_id="ok-2", source_uri=(images / "ok-2.png").as_uri()).to_bytes(), 3))
    asyncio.run(p.process(events))
    assert [d.image_id for d in index.docs] == ["ok-0", "ok-1", "ok-2"]
    assert [(o, c) for o, c, _ in w.letters] == [(2, "uri_invalid")]


def test_an_unexpected_error_reading_one_event_dead_letters_only_that_event(tmp_path):
    w = Wired(tmp_path)
    p, index = w.pipeline, w.index
    original = p._load_pixels

    def load(image: NewImage) -> Image.Image:
        if image.image_id == "boom":
            raise RuntimeError("a bug nobody foresaw")
        return original(image)

    p._load_pixels = load  # type: ignore[method-assign]
    events = [event(NewImage.inline(i, png()).to_bytes(), n) for n, i in enumerate(["a", "boom", "b"])]
    asyncio.run(p.process(events))
    assert [d.image_id for d in index.docs] == ["a", "b"] and w.indexed.keys == [b"a", b"b"]
    assert [(o, c) for o, c, _ in w.letters] == [(1, "processing_failed")]
    assert "a bug nobody foresaw" in w.letters[0][2]


def test_a_batch_that_fails_is_retried_event_by_event(tmp_path):
    w = Wired(tmp_path)
    p, index = w.pipeline, w.index
    embed = p.embedder.embed_images

    def embed_images(pixels: list[Image.Image]) -> np.ndarray:
        if any(px.size == (17, 17) for px in pixels):
            raise ValueError("this one image breaks the model")
        return embed(pixels)

    p.embedder.embed_images = embed_images  # type: ignore[method-assign]
    odd = io.BytesIO()
    Image.new("RGB", (17, 17), "blue").save(odd, "PNG")
    events = [
        event(NewImage.inline("a", png()).to_bytes(), 0),
        event(NewImage.inline("odd", odd.getvalue()).to_bytes(), 1),
    ]
    events.append(event(NewImage.inline("b", png()).to_bytes(), 2))
    asyncio.run(p.process(events))
    assert sorted(d.image_id for d in index.docs) == ["a", "b"]
    assert [(o, c) for o, c, _ in w.letters] == [(1, "processing_failed")]


# ---------------------------------------------------------------- query worker: catch-all, bounded reply


def query_service(tmp_path: Any, embedder: Any = None, replies: Replies | None = None) -> tuple[Any, Letters, Replies]:
    from tests.unit.test_query_service import Wired as QueryWired

    w = QueryWired(tmp_path, embedder=embedder, replies=replies)
    return w.service, w.dead, w.replies


def request_event(**kw: Any) -> tuple[SimpleNamespace, SearchRequest]:
    req = SearchRequest(user_id="u", text="cat", reply_topic="imgsearch.search.replies.c1", **kw)
    return event(req.to_bytes(), 5, topic="t", key=b"u"), req


def test_an_unexpected_error_in_a_search_is_dead_lettered_and_answered(tmp_path):
    class Broken(HashEmbedder):
        def embed_texts(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("the text encoder fell over")

    service, dead, replies = query_service(tmp_path, Broken(), Replies(["imgsearch.search.replies.c1"]))
    ev, req = request_event()
    asyncio.run(service.handle(ev))
    assert dead.codes == ["processing_failed"] and "fell over" in dead.letters[0].reason
    ((topic, resp),) = replies.sent
    assert topic == req.reply_topic and resp.request_id == req.request_id and resp.error.code == "processing_failed"


def test_a_reply_to_a_topic_that_does_not_exist_is_refused_not_created(tmp_path):
    service, dead, replies = query_service(tmp_path, replies=Replies([]))
    ev, req = request_event()
    assert asyncio.run(service.reply(req.reply_topic, SearchResponse(request_id="r", user_id="u"), ev)) is False
    assert dead.codes == ["reply_topic_unknown"] and replies.sent == []


def test_a_reply_send_that_hangs_is_bounded(tmp_path, monkeypatch):
    import streams.query as q

    monkeypatch.setattr(q, "REPLY_SEND_TIMEOUT_S", 0.3)
    service, dead, _ = query_service(tmp_path, replies=Replies(["imgsearch.search.replies.c1"], hang=True))
    ev, req = request_event()

    async def run() -> tuple[bool, float]:
        t0 = asyncio.get_running_loop().time()
        ok = await service.reply(req.reply_topic, SearchResponse(request_id="r", user_id="u"), ev)
        return ok, asyncio.get_running_loop().time() - t0

    ok, took = asyncio.run(run())
    assert ok is False and took < 1.0 and dead.codes == ["reply_timeout"]


# ---------------------------------------------------------------- item 8: quiet log for a new user


def test_a_new_users_profile_starts_on_the_current_model_without_a_warning(tmp_path, caplog):
    from tests.unit.test_query_service import Wired as QueryWired

    model = CentroidModel("v7", "style", "f", np.eye(3, dtype=np.float32), {})
    w = QueryWired(tmp_path, model=model)
    service, store = w.service, w.store
    caplog.set_level(logging.DEBUG, logger="imgsearch.domain.user_profiles")
    for n in range(3):
        ev = PersonalizationEvent(
            event_id=f"e{n}", user_id="new-user", cluster_id=n, image_id=f"i{n}", event_type=EventType.VIEW,
            weight=1.0, timestamp=utcnow(), centroid_version="v7",
        )  # fmt: skip
        assert service.learn(ev)
    assert store["new-user"]["version"] == "v7"
    assert service.profiles.get("new-user")["version"] == "v7"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]


def test_an_unexpected_error_in_an_interaction_is_dead_lettered(tmp_path):
    from schemas.events import Interaction
    from streams.interactions import InteractionMapper

    class Broken(dict):
        def get(self, key: Any, default: Any = None) -> Any:
            raise KeyError("the table is in a state nobody foresaw")

    dead = Letters()
    mapper = InteractionMapper(settings(tmp_path), Broken(), Sink(), Sink(), dead.dlq)
    value = Interaction(user_id="u", image_id="i", event_type=EventType.VIEW).to_bytes()
    asyncio.run(mapper.handle(event(value, 1, topic="t", key=b"u")))
    assert dead.codes == ["processing_failed"] and "nobody foresaw" in dead.letters[0].reason


def test_cli_search_says_why_a_request_could_not_be_sent(monkeypatch, capsys):
    """``imgsearch search`` against a topic that does not exist: exit 4 and the reason, no traceback."""
    from apps import cli
    from producers import TopicMissing

    class Client:
        def __init__(self, *a: Any, **k: Any) -> None: ...

        async def __aenter__(self) -> Any:
            return self

        async def __aexit__(self, *a: Any) -> None: ...

        async def search(self, *a: Any, **k: Any) -> Any:
            raise TopicMissing("topic t.search.requests does not exist: create the topics with `imgsearch topics`")

    monkeypatch.setattr("producers.search_client.SearchClient", Client)
    code = asyncio.run(cli.cmd_search(Settings(), "u", "cat", 5, None, 1.0, as_json=True))
    out = capsys.readouterr().out
    assert code == 4 and json.loads(out)["error"]["code"] == "TopicMissing" and "imgsearch topics" in out
