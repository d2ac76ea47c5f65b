"""Issue 16: each ONNX session's intra-op threads come from ``IMGSEARCH_EMBED_THREADS`` (0: one per
core), so n embedding workers on one machine can share its cores instead of oversubscribing them."""

from __future__ import annotations

import pytest

from imgsearch.config import Settings
from imgsearch.embedding.conse import default_artifact_dir
from imgsearch.embedding.factory import learned_pair, make_embedder, make_style

ARTIFACTS = default_artifact_dir("lite0")


def _threads(session) -> int:
    return int(session.get_session_options().intra_op_num_threads)


def settings(**changes) -> Settings:
    assert (ARTIFACTS / "manifest.json").is_file(), f"no model artifacts in {ARTIFACTS}: run scripts/setup_models.sh"
    return Settings.from_env({}, cache_dir=str(ARTIFACTS.parent.parent), **changes)


def test_the_setting_reaches_every_onnx_session() -> None:
    conse = make_embedder(settings(embedder="conse", embed_threads=1))
    conse._load()  # type: ignore[attr-defined]
    assert _threads(conse._cls_sess) == 1 and _threads(conse._text.session) == 1  # type: ignore[attr-defined]
    gram = make_style(settings(style="gram", embed_threads=1))
    gram._load()  # type: ignore[attr-defined]
    assert _threads(gram._sess) == 1  # type: ignore[attr-defined]


def test_zero_is_onnxruntime_default_and_the_learned_pair_is_built_per_thread_count() -> None:
    default = make_embedder(settings(embedder="conse"))
    default._load()  # type: ignore[attr-defined]
    assert _threads(default._cls_sess) == 0  # 0: onnxruntime picks one thread per core
    one = learned_pair(settings(embed_threads=1))
    assert one is learned_pair(settings(embed_threads=1))  # one extractor per (paths, threads, batch)
    assert one is not learned_pair(settings(embed_threads=2))
    assert one[0].extractor.conse.intra_op_threads == 1  # type: ignore[attr-defined]


def test_a_negative_thread_count_is_refused() -> None:
    with pytest.raises(ValueError, match="IMGSEARCH_EMBED_THREADS must be 0"):
        Settings.from_env({"IMGSEARCH_EMBED_THREADS": "-1"})
