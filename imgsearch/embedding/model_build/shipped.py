"""The three learned parts of the ConSE artifacts that ship in the repository (issue 17, first run).

The model build learns three things from real data with our own code: the class-prompt matrix (1,000
ImageNet class prompts through MiniLM, ~46 s of CPU), the class prior (the classifier's mean softmax
over the oxygen icon theme, a 32 MB .deb) and the Gram-style z-score + PCA (fitted on the Tux Paint
stamps, a 161 MB .deb). They are small (2 MB in all), deterministic given the graphs, and ship as a
versioned set in ``imgsearch/embedding/trained/conse-<variant>-refs-v<N>/`` (``refs.json`` records
the settings, the sha256 of the graphs they were computed with, their sources and their own sha256).

A default build copies them instead of recomputing, but only where every input they depend on is
byte-equal (the ONNX graphs' sha256 and the build settings); otherwise, or with ``--from-sources``,
the build computes them from the source packages as before. ``scripts/setup_models.sh --from-sources``
regenerates them; tests/unit/test_shipped_refs.py checks that the regeneration reproduces the shipped
files. A changed set goes to a new ``-v<N+1>`` directory (never rewrite a shipped version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINED = Path(__file__).resolve().parents[1] / "trained"
REFS_VERSION = 1
PARTS = ("class_text", "class_prior", "style_projection")


def refs_dir(variant: str, version: int = REFS_VERSION) -> Path:
    return TRAINED / f"conse-{variant}-refs-v{version}"


def load_refs(variant: str) -> dict[str, Any] | None:
    """refs.json of the shipped set for this variant, or None if there is none."""
    path = refs_dir(variant) / "refs.json"
    if not path.is_file():
        return None
    refs: dict[str, Any] = json.loads(path.read_text())
    refs["dir"] = str(path.parent)
    return refs


def part_settings(args: Any) -> dict[str, dict[str, Any]]:
    """The build settings each part depends on (besides the graphs): compared with refs.json."""
    return {
        "class_text": {
            "templates": args.templates,
            "synonyms": args.synonyms,
            "glosses": args.glosses,
            "classes": None if args.classes is None else str(args.classes),
        },
        "class_prior": {
            "temperature": args.temperature,
            "pixel_norm": args.pixel_norm,
            "resize_mode": args.resize_mode,
            "prior_limit": args.prior_limit,
        },
        "style_projection": {"style_dim": args.style_dim},
    }


def usable(refs: dict[str, Any], part: str, settings: dict[str, Any], input_sha: dict[str, str]) -> str | None:
    """None if the shipped `part` may be used for a build with these settings and graph hashes, else why not."""
    entry = refs["parts"].get(part)
    if entry is None:
        return "not shipped"
    if entry["settings"] != settings:
        return f"settings differ (shipped {entry['settings']}, asked {settings})"
    for name, sha in entry["inputs_sha256"].items():
        if input_sha.get(name) != sha:
            return f"{name} differs from the one the shipped {part} was computed with"
    return None


def shipped_file(refs: dict[str, Any], part: str) -> Path:
    return Path(refs["dir"]) / refs["parts"][part]["file"]
