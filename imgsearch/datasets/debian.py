"""Fetch Debian packages as data: ``apt-get download`` + ``dpkg -x`` into a per-package cache directory.

Nothing is installed system-wide. A package is extracted once to
``${IMGSEARCH_CACHE:-~/.cache/imgsearch}/debian/<pkg>/root/`` and a small ``.fetched.json`` marker next to
it records the version and the .deb's SHA-256; later calls reuse that tree without touching the network
(even if the archive has since moved on to a newer version: what you extracted is what you keep, delete the
directory to refresh).

Reusable for any package that ships data files (icon themes, ``tuxpaint-stamps-default``, ...)::

    pkg = fetch_package("tango-icon-theme")
    pkg.root / "usr/share/icons/Tango"
    pkg.copyright()  # text of /usr/share/doc/<pkg>/copyright
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARKER = ".fetched.json"


def cache_root() -> Path:
    """The environment's cache directory: ``$IMGSEARCH_CACHE`` or ``~/.cache/imgsearch``."""
    from imgsearch.config import environment_cache_path

    return environment_cache_path()


def debian_dir(cache: Path | None = None) -> Path:
    return (cache or cache_root()) / "debian"


class DebianFetchError(RuntimeError):
    pass


@dataclass(frozen=True)
class ExtractedPackage:
    name: str
    version: str
    sha256: str
    root: Path  # the extracted filesystem tree (contains usr/share/...)

    def copyright(self) -> str:
        """The package's ``/usr/share/doc/<pkg>/copyright`` (empty string if the package has none)."""
        path = self.root / "usr" / "share" / "doc" / self.name / "copyright"
        if path.is_symlink() or not path.exists():
            # some packages symlink their doc dir to another package's; nothing we can follow offline
            return ""
        return path.read_text(encoding="utf-8", errors="replace")

    def main_license(self) -> str:
        """The ``License:`` of the ``Files: *`` stanza of a machine-readable (DEP-5) copyright file, or ""."""
        return main_license(self.copyright())


def main_license(copyright_text: str) -> str:
    """The licence of the ``Files: *`` stanza in a DEP-5 copyright file ("" if there is none)."""
    for stanza in copyright_text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        if fields.get("files", "").split() and fields["files"].split()[0] == "*" and fields.get("license"):
            return fields["license"]
    return ""


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:  # not a Debian-ish system
        raise DebianFetchError(f"{cmd[0]} not found: this helper needs apt-get and dpkg-deb") from exc
    if proc.returncode != 0:
        raise DebianFetchError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def candidate_version(pkg: str) -> str | None:
    """The version ``apt-get download`` would fetch, or None if apt does not know the package."""
    try:
        out = _run(["apt-cache", "policy", pkg])
    except DebianFetchError:
        return None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            return None if value in ("", "(none)") else value
    return None


def read_marker(pkg: str, cache: Path | None = None) -> ExtractedPackage | None:
    base = debian_dir(cache) / pkg
    marker = base / MARKER
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    return ExtractedPackage(name=pkg, version=data["version"], sha256=data["sha256"], root=base / "root")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_package(pkg: str, cache: Path | None = None, keep_deb: bool = False) -> ExtractedPackage:
    """Download and extract ``pkg`` (idempotent: returns the cached tree when present).

    Raises DebianFetchError if apt does not know the package (run ``apt-get update`` first) or a
    download/extract step fails. The extraction is atomic: a half-done tree is never marked as fetched.
    """
    done = read_marker(pkg, cache)
    if done is not None and done.root.is_dir():
        return done
    base = debian_dir(cache) / pkg
    base.mkdir(parents=True, exist_ok=True)
    if candidate_version(pkg) is None:
        raise DebianFetchError(
            f"apt does not know package {pkg!r} (not in this release, or run `apt-get update` first)"
        )
    with tempfile.TemporaryDirectory(dir=base, prefix=".tmp-") as tmp_s:
        tmp = Path(tmp_s)
        os.chmod(tmp, 0o755)  # apt's _apt sandbox user must be able to write here when run as root
        _run(["apt-get", "download", "-q", pkg], cwd=tmp)
        debs = sorted(tmp.glob("*.deb"))
        if len(debs) != 1:
            raise DebianFetchError(f"expected one .deb for {pkg}, got {[d.name for d in debs]}")
        deb = debs[0]
        version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
        digest = _sha256(deb)
        staged = tmp / "root"
        _run(["dpkg-deb", "-x", str(deb), str(staged)])
        final = base / "root"
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
        if keep_deb:
            deb.rename(base / deb.name)
    (base / MARKER).write_text(json.dumps({"package": pkg, "version": version, "sha256": digest}, indent=2) + "\n")
    return ExtractedPackage(name=pkg, version=version, sha256=digest, root=base / "root")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="apt-get download + dpkg -x into the imgsearch cache")
    ap.add_argument("packages", nargs="+")
    ap.add_argument("--keep-deb", action="store_true")
    args = ap.parse_args(argv)
    for name in args.packages:
        pkg = fetch_package(name, keep_deb=args.keep_deb)
        print(f"{pkg.name} {pkg.version} {pkg.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
