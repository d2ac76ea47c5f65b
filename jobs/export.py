"""Export the cluster-level interactions in Amazon Personalize's Interactions dataset format.

CSV columns USER_ID, ITEM_ID (= cluster id), TIMESTAMP (epoch seconds), EVENT_TYPE, EVENT_VALUE,
with the Avro schema JSON Personalize expects, written locally and optionally uploaded to S3.
Events learnt on an earlier cluster model are mapped onto the current one (the cluster most of
the old cluster's images went to).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imgsearch.config import Settings
from imgsearch.connections import kafka_security
from imgsearch.domain.centroids import CentroidModel
from schemas.events import PersonalizationEvent

PERSONALIZE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
    ],
    "version": "1.0",
}
COLUMNS = [f["name"] for f in PERSONALIZE_SCHEMA["fields"]]


def rows(events: Iterable[PersonalizationEvent], model: CentroidModel | None) -> list[list[str]]:
    """One row per distinct event id, on ``model``'s cluster ids where a remap is known."""
    out: list[list[str]] = []
    seen: set[str] = set()
    for ev in events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        cluster = ev.cluster_id
        if model is not None and ev.centroid_version != model.version:
            shares = model.remaps.get(ev.centroid_version, {}).get(ev.cluster_id)
            if not shares:
                continue  # a cluster id of a model we cannot map: leave it out rather than mislabel
            cluster = max(shares.items(), key=lambda kv: kv[1])[0]
        out.append(
            [ev.user_id, str(cluster), str(int(ev.timestamp.timestamp())), ev.event_type.value, f"{ev.weight:g}"]
        )
    return out


def to_csv(table: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(table)
    return buf.getvalue()


def write(table: list[list[str]], out_dir: Path, s3_uri: str | None = None, s3_client: Any = None) -> list[str]:
    """Write interactions.csv and interactions-schema.json; upload both if ``s3_uri`` is given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"interactions.csv": to_csv(table), "interactions-schema.json": json.dumps(PERSONALIZE_SCHEMA, indent=2)}
    written = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        written.append(str(out_dir / name))
    if s3_uri:
        if not s3_uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {s3_uri}")
        bucket, _, prefix = s3_uri[5:].partition("/")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        for name, text in files.items():
            key = f"{prefix.rstrip('/')}/{name}" if prefix else name
            s3_client.put_object(
                Bucket=bucket,
                Key=key,
                Body=text.encode(),
                ContentType="text/csv" if name.endswith(".csv") else "application/json",
            )
            written.append(f"s3://{bucket}/{key}")
    return written


async def read_events(settings: Settings, timeout_s: float = 30.0) -> list[PersonalizationEvent]:
    """Every personalization event on the topic (read to its end, no consumer group)."""
    import asyncio
    import time

    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from schemas.events import ForgetUser, InvalidEvent, event_type_of, parse_event

    name = settings.topics.personalization_events().name
    bootstrap, security = settings.kafka_bootstrap, kafka_security(settings)
    consumer = AIOKafkaConsumer(**security, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    events: list[PersonalizationEvent] = []
    try:
        admin = AIOKafkaAdminClient(**security, bootstrap_servers=bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics([name])
        finally:
            await admin.close()
        parts = {p["partition"] for d in described if d.get("error_code", 0) == 0 for p in d["partitions"]}
        tps = [TopicPartition(name, p) for p in sorted(parts)]
        if not tps:
            return events
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while True:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {name} took longer than {timeout_s}s")
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                for m in msgs:
                    try:
                        if event_type_of(m.value) == "user.forget":
                            # a forgotten user's earlier events (same key: same partition, before it)
                            # stay on the topic until retention removes them; never export them
                            gone = parse_event(ForgetUser, m.value).user_id
                            events = [e for e in events if e.user_id != gone]
                            continue
                        events.append(parse_event(PersonalizationEvent, m.value))
                    except InvalidEvent:
                        continue
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return events
