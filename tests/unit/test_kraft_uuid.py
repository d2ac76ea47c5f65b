"""The KRaft cluster id given to the Kafka container is one kafka-storage's parser accepts."""

from __future__ import annotations

import base64
import uuid

import pytest

from consumers import runner


def test_cluster_id_is_kafkas_format():
    cid = runner.uuid_for_kraft()
    assert len(cid) == 22
    assert base64.urlsafe_b64decode(cid + "==") and not cid.startswith("-")


def test_an_id_that_would_start_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch):
    # 0xf8 puts 62 (base64url "-") in the first six bits; kafka-storage would read it as an option
    dash, plain = uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))
    assert base64.urlsafe_b64encode(dash.bytes).startswith(b"-")
    draws = iter([dash, dash, plain])
    monkeypatch.setattr(runner.uuid, "uuid4", lambda: next(draws))
    assert runner.uuid_for_kraft() == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
