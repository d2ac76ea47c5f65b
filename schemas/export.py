"""Export JSON Schema files for upstream apps: ``python -m schemas.export [--check]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from schemas.events import ALL_EVENTS

OUT_DIR = Path(__file__).parent / "jsonschema"


def rendered() -> dict[str, str]:
    out: dict[str, str] = {}
    for model in ALL_EVENTS:
        schema = model.model_json_schema()
        schema["$id"] = f"https://imgsearch.dev/schemas/{model.__name__}.v1.json"
        out[f"{model.__name__}.v1.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if the files on disk are stale")
    args = ap.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = OUT_DIR / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT_DIR.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale JSON Schema files (run python -m schemas.export):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
