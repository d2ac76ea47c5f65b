"""Embedding worker: new images → embeddings → nearest centroid → OpenSearch → image indexed."""

import faust

from consumers._run import run
from imgsearch.config import Settings
from imgsearch.embedding.factory import make_embedder, make_style


def _build(settings: Settings) -> faust.App:
    from streams import embedding

    app, _ = embedding.build(settings, make_embedder(settings), make_style(settings))
    return app


def main() -> None:
    run("embedder", _build)


if __name__ == "__main__":
    main()
