"""The CNN decoder: a genome as Keras layers (Keras imported inside the functions,
so reading a genome never imports TensorFlow)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search_spaces._head import apply_output_head
from search_spaces.cnn.genome import (
    BN_EPSILON,
    BN_MOMENTUM,
    SE_MIN_UNITS,
    SE_RATIO,
    CnnGenome,
    Stage,
    validate_genome,
)

if TYPE_CHECKING:
    import keras

    from nas.core.task import Task


def check_square(task: Task) -> None:
    height, width, _ = task.input_shape
    if task.head.form == "points" and height != width:
        raise ValueError(f"an output of image positions needs square images, got {height}x{width}")


def apply_head(genome: CnnGenome, x: Any, task: Task, *, prefix: str) -> Any:
    """Global pooling, the hidden Dense+activation layers, Dropout and the task's output;
    layer names start with ``prefix``."""
    import keras

    head = genome.head
    if head.pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
    else:
        x = keras.layers.GlobalMaxPooling2D(name=f"{prefix}pool")(x)
    activation = genome.stages[-1].activation
    for i, units in enumerate(head.dense, start=1):
        x = keras.layers.Dense(units, name=f"{prefix}fc{i}")(x)
        x = keras.layers.Activation(activation, name=f"{prefix}fc{i}_act")(x)
    if head.dropout > 0:
        x = keras.layers.Dropout(head.dropout, name=f"{prefix}dropout")(x)
    return apply_output_head(task.head, x, prefix=prefix)


def backbone(genome: CnnGenome, input_shape: tuple[int, int, int]) -> keras.Model:
    """The stem and stages alone (no rescaling, pooling or head), as a Keras model.

    With ``baselines.resnet50.RESNET50`` this is ``keras.applications.ResNet50(
    include_top=False, weights=None)`` layer for layer.
    """
    import keras

    validate_genome(genome)
    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    return keras.Model(inputs, apply_backbone(genome, inputs), name="cnn_backbone")


def apply_backbone(genome: CnnGenome, x: Any) -> Any:
    import keras

    layers = keras.layers
    stem = genome.stem
    activation = genome.stages[0].activation
    x = conv_bn(x, stem.width, stem.kernel, stem.stride, "stem")
    x = layers.Activation(activation, name="stem_act")(x)
    if stem.pool:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    channels = stem.width
    for i, stage in enumerate(genome.stages, start=1):
        for j in range(1, stage.depth + 1):
            stride = stage.stride if j == 1 else 1
            x = _block(x, stage, stride, channels, f"stage{i}_block{j}")
            channels = stage.out_channels
    return x


def conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
    """Conv2D (biased, ``"same"`` padding) + BatchNormalization with this space's
    ``BN_MOMENTUM`` and ``BN_EPSILON``; layers ``{name}_conv`` and ``{name}_bn``.

    A strided 1x1 convolution is built as the subsampling it is (``{name}_subsample``,
    a 1x1 pooling window with the stride: the same pixels, the same weights and FLOPs)
    followed by a 1x1 convolution of stride 1. TensorFlow 2.21's oneDNN kernel for the
    weight gradient of a strided 1x1 convolution (``jit_1x1 backward_weights``) writes
    past its memory on some shapes (an odd batch on two threads; 12 to 8 channels at
    96x96 on one thread), killing the process (docs/reliability.md)."""
    import keras

    if kernel == 1 and stride != 1:
        x = keras.layers.AveragePooling2D(
            pool_size=1, strides=stride, padding="same", name=f"{name}_subsample"
        )(x)
        stride = 1
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=True, name=f"{name}_conv"
    )(x)
    return keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)


def residual_block(
    x: Any, width: int, kernel: int, stride: int, in_channels: int, activation: str, name: str
) -> Any:
    """This space's ``basic`` residual block: conv-BN-act-conv-BN plus the shortcut (a
    1x1 :func:`conv_bn` projection when ``stride`` or the channel count changes, identity
    otherwise), then the activation; layers named ``{name}_...``."""
    stage = Stage(block="basic", depth=1, width=width, kernel=kernel, activation=activation)  # type: ignore[arg-type]
    return _block(x, stage, stride, in_channels, name)


def _block(x: Any, stage: Stage, stride: int, in_channels: int, name: str) -> Any:
    import keras

    layers = keras.layers
    act = stage.activation
    if stage.block == "plain":
        y = conv_bn(x, stage.width, stage.kernel, stride, f"{name}_1")
        y = layers.Activation(act, name=f"{name}_1_act")(y)
        return _squeeze_excite(y, act, f"{name}_se") if stage.se else y

    out_channels = stage.out_channels
    if stride != 1 or in_channels != out_channels:
        shortcut = conv_bn(x, out_channels, 1, stride, f"{name}_0")
    else:
        shortcut = x
    if stage.block == "basic":
        y = conv_bn(x, stage.width, stage.kernel, stride, f"{name}_1")
        y = layers.Activation(act, name=f"{name}_1_act")(y)
        y = conv_bn(y, stage.width, stage.kernel, 1, f"{name}_2")
    else:  # bottleneck, ResNet v1: the stride is on the first 1x1 conv
        y = conv_bn(x, stage.width, 1, stride, f"{name}_1")
        y = layers.Activation(act, name=f"{name}_1_act")(y)
        y = conv_bn(y, stage.width, stage.kernel, 1, f"{name}_2")
        y = layers.Activation(act, name=f"{name}_2_act")(y)
        y = conv_bn(y, out_channels, 1, 1, f"{name}_3")
    if stage.se:
        y = _squeeze_excite(y, act, f"{name}_se")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation(act, name=f"{name}_out")(y)


def _squeeze_excite(x: Any, activation: str, name: str) -> Any:
    import keras

    layers = keras.layers
    channels = int(x.shape[-1])
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Dense(max(SE_MIN_UNITS, channels // SE_RATIO), name=f"{name}_reduce")(s)
    s = layers.Activation(activation, name=f"{name}_reduce_act")(s)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


# --- cost: the decoder's layers on paper (see search_spaces/_cost.py) -------------------
