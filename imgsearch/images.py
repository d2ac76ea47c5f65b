"""Fetching and decoding images at the edge, with limits: byte size, pixel count (decompression
bombs), and allowed URI roots (no fetching from arbitrary places).

Issue 14 item 7: only regular files are read (a FIFO or a device under an allowed root is refused
without blocking), within a timeout; only PNG, JPEG, WebP and GIF are decoded by Pillow (no other
Pillow plugin is ever tried: EPS would reach Ghostscript), SVG is rasterised by ``rsvg-convert``; a
decoded image is reduced to ``max_side`` (JPEG already while decoding, with ``draft()``), so a batch
never holds full-size copies of huge images.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import shutil
import stat
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

from schemas.reasons import Reason


class ImageRejected(ValueError):
    """An image the pipeline refuses; ``code`` is machine-readable (goes into the dead letter)."""

    def __init__(self, code: Reason, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_roots(raw: str) -> list[str]:
    return [r.strip() for r in raw.split(",") if r.strip()]


def fetch_uri(uri: str, allowed_roots: Sequence[str], max_bytes: int, *, timeout_s: float = 5.0) -> bytes:
    """Read an image from a ``file://`` URI under one of ``allowed_roots`` (``s3://`` comes with the
    AWS backends): a regular file, within ``timeout_s``. Anything else is refused with a reason."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ImageRejected(Reason.URI_SCHEME_NOT_ALLOWED, f"scheme {parsed.scheme!r} is not allowed: {uri}")
    try:  # a NUL byte (or another path the OS refuses) is this URI's fault, not its batch's
        path = Path(unquote(parsed.path)).resolve()
    except (ValueError, OSError) as exc:
        raise ImageRejected(Reason.URI_INVALID, f"not a usable file path: {uri[:300]!r}: {exc}") from exc
    roots = [Path(r).resolve() for r in allowed_roots]
    if not any(path == r or r in path.parents for r in roots):
        raise ImageRejected(
            Reason.URI_NOT_ALLOWED, f"{path} is outside the allowed roots (IMGSEARCH_ALLOWED_URI_ROOTS)"
        )
    return read_regular_file(path, max_bytes, timeout_s, uri)


# ------------------------------------------------------------------ reading files (issue 14 item 7)

READ_TIMEOUT_S = 5.0
_READ_CHUNK = 1 << 20
# reads run here so that a read that hangs (a stalled network filesystem) times out; a thread stuck
# in the kernel stays stuck until the read returns, so later reads queue behind at most 4 of them
# and time out too instead of stalling their caller
_READERS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="imgsearch-read")


def read_regular_file(path: Path, max_bytes: int, timeout_s: float = READ_TIMEOUT_S, uri: str = "") -> bytes:
    """The bytes of a regular file, at most ``max_bytes``, within ``timeout_s``."""
    future = _READERS.submit(_read_regular, path, max_bytes, uri or str(path))
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        raise ImageRejected(Reason.READ_TIMEOUT, f"reading {uri or path} took over {timeout_s:g} s") from None


def _read_regular(path: Path, max_bytes: int, uri: str) -> bytes:
    # O_NONBLOCK: opening a FIFO does not wait for a writer (regular files ignore the flag);
    # O_NOFOLLOW: the path was resolved, a symlink swapped in since is not followed
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageRejected(Reason.URI_UNREACHABLE, f"cannot read {uri}: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageRejected(Reason.NOT_A_REGULAR_FILE, f"{uri} is not a regular file")
        if st.st_size > max_bytes:
            raise ImageRejected(Reason.IMAGE_TOO_LARGE, f"{st.st_size} bytes is over the limit of {max_bytes}")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(_READ_CHUNK, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew since fstat
                raise ImageRejected(Reason.IMAGE_TOO_LARGE, f"over {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise ImageRejected(Reason.URI_UNREACHABLE, f"cannot read {uri}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


# ------------------------------------------------------------------ decoding (issue 14 item 7)

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")  # Pillow's plugins that may run; SVG: rsvg-convert
SVG_SIDE = 512  # SVGs are rasterised to fit this square (or max_side, if smaller)
SVG_TIMEOUT_S = 10.0
# other formats, recognised only to name them in the refusal (Pillow never opens them)
_OTHER_MAGIC = {
    b"%!PS": "PostScript/EPS",
    b"\xc5\xd0\xd3\xc6": "EPS",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"8BPS": "PSD",
    b"\x00\x00\x01\x00": "ICO",
    b"%PDF": "PDF",
}


def looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith((b"<?xml", b"<svg", b"<!DOCTYPE", b"<!--")) and b"<svg" in head


def rasterise_svg(data: bytes, side: int, timeout_s: float = SVG_TIMEOUT_S) -> bytes:
    """PNG bytes of an SVG, fitted into ``side`` × ``side``, by rsvg-convert (librsvg) from stdin:
    with no base file it loads no external resource."""
    exe = shutil.which("rsvg-convert")
    if exe is None:
        raise ImageRejected(Reason.FORMAT_NOT_ALLOWED, "SVG needs rsvg-convert (apt-get install librsvg2-bin)")
    try:
        done = subprocess.run(
            [exe, "-w", str(side), "-h", str(side), "-a", "-f", "png"],
            input=data,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ImageRejected(Reason.UNDECODABLE_IMAGE, f"rasterising the SVG took over {timeout_s:g} s") from None
    if done.returncode != 0 or not done.stdout:
        why = done.stderr.decode("utf-8", "replace").strip()[:300]
        raise ImageRejected(Reason.UNDECODABLE_IMAGE, f"cannot rasterise the SVG: {why or done.returncode}")
    return done.stdout


def decode(data: bytes, max_bytes: int, max_pixels: int, *, max_side: int | None = None) -> Image.Image:
    """Decode to RGB, compositing transparency on white, reduced to fit ``max_side`` (None: full
    size). Refuses oversize, undecodable and not allowed input (PNG, JPEG, WebP, GIF, SVG)."""
    if len(data) > max_bytes:
        raise ImageRejected(Reason.IMAGE_TOO_LARGE, f"{len(data)} bytes is over the limit of {max_bytes}")
    if looks_like_svg(data):
        data = rasterise_svg(data, min(SVG_SIDE, max_side or SVG_SIDE))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(Reason.TOO_MANY_PIXELS, f"{w}x{h} is over the limit of {max_pixels} pixels")
            if max_side is not None and max(w, h) > max_side:
                img.draft(img.mode, (max_side, max_side))  # JPEG: decoded at 1/2, 1/4 or 1/8 scale
            img.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(Reason.TOO_MANY_PIXELS, str(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        other = next((name for magic, name in _OTHER_MAGIC.items() if data.startswith(magic)), None)
        if other is not None:
            raise ImageRejected(
                Reason.FORMAT_NOT_ALLOWED, f"{other} images are not accepted (PNG, JPEG, WebP, GIF, SVG)"
            ) from exc
        raise ImageRejected(
            Reason.UNDECODABLE_IMAGE, f"cannot decode image (PNG, JPEG, WebP, GIF, SVG): {exc}"
        ) from exc
    except Exception as exc:  # Pillow raises many kinds for corrupt data
        raise ImageRejected(Reason.UNDECODABLE_IMAGE, f"cannot decode image: {exc}") from exc
    rgb = to_rgb(img)
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return rgb


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def default_roots() -> list[str]:
    return [os.getcwd()]
