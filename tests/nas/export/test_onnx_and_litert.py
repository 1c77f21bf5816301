"""ONNX and LiteRT exports: onnxruntime and the LiteRT runtime give the Keras model's
outputs (max difference <= 1e-4) on 64 faces, for a CNN emotion model (GELU included:
its Erfc is rewritten for ONNX) and a ResUNet keypoint model (soft-argmax included). The
int8 files are tested in tests/nas/training/test_litert.py and end to end in
tests/nas/cli/test_end_to_end.py (a ResUNet's converts too, in 29 s: docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.core.task import Task
from nas.data.datasets import BUILTIN_FACES, BUILTIN_KEYPOINT_FACES, load_emotions, load_keypoints

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
FER = SHARED / "fer2013" / "fer2013.csv.gz"
KEYPOINTS = SHARED / "keypoints" / "training.csv.gz"


def _faces(kind: str) -> np.ndarray:
    """64 validation faces: the shared real files where this checkout has them, else the
    built-in synthetic faces."""
    if kind == "classification":
        data = load_emotions(FER if FER.exists() else BUILTIN_FACES)
        return data.validation.images[:64]
    data = load_keypoints(KEYPOINTS if KEYPOINTS.exists() else BUILTIN_KEYPOINT_FACES)
    return data.validation.images[:64]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("space_name", "task", "seed"),
    [
        ("cnn", Task(kind="classification", input_shape=(48, 48, 1), num_classes=5), 2),
        # draw 1: strided and max-pooled encoder stages, transposed convolutions, a
        # concatenated and an added skip; 91 MFLOPs (draw 4, 1.6 GFLOPs, took 32 s here)
        ("resunet", Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15), 1),
    ],
)
def test_onnxruntime_and_litert_match_keras(tmp_path: Path, space_name: str, task: Task, seed: int):
    import keras
    import onnxruntime

    from nas.core.space import load_space
    from nas.export.onnx import ONNX_INPUT, export_onnx

    space = load_space(space_name)
    genome = space.sample(np.random.default_rng(seed))
    # Seeded weights: the difference is float32 rounding, so it depends on them (ResUNet,
    # six weight seeds: 7.6e-5 to 8.4e-5 px on coordinates near 48 px; unseeded runs have
    # reached 1.03e-4), and a test must give the same answer every time.
    keras.utils.set_random_seed(seed)
    model = space.build(genome, task)
    faces = _faces(task.kind).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(faces, training=False))

    path = export_onnx(model, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {ONNX_INPUT: faces})
    assert (
        got.shape == expected.shape == (64, *((5,) if task.kind == "classification" else (15, 2)))
    )
    assert np.abs(got - expected).max() <= 1e-4, space.describe(genome)

    from nas.training.litert import LiteRTModel, to_litert

    plain = LiteRTModel(to_litert(model))
    assert not plain.int8
    assert np.abs(plain.predict(faces) - expected).max() <= 1e-4, space.describe(genome)
    keras.backend.clear_session()


def test_the_card_warns_when_int8_costs_more_than_the_tolerance():
    from nas.export.litert import FormatFigures, quantisation_loss
    from nas.training.litert import LITERT_FILE, LITERT_INT8_FILE

    def rows(metric: str, plain: float, int8: float | None) -> list[FormatFigures]:
        return [
            FormatFigures("LiteRT float32", LITERT_FILE, 10, 1.0, plain, metric),
            FormatFigures("LiteRT int8", LITERT_INT8_FILE, 5, 1.0, int8, metric),
        ]

    assert "rmse 18.2333 against 2.0535" in quantisation_loss(rows("rmse", 2.0535, 18.2333))
    assert quantisation_loss(rows("rmse", 2.0, 2.1)) == ""
    assert "accuracy 0.7200 against 0.7400" in quantisation_loss(rows("accuracy", 0.74, 0.72))
    assert quantisation_loss(rows("accuracy", 0.74, 0.735)) == ""
    assert quantisation_loss(rows("accuracy", 0.74, None)) == ""
