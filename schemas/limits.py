"""The size limits of every link an event crosses, in one place (issue 14, item 2).

A link accepts at least what the link before it lets through, so the first link that refuses is the
one that says why, with a clear error (never a broker error deep inside a worker):

    gateway body (GATEWAY_MAX_BODY_BYTES, HTTP 413 above it)
      → event schema: an inline image ≤ MAX_INLINE_IMAGE_BYTES decoded (``image_too_large``, HTTP 413)
      → one serialized event ≤ MAX_EVENT_BYTES (a worst-case event with a full-size image fits)
      → producer ``max_request_size`` = topic ``max.message.bytes`` = broker ``message.max.bytes`` /
        ``replica.fetch.max.bytes`` = consumer ``max_partition_fetch_bytes`` = MAX_MESSAGE_BYTES
        (an event plus the record batch framing)

The workers' own image limit (``IMGSEARCH_MAX_IMAGE_BYTES``, default MAX_INLINE_IMAGE_BYTES) may be
lower: that refusal is an ``image_too_large`` error reply / dead letter.

Dead letters copy at most DEAD_LETTER_MAX_ORIGINAL_BYTES of the refused payload (with its size and
sha256), so a dead letter always fits in a message, even on a topic left at Kafka's 1 MB default.
"""

from __future__ import annotations

MIB = 2**20

MAX_INLINE_IMAGE_BYTES = 8 * MIB
"""An image sent inline (``image_b64``), decoded."""

MAX_EVENT_BYTES = 12 * MIB
"""One serialized event: the base64 of a full-size inline image (11,184,812 bytes) plus every other
field at its maximum (ids, metadata, query text) fits."""

GATEWAY_MAX_BODY_BYTES = MAX_EVENT_BYTES
"""The gateway's largest request body: a JSON body carrying a full-size image, not more."""

MAX_MESSAGE_BYTES = MAX_EVENT_BYTES + 64 * 1024
"""One Kafka record batch holding one event: producer ``max_request_size``, topic
``max.message.bytes``, broker ``message.max.bytes`` and ``replica.fetch.max.bytes``, consumer
``max_partition_fetch_bytes``."""

DEAD_LETTER_MAX_ORIGINAL_BYTES = 256 * 1024
"""The most of a refused payload a dead letter carries (base64: 1.33×); above it the payload is
truncated to this prefix and the letter records the full size and sha256 (the original stays on its
source topic at the recorded offset)."""

DEAD_LETTER_MAX_BYTES = 1_000_000
"""What a dead letter never exceeds (faust's default producer request size, Kafka's default topic
limit ~1 MB)."""
