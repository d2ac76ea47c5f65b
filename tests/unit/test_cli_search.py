"""``imgsearch search``: a table for people, ``--json`` for programs (one SearchResponse object on
stdout), exit codes for errors and timeouts. The Kafka client is replaced by a stub."""

from __future__ import annotations

import json

import pytest

from apps.cli import main
from producers import search_client
from schemas.events import ErrorInfo, SearchHit, SearchRequest, SearchResponse

HITS = [
    SearchHit(
        image_id="papirus/printer/printer",
        rank=1,
        cluster_id=3,
        knn_score=0.91,
        personal_score=0.5,
        blended_score=0.8,
        drivers=["favorite papirus/printer/x"],
    ),
    SearchHit(
        image_id="tango/printer/printer", rank=2, cluster_id=1, knn_score=0.88, personal_score=0.1, blended_score=0.6
    ),
]


class StubClient:
    reply: SearchResponse | None = None
    calls: list[dict] = []

    def __init__(self, bootstrap: str, **kwargs) -> None:
        self.bootstrap = bootstrap

    async def __aenter__(self) -> StubClient:
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def search(self, user_id, text=None, **kwargs) -> SearchResponse:
        StubClient.calls.append({"user_id": user_id, "text": text, **kwargs})
        if StubClient.reply is None:
            raise search_client.SearchTimeout("no reply for request r1")
        return StubClient.reply


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> type[StubClient]:
    monkeypatch.setattr(search_client, "SearchClient", StubClient)
    StubClient.calls = []
    return StubClient


def test_json_is_the_search_response(stub, capsys):
    stub.reply = SearchResponse(
        request_id="r1",
        user_id="alice",
        hits=HITS,
        personalized=True,
        personalization_weight=0.5,
        ranker="local",
        timings_ms={"embed": 3.0},
    )
    assert main(["search", "a printer", "--user", "alice", "-k", "2", "--weight", "0.5", "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # one JSON object, nothing else on stdout
    parsed = SearchResponse.model_validate_json(out)
    assert parsed == stub.reply
    assert json.loads(out)["hits"][0]["drivers"] == ["favorite papirus/printer/x"]
    assert stub.calls == [
        {
            "user_id": "alice",
            "text": "a printer",
            "k": 2,
            "personalization_weight": 0.5,
            "mmr_lambda": None,
            "timeout_s": 5.0,
            "raise_on_error": False,
            "similar_to": None,
            "filters": [],
            "page": 1,
            "ranking_id": None,
            "search_after": None,
        }
    ]


def test_table_for_people(stub, capsys):
    stub.reply = SearchResponse(request_id="r1", user_id="bob", hits=HITS, notes=["new user: relevance only"])
    assert main(["search", "a printer", "--user", "bob"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("user bob: 2 hits, personalized=False")
    assert lines[1] == "note: new user: relevance only"
    assert lines[3].split() == ["1", "papirus/printer/printer", "3", "0.910", "0.500", "0.800"]


def test_error_reply_and_timeout_exit_codes(stub, capsys):
    stub.reply = SearchResponse(request_id="r1", user_id="x", error=ErrorInfo(code="bad_request", message="no query"))
    assert main(["search", "", "--json"]) == 1
    assert SearchResponse.model_validate_json(capsys.readouterr().out).error.code == "bad_request"
    assert main(["search", ""]) == 1
    assert "bad_request: no query" in capsys.readouterr().err
    stub.reply = None
    assert main(["search", "a printer", "--json", "--timeout", "0.5"]) == 3
    reply = json.loads(capsys.readouterr().out)
    assert reply["type"] == "search.timeout" and reply["error"]["code"] == "timeout"
    assert "0.5 s" in reply["error"]["message"]


def test_paging_prints_the_cursor_and_a_bad_cursor_is_a_clear_error(stub, monkeypatch, capsys):
    stub.reply = SearchResponse(request_id="r1", user_id="bob", hits=HITS, has_more=True, cursor="abc", ranking_id="r1")
    assert main(["search", "a printer", "--user", "bob", "-k", "2"]) == 0
    assert "page 1; next page: --search-after abc" in capsys.readouterr().out.splitlines()
    assert main(["search", "a printer", "--search-after", "abc"]) == 0
    assert stub.calls[-1]["search_after"] == "abc"

    async def validating(self, user_id, text=None, **kwargs):  # the real client builds the request first
        SearchRequest(user_id=user_id, text=text, reply_topic="r", k=kwargs["k"], search_after=kwargs["search_after"])

    monkeypatch.setattr(StubClient, "search", validating)
    assert main(["search", "a printer", "--search-after", "abc"]) == 2
    assert "search: invalid request:" in capsys.readouterr().err
