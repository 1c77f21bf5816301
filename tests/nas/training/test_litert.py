"""LiteRT files of trained models: float32 parity, int8 quantisation, bf16 models, the
ops LiteRT lacks named, and a candidate measured as the int8 file a device runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest

from nas.core.trial import EvalRequest
from nas.engine.experiment import experiment_from_dict
from nas.engine.task_data import load_task_data
from nas.training.litert import LiteRTError, LiteRTModel, float32_model, to_litert
from search_spaces.cnn import SPACE, CnnGenome, Head, Stage, Stem, Training

TINY = CnnGenome(
    stem=Stem(width=8, kernel=3, pool=True),
    stages=(Stage(block="plain", depth=1, width=16, stride=2),),
    head=Head(pooling="avg"),
    training=Training(learning_rate=1e-3, batch_size=16, optimizer="adam"),
)


def _classifier(activation: str = "relu") -> keras.Model:
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(6, 3, activation=activation)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))


def _pixels(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, 12, 12, 1)).astype(np.float32)


def test_float32_litert_answers_as_keras_does():
    model = _classifier()
    images = _pixels(20)
    converted = LiteRTModel(to_litert(model))
    assert not converted.int8
    assert converted.input_shape == (12, 12, 1) and converted.output_shapes == [(4,)]
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(converted.predict(images), expected, atol=1e-5)
    np.testing.assert_allclose(converted.predict(images, batch_size=8), expected, atol=1e-5)
    assert converted.predict(images[:0]).shape == (0, 4)


def test_int8_litert_takes_and_gives_int8_with_the_scales_of_its_pixels():
    model = _classifier()
    images = _pixels(40)
    converted = LiteRTModel(to_litert(model, int8=True, representative=images[:32]))
    assert converted.int8
    assert converted.input.scale == pytest.approx(1.0, abs=0.02)  # 0..255 pixels onto int8
    assert converted.input.zero_point == -128
    expected = model.predict(images, verbose=0)
    answers = converted.predict(images)  # dequantised
    assert np.abs(answers - expected).max() < 0.03
    assert converted.latency_ms(images[:1], runs=5) > 0


def test_a_model_trained_in_bfloat16_converts_through_a_float32_copy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _classifier()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    copy = float32_model(model)
    assert copy is not model
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    images = _pixels(8)
    converted = LiteRTModel(to_litert(model))
    np.testing.assert_allclose(
        converted.predict(images), copy.predict(images, verbose=0), atol=1e-5
    )
    assert float32_model(copy) is copy


def test_a_bfloat16_model_compiled_with_a_smoothed_loss_converts_too():
    """The brief training's loss with label smoothing is a closure that Keras cannot
    deserialise; cloning a compiled model compiled the copy from its config, and every
    candidate of a bf16 int8 search failed (``experiments/emotion_int8.toml``)."""
    from nas.core.task import Task
    from nas.kinds import output_kind

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _classifier()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    task = Task(kind="classification", input_shape=(12, 12, 1), num_classes=4)
    model.compile(optimizer="adam", loss=output_kind(task.kind).loss(task, 0.1))
    copy = float32_model(model)
    assert model.compiled and not copy.compiled
    converted = LiteRTModel(to_litert(model, int8=True, representative=_pixels(8)))
    assert converted.predict(_pixels(2)).shape == (2, 4)


def test_a_dead_int8_net_xnnpack_refuses_runs_on_the_built_in_kernels():
    """A ReLU that never fires (as in a candidate its training left at chance) leaves an
    empty activation range, which XNNPACK refuses to prepare; LiteRT's own kernels run it."""
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    dead = keras.initializers.Constant(-100.0)
    x = keras.layers.Conv2D(4, 3, activation="relu", bias_initializer=dead)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    images = _pixels(16)
    converted = LiteRTModel(to_litert(model, int8=True, representative=images))
    assert converted.kernels.startswith("built-in kernels (XNNPACK refused it")
    np.testing.assert_allclose(converted.predict(images[:2]), 1 / 3, atol=0.01)
    assert LiteRTModel(to_litert(_classifier())).kernels == "XNNPACK"


def test_an_op_without_a_litert_kernel_is_named_in_one_line():
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Lambda(lambda t: keras.ops.erf(t / 255.0))(inputs)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    for int8 in (False, True):
        with pytest.raises(LiteRTError, match=r"no such kernel for tf\.Erf") as caught:
            to_litert(model, int8=int8, representative=_pixels(4))
        assert "\n" not in str(caught.value)


def test_int8_without_faces_to_calibrate_on_is_refused():
    with pytest.raises(LiteRTError, match="representative faces"):
        to_litert(_classifier(), int8=True)


def test_a_file_that_is_not_litert_is_refused_in_one_line(tmp_path: Path):
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(LiteRTError, match="not a LiteRT model"):
        LiteRTModel.from_file(bogus)


@pytest.mark.slow
def test_a_candidate_is_measured_as_its_int8_litert_file(faces_csv: Path):
    """``objectives = ["accuracy_int8", "latency_litert_ms"]``: the request asks for the
    deployed metrics, and the candidate's int8 file is scored and timed."""
    from nas.training.evaluate import evaluate

    experiment = experiment_from_dict(
        {
            "name": "int8",
            "objectives": ["accuracy_int8", "latency_litert_ms"],
            "data": {"path": str(faces_csv)},
            "budget": {"train_images": 64, "max_validation_images": 40},
        }
    )
    data = load_task_data(experiment).eval_data
    request = EvalRequest(
        space="cnn",
        genome=SPACE.to_json(TINY),
        genome_hash="tiny",
        seed=1,
        budget=experiment.budget,
        deployed=True,
    )
    result = evaluate(request, data)
    assert result.ok, result.detail
    metrics = result.metrics
    assert 0.0 <= metrics["accuracy_int8"] <= 1.0
    assert abs(metrics["accuracy_int8"] - metrics["accuracy"]) <= 0.2
    assert metrics["latency_litert_ms"] > 0
    assert metrics["litert_int8_bytes"] > 1000
    plain = evaluate(dataclasses.replace(request, deployed=False), data)
    assert "accuracy_int8" not in plain.metrics
