import base64
import json

import pytest

from schemas import export
from schemas.events import (
    DeadLetter,
    Interaction,
    InvalidEvent,
    NewImage,
    SearchRequest,
    SearchResponse,
    parse_event,
)
from schemas.topics import Topics


def test_new_image_round_trip_inline():
    ev = NewImage.inline("img-1", b"\x89PNG...", metadata={"title": "cat"})
    back = parse_event(NewImage, ev.to_bytes())
    assert back == ev
    assert back.image_bytes() == b"\x89PNG..."


def test_new_image_needs_exactly_one_source():
    with pytest.raises(InvalidEvent) as e:
        parse_event(NewImage, json.dumps({"image_id": "a"}))
    assert e.value.code == "schema_violation"
    assert "exactly one of source_uri or image_b64" in e.value.message
    with pytest.raises(InvalidEvent):
        parse_event(NewImage, json.dumps({"image_id": "a", "source_uri": "file:///x", "image_b64": "AAAA"}))


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "schema_violation"),
        (json.dumps({"schema_version": 2, "image_id": "a", "source_uri": "file:///x"}), "unknown_version"),
        (json.dumps({"type": "interaction", "image_id": "a", "source_uri": "file:///x"}), "wrong_type"),
        (json.dumps({"image_id": "has space", "source_uri": "file:///x"}), "schema_violation"),
        (json.dumps({"image_id": "a", "source_uri": "file:///x", "colour": "red"}), "schema_violation"),
        (None, "empty"),
    ],
)
def test_parse_event_reasons(payload, code):
    with pytest.raises(InvalidEvent) as e:
        parse_event(NewImage, payload)
    assert e.value.code == code
    assert e.value.message


def test_interaction_event_types_and_ids():
    ev = Interaction(user_id="u1", image_id="i1", event_type="favorite")
    assert ev.event_id and ev.event_id != Interaction(user_id="u1", image_id="i1", event_type="view").event_id
    with pytest.raises(InvalidEvent) as e:
        parse_event(Interaction, json.dumps({"user_id": "u", "image_id": "i", "event_type": "like"}))
    assert "event_type" in e.value.message


def test_search_request_limits():
    ok = SearchRequest(user_id="u", text="cat", reply_topic="r")
    assert ok.k == 10 and ok.personalization_weight is None
    for bad in ({"k": 0}, {"k": 101}, {"personalization_weight": 1.5}, {"text": "x" * 1001}):
        with pytest.raises(ValueError):
            SearchRequest(user_id="u", text=bad.pop("text", "cat"), reply_topic="r", **bad)
    with pytest.raises(ValueError, match="needs text or image_b64"):
        SearchRequest(user_id="u", reply_topic="r")
    with pytest.raises(ValueError, match="not valid base64"):
        SearchRequest(user_id="u", image_b64="***", reply_topic="r")


def test_dead_letter_keeps_original_bytes():
    raw = b"\x00\x01binary"
    dl = DeadLetter(
        reason_code="malformed_json",
        reason="x",
        source_topic="t",
        consumer="c",
        original_b64=base64.b64encode(raw).decode(),
    )
    assert DeadLetter.from_bytes(dl.to_bytes()).original_bytes() == raw


def test_search_response_error_shape():
    resp = SearchResponse(request_id="r", user_id="u", error={"code": "expired", "message": "late"})
    assert not resp.ok and SearchResponse.from_bytes(resp.to_bytes()).error.code == "expired"


def test_json_schema_files_are_in_sync():
    assert export.main(["--check"]) == 0, "run: python -m schemas.export"


def test_topics_keys_and_copartitioning():
    topics = Topics(prefix="p")
    by_user = [topics.interactions(), topics.personalization_events(), topics.search_requests()]
    assert {t.key for t in by_user} == {"user_id"}
    assert {t.partitions for t in by_user} == {None}  # same configured count: co-partitioned
    assert topics.centroids().compacted and topics.centroids().partitions == 1
    names = [t.name for t in topics.all_shared()]
    assert len(names) == len(set(names))
