import numpy as np
import pytest

from imgsearch.domain.cooccurrence import CooccurrenceModel, train


def rows():
    # clusters 1 and 2 are liked by the same users; 3 by others
    out = []
    for u in range(10):
        out += [(f"a{u}", 1, 3.0), (f"a{u}", 2, 1.0)]
    for u in range(10):
        out += [(f"b{u}", 3, 5.0)]
    out += [("a0", 3, 1.0)]
    return out


def test_similarity_follows_shared_users_and_is_shrunk():
    m = train(rows(), "v1")
    assert m.clusters == [1, 2, 3]
    s = dict(zip([(a, b) for a in m.clusters for b in m.clusters], m.similarity.ravel(), strict=True))
    assert s[(1, 2)] > 0.6 and s[(1, 2)] == pytest.approx(s[(2, 1)])
    assert s[(1, 3)] < 0.1 and s[(1, 1)] == 0.0
    weak = train([("x", 1, 1.0), ("x", 2, 1.0)], "v1")
    assert weak.similarity[0, 1] == pytest.approx(1.0 / 6.0)  # cosine 1, one shared user, shrinkage 5


def test_neighbours_spill_over_and_popularity():
    m = train(rows(), "v1")
    out = m.neighbours({1: 1.0}, 0.5)
    assert out[1] == 1.0 and out[2] > 0.3 and out.get(3, 0.0) < 0.05
    pop = m.popular()
    assert pop[3] > pop[1] > pop[2] and sum(pop.values()) == pytest.approx(1.0)


def test_round_trip_and_empty():
    m = train(rows(), "v9")
    back = CooccurrenceModel.from_json(m.to_json())
    assert back.centroid_version == "v9" and np.allclose(back.similarity, m.similarity, atol=1e-6)
    assert train([], "v1").clusters == []
