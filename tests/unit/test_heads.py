"""The learned heads' numerics: gradients, that training learns, that the style head ignores content,
and that saving and loading gives the same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from imgsearch.embedding.base import normalize_rows
from imgsearch.embedding.heads import (
    SearchTrainConfig,
    StyleTrainConfig,
    load_heads,
    loss_and_grads,
    save_heads,
    train_search_head,
    train_style_head,
)
from imgsearch.quality import nmi, purity


@pytest.mark.parametrize("hidden", [0, 8])
def test_gradients_match_finite_differences(hidden: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    y = np.array([0, 1, 2, 0, 1, 2])
    t = normalize_rows(rng.standard_normal((3, 4))).astype(np.float64)
    if hidden:
        params = [
            rng.standard_normal((5, hidden)),
            rng.standard_normal(hidden),
            rng.standard_normal((hidden, 4)),
            rng.standard_normal(4),
        ]
    else:
        params = [rng.standard_normal((5, 4)), rng.standard_normal(4)]
    _, grads = loss_and_grads(params, x, y, t, 5.0)
    eps = 1e-6
    for p, g in zip(params, grads, strict=True):
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for j in range(0, flat.size, max(1, flat.size // 7)):
            old = flat[j]
            flat[j] = old + eps
            up, _ = loss_and_grads(params, x, y, t, 5.0)
            flat[j] = old - eps
            down, _ = loss_and_grads(params, x, y, t, 5.0)
            flat[j] = old
            assert (up - down) / (2 * eps) == pytest.approx(gflat[j], rel=1e-4, abs=1e-7)


def _styled_data(rng: np.random.Generator, n_subjects: int = 12, n_styles: int = 5, reps: int = 3):
    """Images as feature blocks: 'pooled' = subject signal + style signal + noise, 'gram' = style + a
    subject leak + noise, 'conse' = weak subject signal."""
    subj_vec = rng.standard_normal((n_subjects, 64))
    style_vec = rng.standard_normal((n_styles, 64))
    gram_style = rng.standard_normal((n_styles, 40)) * 1.0
    gram_subj = rng.standard_normal((n_subjects, 40)) * 1.5  # content leaks into the style statistics
    rows = []
    for s in range(n_styles):
        for j in range(n_subjects):
            for _ in range(reps):
                rows.append((s, j))
    st = np.array([r[0] for r in rows])
    sj = np.array([r[1] for r in rows])
    pooled = subj_vec[sj] + 0.8 * style_vec[st] + 0.3 * rng.standard_normal((len(rows), 64))
    gram = gram_style[st] + gram_subj[sj] + 0.3 * rng.standard_normal((len(rows), 40))
    conse = normalize_rows(subj_vec[sj][:, :32] + 2.0 * rng.standard_normal((len(rows), 32)))
    return {"pooled": pooled.astype(np.float32), "gram": gram.astype(np.float32), "conse": conse}, st, sj


def test_search_head_learns_subjects_across_styles() -> None:
    rng = np.random.default_rng(1)
    feats, styles, subjects = _styled_data(rng)
    text = normalize_rows(rng.standard_normal((12, 32)))
    train = styles < 4  # style 4 never seen in training
    cfg = SearchTrainConfig(
        blocks=("conse", "pooled"),
        weights={"conse": 1.0, "pooled": 1.0},
        hidden=32,
        temperature=0.1,
        epochs=60,
        batch=32,
        lr=3e-3,
    )
    head = train_search_head({k: v[train] for k, v in feats.items()}, subjects[train], text, cfg)
    test = ~train
    vec = head.embed({k: v[test] for k, v in feats.items()}, mix=1.0)
    top1 = np.argmax(vec @ text.T, axis=1)
    acc = float((top1 == subjects[test]).mean())
    conse_acc = float((np.argmax(feats["conse"][test] @ text.T, axis=1) == subjects[test]).mean())
    assert acc >= 0.9 > conse_acc + 0.3


def test_style_head_clusters_by_style_not_subject() -> None:
    from imgsearch.domain.centroids import kmeans

    rng = np.random.default_rng(2)
    feats, styles, subjects = _styled_data(rng, n_styles=6)
    names = [f"s{s}" for s in styles]
    subj = [f"j{j}" for j in subjects]
    head = train_style_head(
        feats,
        names,
        subj,
        StyleTrainConfig(blocks=("gram",), weights={"gram": 1.0}, subject_dirs=8, shrinkage=0.1, dims=5),
    )
    vec = head.describe(feats)
    cent, _ = kmeans(vec, 6, seed=0)
    assign = np.argmax(vec @ cent.T, axis=1)
    raw = normalize_rows(feats["gram"] - feats["gram"].mean(axis=0))
    cent_raw, _ = kmeans(raw, 6, seed=0)
    assign_raw = np.argmax(raw @ cent_raw.T, axis=1)
    assert purity(names, assign) >= 0.95
    assert nmi(subj, assign) <= 0.1 < nmi(subj, assign_raw)


def test_save_and_load_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(3)
    feats, styles, subjects = _styled_data(rng)
    text = normalize_rows(rng.standard_normal((12, 32)))
    search = train_search_head(feats, subjects, text, SearchTrainConfig(hidden=16, epochs=2, batch=32))
    style = train_style_head(feats, [str(s) for s in styles], [str(j) for j in subjects], StyleTrainConfig(dims=3))
    from dataclasses import replace

    heads = save_heads(tmp_path / "h", replace(search, mix=0.7), style, {"note": "test"})
    again = load_heads(tmp_path / "h")
    assert again.manifest["note"] == "test" and again.search.mix == 0.7
    # float16 storage: the vectors agree closely
    assert np.abs(again.search.embed(feats) - search.embed(feats, 0.7)).max() < 0.02
    assert np.abs(again.style.describe(feats) - style.describe(feats)).max() < 0.02
    assert heads.digest == again.digest
    (tmp_path / "h.npz").write_bytes((tmp_path / "h.npz").read_bytes()[:-8] + b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        load_heads(tmp_path / "h")
