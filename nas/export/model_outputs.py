"""What a loaded model's output is (its output kind) and the names of its outputs.

Read from the export's ``genome.json`` (``task.kind``, ``task.labels``) where it has one;
a bare model file's kind is guessed from its output shape (class probabilities ``(C,)``
or keypoints ``(K, 2)``) with FER2013's and Kaggle's names. TensorFlow-free: it only
reads shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.data.datasets import FER_CLASS_NAMES, FIVE_CLASS_NAMES
from nas.data.synthetic import KEYPOINT_NAMES
from nas.kinds import known_output_kind

__all__ = ["kind_and_names", "output_kind_and_names"]


def output_kind_and_names(
    model: Any, document: dict[str, Any], keras_file: Path
) -> tuple[str, tuple[str, ...]]:
    """``("classification", class names)`` or ``("keypoints", keypoint names)`` for a
    Keras ``model`` loaded from ``keras_file`` with genome document ``document``."""
    return kind_and_names(tuple(model.outputs[0].shape[1:]), document, keras_file)


def kind_and_names(
    output: tuple[Any, ...], document: dict[str, Any], keras_file: Path
) -> tuple[str, tuple[str, ...]]:
    """:func:`output_kind_and_names` of a model whose (first) output has shape ``output``
    per image (a LiteRT file's, say), loaded from ``keras_file``."""
    task = document.get("task") or {}
    if len(output) == 1:
        kind, count = "classification", int(output[0])
        default = {5: FIVE_CLASS_NAMES, 7: FER_CLASS_NAMES}.get(count)
    elif len(output) == 2 and output[1] == 2:
        kind, count = "keypoints", int(output[0])
        default = KEYPOINT_NAMES if count == len(KEYPOINT_NAMES) else None
    elif task.get("kind") is None:
        raise ConfigError(
            f"{keras_file}: its output has shape {output}, neither class probabilities (C,) "
            "nor keypoints (K, 2), and no genome.json names its kind"
        )
    else:
        count, default = int(output[0]), None
    if task.get("kind") is not None:  # the export says; a kind this process does not know: one line
        kind = known_output_kind(task["kind"], f"{keras_file.parent / 'genome.json'}").name
    labels = tuple(task.get("labels") or default or ())
    if len(labels) != count:
        named = f"{len(labels)} names for them in its genome.json" if task else "no genome.json"
        raise ConfigError(
            f"{keras_file}: {count} outputs and {named}; FER2013 models have 5 or 7 "
            "classes and keypoint models 15 points"
        )
    return kind, labels
