"""A task's output head as Keras layers, for every space: built from the task's
:class:`~nas.core.task.OutputHead` (plain data), so a space builds the output of any kind
of task, a kind added later included, without naming it. Keras is imported inside the
function."""

from __future__ import annotations

from typing import Any

from nas.core.task import OutputHead

__all__ = ["apply_output_head"]


def apply_output_head(head: OutputHead, x: Any, *, prefix: str = "") -> Any:
    """The head's layers on the pooled features ``x``, computed in float32 whatever the
    global precision policy; layer names start with ``prefix``."""
    import keras

    layers = keras.layers
    x = layers.Dense(
        head.units,
        activation=None if head.activation == "linear" else head.activation,
        name=prefix + head.dense_name,
        dtype="float32",
    )(x)
    if len(head.shape) > 1:
        name = prefix + (head.reshape_name if head.rescaled else head.name)
        x = layers.Reshape(head.shape, name=name, dtype="float32")(x)
    if head.rescaled:
        x = layers.Rescaling(
            head.scale, offset=head.offset, name=prefix + head.name, dtype="float32"
        )(x)
    return x
