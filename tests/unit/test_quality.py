import numpy as np
import pytest

from imgsearch.quality import ndcg_at, nmi, purity, recall_and_precision, top_k


def test_top_k_and_recall_precision() -> None:
    gallery = np.eye(4, dtype=np.float32)
    q = np.array([[0.9, 0.1, 0.0, 0.0]], dtype=np.float32)
    ranked = top_k(q, gallery, 3)
    assert ranked.tolist() == [[0, 1, 2]] or ranked.tolist() == [[0, 1, 3]]
    rel = [np.array([True, False, False, True])]
    rec, prec = recall_and_precision(ranked, rel, recall_at=2, precision_at=2)
    assert rec[0] == pytest.approx(0.5) and prec[0] == pytest.approx(0.5)
    # precision out of the reachable: 1 relevant item found at rank 1 of a top-3 -> 1.0
    _, prec = recall_and_precision(ranked, [np.array([True, False, False, False])], precision_at=3)
    assert prec[0] == pytest.approx(1.0)


def test_purity_and_nmi() -> None:
    labels = ["a", "a", "b", "b"]
    assert purity(labels, np.array([0, 0, 1, 1])) == 1.0
    assert nmi(labels, np.array([1, 1, 0, 0])) == pytest.approx(1.0)
    assert nmi(labels, np.array([0, 1, 0, 1])) == pytest.approx(0.0, abs=1e-12)
    assert purity(labels, np.array([0, 1, 0, 1])) == 0.5


def test_ndcg_normalised_by_the_whole_collection() -> None:
    assert ndcg_at(np.array([2, 1, 0]), np.array([2, 1, 0, 0]), k=3) == pytest.approx(1.0)
    worse = ndcg_at(np.array([1, 0, 0]), np.array([2, 1, 0, 0]), k=3)
    assert 0 < worse < 1
