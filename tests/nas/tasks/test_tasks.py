"""Tasks as objects: the built-in ones, plugin loading, and a third task (``smile.py``
beside this file) loaded and split without touching an engine file. A plugin task is
searched on Ray workers and exported end to end by ``tests/nas/kinds/test_scalar.py``
(whose task is also of a plugin output kind)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.core.errors import ConfigError
from nas.engine.experiment import experiment_from_dict
from nas.tasks import load_task
from tests.nas.tasks.smile import NAMES

SMILE = "tests.nas.tasks.smile"


def test_the_builtin_tasks_say_what_they_learn_from_what():
    emotion, keypoints = load_task("emotion"), load_task("keypoints")
    assert (emotion.output_kind, emotion.builtin_data) == ("classification", "builtin:faces")
    assert (keypoints.output_kind, keypoints.builtin_data) == (
        "keypoints",
        "builtin:keypoint-faces",
    )
    assert keypoints.default_objectives[0] == "rmse"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("age", "unknown task 'age'; use 'emotion' or 'keypoints'"),
        ("tests.nas.tasks.absent", "task 'tests.nas.tasks.absent' cannot be imported"),
        ("nas.testing.toy_space", "defines no TASK that is a nas.tasks.FaceTask"),
    ],
)
def test_a_task_that_cannot_be_loaded_is_one_line(name: str, message: str):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_task(name)


def test_a_plugin_task_is_loaded_with_the_experiment_and_checks_its_objectives():
    experiment = experiment_from_dict({"name": "s", "data": {"task": SMILE}})
    assert experiment.data.path == "builtin:faces"  # the task's built-in data
    with pytest.raises(ConfigError, match="objective 'rmse' does not apply to the smile task"):
        experiment_from_dict(
            {"name": "s", "objectives": ["rmse", "params"], "data": {"task": SMILE}}
        )


def test_the_task_loads_and_splits_its_data(faces_csv: Path):
    from nas.engine.task_data import load_task_data

    experiment = experiment_from_dict(
        {"name": "s", "data": {"task": SMILE, "path": str(faces_csv)}}
    )
    data = load_task_data(experiment)
    assert data.output_names == NAMES and data.eval_data.task.num_classes == 2
    assert set(np.unique(data.eval_data.train_targets)) == {0, 1}
    share = np.bincount(data.eval_data.validation_targets).max() / len(
        data.eval_data.validation_targets
    )
    assert data.chance == {"accuracy": pytest.approx(share)}
