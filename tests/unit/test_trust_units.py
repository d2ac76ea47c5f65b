"""Issue 14 items 5, 6 and 15 without servers: topic configs (retention, compaction lag), the clock
skew bound, and the Personalize leg of a forget request (botocore's Stubber)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from botocore.stub import Stubber

from imgsearch.config import Settings
from imgsearch.kafka.admin import topic_configs
from imgsearch.ranker.personalize import PersonalizeDataDeletion
from schemas.events import ForgetUser, event_type_of
from schemas.topics import Topics
from streams.common import changelog_topics, json_schema, make_app
from streams.interactions import forget_in_personalize, future_skew_s


def test_user_event_topics_have_a_documented_retention():
    topics = Settings.from_env({}).topics
    week = str(7 * 24 * 3600 * 1000)
    for spec in (
        topics.interactions(),
        topics.interactions_retry(),
        topics.personalization_events(),
        topics.dead_letters(),
    ):
        assert topic_configs(spec)["retention.ms"] == week, spec.name
    assert topic_configs(topics.new_images())["retention.ms"] == "-1"  # the catalog, kept forever
    settings = Settings.from_env({"IMGSEARCH_EVENT_RETENTION_MS": "3600000"})
    assert settings.event_retention_ms == 3_600_000
    assert topic_configs(settings.topics.interactions())["retention.ms"] == "3600000"
    assert Topics(event_retention_ms=60_000).interactions().retention_ms == 60_000
    assert topics.interactions_retry().key == "user_id" and topics.interactions_retry().partitions is None
    assert topics.interactions_retry().name in {t.name for t in topics.all_shared()}


def test_changelogs_erase_tombstoned_keys_within_a_day(tmp_path: Path):
    app = make_app("query-test", Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1"))
    app.Table("profiles", schema=json_schema(), partitions=2)
    (spec,) = changelog_topics(app)
    configs = topic_configs(spec)
    assert configs["cleanup.policy"] == "compact" and configs["max.compaction.lag.ms"] == str(86_400_000)


def test_clock_skew_bound():
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
    at = datetime.fromtimestamp(now, UTC)
    assert future_skew_s(at + timedelta(seconds=299), 300, now) is None
    assert future_skew_s(at - timedelta(days=365), 300, now) is None  # the past is fine (it decays)
    assert future_skew_s(at + timedelta(seconds=301), 300, now) == 301
    assert future_skew_s(datetime(9999, 1, 1, tzinfo=UTC), 300, now) > 2.5e11
    assert Settings().max_clock_skew_s == 300


def test_event_type_of_tells_forget_requests_from_interactions():
    assert event_type_of(ForgetUser(user_id="alice").to_bytes()) == "user.forget"
    assert event_type_of(b'{"type": "interaction"}') == "interaction"
    assert event_type_of(b"\xff\xfe") is None and event_type_of(b"[1]") is None and event_type_of(None) is None


class _Message:
    def __init__(self, value: bytes) -> None:
        self.value, self.topic, self.partition, self.offset, self.key = value, "t.personalization.events", 0, 7, b"k"


class _Event:
    def __init__(self, value: bytes) -> None:
        self.message = _Message(value)


class _DeadLetters:
    def __init__(self) -> None:
        self.letters: list[tuple[bytes, str]] = []

    async def from_event(self, event, code: str, reason: str) -> None:
        self.letters.append((event.message.value, code))


def test_a_forget_batch_starts_one_personalize_deletion_job():
    requests = [ForgetUser(user_id=u, event_id=f"fg-{u}") for u in ("alice", "bob")]
    personalize = boto3.client("personalize", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    name = PersonalizeDataDeletion.job_name(["fg-alice", "fg-bob"])
    dlq = _DeadLetters()
    with Stubber(s3) as s3_stub, Stubber(personalize) as p_stub:
        s3_stub.add_response(
            "put_object",
            {"ETag": '"x"'},
            {"Bucket": "b", "Key": f"p/{name}.csv", "Body": b"USER_ID\nalice\nbob\n", "ContentType": "text/csv"},
        )
        p_stub.add_response(
            "create_data_deletion_job",
            {"dataDeletionJobArn": "arn:job"},
            {
                "jobName": name,
                "datasetGroupArn": "arn:aws:personalize:us-east-1:1:dataset-group/g",
                "dataSource": {"dataLocation": f"s3://b/p/{name}.csv"},
                "roleArn": "arn:aws:iam::1:role/r",
            },
        )
        deletion = PersonalizeDataDeletion(
            "arn:aws:personalize:us-east-1:1:dataset-group/g",
            "arn:aws:iam::1:role/r",
            "s3://b/p",
            personalize=personalize,
            s3=s3,
        )
        asyncio.run(forget_in_personalize([(_Event(r.to_bytes()), r) for r in requests], deletion, dlq))  # type: ignore[arg-type]
        p_stub.assert_no_pending_responses()
    assert dlq.letters == []


def test_a_forget_without_personalize_deletion_configured_is_dead_lettered():
    request = ForgetUser(user_id="alice")
    dlq = _DeadLetters()
    asyncio.run(forget_in_personalize([(_Event(request.to_bytes()), request)], None, dlq))  # type: ignore[arg-type]
    assert dlq.letters == [(request.to_bytes(), "personalize_deletion_not_configured")]
