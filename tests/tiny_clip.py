"""A tiny, randomly initialised CLIP-shaped model pair built with onnx.helper, for testing the ONNX
CLIP backend without any real weights, and numpy references of the same two towers.

Image tower: patch-embedding conv (kernel = stride = patch) -> tanh -> mean over patches -> projection.
Text tower: token embedding + positional embedding -> causal running mean over positions (so a
position sees only the tokens before it, like CLIP's causal attention) -> tanh -> pooling at the end
token (argmax of the ids: the end token has the highest id, as in CLIP) or masked mean -> projection.
Tokenizer: a word-level HF ``tokenizers`` file that lower-cases and adds <|startoftext|>/<|endoftext|>.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

WORDS = tuple(
    [
        "a",
        "photo",
        "of",
        "the",
        "an",
        "drawing",
        "icon",
        "printer",
        "cat",
        "dog",
        "rocket",
        "red",
        "green",
        "blue",
        "circle",
        "square",
        "triangle",
        "bar",
        "neon",
        "pastel",
        "mono",
        "big",
        "small",
        "this",
        "is",
    ]
)
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
OPSET = 17


@dataclass
class TinyClip:
    directory: Path
    image_size: int
    patch: int
    width: int
    dim: int
    context_length: int
    pooling: str
    vocab: dict[str, int]
    weights: dict[str, NDArray[np.float32]] = field(repr=False)

    @property
    def image_model(self) -> Path:
        return self.directory / "image_encoder.onnx"

    @property
    def text_model(self) -> Path:
        return self.directory / "text_encoder.onnx"

    @property
    def tokenizer(self) -> Path:
        return self.directory / "tokenizer.json"

    @property
    def eot_id(self) -> int:
        return self.vocab[EOT]

    @property
    def sot_id(self) -> int:
        return self.vocab[SOT]

    # numpy references of the two graphs
    def image_reference(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        n, c, s, _ = pixels.shape
        p, g = self.patch, s // self.patch
        patches = pixels[:, :, : g * p, : g * p].reshape(n, c, g, p, g, p)
        conv = np.einsum("ncgphq,wcpq->nwgh", patches, self.weights["patch_w"])
        conv = conv + self.weights["patch_b"][None, :, None, None]
        return (np.tanh(conv).mean(axis=(2, 3)) @ self.weights["img_proj"]).astype(np.float32)

    def text_reference(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        h = self.weights["tok_emb"][ids] + self.weights["pos_emb"][None, : ids.shape[1]]
        h = np.tanh(np.cumsum(h, axis=1) / np.arange(1, ids.shape[1] + 1, dtype=np.float32)[None, :, None])
        if self.pooling == "eot":
            pooled = h[np.arange(len(ids)), ids.argmax(axis=1)]
        else:
            m = mask.astype(np.float32)[:, :, None]
            pooled = (h * m).sum(axis=1) / m.sum(axis=1)
        return (pooled @ self.weights["txt_proj"]).astype(np.float32)


def build_tiny_clip(
    directory: Path,
    *,
    image_size: int = 32,
    patch: int = 8,
    width: int = 24,
    dim: int = 16,
    context_length: int = 12,
    pooling: str = "eot",
    static_batch: int | None = None,
    dynamic_image_size: bool = False,
    dynamic_context: bool = False,
    seed: int = 0,
) -> TinyClip:
    """Write image_encoder.onnx, text_encoder.onnx and tokenizer.json into `directory`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    vocab[SOT] = len(vocab)
    vocab[EOT] = len(vocab)  # the highest id, as in CLIP (EOT pooling by argmax)
    L = context_length
    w = {
        "patch_w": rng.standard_normal((width, 3, patch, patch)).astype(np.float32) * 0.1,
        "patch_b": rng.standard_normal(width).astype(np.float32) * 0.1,
        "img_proj": rng.standard_normal((width, dim)).astype(np.float32),
        "tok_emb": rng.standard_normal((len(vocab), width)).astype(np.float32),
        "pos_emb": rng.standard_normal((L, width)).astype(np.float32) * 0.3,
        "txt_proj": rng.standard_normal((width, dim)).astype(np.float32),
        "counts": np.arange(1, L + 1, dtype=np.float32).reshape(L, 1),
    }
    batch: int | str = static_batch or "batch"

    def init(*names: str) -> list[onnx.TensorProto]:
        return [numpy_helper.from_array(w[n], n) for n in names]

    def save(graph: onnx.GraphProto, path: Path) -> None:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tiny_clip")
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(path))

    # image tower
    hw: int | str = "height" if dynamic_image_size else image_size
    img_graph = helper.make_graph(
        [
            helper.make_node(
                "Conv", ["pixels", "patch_w", "patch_b"], ["conv"], kernel_shape=[patch, patch], strides=[patch, patch]
            ),
            helper.make_node("Tanh", ["conv"], ["act"]),
            helper.make_node("ReduceMean", ["act"], ["pooled"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["pooled", "img_proj"], ["image_embeds"]),
        ],
        "tiny_clip_image",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [batch, 3, hw, "w" if dynamic_image_size else hw])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, [batch, dim])],
        init("patch_w", "patch_b", "img_proj"),
    )
    save(img_graph, directory / "image_encoder.onnx")

    # text tower (a dynamic context still needs L positions: it slices the first seq_len of them)
    seq: int | str = "seq" if dynamic_context else L
    nodes = [
        helper.make_node("Gather", ["tok_emb", "input_ids"], ["tok"]),
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Slice", ["ids_shape", "one", "two"], ["seq_len"]),
        helper.make_node("Slice", ["pos_emb", "zero", "seq_len", "zero"], ["pos"]),
        helper.make_node("Slice", ["counts", "zero", "seq_len", "zero"], ["cnt"]),
        helper.make_node("Add", ["tok", "pos"], ["h0"]),
        helper.make_node("CumSum", ["h0", "axis1"], ["csum"]),
        helper.make_node("Div", ["csum", "cnt"], ["cmean"]),
        helper.make_node("Tanh", ["cmean"], ["h"]),
    ]
    extra_inputs = []
    consts = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
        numpy_helper.from_array(np.array(1, np.int64), "axis1"),
    ]
    if pooling == "eot":
        consts += [numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "onehot_values")]
        nodes += [
            helper.make_node("ArgMax", ["input_ids"], ["eot_pos"], axis=1, keepdims=0),
            helper.make_node("Squeeze", ["seq_len", "zero"], ["depth"]),
            helper.make_node("OneHot", ["eot_pos", "depth", "onehot_values"], ["sel"], axis=-1),
            helper.make_node("Unsqueeze", ["sel", "one"], ["sel3"]),
            helper.make_node("MatMul", ["sel3", "h"], ["pooled3"]),
            helper.make_node("Squeeze", ["pooled3", "one"], ["pooled"]),
        ]
    elif pooling == "mean":
        extra_inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [batch, seq]))
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "two"], ["mask3"]),
            helper.make_node("Mul", ["h", "mask3"], ["hm"]),
            helper.make_node("ReduceSum", ["hm", "one"], ["hsum"], keepdims=0),
            helper.make_node("ReduceSum", ["mask3", "one"], ["msum"], keepdims=0),
            helper.make_node("Div", ["hsum", "msum"], ["pooled"]),
        ]
    else:
        raise ValueError(f"pooling must be eot or mean, got {pooling!r}")
    nodes.append(helper.make_node("MatMul", ["pooled", "txt_proj"], ["text_embeds"]))
    txt_graph = helper.make_graph(
        nodes,
        "tiny_clip_text",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq]), *extra_inputs],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, [batch, dim])],
        init("tok_emb", "pos_emb", "txt_proj", "counts") + consts,
    )
    save(txt_graph, directory / "text_encoder.onnx")

    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SOT} $A {EOT}", special_tokens=[(SOT, vocab[SOT]), (EOT, vocab[EOT])]
    )
    tok.save(str(directory / "tokenizer.json"))
    return TinyClip(directory, image_size, patch, width, dim, L, pooling, vocab, w)
