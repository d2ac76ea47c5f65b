"""Query worker: user profiles from personalization events; answers search requests."""

import faust

from consumers._run import run
from imgsearch.config import Settings
from imgsearch.embedding.factory import make_embedder


def _build(settings: Settings) -> faust.App:
    from streams import query

    app, _ = query.build(settings, make_embedder(settings))
    return app


def main() -> None:
    run("query", _build)


if __name__ == "__main__":
    main()
