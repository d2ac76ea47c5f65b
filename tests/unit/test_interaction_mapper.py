"""The interaction mapper (streams.interactions.InteractionMapper) on in-memory fakes of its ports:
no Kafka. An interaction becomes a personalization event on its image's cluster; one for an image
not indexed yet is parked on the retry topic, then dead-lettered; invalid and future-stamped
interactions are dead-lettered; a ForgetUser request drops the user's parked interactions."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from imgsearch.config import Settings
from schemas.events import EventType, ForgetUser, ImageIndexed, Interaction, PersonalizationEvent, utcnow
from streams.interactions import (
    ATTEMPT_HEADER,
    NOT_BEFORE_HEADER,
    ORIGIN_HEADER,
    PARKED_AT_HEADER,
    InteractionMapper,
)
from tests.support.fakes import Letters, Sink, event


class Wired:
    def __init__(self, tmp_path: Any, **settings: Any) -> None:
        self.settings = Settings(
            data_dir=str(tmp_path),
            kafka_bootstrap="127.0.0.1:1",
            **{"unknown_image_retries": 2, "unknown_image_wait_s": 10.0, "max_clock_skew_s": 300.0, **settings},
        )
        self.clusters: dict[str, Any] = {}
        self.out = Sink()
        self.retry = Sink()
        self.dead = Letters("interactions")
        self.mapper = InteractionMapper(self.settings, self.clusters, self.out, self.retry, self.dead.dlq)

    def handle(self, value: bytes | None, offset: int = 0, *, partition: int = 2) -> None:
        asyncio.run(self.mapper.handle(event(value, offset, topic="t.interactions", partition=partition, key=b"u")))

    def handle_retry(self, value: bytes, headers: list[tuple[str, bytes]], offset: int = 0) -> None:
        ev = event(value, offset, topic="t.interactions.retry", key=b"u", headers=headers)
        asyncio.run(self.mapper.handle_retry(ev))

    @property
    def events(self) -> list[Any]:
        return [PersonalizationEvent.from_bytes(v) for v in self.out.values]


def interaction(image: str = "img-1", kind: EventType = EventType.FAVORITE, **kw: Any) -> Interaction:
    return Interaction(user_id="u", image_id=image, event_type=kind, **kw)


def test_an_interaction_becomes_a_personalization_event_on_its_images_cluster(tmp_path):
    w = Wired(tmp_path)
    asyncio.run(
        w.mapper.track(
            event(ImageIndexed(image_id="img-1", cluster_id=4, model_id="m", centroid_version="v2").to_bytes())
        )
    )
    i = interaction()
    w.handle(i.to_bytes())
    (pe,) = w.events
    assert (pe.event_id, pe.user_id, pe.image_id, pe.cluster_id, pe.centroid_version) == (
        i.event_id,
        "u",
        "img-1",
        4,
        "v2",
    )
    assert pe.weight == w.settings.event_weights[EventType.FAVORITE] and w.out.keys == [b"u"]
    assert w.retry.sent == [] and w.dead.codes == []


def test_an_interaction_for_an_image_not_indexed_yet_is_parked_then_dead_lettered(tmp_path):
    w = Wired(tmp_path)
    i = interaction("later")
    w.handle(i.to_bytes(), offset=17)
    assert w.out.sent == [] and w.dead.codes == []
    ((key, value, headers),) = w.retry.sent
    h = {k: v.decode() for k, v in headers or []}
    assert key == b"u" and value == i.to_bytes() and h[ATTEMPT_HEADER] == "1"
    assert h[ORIGIN_HEADER] == "t.interactions:2:17"
    assert float(h[NOT_BEFORE_HEADER]) - float(h[PARKED_AT_HEADER]) == w.mapper.retry_delay_s
    # the last attempt: still not indexed -> a dead letter naming the interaction as published
    due = [(ATTEMPT_HEADER, b"2"), (NOT_BEFORE_HEADER, b"0"), (PARKED_AT_HEADER, h[PARKED_AT_HEADER].encode())]
    w.handle_retry(value, [*due, (ORIGIN_HEADER, h[ORIGIN_HEADER].encode())])
    (letter,) = w.dead.letters
    assert letter.reason_code == "unknown_image" and "2 retries" in letter.reason
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("t.interactions", 2, 17)
    assert len(w.retry.sent) == 1 and w.out.sent == []


def test_a_parked_interaction_is_mapped_once_its_image_is_indexed(tmp_path):
    w = Wired(tmp_path)
    i = interaction("later")
    w.handle(i.to_bytes())
    w.clusters["later"] = [1, "v1"]
    w.handle_retry(i.to_bytes(), [(ATTEMPT_HEADER, b"1"), (NOT_BEFORE_HEADER, b"0"), (PARKED_AT_HEADER, b"0")])
    assert [(e.image_id, e.cluster_id) for e in w.events] == [("later", 1)] and w.dead.codes == []


def test_an_indexed_image_without_a_cluster_is_unclustered_image(tmp_path):
    w = Wired(tmp_path, unknown_image_wait_s=0.0)  # no parking: dead-lettered at once
    w.clusters["img-1"] = [-1, "none"]
    w.handle(interaction().to_bytes())
    assert w.dead.codes == ["unclustered_image"] and w.retry.sent == [] and w.out.sent == []


def test_invalid_and_future_interactions_are_dead_lettered(tmp_path):
    w = Wired(tmp_path)
    w.clusters["img-1"] = [0, "v1"]
    w.handle(b"{oops", 1)
    w.handle(b'{"type": "interaction", "user_id": "u"}', 2)
    w.handle(interaction(timestamp=utcnow() + timedelta(hours=1)).to_bytes(), 3)
    w.handle(None, 4)
    assert w.dead.codes == ["malformed_json", "schema_violation", "timestamp_in_future", "empty"]
    assert [dl.source_offset for dl in w.dead.letters] == [1, 2, 3, 4] and w.out.sent == []
    assert "IMGSEARCH_MAX_CLOCK_SKEW_S" in w.dead.letters[2].reason


def test_a_forget_request_is_forwarded_and_drops_the_users_parked_interactions(tmp_path):
    w = Wired(tmp_path)
    parked_at = f"{time.time() - 1:.3f}".encode()
    forget = ForgetUser(user_id="u")
    w.handle(forget.to_bytes())
    assert w.out.values == [forget.to_bytes()] and w.out.keys == [b"u"]
    w.clusters["img-1"] = [0, "v1"]  # indexed meanwhile: it would map, but its user was forgotten
    w.handle_retry(
        interaction().to_bytes(), [(ATTEMPT_HEADER, b"1"), (NOT_BEFORE_HEADER, b"0"), (PARKED_AT_HEADER, parked_at)]
    )
    assert w.out.values == [forget.to_bytes()] and w.dead.codes == []
    # one parked after the request maps as usual
    later = f"{time.time() + 1:.3f}".encode()
    w.handle_retry(
        interaction().to_bytes(), [(ATTEMPT_HEADER, b"1"), (NOT_BEFORE_HEADER, b"0"), (PARKED_AT_HEADER, later)]
    )
    assert [PersonalizationEvent.from_bytes(v).image_id for v in w.out.values[1:]] == ["img-1"]


def test_image_indexed_events_fill_the_cluster_map(tmp_path):
    w = Wired(tmp_path)
    for n, cluster in enumerate([3, 5]):  # the newest assignment wins
        indexed = ImageIndexed(image_id="img-1", cluster_id=cluster, model_id="m", centroid_version=f"v{n}")
        asyncio.run(w.mapper.track(event(indexed.to_bytes(), n)))
    asyncio.run(w.mapper.track(event(b"{", 2)))
    assert w.clusters == {"img-1": [5, "v1"]} and w.mapper.cluster_of("img-1") == (5, "v1")
    assert w.dead.codes == ["malformed_json"] and w.mapper.cluster_of("nope") is None
