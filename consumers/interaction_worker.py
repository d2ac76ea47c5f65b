"""Interaction worker: interactions → cluster ids → personalization events."""

import faust

from consumers._run import run
from imgsearch.config import Settings


def _build(settings: Settings) -> faust.App:
    from streams import interactions

    app, _ = interactions.build(settings)
    return app


def main() -> None:
    run("interactions", _build)


if __name__ == "__main__":
    main()
