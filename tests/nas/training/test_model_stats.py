"""count_flops against a value computed by hand."""

from __future__ import annotations

import pytest

from nas.training.model_stats import count_flops


def test_count_flops_by_hand():
    import keras

    layers = keras.layers
    x = inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same")(x)  # 8*8 positions * 4 filters * 3*3*3 = 6912 MACs
    x = layers.BatchNormalization()(x)  # ignored
    x = layers.Activation("relu")(x)  # ignored
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4 * 4 ch * 9 = 576
    x = layers.SeparableConv2D(6, 3, padding="same")(x)  # 4*4*4*9 = 576 + 4*4*4*6 = 384
    x = layers.Conv2DTranspose(2, 2, strides=2)(x)  # 4*4 in * 6 ch * 2*2 * 2 filters = 768
    x = layers.Conv2D(4, 3, padding="same", groups=2)(x)  # 8*8 * 4 * 3*3 * (2/2) = 2304
    x = layers.MaxPooling2D()(x)  # ignored, 4x4x4 out
    y = layers.Dense(3)(x)  # per position: 4*4 * 4 * 3 = 192
    x = layers.GlobalAveragePooling2D()(y)
    outputs = layers.Dense(5)(x)  # 3 * 5 = 15
    model = keras.Model(inputs, outputs)
    macs = 6912 + 576 + 576 + 384 + 768 + 2304 + 192 + 15
    assert count_flops(model) == 2 * macs == 23454


def test_count_flops_recurses_into_nested_models_and_sequential():
    import keras

    inner = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(3, 1)])  # 16*3*2 = 96
    inputs = keras.Input((4, 4, 2))
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(inner(inputs)))  # 48 * 1 = 48
    assert count_flops(keras.Model(inputs, outputs)) == 2 * (96 + 48)


def test_count_flops_needs_static_shapes():
    import keras

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="dynamic"):
        count_flops(model)
