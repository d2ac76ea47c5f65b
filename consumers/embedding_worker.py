"""Embedding worker: new images → embeddings → nearest centroid → OpenSearch → image indexed."""

import faust

from consumers._run import run
from imgsearch.config import Settings
from imgsearch.embedding.factory import make_embedder, make_style


def _build(settings: Settings) -> faust.App:
    from streams import embedding

    embedder = make_embedder(settings)
    app, _ = embedding.build(settings, embedder, make_style(settings, embedder))
    return app


def main() -> None:
    run("embedder", _build)


if __name__ == "__main__":
    main()
