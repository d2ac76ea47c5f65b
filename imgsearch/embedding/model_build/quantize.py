"""int8 post-training quantisation of the image classifier (onnxruntime static QDQ, issue 16).

Weights int8 per output channel, activations uint8 from min/max ranges calibrated on a set of
reference images. The first `keep_first` convolutions, the last `keep_last` and the final Gemm (the
logits) stay float: the stem sees raw pixels and the last layers feed the pooled features and the
logits directly, where the rounding error lands unfiltered. Only the classifier: the style network's
Gram statistics do not survive uint8 activations (style purity 0.999 -> 0.848 on the validation
families, docs/benchmarks.md).

Not part of the default build: bench/int8_eval.py builds the model, gates it on the validation
families and reports it on the test families.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


def conv_and_gemm_nodes(model_path: Path) -> tuple[list[str], list[str]]:
    """The Conv node names (graph order) and the Gemm node names of an ONNX model."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    gemms = [n.name for n in graph.node if n.op_type == "Gemm"]
    return convs, gemms


def quantize_classifier(
    src: Path,
    dst: Path,
    calibration: Sequence[NDArray[np.float32]],
    *,
    keep_first: int = 1,
    keep_last: int = 0,
    input_name: str = "pixels",
) -> dict[str, Any]:
    """Write the int8 QDQ version of the classifier `src` to `dst`; `calibration` are model-ready
    pixel batches (n,3,H,W). Returns what was done (for a manifest or a report)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("int8 calibration needs at least one batch of images")
    if keep_first < 0 or keep_last < 0:
        raise ValueError("keep_first and keep_last must be >= 0")

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[dict[str, NDArray[np.float32]]] = iter({input_name: b} for b in calibration)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # onnx shape inference and graph clean-up (the symbolic pass needs sympy; the shapes are static)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs, gemms = conv_and_gemm_nodes(pre)
        keep = convs[:keep_first] + (convs[len(convs) - keep_last :] if keep_last else []) + gemms
        quantize_static(
            str(pre),
            str(dst),
            _Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "Gemm", "Add", "Clip"],
            nodes_to_exclude=keep,
        )
    return {
        "format": "QDQ",
        "weights": "int8 per channel",
        "activations": "uint8 min/max",
        "float_nodes": keep,
        "quantized_convs": len(convs) - keep_first - keep_last,
        "calibration_images": int(sum(len(b) for b in calibration)),
    }
