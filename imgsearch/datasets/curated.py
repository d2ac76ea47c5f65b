"""A browsable folder of the curated subjects of chosen styles, for the demo and the pipeline tests.

The styles set (``styles-v2``) files its icons by canonical icon name (``papirus/printer-network/``);
people search for things ("a printer"). `export_curated` copies the images that belong to a curated
subject (icons) or to an emoji group into ``<out>/<style>/<subject>/<name>.png``, the layout
``imgsearch ingest`` and the demo read (style = first folder, subject = second).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from imgsearch.datasets.groups import eval_group_of

MARKER = ".curated.json"


def curated_subject(label: Mapping[str, Any]) -> str | None:
    """The subject a person would name: the curated subject of an icon, the group of an emoji."""
    group = eval_group_of(label)
    return group.split(":", 1)[1] if group else None


def export_curated(labels: Sequence[Mapping[str, Any]], styles: Iterable[str], out: Path) -> dict[str, str]:
    """Copy the curated images of `styles` into `out` (idempotent: a marker lists what is there).
    `labels` rows need ``file`` (absolute path), ``style``, ``kind`` and the curated fields.
    Returns {image_id in `out`: source image_id}."""
    wanted = set(styles)
    plan: dict[str, str] = {}
    sources: dict[str, str] = {}
    for lab in labels:
        if lab["style"] not in wanted:
            continue
        subject = curated_subject(lab)
        if subject is None:
            continue
        name = Path(str(lab["path"])).stem
        new_id = f"{lab['style']}/{subject}/{name}"
        plan[new_id] = str(lab["image_id"])
        sources[new_id] = str(lab["file"])
    missing = wanted - {i.split("/", 1)[0] for i in plan}
    if missing:
        raise ValueError(f"no curated images of styles {sorted(missing)} in the dataset")
    marker = out / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == plan:
        return plan
    if out.exists():
        shutil.rmtree(out)
    for new_id, src in sources.items():
        dest = out / f"{new_id}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    marker.write_text(json.dumps(plan, indent=1, sort_keys=True))
    return plan


# The demo's collection: two styles for its two users (both test families: never trained on) and a
# few others, all cheap to fetch (about 100 MB of .debs; moka is 54 MB of it).
DEMO_STYLES = ("papirus", "moka", "suru", "tango", "elementary", "breeze", "adwaita", "gnome")


def demo_dataset(cache: Path | None = None, quiet: bool = True) -> Path:
    """Build the demo's folder (curated subjects of DEMO_STYLES) and return it."""
    from imgsearch.datasets import styles

    base = cache / "datasets" if cache else styles.dataset_dir().parent
    src = styles.build(
        out=base / "styles-demo", styles=DEMO_STYLES, kinds=("icon",), min_families=1, curated_only=True, quiet=quiet
    )
    out = base / "demo-v2" / "images"
    export_curated(styles.load_labels(src), DEMO_STYLES, out)
    return out
