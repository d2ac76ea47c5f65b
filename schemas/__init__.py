"""Event contracts of imgsearch: pydantic v2 models, JSON on the wire, versioned.

Upstream apps in other languages use the JSON Schema files in ``schemas/jsonschema/``.
Topic names and partition keys live in :mod:`schemas.topics`.
"""

from schemas.events import (
    SCHEMA_VERSION,
    DeadLetter,
    ErrorInfo,
    EventType,
    ImageIndexed,
    Interaction,
    NewImage,
    PersonalizationEvent,
    SearchHit,
    SearchRequest,
    SearchResponse,
    parse_event,
)

__all__ = [
    "SCHEMA_VERSION",
    "DeadLetter",
    "ErrorInfo",
    "EventType",
    "ImageIndexed",
    "Interaction",
    "NewImage",
    "PersonalizationEvent",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "parse_event",
]
