"""Amazon Titan Multimodal Embeddings G1 through Bedrock (``amazon.titan-embed-image-v1``).

One ``bedrock-runtime.InvokeModel`` call per text or image. Input limits are checked before the
call (text tokens, image bytes; images over 2048 px on a side are scaled down to fit, as the model
requires), throttling is retried with exponential backoff, and vectors come back unit-normalised.
With Titan the search vector also carries style, so the cluster model may use it (as in the article).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from imgsearch.embedding.base import EmbeddingError, Vectors, normalize_rows

log = logging.getLogger(__name__)

MODEL_ID = "amazon.titan-embed-image-v1"
DIMENSIONS = (256, 384, 1024)
MAX_TEXT_TOKENS = 128  # the limit this project enforces (the model card allows more; stay conservative)
MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_SIDE = 2048
RETRYABLE = {"ThrottlingException", "ServiceUnavailableException", "ModelTimeoutException", "InternalServerException"}
_TOKEN = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (Titan's tokenizer is not public): words and punctuation, with
    long words counted as several sub-word tokens."""
    return sum(max(1, -(-len(t) // 6)) for t in _TOKEN.findall(text))


class TitanEmbedder:
    def __init__(
        self,
        client: Any = None,
        *,
        dimension: int = 1024,
        region: str | None = None,
        max_attempts: int = 6,
        concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if dimension not in DIMENSIONS:
            raise ValueError(f"Titan output length must be one of {DIMENSIONS}, got {dimension}")
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "bedrock-runtime", region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 3})
            )
        self._client = client
        self._dim = dimension
        self._max_attempts = max_attempts
        self._concurrency = concurrency
        self._sleep = sleep

    @property
    def model_id(self) -> str:
        return f"{MODEL_ID}-d{self._dim}"

    @property
    def dimension(self) -> int:
        return self._dim

    def _body(self, text: str | None = None, image_b64: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"embeddingConfig": {"outputEmbeddingLength": self._dim}}
        if text is not None:
            body["inputText"] = text
        if image_b64 is not None:
            body["inputImage"] = image_b64
        return body

    def _invoke(self, body: dict[str, Any]) -> list[float]:
        from botocore.exceptions import ClientError

        for attempt in range(1, self._max_attempts + 1):
            try:
                resp = self._client.invoke_model(
                    modelId=MODEL_ID, body=json.dumps(body), contentType="application/json", accept="application/json"
                )
                payload = json.loads(resp["body"].read())
                if payload.get("message"):
                    raise EmbeddingError(f"Titan refused the input: {payload['message']}")
                vec = payload["embedding"]
                if len(vec) != self._dim:
                    raise EmbeddingError(f"Titan returned {len(vec)} dimensions, expected {self._dim}")
                return list(map(float, vec))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in RETRYABLE or attempt == self._max_attempts:
                    if code == "ValidationException":
                        raise EmbeddingError(f"Titan rejected the input: {exc}") from exc
                    raise
                delay = min(20.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                log.warning("Bedrock %s; retry %d/%d in %.1fs", code, attempt, self._max_attempts - 1, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _map(self, bodies: list[dict[str, Any]]) -> Vectors:
        if not bodies:
            return np.zeros((0, self._dim), dtype=np.float32)
        if len(bodies) == 1 or self._concurrency <= 1:
            rows = [self._invoke(b) for b in bodies]
        else:
            with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
                rows = list(pool.map(self._invoke, bodies))
        return normalize_rows(np.asarray(rows, dtype=np.float32))

    def check_text(self, text: str) -> None:
        if not text.strip():
            raise EmbeddingError("empty text")
        n = estimate_tokens(text)
        if n > MAX_TEXT_TOKENS:
            raise EmbeddingError(f"text of ~{n} tokens is over Titan's limit of {MAX_TEXT_TOKENS}")

    def encode_image(self, image: Image.Image) -> str:
        img = image.convert("RGB")
        if max(img.size) > MAX_IMAGE_SIDE:
            img = img.copy()
            img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        if buf.tell() > MAX_IMAGE_BYTES:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
        if buf.tell() > MAX_IMAGE_BYTES:
            raise EmbeddingError(f"image of {buf.tell()} bytes is over Titan's limit of {MAX_IMAGE_BYTES}")
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        for t in texts:
            self.check_text(t)
        return self._map([self._body(text=t) for t in texts])

    def embed_images(self, images: Sequence[Image.Image]) -> Vectors:
        return self._map([self._body(image_b64=self.encode_image(im)) for im in images])
