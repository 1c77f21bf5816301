"""ONNX export of a trained model (``nas export --onnx``). Imports TensorFlow and tf2onnx.

Keras 3's own ``model.export(format="onnx")`` goes through tf2onnx too, which does not
convert TensorFlow's ``Erfc``: exact GELU (``0.5 x erfc(-x / sqrt 2)``), one of the
spaces' activations, would leave the graph unloadable ("No Op registered for Erfc").
Here the conversion is the same, with ``Erfc`` rewritten as ``1 - Erf`` (both in ONNX
since opset 9), so every architecture of the spaces converts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np

from nas.core.errors import ConfigError

__all__ = ["ONNX_INPUT", "export_onnx"]

ONNX_INPUT = "pixels"
"""The ONNX graph's input: float32 grey pixels in 0..255, ``(batch, H, W, 1)``."""


def export_onnx(model: keras.Model, path: Path, *, opset: int = 17) -> Path:
    """Write ``model`` to ``path`` as ONNX: input :data:`ONNX_INPUT`, the model's output as
    it is (class probabilities or keypoint pixel coordinates)."""
    try:
        import tensorflow as tf
        import tf2onnx
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError as exc:
        raise ConfigError(
            f"--onnx needs tf2onnx ({exc.name} is missing); install it with "
            "pip install 'facenas[onnx]'"
        ) from None

    patch_tf2onnx()  # tf2onnx with numpy 2, as Keras does before its own ONNX export
    shape = (None, *(int(d) for d in model.inputs[0].shape[1:]))
    signature = [tf.TensorSpec(shape, tf.float32, name=ONNX_INPUT)]
    function = tf.function(lambda pixels: model(pixels, training=False), input_signature=signature)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_function(
        function,
        input_signature=signature,
        opset=opset,
        custom_op_handlers={"Erfc": (_erfc_as_one_minus_erf, [])},
        output_path=str(path),
    )
    return path


def _erfc_as_one_minus_erf(ctx: Any, node: Any, name: str, args: list) -> None:
    """tf2onnx handler: ``Erfc(x)`` becomes ``Sub(1, Erf(x))``."""
    from tf2onnx import utils

    dtype = ctx.get_dtype(node.input[0])
    np_dtype = utils.map_onnx_to_numpy_type(dtype)
    node.type = "Erf"
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=np_dtype))
    ctx.insert_new_node_on_output(
        "Sub",
        node.output[0],
        name=utils.make_name(f"{node.name}_erfc"),
        inputs=[one.output[0], node.output[0]],
    )
