"""Flip averaging: a model that answers for a face and its mirror image, and averages.

Every net here trains on randomly mirrored faces, so at inference the mirror image is a
second, free opinion: the wrapper runs the net on the face and on its horizontal mirror
and averages the two answers (class probabilities; or keypoints, after mapping the
mirror's points back: the subject's left and right swap, ``x`` becomes ``W - 1 - x``,
the same convention as :mod:`nas.data.augment`). It costs twice the inference FLOPs and no
training. On the shipped 35-minute FER2013 net it lifted PublicTest accuracy from 0.7534
to 0.7731 (five classes).

The wrapper is made of Keras' own layers only (``Permute``, a fixed ``Dense``,
``Average``), so its ``model.keras`` loads with plain ``keras.models.load_model``, and the
SavedModel and ONNX exports take it as they take any model. Imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np

from nas.kinds import output_kind

__all__ = ["FLIP_AVERAGED", "flip_averaged", "is_flip_averaged"]

FLIP_AVERAGED = "flip_averaged"
"""The wrapper model's name, by which a loaded model is known to be one."""


def is_flip_averaged(model: keras.Model) -> bool:
    """Whether ``model`` is (or was loaded from) a :func:`flip_averaged` wrapper."""
    return model.name == FLIP_AVERAGED


def flip_averaged(model: keras.Model, kind: str, names: Sequence[str] = ()) -> keras.Model:
    """``model`` wrapped to average its answers for each image and its mirror image.

    ``kind`` names the output kind (:mod:`nas.kinds`), whose ``mirror_map`` maps the
    mirror's answer back (keypoints: left and right swapped by ``names``, ``x`` mirrored;
    class probabilities: unchanged). The weights are ``model``'s own, shared, not copied.
    """
    if is_flip_averaged(model):
        return model
    height, width, channels = (int(d) for d in model.inputs[0].shape[1:])
    images = keras.Input((height, width, channels), name="pixels")
    mirrored = _mirror_images(images, width)
    plain, of_mirror = model(images), model(mirrored)
    if len(names) and len(names) != int(of_mirror.shape[1]):
        raise ValueError(f"{int(of_mirror.shape[1])} outputs but {len(names)} names")
    mapping = output_kind(kind).mirror_map(names, width)
    if mapping is not None:
        of_mirror = _unmirror(of_mirror, *mapping)
    averaged = keras.layers.Average(name="average", dtype="float32")([plain, of_mirror])
    return keras.Model(images, averaged, name=FLIP_AVERAGED)


def _fixed_dense(units: int, kernel: np.ndarray, bias: np.ndarray | None, name: str):
    layer = keras.layers.Dense(
        units, use_bias=bias is not None, trainable=False, dtype="float32", name=name
    )
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel] if bias is None else [kernel, bias])
    return layer


def _mirror_images(images, width: int):
    """(batch, H, W, C) -> the same images mirrored left to right, exactly (a 0/1 matrix)."""
    columns_last = keras.layers.Permute((1, 3, 2), name="columns_last")(images)
    reverse = np.eye(width, dtype=np.float32)[::-1]
    flipped = _fixed_dense(width, reverse, None, "mirror_columns")(columns_last)
    return keras.layers.Permute((1, 3, 2), name="mirrored")(flipped)


def _unmirror(points, kernel: np.ndarray, bias: np.ndarray):
    """An answer for a mirrored face -> the face's answer: the kind's fixed affine map
    (:meth:`nas.kinds.OutputKind.mirror_map`) of the flattened outputs."""
    shape = tuple(int(d) for d in points.shape[1:])
    size = int(np.prod(shape))
    flat = keras.layers.Reshape((size,), name="mirror_points_flat")(points)
    moved = _fixed_dense(size, kernel, bias, "unmirror_points")(flat)
    return keras.layers.Reshape(shape, name="unmirrored_points")(moved)
