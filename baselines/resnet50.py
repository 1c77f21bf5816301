"""ResNet50 (He et al. 2016, v1 as in ``keras.applications.ResNet50``) as a CNN genome.

Its backbone, :func:`search_spaces.cnn.backbone`, has exactly the layers and the
23,587,712 parameters of ``keras.applications.ResNet50(include_top=False, weights=None)``.
Its genes lie outside the sampling grids of the CNN space (stem width 64, stage widths up
to 512, depth 6), so it is a seed for a search, not something the space would sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from search_spaces.cnn import CnnGenome, Head, Stage, Stem, Training

if TYPE_CHECKING:
    import keras

__all__ = ["RESNET50", "load_imagenet_weights"]


def _stage(depth: int, width: int, stride: int) -> Stage:
    return Stage(
        block="bottleneck",
        depth=depth,
        width=width,
        kernel=3,
        stride=stride,
        expansion=4,
        se=False,
        activation="relu",
    )


RESNET50 = CnnGenome(
    stem=Stem(width=64, kernel=7, stride=2, pool=True),
    stages=(
        _stage(3, 64, 1),
        _stage(4, 128, 2),
        _stage(6, 256, 2),
        _stage(3, 512, 2),
    ),
    head=Head(pooling="avg", dense=(), dropout=0.0),
    training=Training(learning_rate=1e-3, batch_size=32, optimizer="adam", weight_decay=0.0),
)
"""ResNet50: 7x7/2 stem with max-pool, bottleneck stages 3-4-6-3 of widths 64-512 (x4)."""


def load_imagenet_weights(model: keras.Model, path: str | Path) -> int:
    """Copy pre-trained ResNet50 weights from a local Keras file into a decoded RESNET50.

    ``path`` is Keras' ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` (or any
    weights file of ``keras.applications.ResNet50(include_top=False)``); it is read from
    disk, never downloaded. Layers are matched by name (``stem_conv`` = ``conv1_conv``,
    ``stageN_blockJ_K_conv`` = ``conv{N+1}_blockJ_K_conv``). For grey input the first
    kernel is summed over its RGB axis, which gives a grey image replicated to three
    channels exactly the response the RGB kernel would. Keras' ImageNet weights expect
    caffe-style inputs (0..255 minus the channel means) while our models see [0, 1], so
    fine-tuning is needed: it is transfer learning, not a drop-in classifier.
    Returns the number of layers copied.
    """
    import keras

    height, width, channels = model.input_shape[1:]
    reference = keras.applications.ResNet50(
        include_top=False, weights=str(path), input_shape=(max(height, 32), max(width, 32), 3)
    )
    theirs = {layer.name: layer for layer in reference.layers}
    copied = 0
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D | keras.layers.BatchNormalization):
            continue
        name = layer.name.replace("stem_", "conv1_")
        if name.startswith("stage"):
            stage, rest = name[len("stage") :].split("_", 1)
            name = f"conv{int(stage) + 1}_{rest}"
        source = theirs.get(name)
        if source is None:
            continue
        weights = source.get_weights()
        if name == "conv1_conv" and channels != 3:
            weights[0] = np.repeat(
                weights[0].sum(axis=2, keepdims=True) / channels, channels, axis=2
            )
        layer.set_weights(weights)
        copied += 1
    if copied == 0:
        raise ValueError(f"{path}: no ResNet50 layer matched; is this a ResNet50 model?")
    return copied
