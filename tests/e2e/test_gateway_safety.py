"""What the gateway refuses: files outside the allowed roots, and a search nobody answers (504)."""

from __future__ import annotations

import asyncio
import json

import pytest

from imgsearch.kafka.admin import ensure_topics
from tests.support.e2e import E2E, http, start_gateway, stop_process

pytestmark = pytest.mark.e2e


def test_images_outside_the_allowed_roots_are_refused(e2e: E2E) -> None:
    outside = e2e.tmp / "secret.png"
    outside.write_bytes((e2e.image_dir / "mono/bar-0.png").read_bytes())
    docs = {
        "evil-outside": outside.as_uri(),
        "evil-passwd": "file:///etc/passwd",
        "evil-dotdot": (e2e.image_dir / ".." / "secret.png").as_uri(),
        "evil-http": "http://169.254.169.254/latest/meta-data",
    }

    e2e.plant(docs)
    for image_id in docs:
        for kind in ("images", "thumbs"):
            status, _, body = http("GET", f"{e2e.gateway_url}/{kind}/{image_id}")
            assert status == 403, (image_id, kind, status, body[:200])
            assert json.loads(body)["error"]["code"] in ("uri_not_allowed", "uri_scheme_not_allowed")

    async def remove() -> None:
        idx = e2e.index()
        try:
            for i in docs:
                await idx.client.delete(index=idx.index, id=i, refresh=True)
        finally:
            await idx.close()

    asyncio.run(remove())


def test_search_without_a_query_worker_is_a_504(e2e: E2E) -> None:
    settings = e2e.settings.replace(topic_prefix=f"{e2e.settings.topic_prefix}-noworker", gateway_search_timeout_s=1.5)
    # the topics exist (none is auto-created), no worker
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions, settings=settings)
    )
    proc, url = start_gateway(settings, e2e.tmp / "logs" / "gateway-no-worker.log")
    try:
        status, _, body = http("GET", f"{url}/api/search?q=circle&user=alice")
    finally:
        stop_process(proc)
    assert status == 504
    err = json.loads(body)["error"]
    assert err["code"] == "search_timeout" and "within 1.5s" in err["message"] and "query worker" in err["message"]
