"""The Titan backend against botocore's Stubber: every request is checked against the real
bedrock-runtime service model."""

import io
import json

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from PIL import Image

from imgsearch.embedding.base import Embedder, EmbeddingError
from imgsearch.embedding.titan import MODEL_ID, TitanEmbedder, estimate_tokens


def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def body(vec):
    raw = json.dumps({"embedding": vec, "inputTextTokenCount": 3, "message": None}).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


def expect(stub, vec):
    stub.add_response(
        "invoke_model",
        body(vec),
        {"modelId": MODEL_ID, "body": ANY, "contentType": "application/json", "accept": "application/json"},
    )


def test_text_request_shape_and_normalised_output():
    c = client()
    emb = TitanEmbedder(c, dimension=256, concurrency=1)
    assert isinstance(emb, Embedder) and emb.model_id.endswith("-d256") and emb.dimension == 256
    sent = []
    c.meta.events.register(
        "provide-client-params.bedrock-runtime.InvokeModel",
        lambda params, **kw: sent.append(json.loads(params["body"])),
    )
    with Stubber(c) as stub:
        expect(stub, [3.0] + [0.0] * 254 + [4.0])
        out = emb.embed_texts(["a cat in origami style"])
        stub.assert_no_pending_responses()
    assert out.shape == (1, 256) and out.dtype == np.float32
    assert out[0, 0] == pytest.approx(0.6) and out[0, -1] == pytest.approx(0.8)
    assert sent == [{"inputText": "a cat in origami style", "embeddingConfig": {"outputEmbeddingLength": 256}}]


def test_image_is_base64_png_and_oversize_is_scaled_to_2048():
    c = client()
    emb = TitanEmbedder(c, dimension=384, concurrency=1)
    sent = []
    c.meta.events.register(
        "provide-client-params.bedrock-runtime.InvokeModel",
        lambda params, **kw: sent.append(json.loads(params["body"])),
    )
    with Stubber(c) as stub:
        expect(stub, [1.0] * 384)
        emb.embed_images([Image.new("RGB", (4000, 1000), "red")])
    import base64

    img = Image.open(io.BytesIO(base64.b64decode(sent[0]["inputImage"])))
    assert img.size == (2048, 512) and "inputText" not in sent[0]


def test_throttling_is_retried_with_backoff():
    c = client()
    sleeps = []
    emb = TitanEmbedder(c, dimension=256, concurrency=1, sleep=sleeps.append)
    with Stubber(c) as stub:
        stub.add_client_error("invoke_model", "ThrottlingException", "slow down", 429)
        stub.add_client_error("invoke_model", "ServiceUnavailableException", "busy", 503)
        expect(stub, [1.0] * 256)
        out = emb.embed_texts(["cat"])
        stub.assert_no_pending_responses()
    assert out.shape == (1, 256) and len(sleeps) == 2 and sleeps[1] > 0


def test_limits_are_checked_before_any_call():
    c = client()
    emb = TitanEmbedder(c, dimension=256)
    with Stubber(c):  # no response queued: any call would fail the test
        with pytest.raises(EmbeddingError, match="over Titan's limit"):
            emb.embed_texts(["word " * 200])
        with pytest.raises(EmbeddingError, match="empty"):
            emb.embed_texts(["   "])
    with pytest.raises(ValueError):
        TitanEmbedder(c, dimension=512)
    assert estimate_tokens("a photo of a cat") == 5


def test_validation_error_is_an_embedding_error():
    c = client()
    emb = TitanEmbedder(c, dimension=256)
    with Stubber(c) as stub:
        stub.add_client_error("invoke_model", "ValidationException", "bad image", 400)
        with pytest.raises(EmbeddingError, match="rejected"):
            emb.embed_texts(["cat"])
