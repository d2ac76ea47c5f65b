"""The trained heads shipped in the package reproduce, from the images, the figures their manifest
records on the smoke slice of the test families (papirus, suru, openmoji; built by
scripts/setup_data.sh --smoke), and those figures beat today's ConSE / Gram-PCA vectors."""

from __future__ import annotations

import hashlib

import pytest

from imgsearch.datasets.groups import eval_groups
from imgsearch.embedding.base import normalize_rows
from imgsearch.embedding.conse import default_artifact_dir
from imgsearch.embedding.heads import load_heads
from imgsearch.embedding.learned import PACKAGED_HEADS, FeatureExtractor, heads_available
from jobs.train_heads import (
    extract_features,
    load_labels,
    query_vectors,
    search_metrics,
    smoke_dataset,
    smoke_report,
    smoke_rows,
)


@pytest.fixture(scope="module")
def smoke():
    assert heads_available(PACKAGED_HEADS), "the trained heads are missing from the package"
    heads = load_heads(PACKAGED_HEADS)
    recorded = heads.manifest["report"]["smoke"]
    labels = load_labels(smoke_dataset())
    labels = [labels[i] for i in smoke_rows(labels)]
    extractor = FeatureExtractor.from_artifacts(default_artifact_dir())
    feats = extract_features(labels, extractor, None)
    return heads, recorded, labels, feats, extractor


def test_same_images_and_same_frozen_models(smoke) -> None:
    heads, recorded, labels, _, extractor = smoke
    ids = "\n".join(str(lab["image_id"]) for lab in labels)
    assert hashlib.sha256(ids.encode()).hexdigest() == recorded["image_ids_sha256"]
    # the same frozen networks (the exact model id also hashes the class prior, a float sum that may
    # differ in its last bits on another CPU; the figures below would show any real difference)
    frozen = heads.manifest["frozen_models"]
    assert (frozen["artifact_version"], frozen["variant"]) == (
        extractor.conse.manifest["artifact_version"],
        extractor.conse.manifest["variant"],
    )


def test_figures_match_the_manifest(smoke) -> None:
    heads, recorded, labels, feats, extractor = smoke
    now = smoke_report(heads.search, heads.style, labels, feats, extractor.conse.embed_texts)
    for kind, figures in recorded["search"].items():
        for name in ("recall@50", "p@10"):
            assert now["search"][kind][name] == pytest.approx(figures[name], abs=0.01), (kind, name)
    assert now["style_icon"]["purity"] == pytest.approx(recorded["style_icon"]["purity"], abs=0.03)


def test_learned_search_beats_conse_on_the_smoke_icons(smoke) -> None:
    """Icons of papirus and suru: the learned vector finds far more of each subject than ConSE. (Emoji
    are not asserted: on this mixed slice openmoji's recall@50 is lower with the heads, 0.20 vs 0.30,
    while on the whole test set it is higher, 0.24 vs 0.14; docs/benchmarks.md.)"""
    heads, _, labels, feats, extractor = smoke
    groups = eval_groups(labels)
    qvec = query_vectors(groups, extractor.conse.embed_texts)
    learned = search_metrics(heads.search.embed(feats), labels, groups, qvec)
    conse = search_metrics(normalize_rows(feats["conse"]), labels, groups, qvec)
    assert learned["icon"]["recall@50"] > conse["icon"]["recall@50"] + 0.2
    assert learned["icon"]["p@10"] > conse["icon"]["p@10"] + 0.1
