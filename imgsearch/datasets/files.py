"""File-tree helpers shared by the data set builders."""

from __future__ import annotations

import shutil
from pathlib import Path


def swap_in(staging: Path, root: Path) -> None:
    """Put the finished tree ``staging`` at ``root``, atomically-ish: an old ``root`` is moved aside
    and removed only once the new tree is in place (a failed build never leaves half a data set)."""
    if root.exists():
        old = root.with_name(root.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        root.rename(old)
        staging.rename(root)
        shutil.rmtree(old)
    else:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(root)
