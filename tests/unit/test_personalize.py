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
