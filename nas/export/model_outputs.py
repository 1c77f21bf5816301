"""What a loaded model's output is: class probabilities or keypoints, and their names.

Read from the model's output shape and, when the export has one, its ``genome.json``;
exports older than the ``task`` entry fall back to FER2013's and Kaggle's names.
TensorFlow-free: it only reads shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.data.datasets import FER_CLASS_NAMES, FIVE_CLASS_NAMES
from nas.data.synthetic import KEYPOINT_NAMES

__all__ = ["output_kind_and_names"]


def output_kind_and_names(
    model: Any, document: dict[str, Any], keras_file: Path
) -> tuple[str, tuple[str, ...]]:
    """``("classification", class names)`` or ``("keypoints", keypoint names)`` for a
    Keras ``model`` loaded from ``keras_file`` with genome document ``document``."""
    output = tuple(model.outputs[0].shape[1:])
    if len(output) == 1:
        kind, count = "classification", int(output[0])
        default = {5: FIVE_CLASS_NAMES, 7: FER_CLASS_NAMES}.get(count)
    elif len(output) == 2 and output[1] == 2:
        kind, count = "keypoints", int(output[0])
        default = KEYPOINT_NAMES if count == len(KEYPOINT_NAMES) else None
    else:
        raise ConfigError(
            f"{keras_file}: its output has shape {output}, neither class probabilities (C,) "
            "nor keypoints (K, 2); nas evaluates and exports emotion and keypoint models"
        )
    task = document.get("task") or {}
    labels = tuple(task.get("labels") or default or ())
    if len(labels) != count:
        raise ConfigError(
            f"{keras_file}: {count} outputs and no genome.json naming them; FER2013 models "
            "have 5 or 7 classes and keypoint models 15 points"
        )
    return kind, labels
