"""Amazon Personalize backends against botocore's Stubber (requests checked against the real
personalize-events and personalize-runtime service models)."""

import asyncio
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from imgsearch.ranker.base import RankerUnavailable
from imgsearch.ranker.personalize import (
    PersonalizeEventSink,
    PersonalizeRanker,
    TokenBucket,
    batches,
    to_personalize_event,
)
from schemas.events import EventType, PersonalizationEvent

CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/styles"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def client(name):
    return boto3.client(name, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def ev(i, user="alice", cluster=7, session=None, etype=EventType.FAVORITE):
    return PersonalizationEvent(
        event_id=f"ev-{i}",
        user_id=user,
        cluster_id=cluster,
        image_id=f"img-{i}",
        event_type=etype,
        weight=3.0,
        timestamp=T0,
        session_id=session,
    )


def test_batches_of_ten_per_user_and_session_with_a_session_always():
    events = [ev(i) for i in range(23)] + [ev(100, user="bob"), ev(101, session="s-1")]
    groups = batches(events)
    assert [(u, s, len(g)) for u, s, g in groups] == [
        ("alice", "alice-20261125", 10),
        ("alice", "alice-20261125", 10),
        ("alice", "alice-20261125", 3),
        ("bob", "bob-20261125", 1),
        ("alice", "s-1", 1),
    ]
    assert to_personalize_event(ev(5)) == {
        "eventId": "ev-5",
        "eventType": "favorite",
        "eventValue": 3.0,
        "itemId": "7",
        "sentAt": T0,
    }


def test_put_events_requests_and_throttling_retry():
    c = client("personalize-events")
    sleeps = []
    sink = PersonalizeEventSink("tracker-1", c, max_calls_per_s=1000, sleep=sleeps.append)
    events = [ev(i) for i in range(12)]
    with Stubber(c) as stub:
        stub.add_client_error("put_events", "ThrottlingException", "slow down", 400)
        for chunk in (events[:10], events[10:]):  # the throttled first call is retried
            stub.add_response(
                "put_events",
                {},
                {
                    "trackingId": "tracker-1",
                    "userId": "alice",
                    "sessionId": "alice-20261125",
                    "eventList": [to_personalize_event(e) for e in chunk],
                },
            )
        assert sink.put(events) == 2
        stub.assert_no_pending_responses()
    assert sink.sent == 12 and len(sleeps) == 1


def test_redelivered_events_keep_their_ids():
    first = [to_personalize_event(ev(i)) for i in range(3)]
    again = [to_personalize_event(ev(i)) for i in range(3)]
    assert [e["eventId"] for e in first] == [e["eventId"] for e in again]


def test_personalized_ranking_request_and_scores():
    c = client("personalize-runtime")
    ranker = PersonalizeRanker(CAMPAIGN, c)
    with Stubber(c) as stub:
        stub.add_response(
            "get_personalized_ranking",
            {
                "personalizedRanking": [{"itemId": "7", "score": 0.7}, {"itemId": "3", "score": 0.3}],
                "recommendationId": "r-1",
            },
            {"campaignArn": CAMPAIGN, "userId": "alice", "inputList": ["3", "7", "9"]},
        )
        res = asyncio.run(ranker.rank("alice", [3, 7, 3, 9]))
    assert res.scores == {7: 0.7, 3: 0.3, 9: 0.0} and res.has_signal and res.ranker == "amazon-personalize"


def test_ranking_failure_is_ranker_unavailable():
    c = client("personalize-runtime")
    ranker = PersonalizeRanker(CAMPAIGN, c, attempts=2, sleep=lambda s: None)
    with Stubber(c) as stub:
        stub.add_client_error("get_personalized_ranking", "ThrottlingException", "x", 400)
        stub.add_client_error("get_personalized_ranking", "ThrottlingException", "x", 400)
        with pytest.raises(RankerUnavailable, match="Personalize ranking failed"):
            ranker.rank_sync("alice", [1, 2])
    assert ranker.rank_sync("alice", []).scores == {}


def test_ranking_input_is_capped_at_500():
    c = client("personalize-runtime")
    ranker = PersonalizeRanker(CAMPAIGN, c)
    with Stubber(c) as stub:
        stub.add_response(
            "get_personalized_ranking",
            {"personalizedRanking": []},
            {"campaignArn": CAMPAIGN, "userId": "u", "inputList": [str(i) for i in range(500)]},
        )
        res = ranker.rank_sync("u", list(range(700)))
    assert len(res.scores) == 500 and not res.has_signal


def test_token_bucket_limits_rate():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(10.0, 2, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        bucket.take()
    assert now[0] == pytest.approx(0.3, abs=1e-6)  # 2 free, then 3 at 10/s


def test_negative_feedback_is_sent_as_its_own_event_type_with_a_negative_value():
    c = client("personalize-events")
    sink = PersonalizeEventSink("tracker-1", c, max_calls_per_s=1000)
    dislike = PersonalizationEvent(
        event_id="ev-n",
        user_id="alice",
        cluster_id=4,
        image_id="img-n",
        event_type=EventType.NOT_MY_STYLE,
        weight=-3.0,
        timestamp=T0,
    )
    with Stubber(c) as stub:  # the service model accepts the type and the negative value
        stub.add_response(
            "put_events",
            {},
            {
                "trackingId": "tracker-1",
                "userId": "alice",
                "sessionId": "alice-20261125",
                "eventList": [
                    {"eventId": "ev-n", "eventType": "not_my_style", "eventValue": -3.0, "itemId": "4", "sentAt": T0}
                ],
            },
        )
        assert sink.put([dislike]) == 1
        stub.assert_no_pending_responses()


def test_a_ranking_filter_is_sent_and_what_it_drops_is_demoted():
    c = client("personalize-runtime")
    flt = "arn:aws:personalize:us-east-1:123456789012:filter/not-my-style"
    ranker = PersonalizeRanker(CAMPAIGN, c, filter_arn=flt)
    with Stubber(c) as stub:
        stub.add_response(
            "get_personalized_ranking",
            {"personalizedRanking": [{"itemId": "7", "score": 0.8}, {"itemId": "3", "score": 0.2}]},
            {"campaignArn": CAMPAIGN, "userId": "alice", "inputList": ["3", "7", "9"], "filterArn": flt},
        )
        res = asyncio.run(ranker.rank("alice", [3, 7, 9]))
    assert res.demotions == {9: 1.0} and res.scores[9] == 0.0 and res.has_feedback


# ---------------------------------------------------------------- forgetting users (issue 14 item 15)

DATASET_GROUP = "arn:aws:personalize:us-east-1:123456789012:dataset-group/styles"
DELETION_ROLE = "arn:aws:iam::123456789012:role/personalize-deletion"


def test_data_deletion_job_for_forgotten_users():
    from imgsearch.ranker.personalize import PersonalizeDataDeletion

    personalize, s3 = client("personalize"), client("s3")
    name = PersonalizeDataDeletion.job_name(["fg-1", "fg-2"])
    assert name.startswith("imgsearch-forget-") and len(name) <= 63
    key = f"forget/{name}.csv"
    with Stubber(s3) as s3_stub, Stubber(personalize) as p_stub:
        s3_stub.add_response(
            "put_object",
            {"ETag": '"x"'},
            {"Bucket": "deletions", "Key": key, "Body": b"USER_ID\nalice\nbob\n", "ContentType": "text/csv"},
        )
        p_stub.add_response(
            "create_data_deletion_job",
            {"dataDeletionJobArn": "arn:aws:personalize:us-east-1:123456789012:data-deletion-job/" + name},
            {
                "jobName": name,
                "datasetGroupArn": DATASET_GROUP,
                "dataSource": {"dataLocation": f"s3://deletions/{key}"},
                "roleArn": DELETION_ROLE,
            },
        )
        deletion = PersonalizeDataDeletion(
            DATASET_GROUP, DELETION_ROLE, "s3://deletions/forget/", personalize=personalize, s3=s3, sleep=lambda s: None
        )
        arn = deletion.delete_users(["alice", "bob", "alice"], ["fg-2", "fg-1"])
        s3_stub.assert_no_pending_responses()
        p_stub.assert_no_pending_responses()
    assert arn.endswith(name)


def test_redelivered_forget_finds_its_job_and_throttling_is_retried():
    from imgsearch.ranker.personalize import PersonalizeDataDeletion

    personalize, s3 = client("personalize"), client("s3")
    name = PersonalizeDataDeletion.job_name(["fg-1"])
    with Stubber(s3) as s3_stub, Stubber(personalize) as p_stub:
        for _ in range(2):
            s3_stub.add_response("put_object", {"ETag": '"x"'})
        p_stub.add_client_error("create_data_deletion_job", "LimitExceededException")
        p_stub.add_response("create_data_deletion_job", {"dataDeletionJobArn": "arn:job"})
        p_stub.add_client_error("create_data_deletion_job", "ResourceAlreadyExistsException")
        deletion = PersonalizeDataDeletion(
            DATASET_GROUP, DELETION_ROLE, "s3://deletions", personalize=personalize, s3=s3, sleep=lambda s: None
        )
        assert deletion.delete_users(["alice"], ["fg-1"]) == "arn:job"  # after one retry
        assert deletion.delete_users(["alice"], ["fg-1"]) == name  # the same request again: already issued
        p_stub.assert_no_pending_responses()


def test_deletion_needs_its_configuration():
    from imgsearch.ranker.personalize import DeletionNotConfigured, PersonalizeDataDeletion

    with pytest.raises(DeletionNotConfigured, match="IMGSEARCH_PERSONALIZE_DELETION_ROLE_ARN"):
        PersonalizeDataDeletion(DATASET_GROUP, "", "s3://b/p", personalize=object(), s3=object())
    with pytest.raises(DeletionNotConfigured, match="s3://bucket/prefix"):
        PersonalizeDataDeletion(DATASET_GROUP, DELETION_ROLE, "https://b/p", personalize=object(), s3=object())
