"""The ResUNet decoder: a genome as Keras layers, and the soft-argmax made of Keras'
own layers (Keras imported inside the functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces import cnn
from search_spaces.resunet.genome import (
    DECODER_KERNEL,
    DecoderLevel,
    ResUNetGenome,
    heatmap_stride,
)

if TYPE_CHECKING:
    from nas.core.task import Task


# --- encoder and decoder, shared by build and build_multitask ------------------------------


def apply_encoder(genome: ResUNetGenome, x: Any) -> tuple[Any, list[Any]]:
    """Stem, encoder levels and bottleneck on ``x`` (rescaled pixels): the bottleneck's
    output and the skips (the stem's and each level's input, shallowest first)."""
    import keras

    layers = keras.layers
    act = genome.activation
    x = cnn.conv_bn(x, genome.stem.width, genome.stem.kernel, 1, "stem")
    x = layers.Activation(act, name="stem_act")(x)
    skips = []
    channels = genome.stem.width
    for i, level in enumerate(genome.encoder, start=1):
        skips.append(x)
        stride = 2
        if level.downsampling == "maxpool":
            x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
            stride = 1
        for j in range(1, level.blocks + 1):
            x = cnn.residual_block(
                x, level.width, level.kernel, stride, channels, act, f"enc{i}_block{j}"
            )
            channels, stride = level.width, 1
    for j in range(1, genome.bottleneck.blocks + 1):
        x = cnn.residual_block(
            x, genome.bottleneck.width, DECODER_KERNEL, 1, channels, act, f"bottleneck_block{j}"
        )
        channels = genome.bottleneck.width
    return x, skips


def apply_decoder_and_heatmaps(
    genome: ResUNetGenome, x: Any, skips: Sequence[Any], task: Task, *, prefix: str
) -> Any:
    """The decoder levels on the bottleneck's output ``x`` with the encoder's ``skips``,
    the heatmaps and their soft-argmax: the ``(batch, K, 2)`` keypoints. Layer names
    start with ``prefix``."""
    import keras

    layers = keras.layers
    act = genome.activation
    channels = int(x.shape[-1])
    mirrored = range(len(genome.encoder), len(genome.encoder) - len(genome.decoder), -1)
    for i, level in zip(mirrored, genome.decoder, strict=True):
        x = _upsample(x, level, f"{prefix}dec{i}")
        skip = skips[i - 1]
        if level.join == "concat":
            x = layers.Concatenate(name=f"{prefix}dec{i}_concat")([x, skip])
            channels = level.width + int(skip.shape[-1])
        else:
            if int(skip.shape[-1]) != level.width:
                skip = cnn.conv_bn(skip, level.width, 1, 1, f"{prefix}dec{i}_skip")
            x = layers.Add(name=f"{prefix}dec{i}_add")([x, skip])
            channels = level.width
        for j in range(1, level.blocks + 1):
            x = cnn.residual_block(
                x, level.width, DECODER_KERNEL, 1, channels, act, f"{prefix}dec{i}_block{j}"
            )
            channels = level.width
    # the output layers compute in float32 whatever the global precision policy
    heatmaps = layers.Conv2D(task.head.shape[0], 1, name=f"{prefix}heatmaps", dtype="float32")(x)
    return soft_argmax_layers(heatmaps, stride=heatmap_stride(genome), prefix=prefix)


# --- decoder ----------------------------------------------------------------------------


def _upsample(x: Any, level: DecoderLevel, name: str) -> Any:
    import keras

    layers = keras.layers
    if level.upsampling == "transpose":
        x = layers.Conv2DTranspose(
            level.width, 2, strides=2, padding="same", name=f"{name}_up_conv"
        )(x)
    else:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")(x)
        x = layers.Conv2D(level.width, 1, name=f"{name}_up_conv")(x)
    return layers.BatchNormalization(
        momentum=cnn.genome.BN_MOMENTUM, epsilon=cnn.genome.BN_EPSILON, name=f"{name}_up_bn"
    )(x)


def soft_argmax(heatmaps: Any, *, stride: int = 1) -> Any:
    """Differentiable argmax of ``(batch, height, width, K)`` heatmap logits: a softmax
    over the cells of each channel, then the expected cell centre in input pixels,
    ``(batch, K, 2)`` as ``(x, y)``. A cell ``(i, j)`` at ``stride`` ``s`` has its centre
    at ``(s*j + (s - 1)/2, s*i + (s - 1)/2)`` (pixel ``[row, col]`` is centred on
    ``(col, row)``), so a one-hot heatmap gives exactly that centre."""
    from keras import ops

    logits = ops.cast(heatmaps, "float32")
    _, height, width, channels = logits.shape
    if height is None or width is None or channels is None:
        raise ValueError(f"soft_argmax needs static heatmap sizes, got {logits.shape}")
    cells = ops.reshape(logits, (-1, height * width, channels))  # row-major cells
    probs = ops.softmax(cells, axis=1)
    centres = np.stack(cell_centres(height, width, stride), axis=-1)  # (cells, 2)
    return ops.einsum("bck,cd->bkd", probs, centres)


def cell_centres(height: int, width: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The input-pixel ``x`` and ``y`` of the centre of each heatmap cell, in row-major
    cell order (``height * width`` each): cell ``(i, j)`` at ``(s*j + (s-1)/2, s*i + (s-1)/2)``."""
    offset = (stride - 1) / 2.0
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return (
        (columns.ravel() * stride + offset).astype(np.float32),
        (rows.ravel() * stride + offset).astype(np.float32),
    )


def soft_argmax_layers(heatmaps: Any, *, stride: int, prefix: str = "") -> Any:
    """:func:`soft_argmax` from Keras' own layers, so a saved model loads in any Keras
    without this project: the cells of each channel flattened (``Reshape``) and turned
    into probabilities (``Softmax``); for ``x``, each cell's probability times its centre's
    offset from the middle of the image (``Rescaling`` by a constant array), averaged over
    the cells (``GlobalAveragePooling1D``), then times the cell count plus the middle
    (``Rescaling``): the expected ``x``. The same for ``y``; ``(x, y)`` side by side as the
    ``keypoints`` output ``(batch, K, 2)``. Offsets from the middle keep the float32 sums
    small (an ONNX runtime, summing in another order, agrees to about 1e-5 px). No
    weights, no FLOPs counted; float32 whatever the precision policy. Layer names start
    with ``prefix``."""
    import keras

    layers = keras.layers
    _, height, width, channels = heatmaps.shape
    cells = height * width
    flat = layers.Reshape((cells, channels), name=f"{prefix}heatmap_cells", dtype="float32")(
        heatmaps
    )
    probs = layers.Softmax(axis=1, name=f"{prefix}heatmap_softmax", dtype="float32")(flat)
    xs, ys = cell_centres(height, width, stride)
    axes = []
    for axis, centres in (("x", xs), ("y", ys)):
        middle = float((centres.min() + centres.max()) / 2)
        weighted = layers.Rescaling(
            scale=(centres - middle).reshape(cells, 1),
            name=f"{prefix}keypoint_{axis}_offsets",
            dtype="float32",
        )(probs)
        mean = layers.GlobalAveragePooling1D(name=f"{prefix}keypoint_{axis}_mean", dtype="float32")(
            weighted
        )
        expected = layers.Rescaling(
            scale=float(cells),
            offset=middle,
            name=f"{prefix}keypoint_{axis}_pixels",
            dtype="float32",
        )(mean)
        axes.append(
            layers.Reshape((channels, 1), name=f"{prefix}keypoint_{axis}", dtype="float32")(
                expected
            )
        )
    return layers.Concatenate(axis=-1, name=f"{prefix}keypoints", dtype="float32")(axes)
