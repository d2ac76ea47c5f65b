"""Train the local ranker's offline model from the cluster-level interaction stream and publish it."""

from __future__ import annotations

from imgsearch.config import Settings
from imgsearch.domain.cooccurrence import CooccurrenceModel, train


async def train_and_publish(settings: Settings) -> CooccurrenceModel:
    from imgsearch.kafka.model_topics import current_model, publish_latest
    from jobs.export import read_events, rows

    centroids = await current_model(settings)
    if centroids is None:
        raise RuntimeError("no centroid model published yet: train clusters first")
    table = rows(await read_events(settings), centroids)
    model = train(((r[0], int(r[1]), float(r[4])) for r in table), centroids.version)
    await publish_latest(settings, settings.topics.ranker_model().name, model.to_json())
    print(
        f"ranker model on {centroids.version}: {len(model.clusters)} clusters from {len(table)} interactions; published"
    )
    return model
