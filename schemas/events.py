"""Every event that crosses a topic. JSON on the wire; ``schema_version`` on every event.

Rules: unknown fields are rejected (a typo upstream is an error, not silently dropped data), a
version this code does not know is rejected with a clear reason, ids are short printable strings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from schemas.limits import DEAD_LETTER_MAX_ORIGINAL_BYTES, MAX_INLINE_IMAGE_BYTES
from schemas.reasons import Reason

SCHEMA_VERSION: Literal[1] = 1

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/+=-]+$")]
"""Image, user, request and event ids: printable, no spaces, at most 128 characters."""

MAX_QUERY_TEXT_CHARS = 1000
MAX_K = 100
# issue 15: bounds of the metadata filters and of paging (page * k hits at most are ranked)
MAX_FILTERS = 8
MAX_FILTER_TERMS = 32
MAX_FILTER_VALUE_CHARS = 256
MAX_RESULT_WINDOW = 500
# MAX_INLINE_IMAGE_BYTES (8 MiB) comes from schemas.limits, with the rest of the size-limit chain


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class EventType(StrEnum):
    """Interaction kinds. Weights per kind are configuration (see imgsearch.config)."""

    VIEW = "view"
    CLICK = "click"
    FAVORITE = "favorite"
    DOWNLOAD = "download"
    # negative feedback: "hide" hides that image from the user's results and weighs a little against its
    # style; "not_my_style" weighs strongly against the image's style (negative default weights)
    HIDE = "hide"
    NOT_MY_STYLE = "not_my_style"


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls: type[E], data: bytes | str) -> E:
        return cls.model_validate_json(data)


E = TypeVar("E", bound=Event)


def _decode_b64(value: str, field: str, limit: int = MAX_INLINE_IMAGE_BYTES) -> bytes:
    # its own error type: parse_event reports it as ``image_too_large`` and the gateway as HTTP 413
    too_large = PydanticCustomError(
        "image_too_large", "{field} is larger than {limit} bytes", {"field": field, "limit": limit}
    )
    if len(value) > 4 * -(-limit // 3) + 4:  # before decoding: the base64 of `limit` bytes, padded
        raise too_large
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{field} is not valid base64: {exc}") from exc
    if len(data) > limit:  # the exact limit (a base64 length allows up to 2 bytes more)
        raise too_large
    return data


class NewImage(Event):
    """An upstream app announces an image. Exactly one of ``source_uri`` / ``image_b64``."""

    type: Literal["image.new"] = "image.new"
    image_id: Id
    source_uri: str | None = Field(default=None, max_length=2048)
    image_b64: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _one_source(self) -> NewImage:
        if (self.source_uri is None) == (self.image_b64 is None):
            raise ValueError("exactly one of source_uri or image_b64 must be given")
        if self.image_b64 is not None:
            _decode_b64(self.image_b64, "image_b64")
        return self

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 64 or any(len(k) > 64 or len(val) > 2048 for k, val in v.items()):
            raise ValueError("metadata: at most 64 keys, keys ≤ 64 chars, values ≤ 2048 chars")
        return v

    def image_bytes(self) -> bytes | None:
        return None if self.image_b64 is None else _decode_b64(self.image_b64, "image_b64")

    @classmethod
    def inline(cls, image_id: str, data: bytes, **kw: Any) -> NewImage:
        return cls(image_id=image_id, image_b64=base64.b64encode(data).decode("ascii"), **kw)


class ImageIndexed(Event):
    """The embedding worker indexed an image and assigned it a cluster (style)."""

    type: Literal["image.indexed"] = "image.indexed"
    image_id: Id
    cluster_id: int = Field(ge=-1, description="-1 while no cluster model exists")
    model_id: str
    centroid_version: str
    indexed_at: datetime = Field(default_factory=utcnow)


class Interaction(Event):
    """A user did something with an image."""

    type: Literal["interaction"] = "interaction"
    event_id: Id = Field(default_factory=new_id)
    user_id: Id
    image_id: Id
    event_type: EventType
    timestamp: datetime = Field(default_factory=utcnow)
    session_id: Id | None = None


class PersonalizationEvent(Event):
    """An interaction mapped to the cluster level: what the personal ranker learns from."""

    type: Literal["personalization"] = "personalization"
    event_id: Id
    user_id: Id
    cluster_id: int = Field(ge=0)
    image_id: Id
    event_type: EventType
    weight: float = Field(ge=-1000.0, le=1000.0, description="signed: negative feedback weighs against the cluster")
    timestamp: datetime
    session_id: Id | None = None
    centroid_version: str = Field(default="none", max_length=128, description="the cluster model of cluster_id")


class ForgetUser(Event):
    """Forget a user (issue 14 item 15): on the interactions topic, keyed by user id, behind that
    user's earlier interactions. The interaction mapper drops the user's parked interactions and
    forwards it on personalization.events, where the query worker deletes the profile (a tombstone
    on the table's changelog) and, with Amazon Personalize, a data deletion job is started."""

    type: Literal["user.forget"] = "user.forget"
    event_id: Id = Field(default_factory=new_id)
    user_id: Id
    requested_at: datetime = Field(default_factory=utcnow)
    requested_by: str = Field(default="", max_length=128, description="cli, gateway, ... (audit)")


def event_type_of(payload: bytes | str | None) -> str | None:
    """The ``type`` field of a JSON object payload, or None (not JSON, not an object, no type):
    for topics that carry more than one event kind."""
    try:
        raw = json.loads(payload or b"")
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) else None


MetadataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
FilterValue = Annotated[str, Field(min_length=1, max_length=MAX_FILTER_VALUE_CHARS)]


class MetadataFilter(BaseModel):
    """One condition on an image's metadata (issue 15), applied inside the k-NN: exactly one of
    ``term`` (equals), ``terms`` (equals one of) or a range (``gt``/``gte``/``lt``/``lte``). Metadata
    values are strings, so a range compares them as strings: zero-pad numbers, use ISO dates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: MetadataKey
    term: FilterValue | None = None
    terms: list[FilterValue] | None = Field(default=None, min_length=1, max_length=MAX_FILTER_TERMS)
    gt: FilterValue | None = None
    gte: FilterValue | None = None
    lt: FilterValue | None = None
    lte: FilterValue | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> MetadataFilter:
        ranged = any(v is not None for v in (self.gt, self.gte, self.lt, self.lte))
        given = (self.term is not None) + (self.terms is not None) + ranged
        if given != 1:
            raise ValueError(f"filter on {self.field!r}: give exactly one of term, terms or a range (gt/gte/lt/lte)")
        if (self.gt is not None and self.gte is not None) or (self.lt is not None and self.lte is not None):
            raise ValueError(f"filter on {self.field!r}: at most one lower bound (gt|gte) and one upper (lt|lte)")
        return self


class PageCursor(BaseModel):
    """Where a page ended (issue 15, ``search_after``): the ranking it belongs to, the offset of the
    next page, and the last hit shown. Sent as an opaque URL-safe token (``SearchResponse.cursor``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ranking_id: Id
    offset: int = Field(ge=1, le=MAX_RESULT_WINDOW)
    image_id: str = Field(min_length=1, max_length=1024)

    def encode(self) -> str:
        raw = json.dumps(self.model_dump(), separators=(",", ":"), allow_nan=False).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageCursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return cls.model_validate_json(raw)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("search_after is not a cursor of this service (use a response's cursor)") from exc


class SearchRequest(Event):
    """A search client asks; the answer goes to ``reply_topic`` keyed by ``request_id``."""

    type: Literal["search.request"] = "search.request"
    request_id: Id = Field(default_factory=new_id)
    user_id: Id
    text: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_TEXT_CHARS)
    image_b64: str | None = None
    k: int = Field(default=10, ge=1, le=MAX_K)
    personalization_weight: float | None = Field(default=None, ge=0.0, le=1.0)
    max_per_cluster: int | None = Field(default=None, ge=1, le=MAX_K, description="diversity: hits per style")
    mmr_lambda: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="diversity: MMR over the search vectors, 1 = relevance only, lower = more varied (issue 15)",
    )
    reply_topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
    sent_at: datetime = Field(default_factory=utcnow)
    timeout_ms: int = Field(default=5000, ge=1, le=120_000)
    # issue 15
    similar_to: Id | None = Field(default=None, description="query by an indexed image's stored vector")
    filters: list[MetadataFilter] = Field(
        default_factory=list, max_length=MAX_FILTERS, description="metadata conditions, all applied inside the k-NN"
    )
    page: int = Field(default=1, ge=1, description=f"1-based page of k hits; page * k <= {MAX_RESULT_WINDOW}")
    ranking_id: Id | None = Field(
        default=None, description="the ranking_id of an earlier page: later pages keep that ranking's order"
    )
    search_after: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="the cursor of the previous response: the next k hits after its last one (instead of page)",
    )

    @model_validator(mode="after")
    def _has_query(self) -> SearchRequest:
        if self.text is None and self.image_b64 is None and self.similar_to is None:
            raise ValueError("a search needs text or image_b64 (or both), or similar_to")
        if self.page * self.k > MAX_RESULT_WINDOW:
            raise ValueError(f"page * k must be at most {MAX_RESULT_WINDOW}, got {self.page} * {self.k}")
        after = self.after()
        if after is not None:
            if self.page != 1:
                raise ValueError("give page or search_after, not both")
            if self.ranking_id is not None and self.ranking_id != after.ranking_id:
                raise ValueError("search_after belongs to another ranking_id than the one given")
            if after.offset + self.k > MAX_RESULT_WINDOW:
                raise ValueError(f"search_after is at {after.offset}: offset + k must be at most {MAX_RESULT_WINDOW}")
        if self.image_b64 is not None:
            _decode_b64(self.image_b64, "image_b64")
        return self

    def image_bytes(self) -> bytes | None:
        return None if self.image_b64 is None else _decode_b64(self.image_b64, "image_b64")

    def after(self) -> PageCursor | None:
        return None if self.search_after is None else PageCursor.decode(self.search_after)


class SearchHit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_id: str
    rank: int = Field(ge=1)
    cluster_id: int
    knn_score: float
    personal_score: float
    blended_score: float
    metadata: dict[str, str] = Field(default_factory=dict)
    drivers: list[str] = Field(default_factory=list, description="recent interactions behind the personal score")


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str


class SearchResponse(Event):
    type: Literal["search.response"] = "search.response"
    request_id: Id
    user_id: Id
    hits: list[SearchHit] = Field(default_factory=list)
    error: ErrorInfo | None = None
    personalization_weight: float = 0.0
    personalized: bool = False
    ranker: str = ""
    notes: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    answered_at: datetime = Field(default_factory=utcnow)
    # issue 15: paging (send ranking_id back with page + 1 for the next page of the same ranking)
    page: int = 1
    ranking_id: str | None = None
    has_more: bool = False
    cursor: str | None = Field(default=None, description="send as search_after for the next page (when has_more)")

    @property
    def ok(self) -> bool:
        return self.error is None


class DeadLetter(Event):
    """An event a worker could not process: kept with its reason, never dropped."""

    type: Literal["dead-letter"] = "dead-letter"
    reason_code: str
    reason: str
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    consumer: str
    original_key_b64: str | None = None
    original_b64: str = Field(
        description="the original payload, base64 (it may not be text); only its first "
        f"{DEAD_LETTER_MAX_ORIGINAL_BYTES} bytes when original_truncated"
    )
    original_size: int | None = Field(default=None, ge=0, description="the original payload's size in bytes")
    original_sha256: str | None = Field(default=None, description="the original payload's sha256 (hex)")
    original_truncated: bool = Field(
        default=False,
        description="the payload was too big to copy whole: original_b64 holds its first bytes; the whole "
        "payload stays on source_topic at source_offset",
    )
    failed_at: datetime = Field(default_factory=utcnow)

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original_b64)

    @staticmethod
    def original_fields(payload: bytes | None, limit: int = DEAD_LETTER_MAX_ORIGINAL_BYTES) -> dict[str, Any]:
        """The ``original_*`` fields for a payload: a copy when it fits ``limit``, else its prefix;
        always its size and sha256 (so a dead letter is always small enough to be sent)."""
        data = payload or b""
        return {
            "original_b64": base64.b64encode(data[:limit]).decode(),
            "original_size": len(data),
            "original_sha256": hashlib.sha256(data).hexdigest(),
            "original_truncated": len(data) > limit,
        }


ALL_EVENTS: tuple[type[Event], ...] = (
    NewImage,
    ImageIndexed,
    Interaction,
    PersonalizationEvent,
    SearchRequest,
    SearchResponse,
    DeadLetter,
    ForgetUser,
)


class InvalidEvent(ValueError):
    """A payload that is not a valid event of the expected kind; ``code`` is machine-readable (a
    :class:`~schemas.reasons.Reason`)."""

    def __init__(self, code: Reason, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_event(model: type[E], payload: bytes | str | None) -> E:
    """Parse one wire payload into ``model`` or raise :class:`InvalidEvent` with a clear reason."""
    if payload is None:
        raise InvalidEvent(Reason.EMPTY, "the message has no value")
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(Reason.MALFORMED_JSON, f"not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidEvent(Reason.SCHEMA_VIOLATION, f"expected a JSON object, got {type(raw).__name__}")
    version = raw.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise InvalidEvent(
            Reason.UNKNOWN_VERSION,
            f"schema_version {version!r} is not supported (this worker reads {SCHEMA_VERSION})",
        )
    expected_type = model.model_fields["type"].default
    if "type" in raw and raw["type"] != expected_type:
        raise InvalidEvent(Reason.WRONG_TYPE, f"expected type {expected_type!r}, got {raw['type']!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in errors)
        too_large = any(err["type"] == "image_too_large" for err in errors)
        code = Reason.IMAGE_TOO_LARGE if too_large else Reason.SCHEMA_VIOLATION
        raise InvalidEvent(code, problems) from exc
