"""Amazon Personalize at cluster level: PutEvents (real-time interactions) and
GetPersonalizedRanking (a Personalized-Ranking campaign), and CreateDataDeletionJob (forgetting
users). The item id is the cluster id.

- PutEvents: at most 10 events per call, one call per (user, session); a session id is always
  present (the interaction's, else a per-user-per-day one); the event id is the interaction's own
  id, so a redelivered Kafka message never counts twice; throttling is retried with backoff, and a
  token bucket keeps the call rate under the configured limit.
- GetPersonalizedRanking: the de-duplicated candidate cluster ids (at most 500). Failures raise
  :class:`RankerUnavailable`; the query worker then answers by relevance and says so.
- Negative feedback (``hide``, ``not_my_style``) is sent as its own event types with the configured
  (negative) event value. Personalize does not learn "less of this" from event values, so a solution
  should be trained on the positive types only (the dataset's event-type / value threshold) and the
  campaign queried with a filter such as ``EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN
  ("not_my_style")`` (``filter_arn``). Clusters that the filter drops from the ranking come back with a
  demotion of 1, so the blend treats them as the local ranker treats a disliked style (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC
from functools import partial
from typing import Any

from imgsearch.ranker.base import RankerResult, RankerUnavailable
from schemas.events import PersonalizationEvent

log = logging.getLogger(__name__)

MAX_EVENTS_PER_CALL = 10
MAX_RANKING_INPUT = 500
RETRYABLE = {"ThrottlingException", "ServiceUnavailableException", "InternalServerError", "LimitExceededException"}


def session_id(ev: PersonalizationEvent) -> str:
    return ev.session_id or f"{ev.user_id}-{ev.timestamp.astimezone(UTC):%Y%m%d}"


def to_personalize_event(ev: PersonalizationEvent) -> dict[str, Any]:
    return {
        "eventId": ev.event_id,
        "eventType": ev.event_type.value,
        "eventValue": float(ev.weight),
        "itemId": str(ev.cluster_id),
        "sentAt": ev.timestamp,
    }


def batches(events: Iterable[PersonalizationEvent]) -> list[tuple[str, str, list[PersonalizationEvent]]]:
    """Group by (user, session) in arrival order, at most 10 events per group."""
    groups: dict[tuple[str, str], list[PersonalizationEvent]] = {}
    for ev in events:
        groups.setdefault((ev.user_id, session_id(ev)), []).append(ev)
    out = []
    for (user, session), evs in groups.items():
        for i in range(0, len(evs), MAX_EVENTS_PER_CALL):
            out.append((user, session, evs[i : i + MAX_EVENTS_PER_CALL]))
    return out


class TokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.capacity = rate_per_s, float(burst)
        self.tokens, self.stamp = float(burst), clock()
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            while True:
                now = self._clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                self._sleep((1 - self.tokens) / self.rate)


def _call_with_retry(fn: Callable[[], Any], what: str, attempts: int, sleep: Callable[[float], None]) -> Any:
    from botocore.exceptions import ClientError

    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in RETRYABLE or attempt == attempts:
                raise
            delay = min(10.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning("%s: %s; retry %d/%d in %.2fs", what, code, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")


class PersonalizeEventSink:
    """Sends cluster-level interactions to a Personalize event tracker."""

    def __init__(
        self,
        tracking_id: str,
        client: Any = None,
        *,
        max_calls_per_s: float = 50.0,
        attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("personalize-events")
        self.tracking_id = tracking_id
        self._client = client
        self._bucket = TokenBucket(max_calls_per_s, max(1, int(max_calls_per_s)), sleep=sleep)
        self._attempts = attempts
        self._sleep = sleep
        self.sent = 0

    def put(self, events: Sequence[PersonalizationEvent]) -> int:
        """Send all events (blocking; run it in a thread from async code). Returns the calls made."""
        calls = 0
        for user, session, group in batches(events):
            self._bucket.take()
            request = {
                "trackingId": self.tracking_id,
                "userId": user,
                "sessionId": session,
                "eventList": [to_personalize_event(e) for e in group],
            }
            _call_with_retry(
                partial(self._client.put_events, **request), "personalize PutEvents", self._attempts, self._sleep
            )
            calls += 1
            self.sent += len(group)
        return calls


class PersonalizeRanker:
    """The personal ranker contract over a Personalized-Ranking campaign."""

    name = "amazon-personalize"

    def __init__(
        self,
        campaign_arn: str,
        client: Any = None,
        *,
        attempts: int = 2,
        sleep: Callable[[float], None] = time.sleep,
        filter_arn: str = "",
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "personalize-runtime", config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1})
            )
        self.campaign_arn = campaign_arn
        self.filter_arn = filter_arn
        self._client = client
        self._attempts = attempts
        self._sleep = sleep

    def rank_sync(self, user_id: str, cluster_ids: Sequence[int]) -> RankerResult:
        items = [str(c) for c in dict.fromkeys(cluster_ids)][:MAX_RANKING_INPUT]
        if not items:
            return RankerResult({}, False, self.name)
        request: dict[str, Any] = {"campaignArn": self.campaign_arn, "userId": user_id, "inputList": items}
        if self.filter_arn:
            request["filterArn"] = self.filter_arn
        try:
            resp = _call_with_retry(
                lambda: self._client.get_personalized_ranking(**request),
                "personalize GetPersonalizedRanking",
                self._attempts,
                self._sleep,
            )
        except Exception as exc:
            raise RankerUnavailable(f"Personalize ranking failed: {exc}") from exc
        scores = {int(r["itemId"]): float(r.get("score", 0.0)) for r in resp.get("personalizedRanking", [])}
        # with a filter, a cluster missing from the ranking was excluded for this user (e.g. "not my style")
        demotions = {int(c): 1.0 for c in items if int(c) not in scores} if self.filter_arn else {}
        for c in items:
            scores.setdefault(int(c), 0.0)
        return RankerResult(scores, any(v > 0 for v in scores.values()), self.name, demotions=demotions)

    async def rank(self, user_id: str, cluster_ids: Sequence[int]) -> RankerResult:
        return await asyncio.to_thread(self.rank_sync, user_id, cluster_ids)


class DeletionNotConfigured(RuntimeError):
    """Forgetting a user in Amazon Personalize needs the dataset group, a role and an S3 location."""


def _split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise DeletionNotConfigured(f"IMGSEARCH_PERSONALIZE_DELETION_S3 must be s3://bucket/prefix, got {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise DeletionNotConfigured(f"IMGSEARCH_PERSONALIZE_DELETION_S3 must be s3://bucket/prefix, got {url!r}")
    return bucket, prefix.strip("/")


class PersonalizeDataDeletion:
    """Deletes users' data from an Amazon Personalize dataset group (issue 14 item 15).

    Personalize deletes by a data deletion job over a CSV of user ids in S3 (``USER_ID`` header, one
    id a line): the CSV is written to ``<s3 prefix>/<job name>.csv`` and ``CreateDataDeletionJob``
    started on it, with a role Personalize assumes to read that object. The job name comes from the
    forget requests' event ids, so a redelivered request names the same job and Personalize's
    ``ResourceAlreadyExistsException`` means it was already issued. The job removes the users'
    interactions from the datasets; retrain (or let the campaign's next update run) so the model
    forgets them too.
    """

    def __init__(
        self,
        dataset_group_arn: str,
        role_arn: str,
        s3_url: str,
        *,
        personalize: Any = None,
        s3: Any = None,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("IMGSEARCH_PERSONALIZE_DATASET_GROUP_ARN", dataset_group_arn),
                ("IMGSEARCH_PERSONALIZE_DELETION_ROLE_ARN", role_arn),
                ("IMGSEARCH_PERSONALIZE_DELETION_S3", s3_url),
            )
            if not value
        ]
        if missing:
            raise DeletionNotConfigured("forgetting users in Amazon Personalize needs " + ", ".join(missing))
        self.bucket, self.prefix = _split_s3(s3_url)
        if personalize is None or s3 is None:
            import boto3

            personalize = personalize or boto3.client("personalize")
            s3 = s3 or boto3.client("s3")
        self.dataset_group_arn = dataset_group_arn
        self.role_arn = role_arn
        self._personalize = personalize
        self._s3 = s3
        self._attempts = attempts
        self._sleep = sleep

    @staticmethod
    def job_name(event_ids: Sequence[str]) -> str:
        import hashlib

        digest = hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()[:32]
        return f"imgsearch-forget-{digest}"  # [a-zA-Z0-9][a-zA-Z0-9\-_]*, at most 63 characters

    def delete_users(self, user_ids: Sequence[str], event_ids: Sequence[str]) -> str:
        """Start the deletion job for ``user_ids`` (blocking; run it in a thread). Returns the job's
        ARN, or its name when a redelivered request finds it already created."""
        from botocore.exceptions import ClientError

        users = list(dict.fromkeys(user_ids))
        if not users:
            raise ValueError("no user to delete")
        name = self.job_name(event_ids or users)
        key = f"{self.prefix}/{name}.csv" if self.prefix else f"{name}.csv"
        body = ("USER_ID\n" + "".join(f"{u}\n" for u in users)).encode()
        _call_with_retry(
            partial(self._s3.put_object, Bucket=self.bucket, Key=key, Body=body, ContentType="text/csv"),
            "s3 PutObject (Personalize deletion list)",
            self._attempts,
            self._sleep,
        )
        try:
            resp = _call_with_retry(
                partial(
                    self._personalize.create_data_deletion_job,
                    jobName=name,
                    datasetGroupArn=self.dataset_group_arn,
                    dataSource={"dataLocation": f"s3://{self.bucket}/{key}"},
                    roleArn=self.role_arn,
                ),
                "personalize CreateDataDeletionJob",
                self._attempts,
                self._sleep,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceAlreadyExistsException":
                log.info("Personalize data deletion job %s exists already (a redelivered request)", name)
                return name
            raise
        arn = str(resp["dataDeletionJobArn"])
        log.info("Personalize data deletion job %s started for %d user(s)", arn, len(users))
        return arn
