"""One vocabulary of reason codes: why an event was dead-lettered or a search answered with an error.

Each code is a :class:`Reason` member whose value is the wire string (a dead letter's ``reason_code``,
a search reply's ``error.code``: ``Reason`` is a ``str``, so it serialises unchanged). A member
carries whether the same input may succeed when tried again later (``retriable``) and the HTTP
status the gateway answers when a search reply carries it (``status``; for a code that never reaches
the gateway, the status it would mean). Wire fields stay plain strings: a newer worker's code
that this version does not know still parses (``Reason.parse`` gives None, ``status_of`` a default).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    retriable: bool
    status: int

    def __new__(cls, value: str, status: int, retriable: bool = False) -> Reason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.retriable = retriable
        return member

    # ---- the event itself (schemas.events.parse_event -> InvalidEvent)
    EMPTY = "empty", 400
    MALFORMED_JSON = "malformed_json", 400
    SCHEMA_VIOLATION = "schema_violation", 400
    UNKNOWN_VERSION = "unknown_version", 400
    WRONG_TYPE = "wrong_type", 400
    IMAGE_TOO_LARGE = "image_too_large", 413  # also an image read or decoded over the size limit
    TIMESTAMP_IN_FUTURE = "timestamp_in_future", 400

    # ---- the image (imgsearch.images -> ImageRejected)
    URI_SCHEME_NOT_ALLOWED = "uri_scheme_not_allowed", 403
    URI_INVALID = "uri_invalid", 403
    URI_NOT_ALLOWED = "uri_not_allowed", 403
    NOT_A_REGULAR_FILE = "not_a_regular_file", 403
    URI_UNREACHABLE = "uri_unreachable", 404, True
    READ_TIMEOUT = "read_timeout", 504, True
    FORMAT_NOT_ALLOWED = "format_not_allowed", 415
    UNDECODABLE_IMAGE = "undecodable_image", 422
    TOO_MANY_PIXELS = "too_many_pixels", 413

    # ---- interactions (streams.interactions)
    UNKNOWN_IMAGE = "unknown_image", 404  # also a search's similar_to naming an image not indexed
    UNCLUSTERED_IMAGE = "unclustered_image", 409
    PERSONALIZE_DELETION_NOT_CONFIGURED = "personalize_deletion_not_configured", 501

    # ---- searches (streams.query): error replies and replies that could not be sent
    EXPIRED = "expired", 504, True
    INDEX_UNAVAILABLE = "index_unavailable", 503, True
    FILTERS_UNSUPPORTED = "filters_unsupported", 409
    REPLY_TOPIC_NOT_ALLOWED = "reply_topic_not_allowed", 403
    REPLY_TOPIC_UNKNOWN = "reply_topic_unknown", 404
    REPLY_TIMEOUT = "reply_timeout", 504, True
    REPLY_FAILED = "reply_failed", 502, True

    # ---- anything nobody foresaw (a bug, an input no check knew)
    PROCESSING_FAILED = "processing_failed", 502

    @classmethod
    def parse(cls, code: str) -> Reason | None:
        """The member of a wire code, or None for a code this version does not know."""
        member = cls._value2member_map_.get(code)
        return member if isinstance(member, Reason) else None

    @classmethod
    def status_of(cls, code: str, default: int = 502) -> int:
        """The HTTP status of a wire code; ``default`` for a code this version does not know."""
        reason = cls.parse(code)
        return default if reason is None else reason.status
