"""The learned parts of the ConSE artifacts that ship in the repository (imgsearch/embedding/model_build/
shipped.py, imgsearch/embedding/trained/conse-lite0-refs-v1): their recorded hashes, when a build may use
them, and that a build from the source packages reproduces them.

The regeneration test needs the source packages (Tux Paint stamps, oxygen icons) that the test command
fetches (scripts/setup_models.sh --reference-data) and ~100 s of CPU; it is never skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np
import pytest

from imgsearch.embedding.conse import default_artifact_dir
from imgsearch.embedding.model_build import shipped
from imgsearch.embedding.model_build.__main__ import main as build_main


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def refs() -> dict:
    r = shipped.load_refs("lite0")
    assert r is not None, "imgsearch/embedding/trained/conse-lite0-refs-v1/refs.json is missing"
    return r


def test_shipped_files_match_their_recorded_hashes(refs: dict) -> None:
    assert set(refs["parts"]) == set(shipped.PARTS)
    for part in shipped.PARTS:
        assert _sha(shipped.shipped_file(refs, part)) == refs["parts"][part]["sha256"], part
    assert shipped.load_refs("lite2") is None  # only lite0's parts ship: other variants build from sources


def test_shipped_parts_are_used_only_for_equal_inputs_and_settings(refs: dict) -> None:
    defaults = argparse.Namespace(
        templates="photo_gloss",
        synonyms="joined",
        glosses="auto",
        classes=None,
        temperature=2.0,
        pixel_norm="tf",
        resize_mode="pad",
        prior_limit=1000,
        style_dim=96,
    )
    settings = shipped.part_settings(defaults)
    inputs = {n: s for part in shipped.PARTS for n, s in refs["parts"][part]["inputs_sha256"].items()}
    assert all(shipped.usable(refs, p, settings[p], inputs) is None for p in shipped.PARTS)
    other = shipped.part_settings(argparse.Namespace(**{**vars(defaults), "templates": "photo", "temperature": 1.0}))
    assert "settings differ" in str(shipped.usable(refs, "class_text", other["class_text"], inputs))
    assert "settings differ" in str(shipped.usable(refs, "class_prior", other["class_prior"], inputs))
    assert shipped.usable(refs, "style_projection", other["style_projection"], inputs) is None
    changed = {**inputs, "classifier.onnx": "0" * 64}
    assert "classifier.onnx differs" in str(shipped.usable(refs, "class_prior", settings["class_prior"], changed))
    assert shipped.usable(refs, "class_text", settings["class_text"], changed) is None


def test_the_set_up_build_used_the_shipped_parts_byte_equal(refs: dict) -> None:
    out = default_artifact_dir("lite0")
    manifest = json.loads((out / "manifest.json").read_text())
    for part in shipped.PARTS:
        name = refs["parts"][part]["file"]
        assert manifest["sha256"][name] == refs["parts"][part]["sha256"], part


def test_a_build_from_the_source_packages_reproduces_the_shipped_parts(refs: dict, tmp_path) -> None:
    cache = default_artifact_dir("lite0").parent.parent
    icons = cache / "data/oxygen-icon-theme/usr/share/icons/oxygen"
    stamps = cache / "data/tuxpaint/usr/share/tuxpaint/stamps"
    assert icons.is_dir() and stamps.is_dir(), "bash scripts/setup_models.sh --reference-data fetches them"
    out = tmp_path / "conse-lite0"
    argv = ["--variant", "lite0", "--out-dir", str(out), "--wheels", str(cache / "wheels"), "--from-sources"]
    assert build_main([*argv, "--prior-reference", str(icons), "--style-reference", str(stamps)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert "shipped" not in manifest["class_prior"] and "shipped" not in manifest["style"]["projection"]
    assert manifest["class_prior"]["n_reference"] == refs["parts"]["class_prior"]["info"]["n_reference"]
    assert manifest["style"]["projection"]["n_reference"] == refs["parts"]["style_projection"]["info"]["n_reference"]
    # the graphs these parts are computed from are the ones the shipped parts record
    for part in shipped.PARTS:
        for name, sha in refs["parts"][part]["inputs_sha256"].items():
            assert manifest["sha256"][name] == sha, name
    # float results: equal within tolerance (byte-equal on this machine; another BLAS/CPU may differ in the
    # last bits, and an SVD may flip a component's sign)
    np.testing.assert_allclose(
        np.load(out / "class_text.npy"), np.load(shipped.shipped_file(refs, "class_text")), atol=1e-6
    )
    np.testing.assert_allclose(
        np.load(out / "class_prior.npy"), np.load(shipped.shipped_file(refs, "class_prior")), rtol=1e-4, atol=1e-8
    )
    with np.load(out / "style_projection.npz") as new, np.load(shipped.shipped_file(refs, "style_projection")) as old:
        for key in ("mean", "scale", "explained_variance_ratio"):
            np.testing.assert_allclose(new[key], old[key], rtol=1e-4, atol=1e-6, err_msg=key)
        cos = np.abs(np.sum(new["components"] * old["components"], axis=0))
        assert cos.min() > 0.99, cos.min()
