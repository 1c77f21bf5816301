"""Cost figures of a built Keras model, independent of any search space.

:func:`count_flops` counts the floating-point operations of one forward pass of one image
from the layers' static input and output shapes: 2 x the multiply-accumulates of the
convolution and Dense layers. Normalisation, activations, pooling, element-wise adds and
bias additions are ignored (they are a few percent of a CNN's cost and depend on the
backend's fusion), so the figure is comparable across architectures, not a profiler
reading. Keras is imported inside the function, so importing this module is cheap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

__all__ = ["count_flops", "leaf_layers"]


def count_flops(model: keras.Model) -> int:
    """FLOPs per image: 2 x the multiply-accumulates of the model's convolution layers
    (``Conv1D/2D/3D``, ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``,
    ``Conv1D/2D/3DTranspose``) and ``Dense`` layers.

    Nested models are counted through their layers. A layer shared by several calls is
    counted once, from its first call. Raises :class:`ValueError` if a counted layer has
    no static shape (a subclassed model that was never called symbolically, or a
    dimension left as ``None`` other than the batch).

    >>> import keras  # doctest: +SKIP
    >>> x = keras.Input((4, 4, 3)); y = keras.layers.Conv2D(2, 3, padding="same")(x)  # doctest: +SKIP
    >>> count_flops(keras.Model(x, y))  # 2 * 4*4*2 * 3*3*3  # doctest: +SKIP
    1728
    """
    return 2 * sum(_macs(layer) for layer in leaf_layers(model))


def leaf_layers(model: Any) -> list[Any]:
    """The model's layers, those of nested models in their place."""
    import keras

    leaves: list[Any] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            leaves.extend(leaf_layers(layer))
        else:
            leaves.append(layer)
    return leaves


def _layer_classes(*names: str) -> tuple[type, ...]:
    import keras

    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


def _macs(layer: Any) -> int:
    """Multiply-accumulates of one call of ``layer`` on one image (0 for uncounted kinds)."""
    import keras

    convs = _layer_classes("Conv1D", "Conv2D", "Conv3D")
    depthwise = _layer_classes("DepthwiseConv1D", "DepthwiseConv2D")
    separable = _layer_classes("SeparableConv1D", "SeparableConv2D")
    transposed = _layer_classes("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
    if not isinstance(layer, (keras.layers.Dense, *convs, *depthwise, *separable, *transposed)):
        return 0

    in_shape = _static_shape(layer, "input")
    out_shape = _static_shape(layer, "output")
    if isinstance(layer, keras.layers.Dense):
        # Dense acts on the last axis; any other axes are independent positions.
        return math.prod(out_shape[:-1]) * in_shape[-1] * out_shape[-1]

    in_spatial, in_channels = _split_channels(in_shape, layer.data_format)
    out_spatial, out_channels = _split_channels(out_shape, layer.data_format)
    window = math.prod(layer.kernel_size)
    if isinstance(layer, transposed):
        # every input position scatters a full kernel into every output channel
        return math.prod(in_spatial) * in_channels * window * out_channels
    if isinstance(layer, depthwise):
        return math.prod(out_spatial) * in_channels * layer.depth_multiplier * window
    if isinstance(layer, separable):
        middle = in_channels * layer.depth_multiplier
        return math.prod(out_spatial) * middle * (window + out_channels)
    groups = getattr(layer, "groups", 1) or 1
    return math.prod(out_spatial) * out_channels * window * (in_channels // groups)


def _static_shape(layer: Any, which: str) -> tuple[int, ...]:
    """The shape of the layer's (first) input or output without the batch axis."""
    try:
        tensor = getattr(layer, which)
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"count_flops: layer {layer.name!r} has no symbolic {which}") from exc
    if isinstance(tensor, list | tuple):
        tensor = tensor[0]
    shape = tuple(tensor.shape[1:])
    if any(d is None for d in shape):
        raise ValueError(
            f"count_flops: layer {layer.name!r} has a dynamic {which} shape {tensor.shape}"
        )
    return tuple(int(d) for d in shape)


def _split_channels(shape: tuple[int, ...], data_format: str) -> tuple[tuple[int, ...], int]:
    if data_format == "channels_first":
        return shape[1:], shape[0]
    return shape[:-1], shape[-1]
