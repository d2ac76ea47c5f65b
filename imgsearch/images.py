"""Fetching and decoding images at the edge, with limits: byte size, pixel count (decompression
bombs), and allowed URI roots (no fetching from arbitrary places)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image


class ImageRejected(ValueError):
    """An image the pipeline refuses; ``code`` is machine-readable (goes into the dead letter)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_roots(raw: str) -> list[str]:
    return [r.strip() for r in raw.split(",") if r.strip()]


def fetch_uri(uri: str, allowed_roots: Sequence[str], max_bytes: int) -> bytes:
    """Read an image from a ``file://`` URI under one of ``allowed_roots`` (``s3://`` comes with the
    AWS backends). Anything else is refused with a reason."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ImageRejected("uri_scheme_not_allowed", f"scheme {parsed.scheme!r} is not allowed: {uri}")
    try:  # a NUL byte (or another path the OS refuses) is this URI's fault, not its batch's
        path = Path(unquote(parsed.path)).resolve()
    except (ValueError, OSError) as exc:
        raise ImageRejected("uri_invalid", f"not a usable file path: {uri[:300]!r}: {exc}") from exc
    roots = [Path(r).resolve() for r in allowed_roots]
    if not any(path == r or r in path.parents for r in roots):
        raise ImageRejected("uri_not_allowed", f"{path} is outside the allowed roots (IMGSEARCH_ALLOWED_URI_ROOTS)")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageRejected("image_too_large", f"{size} bytes is over the limit of {max_bytes}")
        return path.read_bytes()
    except OSError as exc:
        raise ImageRejected("uri_unreachable", f"cannot read {uri}: {exc.strerror or exc}") from exc


def decode(data: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode to RGB, compositing transparency on white. Refuses oversize and undecodable input."""
    if len(data) > max_bytes:
        raise ImageRejected("image_too_large", f"{len(data)} bytes is over the limit of {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected("too_many_pixels", f"{w}x{h} is over the limit of {max_pixels} pixels")
            img.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except Exception as exc:  # Pillow raises many kinds for corrupt data
        raise ImageRejected("undecodable_image", f"cannot decode image: {exc}") from exc
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def default_roots() -> list[str]:
    return [os.getcwd()]
