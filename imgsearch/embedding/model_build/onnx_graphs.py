"""The ConSE networks as ONNX graphs built with ``onnx.helper`` from numpy weights (no torch).

* `efficientnet_lite_classifier`: EfficientNet-Lite0/1/2 (Tan & Le 2019; the "lite" variant: ReLU6,
  no squeeze-excitation, fixed stem and head) as the PyPI package efficientnet_lite_pytorch 0.1.0
  defines it: batch norm (eps 1e-3) folded into the convolutions (`fold_bn`), TensorFlow "same" padding computed
  for the variant's native input size (pad total max((ceil(i/s)-1)s + k - i, 0), the smaller half
  first). Outputs "logits" (n,1000) and "features" (n,1280), the pooled head activations that the
  final linear layer maps to the logits.
* `efficientnet_lite_style`: the stem and blocks 0..4 of Lite0 with per-layer channel mean, std and the
  signed square root of the Gram matrix's upper triangle (output "style_raw").
* `minilm_sentence_encoder`: a 6-layer BERT (all-MiniLM-L6-v2) + attention-masked mean pooling +
  L2 normalisation (output "sentence_embedding"), inputs input_ids / attention_mask / token_type_ids.

Every weight is looked up by name with the shape the architecture expects, and the classifier and the
text encoder must use every weight of their state dict (buffers such as num_batches_tracked aside), so a
layout mismatch fails loudly instead of producing a quietly wrong network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OPSET = 17
IR_VERSION = 8  # the IR of opset 17 (onnxruntime >= 1.13 reads it)
BN_EPS = 1e-3  # efficientnet_lite_pytorch: batch_norm_epsilon
LN_EPS = 1e-12  # all-MiniLM-L6-v2 config.json: layer_norm_eps

# TF efficientnet_lite_builder's block list: (repeats, kernel, stride, expand ratio, in, out filters)
LITE_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# variant: (width coefficient, depth coefficient, native input size)
LITE_PARAMS: dict[str, tuple[float, float, int]] = {
    "lite0": (1.0, 1.0, 224),
    "lite1": (1.0, 1.1, 240),
    "lite2": (1.1, 1.2, 260),
}
STEM_FILTERS, HEAD_FILTERS = 32, 1280  # fixed (not scaled) in the lite variants


class WeightError(ValueError):
    pass


class Weights:
    """A state dict that records which entries were used."""

    def __init__(self, tensors: Mapping[str, np.ndarray], ignore: Sequence[str] = ()) -> None:
        self._t = dict(tensors)
        self._used: set[str] = set()
        self._ignore = tuple(ignore)

    def __call__(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in self._t:
            raise WeightError(f"weight {name!r} missing from the state dict")
        a = np.asarray(self._t[name])
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise WeightError(f"weight {name!r} has shape {tuple(a.shape)}, the architecture needs {shape}")
        self._used.add(name)
        return a

    def check_all_used(self) -> None:
        unused = sorted(k for k in self._t if k not in self._used and not any(s in k for s in self._ignore))
        if unused:
            raise WeightError(f"{len(unused)} weights not used by the graph, e.g. {unused[:5]}")


class GraphBuilder:
    """Nodes + initializers with generated unique names."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def _fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = self._fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str | None = None, n_out: int = 1, **attrs: Any) -> Any:
        from onnx import helper

        outs = [self._fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self._fresh("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def output(self, tensor: str, name: str) -> str:
        """Expose `tensor` as the graph output `name`."""
        from onnx import helper

        self.nodes.append(helper.make_node("Identity", [tensor], [name], name=self._fresh("n_out")))
        return name

    def model(self, inputs: Sequence[Any], outputs: Sequence[Any], doc: str = "") -> Any:
        from onnx import checker, helper

        graph = helper.make_graph(self.nodes, self.name, list(inputs), list(outputs), self.inits)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="imgsearch.model_build", doc_string=doc
        )
        model.ir_version = IR_VERSION
        checker.check_model(model, full_check=True)
        return model


# --------------------------------------------------------------------------- EfficientNet-Lite


@dataclass(frozen=True)
class LiteBlock:
    index: int
    kernel: int
    stride: int
    expand: int
    c_in: int
    c_out: int
    skip: bool


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """TF EfficientNet's channel rounding (nearest multiple of 8, never more than 10 % down)."""
    f = filters * width
    new = max(divisor, int(f + divisor / 2) // divisor * divisor)
    if new < 0.9 * f:
        new += divisor
    return int(new)


def lite_blocks(variant: str) -> list[LiteBlock]:
    """The MBConv blocks of a lite variant. The first and last stage keep their repeats and the first
    stage its 32 input channels (efficientnet_lite_pytorch's fix_head_stem); a block adds its input
    back (identity skip) only when it repeats a stage, i.e. stride 1 and equal channels."""
    width, depth, _size = LITE_PARAMS[variant]
    blocks: list[LiteBlock] = []
    last = len(LITE_STAGES) - 1
    for si, (repeats, k, s, e, c_in, c_out) in enumerate(LITE_STAGES):
        c_in = STEM_FILTERS if si == 0 else round_filters(c_in, width)
        c_out = round_filters(c_out, width)
        n = repeats if si in (0, last) else math.ceil(depth * repeats)
        for r in range(n):
            first = r == 0
            cin = c_in if first else c_out
            blocks.append(LiteBlock(len(blocks), k, s if first else 1, e, cin, c_out, skip=not first and cin == c_out))
    return blocks


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """(pad before, pad after, output size) of TF "same" padding for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def fold_bn(w: Weights, conv: str, bn: str, c_out: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight and bias with the eval-mode batch norm folded in, in float32 and in the order of
    torch.onnx's Conv+BatchNorm fusion (scale = gamma / sqrt(var + eps); W * scale;
    (0 - mean) * scale + beta): half the difference to the torch export of float64 folding."""
    f32 = np.float32
    kernel = w(f"{conv}.weight", shape).astype(f32)
    gamma = w(f"{bn}.weight", (c_out,)).astype(f32)
    beta = w(f"{bn}.bias", (c_out,)).astype(f32)
    mean = w(f"{bn}.running_mean", (c_out,)).astype(f32)
    var = w(f"{bn}.running_var", (c_out,)).astype(f32)
    scale = gamma / np.sqrt(var + f32(BN_EPS))
    return (kernel * scale[:, None, None, None]).astype(f32), ((f32(0.0) - mean) * scale + beta).astype(f32)


class _LiteTrunk:
    """Emits stem and blocks into a GraphBuilder, tracking the spatial size for the static padding."""

    def __init__(self, g: GraphBuilder, w: Weights, size: int) -> None:
        self.g, self.w, self.size = g, w, size

    def conv_bn(self, x: str, conv: str, bn: str, c_in: int, c_out: int, k: int, s: int, groups: int, act: bool) -> str:
        shape = (c_out, c_in // groups, k, k)
        kernel, bias = fold_bn(self.w, conv, bn, c_out, shape)
        before, after, out = same_pads(self.size, k, s)
        y = self.g.op(
            "Conv",
            [x, self.g.const(kernel, "w"), self.g.const(bias, "b")],
            hint="conv",
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[before, before, after, after],
            group=groups,
        )
        self.size = out
        if act:  # ReLU6
            y = self.g.op("Clip", [y, self.g.const(0.0, "zero"), self.g.const(6.0, "six")], hint="relu6")
        return y

    def stem(self, x: str) -> str:
        return self.conv_bn(x, "_conv_stem", "_bn0", 3, STEM_FILTERS, 3, 2, 1, True)

    def block(self, x: str, b: LiteBlock) -> str:
        p = f"_blocks.{b.index}"
        h, mid = x, b.c_in * b.expand
        if b.expand != 1:
            h = self.conv_bn(h, f"{p}._expand_conv", f"{p}._bn0", b.c_in, mid, 1, 1, 1, True)
        h = self.conv_bn(h, f"{p}._depthwise_conv", f"{p}._bn1", mid, mid, b.kernel, b.stride, mid, True)
        h = self.conv_bn(h, f"{p}._project_conv", f"{p}._bn2", mid, b.c_out, 1, 1, 1, False)
        if b.skip:
            h = self.g.op("Add", [h, x], hint="residual")
        return h


def _pixels_input(size: int) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, size, size])


def efficientnet_lite_classifier(state_dict: Mapping[str, np.ndarray], variant: str) -> Any:
    """ModelProto: "pixels" (n,3,S,S) -> "logits" (n,1000), "features" (n,1280)."""
    from onnx import TensorProto, helper

    size = LITE_PARAMS[variant][2]
    w = Weights(state_dict, ignore=("num_batches_tracked",))
    g = GraphBuilder(f"efficientnet-{variant}")
    t = _LiteTrunk(g, w, size)
    h = t.stem("pixels")
    blocks = lite_blocks(variant)
    for b in blocks:
        h = t.block(h, b)
    h = t.conv_bn(h, "_conv_head", "_bn1", blocks[-1].c_out, HEAD_FILTERS, 1, 1, 1, True)
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [h], hint="pool")], hint="flat", axis=1)
    features = g.output(pooled, "features")
    fc_w = w("_fc.weight", (1000, HEAD_FILTERS)).astype(np.float32)
    fc_b = w("_fc.bias", (1000,)).astype(np.float32)
    logits = g.op("Gemm", [features, g.const(fc_w, "fc_w"), g.const(fc_b, "fc_b")], hint="gemm", transB=1)
    g.output(logits, "logits")
    w.check_all_used()
    outs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 1000]),
        helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", HEAD_FILTERS]),
    ]
    return g.model([_pixels_input(size)], outs, doc=f"EfficientNet-{variant} ImageNet-1k classifier")


def style_layout(taps: Sequence[int], variant: str = "lite0") -> list[list[Any]]:
    """(block, part, length) of the raw style vector, in output order."""
    blocks = lite_blocks(variant)
    layout: list[list[Any]] = []
    for i in taps:
        c = blocks[i].c_out
        layout += [[i, "mean", c], [i, "std", c], [i, "gram_triu_ssqrt", c * (c + 1) // 2]]
    return layout


def efficientnet_lite_style(state_dict: Mapping[str, np.ndarray], taps: Sequence[int]) -> Any:
    """ModelProto: "pixels" (n,3,224,224) -> "style_raw" (n,D): per tapped block, channel mean,
    channel std (population, clamped at 1e-12 before the square root) and sign(g)*sqrt|g| of the
    upper triangle (row-major, diagonal included) of the Gram matrix F F^T / HW."""
    from onnx import TensorProto, helper

    size = LITE_PARAMS["lite0"][2]
    w = Weights(state_dict)
    g = GraphBuilder("efficientnet-lite0-gram-style")
    t = _LiteTrunk(g, w, size)
    h = t.stem("pixels")
    blocks = lite_blocks("lite0")
    feats: list[str] = []
    for b in blocks[: max(taps) + 1]:
        h = t.block(h, b)
        if b.index not in taps:
            continue
        c, hw = b.c_out, t.size * t.size
        f = g.op("Reshape", [h, g.const([0, c, -1], "shape", np.int64)], hint="flat")
        mean_k = g.op("ReduceMean", [f], hint="mean", axes=[2], keepdims=1)
        mean = g.op("Squeeze", [mean_k, g.const([2], "ax", np.int64)], hint="mean")
        d = g.op("Sub", [f, mean_k], hint="centred")
        var = g.op("ReduceMean", [g.op("Mul", [d, d])], hint="var", axes=[2], keepdims=0)
        std = g.op("Sqrt", [g.op("Max", [var, g.const(1e-12, "eps")])], hint="std")
        gram = g.op("MatMul", [f, g.op("Transpose", [f], perm=[0, 2, 1])], hint="gram")
        gram = g.op("Div", [gram, g.const(float(hw), "hw")], hint="gram")
        r, col = np.triu_indices(c)
        tri = g.op(
            "Gather",
            [g.op("Reshape", [gram, g.const([0, c * c], "shape", np.int64)]), g.const(r * c + col, "triu", np.int64)],
            hint="triu",
            axis=1,
        )
        ssqrt = g.op("Mul", [g.op("Sign", [tri]), g.op("Sqrt", [g.op("Abs", [tri])])], hint="ssqrt")
        feats += [mean, std, ssqrt]
    g.output(g.op("Concat", feats, hint="cat", axis=1), "style_raw")
    # the style net uses only the early blocks: the remaining weights are expected to be unused
    raw_dim = sum(n for _i, _p, n in style_layout(taps))
    out = helper.make_tensor_value_info("style_raw", TensorProto.FLOAT, ["n", raw_dim])
    return g.model([_pixels_input(size)], [out], doc="Gram style statistics of EfficientNet-Lite0 blocks")


# --------------------------------------------------------------------------- MiniLM (BERT)


@dataclass(frozen=True)
class BertConfig:
    layers: int = 6
    hidden: int = 384
    heads: int = 12
    intermediate: int = 1536
    vocab: int = 30522
    max_positions: int = 512
    type_vocab: int = 2

    @classmethod
    def from_json(cls, cfg: Mapping[str, Any]) -> BertConfig:
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise WeightError("only BERT with exact GELU and absolute positions is supported")
        if abs(float(cfg.get("layer_norm_eps", LN_EPS)) - LN_EPS) > 1e-15:
            raise WeightError(f"layer_norm_eps {cfg.get('layer_norm_eps')} != {LN_EPS}")
        return cls(
            layers=int(cfg["num_hidden_layers"]),
            hidden=int(cfg["hidden_size"]),
            heads=int(cfg["num_attention_heads"]),
            intermediate=int(cfg["intermediate_size"]),
            vocab=int(cfg["vocab_size"]),
            max_positions=int(cfg["max_position_embeddings"]),
            type_vocab=int(cfg["type_vocab_size"]),
        )


def minilm_sentence_encoder(state_dict: Mapping[str, np.ndarray], cfg: BertConfig) -> Any:
    """ModelProto: input_ids / attention_mask / token_type_ids (n,L) int64 -> "sentence_embedding"
    (n,hidden): BERT (eager attention, additive mask of float32 min on padded keys), mean over the
    unmasked tokens (count clamped at 1e-9), divided by max(L2 norm, 1e-12)."""
    from onnx import TensorProto, helper

    w = Weights(state_dict, ignore=("pooler.", "embeddings.position_ids"))
    g = GraphBuilder("all-MiniLM-L6-v2")
    hd, d_head = cfg.hidden, cfg.hidden // cfg.heads

    def f32(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return w(name, shape).astype(np.float32)

    def dense(x: str, prefix: str, d_in: int, d_out: int) -> str:
        kernel = f32(f"{prefix}.weight", (d_out, d_in)).T.copy()  # torch Linear: y = x W^T + b
        y = g.op("MatMul", [x, g.const(kernel, "w")], hint="mm")
        return g.op("Add", [y, g.const(f32(f"{prefix}.bias", (d_out,)), "b")], hint="dense")

    def add_norm(x: str, residual: str, prefix: str) -> str:
        """LayerNorm(x + residual) with the weights under `prefix`."""
        scale, bias = g.const(f32(f"{prefix}.weight", (hd,)), "ln_g"), g.const(f32(f"{prefix}.bias", (hd,)), "ln_b")
        return g.op("LayerNormalization", [g.op("Add", [x, residual]), scale, bias], hint="ln", axis=-1, epsilon=LN_EPS)

    def split_heads(x: str, perm: list[int]) -> str:
        """(n,L,hidden) -> (n,heads,L,d_head) with perm [0,2,1,3], or (n,heads,d_head,L) with [0,2,3,1]."""
        return g.op("Transpose", [g.op("Reshape", [x, heads_shape])], hint="heads", perm=perm)

    # embeddings: word + token type + absolute position, LayerNorm
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(1, "one", np.int64)], hint="seq", axis=0)
    positions = g.op("Range", [g.const(0, "zero", np.int64), seq_len, g.const(1, "one", np.int64)], hint="pos")
    wte = g.const(f32("embeddings.word_embeddings.weight", (cfg.vocab, hd)), "wte")
    tte = g.const(f32("embeddings.token_type_embeddings.weight", (cfg.type_vocab, hd)), "tte")
    wpe = g.const(f32("embeddings.position_embeddings.weight", (cfg.max_positions, hd)), "wpe")
    emb = g.op("Add", [g.op("Gather", [wte, "input_ids"]), g.op("Gather", [tte, "token_type_ids"])])
    h = add_norm(emb, g.op("Gather", [wpe, positions]), "embeddings.LayerNorm")

    # additive attention mask (n,1,1,L): 0 where attended, float32 min on padding
    mask_f = g.op("Cast", ["attention_mask"], hint="mask", to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const(1.0, "one_f"), mask_f])
    fmin = g.const(np.finfo(np.float32).min, "fmin")
    add_mask = g.op("Unsqueeze", [g.op("Mul", [inv, fmin]), g.const([1, 2], "ax", np.int64)], hint="add_mask")
    heads_shape = g.const([0, 0, cfg.heads, d_head], "shape", np.int64)
    merged_shape = g.const([0, 0, hd], "shape", np.int64)
    scale = g.const(d_head**-0.5, "scale")
    for i in range(cfg.layers):
        p = f"encoder.layer.{i}"
        q = split_heads(dense(h, f"{p}.attention.self.query", hd, hd), [0, 2, 1, 3])
        k = split_heads(dense(h, f"{p}.attention.self.key", hd, hd), [0, 2, 3, 1])
        v = split_heads(dense(h, f"{p}.attention.self.value", hd, hd), [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), add_mask], hint="scores")
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v], hint="ctx")
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merged_shape], hint="ctx")
        h = add_norm(dense(ctx, f"{p}.attention.output.dense", hd, hd), h, f"{p}.attention.output.LayerNorm")
        inter = dense(h, f"{p}.intermediate.dense", hd, cfg.intermediate)
        erf = g.op("Erf", [g.op("Mul", [inter, g.const(1.0 / math.sqrt(2.0), "rsqrt2")])])
        half = g.op("Mul", [inter, g.const(0.5, "half")])
        gelu = g.op("Mul", [half, g.op("Add", [erf, g.const(1.0, "one_f")])], hint="gelu")  # exact (erf) GELU
        h = add_norm(dense(gelu, f"{p}.output.dense", cfg.intermediate, hd), h, f"{p}.output.LayerNorm")

    # mean pooling over attended tokens, then L2 normalisation
    m = g.op("Unsqueeze", [mask_f, g.const([2], "ax", np.int64)], hint="mask3")
    ax1 = g.const([1], "ax", np.int64)
    summed = g.op("ReduceSum", [g.op("Mul", [h, m]), ax1], hint="sum", keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [m, ax1], keepdims=0), g.const(1e-9, "eps")], hint="count")
    pooled = g.op("Div", [summed, count], hint="pooled")
    norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [pooled, pooled]), ax1], keepdims=1)], hint="norm")
    g.output(g.op("Div", [pooled, g.op("Max", [norm, g.const(1e-12, "eps")])]), "sentence_embedding")
    w.check_all_used()
    ins = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["n", "seq"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    out = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["n", hd])
    return g.model(ins, [out], doc="all-MiniLM-L6-v2: BERT + mean pooling + L2 normalisation")
