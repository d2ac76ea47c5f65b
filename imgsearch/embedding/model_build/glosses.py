"""WordNet glosses for the 1000 ILSVRC-2012 classes (set-up time only, stdlib only).

The class list of opencv-doc has the names in synset-id order but not the WordNet ids. The ids
(``imagenet_synsets.txt``, the 1000 wnids in the standard class order) and their WordNet 3.0
lemmas and definitions (``imagenet_synset_to_lemma.txt``, ``imagenet_synset_to_definition.txt``)
ship inside the PyPI wheel of ``timm`` (``timm/data/_info/``); setup_models.sh installs it
``--no-deps`` into the build venv only to read these three files. A class gets its gloss only if
the mapping is verified: its wnid's WordNet lemmas share at least one name with its opencv-doc line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

FILES = ("imagenet_synsets.txt", "imagenet_synset_to_lemma.txt", "imagenet_synset_to_definition.txt")


def timm_info_dir() -> Path | None:
    """timm/data/_info of the installed timm wheel (found without importing timm), or None."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"
    return d if all((d / f).is_file() for f in FILES) else None


def _tsv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            out[k.strip()] = v.strip()
    return out


def _names(line: str) -> set[str]:
    return {s.strip().lower() for s in line.split(",") if s.strip()}


def imagenet_glosses(class_names: list[str], info_dir: Path) -> tuple[list[str], dict[str, Any]]:
    """One gloss per class ("" where the wnid <-> name mapping cannot be verified) + provenance."""
    wnids = [ln.strip() for ln in (info_dir / FILES[0]).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(wnids) != len(class_names):
        raise ValueError(f"{len(wnids)} wnids vs {len(class_names)} class names")
    lemmas, defs = _tsv(info_dir / FILES[1]), _tsv(info_dir / FILES[2])
    glosses, unverified = [], []
    for i, (wnid, name) in enumerate(zip(wnids, class_names, strict=True)):
        if _names(lemmas.get(wnid, "")) & _names(name) and defs.get(wnid):
            glosses.append(" ".join(defs[wnid].split()))
        else:
            glosses.append("")
            unverified.append(i)
    info = {
        "source": "WordNet 3.0 definitions via the timm wheel (timm/data/_info)",
        "info_dir": str(info_dir),
        "verified": len(class_names) - len(unverified),
        "unverified_classes": unverified,
    }
    return glosses, info
