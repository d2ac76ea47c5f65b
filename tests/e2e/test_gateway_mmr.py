"""Issue 15: the MMR λ through the HTTP gateway (a process) to the query worker and back, on the real
servers: the page's parameter ``mmr_lambda`` changes the reply, 1 is the order without it, and values
outside [0, 1] are refused with 400."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.support.e2e import E2E, http

pytestmark = pytest.mark.e2e


def search(e2e: E2E, **params: str) -> tuple[int, dict]:
    q = {"user": "u-mmr", "k": "10", "weight": "0", "like_image_id": "neon/circle-0", **params}
    status, _, body = http("GET", f"{e2e.gateway_url}/api/search?{urlencode(q)}")
    return status, json.loads(body)


def test_mmr_lambda_through_the_gateway(e2e: E2E) -> None:
    status, _, body = http("GET", f"{e2e.gateway_url}/api/config")
    assert status == 200 and json.loads(body)["default_mmr_lambda"] == 1.0
    status, plain = search(e2e)
    assert status == 200 and len(plain["hits"]) == 10
    status, one = search(e2e, mmr_lambda="1")
    assert status == 200 and [h["image_id"] for h in one["hits"]] == [h["image_id"] for h in plain["hits"]]
    status, low = search(e2e, mmr_lambda="0.2")
    ids_plain, ids_low = [h["image_id"] for h in plain["hits"]], [h["image_id"] for h in low["hits"]]
    print("lambda 1  :", ids_plain)
    print("lambda 0.2:", ids_low)
    assert status == 200 and len(ids_low) == 10 and ids_low[0] == ids_plain[0]
    styles = {e2e.labels[i] for i in ids_low}
    assert ids_low != ids_plain and len(styles) >= len({e2e.labels[i] for i in ids_plain})
    for bad in ("1.5", "-0.1", "nan", "x"):
        status, reply = search(e2e, mmr_lambda=bad)
        assert status == 400 and reply["error"]["code"] == "invalid_request", (bad, reply)
