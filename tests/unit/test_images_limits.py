"""Issue 14 item 7: regular files only, read with a timeout; decode reduced to the model's size
(JPEG with draft()); a format allow-list (PNG, JPEG, WebP, GIF, SVG via rsvg-convert); a few fixed
thumbnail sizes in the gateway."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, JpegImagePlugin

from imgsearch import images
from imgsearch.config import Settings
from imgsearch.images import ImageRejected, decode, fetch_uri


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_a_fifo_under_an_allowed_root_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "trap.png"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(fetch_uri(fifo.as_uri(), [str(tmp_path)], 10**6))
        except ImageRejected as exc:
            outcome.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(3.0)
    finished = not t.is_alive()
    if not finished:  # unblock the reader stuck in open() (the behaviour before the fix)
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        t.join(3.0)
    assert finished, "reading a FIFO under an allowed root blocked"
    assert time.monotonic() - t0 < 1.0
    assert isinstance(outcome[0], ImageRejected) and outcome[0].code == "not_a_regular_file"


def test_a_directory_is_not_a_regular_file(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageRejected) as e:
        fetch_uri((tmp_path / "dir.png").as_uri(), [str(tmp_path)], 10**6)
    assert e.value.code == "not_a_regular_file"


def test_a_read_that_hangs_times_out(tmp_path, monkeypatch):
    f = tmp_path / "slow.png"
    f.write_bytes(b"x")
    release = threading.Event()

    def hanging(path: Path, max_bytes: int, uri: str) -> bytes:
        release.wait(10)  # a read stuck in the kernel (a stalled network filesystem)
        return b""

    monkeypatch.setattr(images, "_read_regular", hanging)
    t0 = time.monotonic()
    try:
        with pytest.raises(ImageRejected) as e:
            fetch_uri(f.as_uri(), [str(tmp_path)], 10**6, timeout_s=0.3)
    finally:
        release.set()
    assert e.value.code == "read_timeout"
    assert time.monotonic() - t0 < 2.0


def test_a_file_larger_than_the_limit_is_refused_before_reading_it(tmp_path):
    f = tmp_path / "big.png"
    f.write_bytes(b"\0" * 2000)
    with pytest.raises(ImageRejected) as e:
        fetch_uri(f.as_uri(), [str(tmp_path)], 1000)
    assert e.value.code == "image_too_large"


def test_a_36_megapixel_png_of_a_few_kb_is_reduced_to_max_side():
    data = encoded(Image.new("1", (6000, 6000), 1), "PNG", optimize=True)
    assert len(data) < 20_000  # some KB: the amplification of issue 14 item 7
    img = decode(data, 8 * 2**20, 40_000_000, max_side=1024)
    assert img.mode == "RGB" and max(img.size) == 1024
    # what the embedder holds per image of a batch: 3 MB instead of 108 MB
    assert img.size[0] * img.size[1] * 3 <= 1024 * 1024 * 3


def test_a_large_jpeg_is_decoded_reduced_with_draft(monkeypatch):
    data = encoded(Image.new("RGB", (4000, 3000), (10, 120, 200)), "JPEG", quality=80)
    calls: list[tuple] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        calls.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    img = decode(data, 8 * 2**20, 40_000_000, max_side=500)
    assert max(img.size) == 500
    # draft chose the DCT scale: the decoder produced 1/4 of the pixels per side (1000 x 750), not 4000 x 3000
    assert calls and calls[0][1] == (1000, 750)


def test_small_images_keep_their_size():
    data = encoded(Image.new("RGB", (300, 200), (1, 2, 3)), "PNG")
    assert decode(data, 10**6, 10**6, max_side=1024).size == (300, 200)
    assert decode(data, 10**6, 10**6).size == (300, 200)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_allowed_formats_decode(fmt):
    img = decode(encoded(Image.new("RGB", (40, 30), (200, 30, 30)), fmt), 10**6, 10**6)
    assert img.size == (40, 30) and img.mode == "RGB"


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "PPM", "TGA"])
def test_other_pillow_formats_are_refused(fmt):
    data = encoded(Image.new("RGB", (32, 32), (200, 30, 30)), fmt)
    with pytest.raises(ImageRejected) as e:
        decode(data, 10**6, 10**6)
    assert e.value.code in ("format_not_allowed", "undecodable_image")
    if fmt in ("BMP", "TIFF", "ICO"):
        assert e.value.code == "format_not_allowed"


def test_eps_never_reaches_ghostscript(monkeypatch):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"
    from PIL import EpsImagePlugin

    def no_ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript was invoked")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_ghostscript)
    with pytest.raises(ImageRejected) as e:
        decode(eps, 10**6, 10**6)
    assert e.value.code == "format_not_allowed"


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="needs rsvg-convert (librsvg2-bin)")
def test_svg_is_rasterised():
    svg = (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50">'
        b'<rect width="100" height="50" fill="#00ff00"/></svg>'
    )
    img = decode(svg, 10**6, 10**6, max_side=256)
    assert img.mode == "RGB" and img.size == (256, 128)
    r, g, b = img.getpixel((128, 64))
    assert g > 200 and r < 50 and b < 50


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="needs rsvg-convert (librsvg2-bin)")
def test_svg_loads_no_external_file(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(encoded(Image.new("RGB", (10, 10), (255, 0, 0)), "PNG"))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">'
        f'<image width="10" height="10" xlink:href="{secret.as_uri()}"/></svg>'
    ).encode()
    try:
        img = decode(svg, 10**6, 10**6, max_side=10)
    except ImageRejected:
        return  # refused outright: fine
    assert img.getpixel((5, 5)) != (255, 0, 0)  # the file was not read into the picture


def test_gateway_thumbnails_come_in_fixed_sizes(tmp_path, monkeypatch):
    from apps.gateway import app as gateway_app

    f = tmp_path / "a.png"
    f.write_bytes(encoded(Image.new("RGB", (800, 600), (0, 0, 255)), "PNG"))
    gw = gateway_app.Gateway(Settings(allowed_uri_roots=str(tmp_path)))

    async def source_of(image_id: str) -> str:
        return f.as_uri()

    monkeypatch.setattr(gw, "source_of", source_of)

    async def ask_many() -> set[tuple[int, int]]:
        sizes = set()
        for requested in range(1, 1001, 7):
            data = await gw.thumbnail("a", gateway_app.thumb_size(requested))
            sizes.add(Image.open(io.BytesIO(data)).size)
        return sizes

    sizes = asyncio.run(ask_many())
    assert len(gw._thumbs) <= len(gateway_app.THUMB_SIZES) == 4
    assert sizes == {(64, 48), (128, 96), (256, 192), (512, 384)}
    assert [gateway_app.thumb_size(n) for n in (1, 64, 65, 200, 300, 512, 10_000)] == [64, 64, 128, 256, 512, 512, 512]
