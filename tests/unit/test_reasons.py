"""schemas.reasons: one vocabulary of reason codes, each with its HTTP status and whether a retry may help."""

from __future__ import annotations

import re

import pytest

from imgsearch.config import REPO_ROOT
from schemas.reasons import Reason

# the gateway's code -> HTTP table before the enum (apps/gateway/app.py ERROR_STATUS, with 502 for
# any other code) and its table for an image read refused (403 for any other code): unchanged
SEARCH_ERROR_STATUS = {
    "schema_violation": 400, "malformed_json": 400, "unknown_version": 400, "wrong_type": 400, "empty": 400,
    "undecodable_image": 422, "image_too_large": 413, "too_many_pixels": 413, "format_not_allowed": 415,
    "expired": 504, "index_unavailable": 503, "unknown_image": 404, "filters_unsupported": 409,
    "processing_failed": 502,
}  # fmt: skip
READ_STATUS = {
    "uri_unreachable": 404, "image_too_large": 413, "read_timeout": 504,
    "uri_scheme_not_allowed": 403, "uri_invalid": 403, "uri_not_allowed": 403, "not_a_regular_file": 403,
}  # fmt: skip


def test_the_wire_strings_are_the_values():
    assert Reason.EXPIRED == "expired" and f"{Reason.EXPIRED}" == "expired" and isinstance(Reason.EXPIRED, str)
    assert len({r.value for r in Reason}) == len(Reason)
    assert all(re.fullmatch(r"[a-z_]+", r) and r.name == r.value.upper() for r in Reason)


@pytest.mark.parametrize(("code", "status"), [*SEARCH_ERROR_STATUS.items(), *READ_STATUS.items()])
def test_the_statuses_are_the_gateways(code, status):
    assert Reason(code).status == status == Reason.status_of(code)


def test_unknown_codes_and_retriable():
    assert Reason.parse("from_a_newer_worker") is None and Reason.status_of("from_a_newer_worker") == 502
    assert Reason.parse("expired") is Reason.EXPIRED
    assert {r for r in Reason if r.retriable} == {
        Reason.URI_UNREACHABLE, Reason.READ_TIMEOUT, Reason.EXPIRED, Reason.INDEX_UNAVAILABLE,
        Reason.REPLY_TIMEOUT, Reason.REPLY_FAILED,
    }  # fmt: skip


def test_no_bare_reason_string_in_the_stream_handlers():
    """Every dead letter and error reply names a Reason member, not a string of its own."""
    pattern = re.compile(r"""(from_event\(\s*\w+,\s*|code=|why = \(\s*|ImageRejected\(\s*|InvalidEvent\(\s*)["']""")
    for path in [
        *(REPO_ROOT / "streams").glob("*.py"),
        REPO_ROOT / "schemas/events.py",
        REPO_ROOT / "imgsearch/images.py",
    ]:
        assert not pattern.search(path.read_text()), path
