import io

import pytest
from PIL import Image

from imgsearch.embedding.hashing import HashEmbedder
from imgsearch.images import ImageRejected, decode, fetch_uri


def png(size=(8, 8), mode="RGB", color=(200, 10, 10)):
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def test_decode_rgb_and_alpha_on_white():
    img = decode(png(mode="RGBA", color=(0, 0, 0, 0)), 10**6, 10**6)
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("data", "limits", "code"),
    [
        (b"not an image", (10**6, 10**6), "undecodable_image"),
        (png(), (10, 10**6), "image_too_large"),
        (png(size=(100, 100)), (10**6, 5000), "too_many_pixels"),
    ],
)
def test_decode_refusals(data, limits, code):
    with pytest.raises(ImageRejected) as e:
        decode(data, *limits)
    assert e.value.code == code


def test_fetch_uri_only_under_allowed_roots(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(png())
    assert fetch_uri(f.as_uri(), [str(tmp_path)], 10**6) == f.read_bytes()
    for uri, code in [
        ("http://169.254.169.254/latest/meta-data", "uri_scheme_not_allowed"),
        ("file:///etc/passwd", "uri_not_allowed"),
        (f"{tmp_path.as_uri()}/../../etc/passwd", "uri_not_allowed"),
        ((tmp_path / "missing.png").as_uri(), "uri_unreachable"),
    ]:
        with pytest.raises(ImageRejected) as e:
            fetch_uri(uri, [str(tmp_path)], 10**6)
        assert e.value.code == code, uri


def test_hash_embedder_shapes_and_norms():
    emb = HashEmbedder(dimension=32)
    t = emb.embed_texts(["a red cat", "a red cat", "rocket"])
    assert t.shape == (3, 32) and (abs((t**2).sum(1) - 1) < 1e-5).all()
    assert (t[0] == t[1]).all()
    im = emb.embed_images([Image.open(io.BytesIO(png())), Image.open(io.BytesIO(png(color=(0, 0, 255))))])
    assert im.shape == (2, 32) and float(im[0] @ im[1]) < 0.999
