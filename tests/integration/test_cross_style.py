"""Cross-style personalization through the whole pipeline on the real servers with the product's
defaults (the learned heads over ConSE, the learned style head): the curated icons of two TEST style
families (papirus and suru: never trained on) are ingested through Kafka. alice has favourited papirus
pictures of other things, bob suru ones. For "a printer":

* the new user's first hit is a printer;
* alice's first hit is a papirus printer;
* alice's list differs from the new user's and from bob's.

What this does NOT reach (measured when written, see docs/benchmarks.md "Same query, your style"):
issue 19 asks for each user's top 3 to hold as many of their style's printers as exist. alice's second
papirus printer is not in her top 3 (the search vector ranks other papirus devices above it), and
bob's one suru printer stays 6th, as for the new user: with the product's single K-Means seeding the
style clusters at K = 2 mix suru with papirus (the best of 8 seedings split them and lifted it to 2nd,
but was not kept: docs/benchmarks.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imgsearch.datasets.curated import export_curated
from jobs.demo import labels_from_path
from jobs.train_heads import load_labels, smoke_dataset
from producers import SearchClient
from schemas.events import EventType
from tests.support import Pipeline, ingest_all, search_until_ready, teach_user
from tests.support.fixtures import PipelineFactory

pytestmark = pytest.mark.integration
K = 2  # one style cluster per style
STYLES = ("papirus", "suru")
USERS = {"alice": "papirus", "bob": "suru"}
QUERY, SUBJECT = "a printer", "printer"


def make_images(root: Path) -> dict[str, str]:
    """The curated icons of the two styles, from the smoke dataset (scripts/setup_data.sh --smoke)."""
    staging = root.parent / "curated"
    plan = export_curated(load_labels(smoke_dataset()), STYLES, staging)
    shutil.copytree(staging, root, ignore=shutil.ignore_patterns(".*"))
    return {image_id: labels_from_path(image_id)[1] for image_id in plan}


@pytest.fixture(scope="module")
async def pipeline(pipeline_factory: PipelineFactory) -> Pipeline:
    return await pipeline_factory(embedder="auto", style="auto", k=K, make_images=make_images)


async def teach(pipeline: Pipeline, client: SearchClient, user: str, style: str) -> None:
    """Ten favourites/downloads of `style` pictures of anything but printers, then a marker view;
    returns when the query worker has applied the marker."""
    mine = sorted(i for i in pipeline.labels if labels_from_path(i)[0] == style and pipeline.labels[i] != SUBJECT)
    history, marker = mine[:10], mine[10]
    kinds = [EventType.FAVORITE if n % 2 else EventType.DOWNLOAD for n in range(len(history))]
    await teach_user(pipeline, client, user, list(zip(history, kinds, strict=True)), marker)


async def test_same_query_each_user_their_style_first(pipeline: Pipeline) -> None:
    await ingest_all(pipeline)
    printers = {
        s: {i for i, subj in pipeline.labels.items() if subj == SUBJECT and i.startswith(f"{s}/")} for s in STYLES
    }
    assert all(printers.values()), printers  # both styles draw a printer
    async with SearchClient(
        pipeline.settings.kafka_bootstrap, topics=pipeline.settings.topics, settings=pipeline.settings
    ) as client:
        base = await search_until_ready(client, user_id="new-user", text=QUERY, k=10)
        assert not base.personalized
        base_ids = [h.image_id for h in base.hits]
        print("new-user", [labels_from_path(i)[:2] for i in base_ids])
        assert base_ids[0] in printers["papirus"] | printers["suru"], base_ids
        results = {}
        for user, style in USERS.items():
            await teach(pipeline, client, user, style)
            r = await client.search(user, QUERY, k=10, timeout_s=10)
            assert r.personalized
            results[user] = [h.image_id for h in r.hits]
            shown = [(*labels_from_path(h.image_id)[:2], h.cluster_id, round(h.personal_score, 2)) for h in r.hits]
            print(f"{user:6s} {shown}")
    assert results["alice"][0] in printers["papirus"], results["alice"]
    assert results["alice"] != base_ids, results["alice"]
    assert results["alice"] != results["bob"]
