"""ImageNet class names and WordNet glosses for the 1000 ILSVRC-2012 classes (set-up time, stdlib only).

The PyPI wheel of ``timm`` ships, in ``timm/data/_info/``, the 1000 ILSVRC-2012 wnids in the standard
class order (``imagenet_synsets.txt``) and their WordNet 3.0 lemmas and definitions
(``imagenet_synset_to_lemma.txt``, ``imagenet_synset_to_definition.txt``). The model build reads these
three files out of the downloaded wheel (it is never installed):

* class names: a class's line is its wnid's lemma list ("tabby, tabby cat") - line for line the same
  list as Debian opencv-doc's ``classification_classes_ILSVRC2012.txt``, which versions <= 2 used;
* glosses: a class gets its definition only if the mapping is verified: its wnid's lemmas share at
  least one name with its class line (always true for the derived names; it matters for a
  ``--classes`` file of other origin).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FILES = ("imagenet_synsets.txt", "imagenet_synset_to_lemma.txt", "imagenet_synset_to_definition.txt")
INFO_PREFIX = "timm/data/_info"


def timm_info_dir(wheel: Path, out: Path) -> Path:
    """Extracts the three files from the timm wheel into out/timm/data/_info and returns that dir."""
    import zipfile

    d = out / INFO_PREFIX
    d.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for f in FILES:
            (d / f).write_bytes(z.read(f"{INFO_PREFIX}/{f}"))
    return d


def imagenet_class_names(info_dir: Path) -> list[str]:
    """The 1000 class lines ("tench, Tinca tinca", ...) in class order: each wnid's WordNet lemmas."""
    wnids = [ln.strip() for ln in (info_dir / FILES[0]).read_text(encoding="utf-8").splitlines() if ln.strip()]
    lemmas = _tsv(info_dir / FILES[1])
    missing = [w for w in wnids if not lemmas.get(w)]
    if len(wnids) != 1000 or missing:
        raise ValueError(f"{len(wnids)} wnids, {len(missing)} without lemmas (e.g. {missing[:3]})")
    return [lemmas[w] for w in wnids]


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
