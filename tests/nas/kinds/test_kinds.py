"""nas.kinds: each output kind owns what differs between kinds, and nothing else switches."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nas.core.errors import ConfigError
from nas.core.task import Task
from nas.data.datasets import KEYPOINT_NAMES
from nas.kinds import KINDS, output_kind

ROOT = Path(__file__).resolve().parents[3]
EMOTIONS = Task(kind="classification", input_shape=(48, 48, 1), num_classes=3)
POINTS = Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=len(KEYPOINT_NAMES))


def test_every_task_kind_has_an_output_kind_and_an_unknown_one_is_one_line():
    assert {"classification", "keypoints"} <= set(KINDS)  # and the plugin kinds loaded so far
    with pytest.raises(ConfigError, match="unknown output kind 'age'; use 'classification' or"):
        output_kind("age")


def test_classification_scores_and_reports_by_class():
    kind = output_kind("classification")
    targets = np.array([0, 1, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 2]]
    assert kind.score(EMOTIONS, targets, probabilities)["accuracy"] == 0.75
    report = kind.report(targets, probabilities, ("a", "b", "c"))
    title, columns, rows = kind.report_table(report)
    assert title.startswith("accuracy 0.7500") and columns[0] == "class"
    assert [row[0] for row in rows] == ["a", "b", "c"] and all(len(r) == len(columns) for r in rows)
    assert kind.mirror_map(("a", "b", "c"), 48) is None  # a mirrored face has the same class


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_the_classification_loss_weighs_each_face_by_its_sample_weight(label_smoothing: float):
    """Keras multiplies the loss of each face by its weight (``[budget] class_weight``):
    a loss that reduced the batch itself would give every face the same weight."""
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))  # "predicts" its input
    model.compile(loss=output_kind("classification").loss(EMOTIONS, label_smoothing))
    targets = np.array([0, 1, 2], dtype=np.int64)
    predicted = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2]], np.float32)

    def loss(rows: list[int], weights: list[float] | None = None) -> float:
        weight = None if weights is None else np.asarray(weights, np.float32)
        return float(
            model.evaluate(predicted[rows], targets[rows], sample_weight=weight, verbose=0)
        )

    each = [loss([i]) for i in range(3)]
    assert each[2] > 2 * each[0]  # the third face is predicted wrong
    assert loss([0, 1, 2]) == pytest.approx(np.mean(each), rel=1e-5)
    assert loss([0, 1, 2], [0.0, 0.0, 3.0]) == pytest.approx(each[2], rel=1e-5)


def test_keypoints_mirror_map_sends_the_mirrors_points_back():
    kind = output_kind("keypoints")
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 95, size=(len(KEYPOINT_NAMES), 2))
    from nas.kinds.keypoints import mirror_permutation

    permutation = mirror_permutation(KEYPOINT_NAMES)
    on_mirror = points[list(permutation)].copy()
    on_mirror[:, 0] = 95 - on_mirror[:, 0]
    kernel, bias = kind.mirror_map(KEYPOINT_NAMES, 96)
    back = (on_mirror.reshape(-1) @ kernel + bias).reshape(-1, 2)
    np.testing.assert_allclose(back, points, atol=1e-4)


def test_keypoints_score_ignores_missing_points_and_reports_per_keypoint():
    kind = output_kind("keypoints")
    targets = np.full((2, len(KEYPOINT_NAMES), 2), np.nan)
    targets[:, 0] = [[10.0, 10.0], [20.0, 20.0]]
    predictions = np.zeros_like(targets)
    predictions[:, 0] = [[13.0, 14.0], [20.0, 20.0]]
    assert kind.score(POINTS, targets, predictions)["rmse"] == pytest.approx(np.sqrt(25 / 4))
    title, columns, rows = kind.report_table(kind.report(targets, predictions, KEYPOINT_NAMES))
    assert (
        title.startswith("RMSE 2.500 px")
        and columns[0] == "keypoint"
        and len(rows) == len(KEYPOINT_NAMES)
    )


ALLOWED = {
    "nas/core/task.py",  # the Task dataclass checks its own fields
    "nas/analysis/assessment.py",  # nas evaluate reads an emotion file or a keypoint file
}


def test_no_module_outside_the_kinds_switches_on_a_kind_name():
    pattern = re.compile(r"""[=!]= ["'](classification|keypoints)["']""")
    switching = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "nas").rglob("*.py")
        if "kinds" not in path.parts and pattern.search(path.read_text())
    )
    assert set(switching) <= ALLOWED, switching


def test_each_kind_says_what_is_wrong_with_an_output():
    classes = output_kind("classification")
    assert classes.output_problem(EMOTIONS, np.full((2, 3), 1 / 3)) is None
    assert "not (2, 3)" in classes.output_problem(EMOTIONS, np.full((2, 4), 0.25))
    assert "summing to" in classes.output_problem(EMOTIONS, np.full((2, 3), 0.5))
    assert "negative" in classes.output_problem(EMOTIONS, np.array([[1.5, -0.5, 0]] * 2))
    points = output_kind("keypoints")
    inside = np.full((2, POINTS.num_keypoints, 2), 48.0)
    assert points.output_problem(POINTS, inside) is None
    outside = inside.copy()
    outside[1, 3, 0] = 97.5
    assert points.output_problem(POINTS, outside) == "x outside the image"
    assert "not finite" in points.output_problem(POINTS, inside * np.nan)


def test_a_kind_named_by_a_file_is_never_imported():
    import sys

    from nas.kinds import known_output_kind

    assert known_output_kind("classification", "x/genome.json").name == "classification"
    sys.modules.pop("tests.nas.tasks.smile", None)
    with pytest.raises(
        ConfigError, match=r"x/genome\.json: output kind 'tests\.nas\.tasks\.smile'"
    ):
        known_output_kind("tests.nas.tasks.smile", "x/genome.json")
    assert "tests.nas.tasks.smile" not in sys.modules
    with pytest.raises(ConfigError, match="is not built in"):
        known_output_kind(["a list"], "x/genome.json")
