"""Every worker serves Prometheus metrics and a health endpoint (wired as proposed for streams/)."""

from __future__ import annotations

import json
import re

import pytest

from producers import EventPublisher
from tests.support.e2e import E2E, http, wait_until

pytestmark = pytest.mark.e2e


def scrape(port: int) -> dict[str, float]:
    status, headers, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$", line)
        if m and not line.startswith("#"):
            out[m.group(1)] = float(m.group(2))
    return out


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items() if k.split("{")[0] == name and all(w in k for w in want))


def test_health_endpoints(e2e: E2E) -> None:
    for role, port in e2e.metrics_ports.items():
        status, _, body = http("GET", f"http://127.0.0.1:{port}/healthz")
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok", (role, health)
        assert health["app"].startswith(f"{e2e.settings.app_prefix}-{role}")
        assert health["assigned_partitions"] >= 1


def test_worker_metrics(e2e: E2E) -> None:
    ports = e2e.metrics_ports
    new_images = e2e.settings.topics.new_images().name
    embedder = wait_until(
        lambda: (
            (s := scrape(ports["embedder"]))
            and total(s, "imgsearch_events_processed_total", topic=new_images) >= 36
            and s
        ),
        20,
        "the embedder's processed count",
    )
    assert total(embedder, "imgsearch_events_received_total", topic=new_images) >= 36
    assert total(embedder, "imgsearch_stage_seconds_count", stage="embed_images") >= 1
    assert total(embedder, "imgsearch_event_processing_seconds_count", topic=new_images) >= 36

    query = scrape(ports["query"])
    assert total(query, "imgsearch_searches_total") >= 1
    for stage in ("embed_query", "knn", "rank", "search"):
        assert total(query, "imgsearch_stage_seconds_count", stage=stage) >= 1, stage
    assert total(query, "imgsearch_events_processed_total", topic=e2e.settings.topics.search_requests().name) >= 1

    # consumer lag per assigned partition, per topic
    lag = wait_until(
        lambda: [k for k in scrape(ports["interactions"]) if k.startswith("imgsearch_consumer_lag{")],
        15,
        "consumer lag series",
    )
    assert any(f'topic="{e2e.settings.topics.interactions().name}"' in k for k in lag), lag
    assert all('partition="' in k for k in lag)

    # a malformed interaction: counted as a dead letter with its reason
    import asyncio

    async def send_bad() -> None:
        async with EventPublisher(
            e2e.settings.kafka_bootstrap, topics=e2e.settings.topics, settings=e2e.settings
        ) as pub:
            await pub.publish_raw(e2e.settings.topics.interactions().name, b"{not json", key=b"alice")

    asyncio.run(send_bad())
    wait_until(
        lambda: (
            total(
                scrape(ports["interactions"]),
                "imgsearch_dead_letters_total",
                source_topic=e2e.settings.topics.interactions().name,
                reason_code="malformed_json",
            )
            >= 1
        ),
        20,
        "the dead letter counted",
    )
