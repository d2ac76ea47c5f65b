"""Learned heads on top of the frozen offline models (pure numpy: no torch, at training or serving).

Two small models, trained from human-made subject x style data (``imgsearch train-heads``,
docs/embeddings.md "Learned heads"):

* `SearchHead` - maps frozen image features (the ConSE vector and EfficientNet-Lite0's pooled
  features) into the locked MiniLM text space, so that a text query finds a subject in every drawing
  style. This is the LiT recipe (Zhai et al., 2022: locked text tower, learned image side) at small
  scale: a one-hidden-layer MLP trained with a softmax contrastive loss against the text embeddings
  of every training subject. At serving the head's output is mixed with the ConSE vector
  (``mix`` = weight of the head), which keeps ConSE's strength on photos.
* `StyleHead` - a linear projection of the Gram style statistics (and optionally other features) in
  which drawings of one style family lie close whatever they show: z-scoring, removal of the main
  subject directions, then regularised LDA over style labels.

Both are arrays in one ``.npz`` plus a JSON manifest (data, split, command, metrics); `load_heads`
reads them, `save_heads` writes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imgsearch.embedding.base import Vectors, normalize_rows

F32 = NDArray[np.float32]
HEADS_FORMAT = 1


# ----------------------------------------------------------------------------- input blocks
@dataclass(frozen=True)
class InputSpec:
    """Which feature blocks feed a head, each z-scored and weighted, in this order."""

    blocks: tuple[str, ...]
    mean: Mapping[str, F32]
    std: Mapping[str, F32]
    weight: Mapping[str, float]

    @staticmethod
    def fit(
        features: Mapping[str, NDArray[np.floating]], blocks: Sequence[str], weights: Mapping[str, float]
    ) -> InputSpec:
        mean, std = {}, {}
        for b in blocks:
            x = np.asarray(features[b], dtype=np.float64)
            mean[b] = x.mean(axis=0).astype(np.float32)
            std[b] = (x.std(axis=0) + 1e-6).astype(np.float32)
        return InputSpec(tuple(blocks), mean, std, {b: float(weights.get(b, 1.0)) for b in blocks})

    def transform(self, features: Mapping[str, NDArray[np.floating]]) -> F32:
        parts = []
        for b in self.blocks:
            x = np.asarray(features[b], dtype=np.float32)
            # each block contributes about `weight` to the squared norm whatever its width
            scale = self.weight[b] / np.sqrt(x.shape[1])
            parts.append((x - self.mean[b]) / self.std[b] * scale)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for b in self.blocks:
            out[f"{prefix}.{b}.mean"] = self.mean[b]
            out[f"{prefix}.{b}.std"] = self.std[b]
        return out

    def describe(self) -> dict[str, Any]:
        return {"blocks": list(self.blocks), "weights": dict(self.weight)}

    @staticmethod
    def from_arrays(arrays: Mapping[str, np.ndarray], prefix: str, desc: Mapping[str, Any]) -> InputSpec:
        blocks = tuple(desc["blocks"])
        return InputSpec(
            blocks,
            {b: np.asarray(arrays[f"{prefix}.{b}.mean"], np.float32) for b in blocks},
            {b: np.asarray(arrays[f"{prefix}.{b}.std"], np.float32) for b in blocks},
            {b: float(desc["weights"][b]) for b in blocks},
        )


# ----------------------------------------------------------------------------- search head
@dataclass(frozen=True)
class SearchHead:
    """x -> normalize(relu(x W1 + b1) W2 + b2) (or x W2 + b2 without a hidden layer), mixed with ConSE."""

    spec: InputSpec
    w1: F32 | None
    b1: F32 | None
    w2: F32
    b2: F32
    mix: float  # weight of the head's vector; 1 - mix goes to the ConSE vector
    temperature: float

    def project(self, features: Mapping[str, NDArray[np.floating]]) -> Vectors:
        x = self.spec.transform(features)
        if self.w1 is not None and self.b1 is not None:
            x = np.maximum(x @ self.w1 + self.b1, 0.0)
        return normalize_rows(x @ self.w2 + self.b2)

    def embed(self, features: Mapping[str, NDArray[np.floating]], mix: float | None = None) -> Vectors:
        a = self.mix if mix is None else mix
        head = self.project(features)
        if a >= 1.0:
            return head
        conse = normalize_rows(np.asarray(features["conse"], np.float32))
        return normalize_rows(a * head + (1.0 - a) * conse)


@dataclass
class SearchTrainConfig:
    blocks: tuple[str, ...] = ("conse", "pooled")
    weights: Mapping[str, float] = field(default_factory=lambda: {"conse": 1.0, "pooled": 1.0})
    hidden: int = 1024  # 0: linear head
    temperature: float = 0.05
    epochs: int = 30
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    ridge: float = 1.0  # linear head: ridge penalty of its closed-form start (relative to the data's scale)
    seed: int = 0


def _adam(params: list[np.ndarray], lr: float, wd: float) -> Callable[[list[np.ndarray]], None]:
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    state = {"t": 0}

    def step(grads: list[np.ndarray]) -> None:
        state["t"] += 1
        t = state["t"]
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if wd and p.ndim == 2:
                g = g + wd * p
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            mh = m[i] / (1 - 0.9**t)
            vh = v[i] / (1 - 0.999**t)
            p -= lr * mh / (np.sqrt(vh) + 1e-8)

    return step


def loss_and_grads(
    params: Sequence[np.ndarray], x: F32, y: NDArray[np.int64], t_mat: F32, inv_t: float
) -> tuple[float, list[np.ndarray]]:
    """Mean cross-entropy of softmax(inv_t * normalize(head(x)) . t_mat^T) against y, and its gradients
    with respect to params ([w1, b1, w2, b2] for the MLP, [w2, b2] for the linear head)."""
    mlp = len(params) == 4
    if mlp:
        w1, b1, w2, b2 = params
        pre = x @ w1 + b1
        hid = np.maximum(pre, 0.0)
        z = hid @ w2 + b2
    else:
        w2, b2 = params
        z = x @ w2 + b2
    norm = np.linalg.norm(z, axis=1, keepdims=True) + 1e-8
    u = z / norm
    logits = (u @ t_mat.T) * inv_t
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(-np.log(p[rows, y] + 1e-12).mean())
    p[rows, y] -= 1.0
    g_u = (p / len(y) * inv_t) @ t_mat
    g_z = (g_u - u * (g_u * u).sum(axis=1, keepdims=True)) / norm  # through z / |z|
    if not mlp:
        return loss, [x.T @ g_z, g_z.sum(axis=0)]
    g_hid = g_z @ w2.T
    g_hid[pre <= 0] = 0.0
    return loss, [x.T @ g_hid, g_hid.sum(axis=0), hid.T @ g_z, g_z.sum(axis=0)]


def train_search_head(
    features: Mapping[str, NDArray[np.floating]],
    targets: NDArray[np.int64],
    class_text: NDArray[np.floating],
    config: SearchTrainConfig,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> SearchHead:
    """Fit the head with a softmax over all training subjects' (locked) text vectors.

    features: blocks of (n, d_b) arrays; targets: (n,) index of each image's subject in class_text
    (c, 384) unit rows. Returns a head with mix = 1 (choose the mix on validation data afterwards)."""
    rng = np.random.default_rng(config.seed)
    spec = InputSpec.fit(features, config.blocks, config.weights)
    x_all = spec.transform(features)
    y_all = np.asarray(targets, dtype=np.int64)
    t_mat = normalize_rows(np.asarray(class_text, np.float32))
    n, d = x_all.shape
    out_dim = t_mat.shape[1]
    h = int(config.hidden)
    params: list[np.ndarray]
    if h > 0:
        w1 = (rng.standard_normal((d, h)) * np.sqrt(2.0 / d)).astype(np.float32)
        b1 = np.zeros(h, np.float32)
        w2 = (rng.standard_normal((h, out_dim)) * np.sqrt(1.0 / h)).astype(np.float32)
        params = [w1, b1, w2, np.zeros(out_dim, np.float32)]
    else:
        # linear head: start from the closed-form ridge map x -> text vector of its subject (with
        # epochs = 0 that map is the head), then fine-tune it with the contrastive loss
        xb = np.concatenate([x_all, np.ones((n, 1), np.float32)], axis=1).astype(np.float64)
        gram = xb.T @ xb + config.ridge * n / d * np.eye(d + 1)
        sol = np.linalg.solve(gram, xb.T @ t_mat[y_all].astype(np.float64)).astype(np.float32)
        params = [np.ascontiguousarray(sol[:-1]), np.ascontiguousarray(sol[-1])]
    step = _adam(params, config.lr, config.weight_decay)
    inv_t = 1.0 / config.temperature
    steps_per_epoch = max(1, n // config.batch)
    for epoch in range(config.epochs):
        order = rng.permutation(n)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * config.batch : (s + 1) * config.batch]
            loss, grads = loss_and_grads(params, x_all[idx], y_all[idx], t_mat, inv_t)
            total += loss
            step(grads)
        if progress is not None:
            progress(epoch + 1, total / steps_per_epoch)
    if h > 0:
        w1, b1, w2, b2 = params
        return SearchHead(spec, w1, b1, w2, b2, 1.0, config.temperature)
    w2, b2 = params
    return SearchHead(spec, None, None, w2, b2, 1.0, config.temperature)


# ----------------------------------------------------------------------------- style head
@dataclass(frozen=True)
class StyleHead:
    """x -> z-score -> remove subject directions -> LDA projection -> unit vector."""

    spec: InputSpec
    nuisance: F32  # (d, r) orthonormal subject directions removed before the projection (r may be 0)
    projection: F32  # (d, m)

    def describe(self, features: Mapping[str, NDArray[np.floating]]) -> Vectors:
        x = self.spec.transform(features)
        if self.nuisance.shape[1]:
            x = (x - (x @ self.nuisance) @ self.nuisance.T).astype(np.float32)
        return normalize_rows(x @ self.projection)

    @property
    def dimension(self) -> int:
        return int(self.projection.shape[1])


@dataclass
class StyleTrainConfig:
    blocks: tuple[str, ...] = ("gram",)
    weights: Mapping[str, float] = field(default_factory=lambda: {"gram": 1.0})
    subject_dirs: int = 32  # how many main directions of the subject means to remove (0: none)
    shrinkage: float = 0.1  # within-style scatter regularisation (share of its mean eigenvalue)
    dims: int = 32  # output dimensions (at most n_styles - 1 carry between-style signal)


def _group_means(
    x: NDArray[np.float64], labels: Sequence[str]
) -> tuple[list[str], NDArray[np.float64], NDArray[np.int64]]:
    names = sorted(set(labels))
    pos = {s: i for i, s in enumerate(names)}
    idx = np.array([pos[s] for s in labels], dtype=np.int64)
    sums = np.zeros((len(names), x.shape[1]))
    np.add.at(sums, idx, x)
    counts = np.bincount(idx, minlength=len(names)).astype(np.float64)
    return names, sums / counts[:, None], idx


def train_style_head(
    features: Mapping[str, NDArray[np.floating]],
    styles: Sequence[str],
    subjects: Sequence[str],
    config: StyleTrainConfig,
) -> StyleHead:
    spec = InputSpec.fit(features, config.blocks, config.weights)
    x = spec.transform(features).astype(np.float64)
    d = x.shape[1]
    # subject directions: principal axes of the per-subject means, each subject centred within its style
    # first so that the style offsets do not leak into them
    _, style_means, s_idx = _group_means(x, styles)
    xc = x - style_means[s_idx]
    nuisance = np.zeros((d, 0))
    if config.subject_dirs > 0:
        _, subj_means, _ = _group_means(xc, subjects)
        subj_means -= subj_means.mean(axis=0)
        _, _, vt = np.linalg.svd(subj_means, full_matrices=False)
        r = min(config.subject_dirs, vt.shape[0])
        nuisance = vt[:r].T
        x = x - (x @ nuisance) @ nuisance.T
    names, means, idx = _group_means(x, styles)
    overall = x.mean(axis=0)
    counts = np.bincount(idx, minlength=len(names)).astype(np.float64)
    within = x - means[idx]
    sw = within.T @ within / len(x)
    diff = means - overall
    sb = (diff * counts[:, None]).T @ diff / len(x)
    sw += config.shrinkage * np.trace(sw) / d * np.eye(d)
    evals, evecs = np.linalg.eigh(sw)
    whiten = evecs / np.sqrt(np.maximum(evals, 1e-12))
    m_b = whiten.T @ sb @ whiten
    bvals, bvecs = np.linalg.eigh(m_b)
    order = np.argsort(bvals)[::-1][: min(config.dims, len(names) - 1, d)]
    projection = whiten @ bvecs[:, order]
    return StyleHead(spec, nuisance.astype(np.float32), projection.astype(np.float32))


# ----------------------------------------------------------------------------- persistence
@dataclass(frozen=True)
class Heads:
    search: SearchHead
    style: StyleHead
    manifest: dict[str, Any]

    @property
    def digest(self) -> str:
        return str(self.manifest.get("sha256", ""))[:10]


def _search_arrays(head: SearchHead) -> dict[str, np.ndarray]:
    arrays = head.spec.arrays("search.in")
    arrays["search.w2"], arrays["search.b2"] = head.w2, head.b2
    if head.w1 is not None and head.b1 is not None:
        arrays["search.w1"], arrays["search.b1"] = head.w1, head.b1
    return arrays


def _stored(a: np.ndarray) -> np.ndarray:
    """An array as save_heads stores it (matrices in float16) and load_heads reads it back."""
    return np.asarray(a, dtype=np.float16 if a.ndim == 2 else np.float32).astype(np.float32)


def as_stored(search: SearchHead, style: StyleHead) -> tuple[SearchHead, StyleHead]:
    """The heads exactly as they will serve after save_heads + load_heads (float16 matrices), so that
    the figures written into the manifest are those of the shipped weights."""
    spec_s = InputSpec(search.spec.blocks, dict(search.spec.mean), dict(search.spec.std), dict(search.spec.weight))
    w1 = None if search.w1 is None else _stored(search.w1)
    b1 = None if search.b1 is None else _stored(search.b1)
    new_search = SearchHead(spec_s, w1, b1, _stored(search.w2), _stored(search.b2), search.mix, search.temperature)
    new_style = StyleHead(style.spec, _stored(style.nuisance), _stored(style.projection))
    return new_search, new_style


def save_heads(path: Path, search: SearchHead, style: StyleHead, manifest: dict[str, Any]) -> Heads:
    """Write ``<path>.npz`` (float16 weights) and ``<path>.json`` (manifest + sha256 of the arrays)."""
    arrays = _search_arrays(search)
    arrays.update(style.spec.arrays("style.in"))
    arrays["style.nuisance"], arrays["style.projection"] = style.nuisance, style.projection
    packed = {k: np.asarray(v, dtype=np.float16 if v.ndim == 2 else np.float32) for k, v in arrays.items()}
    npz = path.with_suffix(".npz")
    npz.parent.mkdir(parents=True, exist_ok=True)
    with npz.open("wb") as fh:
        np.savez_compressed(fh, **packed)  # type: ignore[arg-type]
    full = dict(manifest)
    full["format"] = HEADS_FORMAT
    full["search_head"] = {
        "input": search.spec.describe(),
        "hidden": 0 if search.w1 is None else int(search.w1.shape[1]),
        "mix": search.mix,
        "temperature": search.temperature,
    }
    full["style_head"] = {
        "input": style.spec.describe(),
        "subject_dirs": int(style.nuisance.shape[1]),
        "dims": style.dimension,
    }
    full["sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return load_heads(path)


def load_heads(path: Path) -> Heads:
    npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
    manifest = json.loads(meta.read_text())
    if manifest.get("format") != HEADS_FORMAT:
        raise ValueError(f"{meta}: heads format {manifest.get('format')!r}, expected {HEADS_FORMAT}")
    data = npz.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise ValueError(f"{npz}: sha256 does not match {meta}")
    with np.load(npz) as z:
        arrays = {k: np.asarray(z[k], dtype=np.float32) for k in z.files}
    sh, st = manifest["search_head"], manifest["style_head"]
    search = SearchHead(
        InputSpec.from_arrays(arrays, "search.in", sh["input"]),
        arrays.get("search.w1"),
        arrays.get("search.b1"),
        arrays["search.w2"],
        arrays["search.b2"],
        float(sh["mix"]),
        float(sh["temperature"]),
    )
    style = StyleHead(
        InputSpec.from_arrays(arrays, "style.in", st["input"]), arrays["style.nuisance"], arrays["style.projection"]
    )
    return Heads(search, style, manifest)
