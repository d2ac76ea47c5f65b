import numpy as np
import pytest

from imgsearch.domain.centroids import CentroidModel, kmeans, model_version
from jobs.clusters import clamp_k, fit


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def blobs(seed=0, n=40):
    rng = np.random.default_rng(seed)
    centers = unit(np.eye(3, 8) * 5 + 0.1)
    x = np.concatenate([c + 0.05 * rng.standard_normal((n, 8)) for c in centers])
    return unit(x), np.repeat(np.arange(3), n)


def test_assign_nearest_by_cosine():
    model = CentroidModel("v1", "search", "f", unit([[1, 0], [0, 1]]))
    got = model.assign(unit([[0.9, 0.1], [0.2, 0.8], [1, 1.01]]))
    assert got.tolist() == [0, 1, 1]
    with pytest.raises(ValueError):
        model.assign(np.zeros((2, 3), dtype=np.float32))


def test_kmeans_recovers_blobs():
    x, labels = blobs()
    centers, inertia = kmeans(x, 3, seed=1)
    assert centers.shape == (3, 8)
    assert np.allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-5)
    pred = np.argmax(x @ centers.T, axis=1)
    # each true blob maps to exactly one cluster
    for b in range(3):
        assert len(set(pred[labels == b].tolist())) == 1
    assert len(set(pred.tolist())) == 3
    assert inertia / len(x) < 0.1  # mean (2 - 2cos) to the own centre: tight clusters


def test_k_is_clamped_for_small_catalogs():
    assert clamp_k(100, 30) == 10
    assert clamp_k(100, 3) == 1
    x, _ = blobs(n=4)
    model = fit(x, 100, "style", "feat")
    assert model.k == 4 and model.vector_kind == "style"


def test_version_is_content_derived_and_json_round_trips():
    x, _ = blobs()
    c, _ = kmeans(x, 3, seed=1)
    assert model_version(c, "f") == model_version(c.copy(), "f") != model_version(c, "g")
    m = CentroidModel(model_version(c, "f"), "search", "f", c)
    back = CentroidModel.from_json(m.to_json())
    assert back.version == m.version and np.allclose(back.centroids, m.centroids, atol=1e-6)
    assert (back.assign(x) == m.assign(x)).all()


def test_k_table_prefers_the_true_k():
    from jobs.clusters import k_table, silhouette

    x, labels = blobs()
    table = k_table(x, [2, 3, 6])
    best = max(table, key=lambda row: row[2])
    assert best[0] == 3 and table[0][1] > table[1][1] > table[2][1]  # inertia falls with k
    assert silhouette(x, labels) > 0.8 and silhouette(x, np.zeros(len(x), dtype=np.int64)) == 0.0


def test_minibatch_kmeans_recovers_blobs():
    from imgsearch.domain.centroids import minibatch_kmeans

    x, labels = blobs(n=400)
    centers, inertia = minibatch_kmeans(x, 3, seed=2, batch=128, iters=30)
    pred = np.argmax(x @ centers.T, axis=1)
    assert all(len(set(pred[labels == b].tolist())) == 1 for b in range(3)) and len(set(pred.tolist())) == 3
    assert np.allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-5) and inertia / len(x) < 0.1
