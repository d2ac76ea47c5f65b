"""int8 quantisation of the classifier (model_build/quantize.py) and the int8 benchmark's gate.

The quantisation test needs the artifacts of scripts/setup_models.sh (the test command builds them;
without them it fails, it is not skipped)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image, ImageDraw

from bench.int8_eval import GATE_DROP, dig, gate_drops
from imgsearch.embedding.conse import default_artifact_dir, preprocess_images, session_options
from imgsearch.embedding.model_build.quantize import conv_and_gemm_nodes, quantize_classifier

ARTIFACTS = default_artifact_dir("lite0")


def _drawings(n: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.new("RGB", (160, 160), "white")
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = (int(v) for v in rng.integers(0, 100, 2))
            x1, y1 = x0 + int(rng.integers(20, 60)), y0 + int(rng.integers(20, 60))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour, outline="black")
        out.append(img)
    return out


def test_quantized_classifier_keeps_ends_float_and_tracks_float_outputs(tmp_path) -> None:
    manifest = json.loads((ARTIFACTS / "manifest.json").read_text())
    src = ARTIFACTS / manifest["files"]["classifier"]
    size = int(manifest["image_size"])
    calib = [preprocess_images(_drawings(16, seed), size) for seed in (1, 2)]
    dst = tmp_path / "classifier.int8.onnx"

    info = quantize_classifier(src, dst, calib, keep_first=1, keep_last=1)

    convs, gemms = conv_and_gemm_nodes(src)
    assert info["float_nodes"] == [convs[0], convs[-1], *gemms]
    assert info["quantized_convs"] == len(convs) - 2 and info["calibration_images"] == 32
    graph = onnx.load(str(dst)).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > len(convs)
    # int8 conv weights; the Gemm kept float (1280 x 1000 float32, ~5 MB) is half of what remains
    assert dst.stat().st_size < 0.6 * src.stat().st_size

    x = preprocess_images(_drawings(8, 99), size)  # images the calibration never saw
    float_sess = ort.InferenceSession(str(src), session_options(1), providers=["CPUExecutionProvider"])
    int8_sess = ort.InferenceSession(str(dst), session_options(1), providers=["CPUExecutionProvider"])
    lf, ff = float_sess.run(["logits", "features"], {"pixels": x})
    lq, fq = int8_sess.run(["logits", "features"], {"pixels": x})
    assert lq.shape == lf.shape and fq.shape == ff.shape
    cos = np.sum(ff * fq, axis=1) / (np.linalg.norm(ff, axis=1) * np.linalg.norm(fq, axis=1))
    assert cos.min() > 0.9, cos


def test_quantize_classifier_refuses_no_calibration(tmp_path) -> None:
    with pytest.raises(ValueError, match="calibration"):
        quantize_classifier(ARTIFACTS / "classifier.onnx", tmp_path / "x.onnx", [])


def test_gate_drops_compare_the_metrics_both_reports_have() -> None:
    base = {"captions": {"learned": {"R@10": 0.30}}, "search": {"learned": {"icon": {"p@10": 0.80}}}}
    other = {"captions": {"learned": {"R@10": 0.295}}, "search": {"learned": {"icon": {"p@10": 0.75}}}}
    drops = gate_drops(base, other)
    assert drops == {"caption R@10": 0.005, "icon p@10": 0.05}
    assert max(drops.values()) > GATE_DROP
    assert dig(base, ("style", "learned", "icon", "purity")) is None
