"""The SavedModel's signatures, as TF Serving sees them: ``serving_default`` takes uint8
images and returns named outputs, ``serve`` takes float32 pixels; checked with
``saved_model_cli`` and in a fresh process against Keras' own predictions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nas.core.task import Task
from nas.data.datasets import FIVE_CLASS_NAMES
from nas.data.synthetic import KEYPOINT_NAMES

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"


def _export(space_name: str, task: Task, labels: tuple[str, ...], folder: Path):
    from nas.core.space import load_space
    from nas.export.files import write_saved_model

    space = load_space(space_name)
    model = space.build(space.sample(np.random.default_rng(2)), task)
    write_saved_model(model, folder, kind=task.kind, labels=labels)
    return model


def _served_in_a_fresh_process(folder: Path, images: np.ndarray, tmp_path: Path) -> dict:
    np.save(tmp_path / "images.npy", images)
    code = textwrap.dedent(
        f"""
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(folder)!r})
        images = np.load({str(tmp_path / "images.npy")!r})
        out = loaded.signatures["serving_default"](images=tf.constant(images))
        floats = loaded.serve(tf.constant(images.astype(np.float32)))
        np.savez({str(tmp_path / "served.npz")!r}, serve=floats.numpy(),
                 **{{k: v.numpy().astype(str) if v.dtype == tf.string else v.numpy()
                    for k, v in out.items()}})
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    with np.load(tmp_path / "served.npz") as served:
        return {k: served[k] for k in served.files}


@pytest.mark.slow
def test_an_emotion_model_serves_uint8_images_with_named_outputs(tmp_path: Path):
    import keras

    task = Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)
    folder = tmp_path / "emotions" / "1"
    model = _export("cnn", task, FIVE_CLASS_NAMES, folder)
    images = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 1), dtype=np.uint8)
    expected = keras.ops.convert_to_numpy(model(images.astype(np.float32), training=False))

    shown = subprocess.run(
        [str(SAVED_MODEL_CLI), "show", "--dir", str(folder), "--all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    default = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "dtype: DT_UINT8" in default and "shape: (-1, 48, 48, 1)" in default
    for output in ("probabilities", "label", "label_names"):
        assert f"outputs['{output}']" in default
    assert "dtype: DT_FLOAT" in shown.split("signature_def['serve']")[1]

    np.save(tmp_path / "faces.npy", images)
    run = subprocess.run(
        [
            str(SAVED_MODEL_CLI),
            "run",
            "--dir",
            str(folder),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'faces.npy'}",
            "--outdir",
            str(tmp_path / "cli"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0
    np.testing.assert_allclose(np.load(tmp_path / "cli" / "probabilities.npy"), expected, atol=1e-5)

    served = _served_in_a_fresh_process(folder, images, tmp_path)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(served["serve"], expected, atol=1e-5)
    names = np.array(FIVE_CLASS_NAMES)
    assert list(served["label"]) == list(names[expected.argmax(axis=1)])
    assert list(served["label_names"][0]) == list(FIVE_CLASS_NAMES)
    keras.backend.clear_session()


@pytest.mark.slow
def test_a_keypoint_model_serves_pixel_coordinates_by_name(tmp_path: Path):
    import keras

    task = Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15)
    folder = tmp_path / "keypoints" / "1"
    model = _export("resunet", task, KEYPOINT_NAMES, folder)
    images = np.random.default_rng(1).integers(0, 256, (3, 96, 96, 1), dtype=np.uint8)
    expected = keras.ops.convert_to_numpy(model(images.astype(np.float32), training=False))

    served = _served_in_a_fresh_process(folder, images, tmp_path)
    assert served["keypoints"].shape == (3, 15, 2)
    np.testing.assert_allclose(served["keypoints"], expected, atol=1e-3)
    np.testing.assert_allclose(served["serve"], expected, atol=1e-3)
    assert list(served["keypoint_names"][2]) == list(KEYPOINT_NAMES)
    keras.backend.clear_session()
