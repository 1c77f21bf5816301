"""Tasks as objects: the built-in ones, plugin loading, and a third task (``smile.py``
beside this file) searched and exported end to end without touching an engine file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
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


@pytest.mark.slow
def test_a_third_task_is_searched_and_exported_end_to_end(
    tmp_path: Path, faces_csv: Path, ray_local, capsys
):
    experiment = tmp_path / "smile.toml"
    experiment.write_text(
        f'name = "smile"\nseed = 1\nobjectives = ["accuracy", "params"]\n'
        f'[data]\ntask = "{SMILE}"\npath = "{faces_csv}"\n'
        "[budget]\nepochs = 1\nmax_train_images = 96\nmax_validation_images = 48\n"
        "max_params = 200000\ntrain_seconds = 120\ntimeout_seconds = 300\n"
        "[search]\npopulation = 4\ngenerations = 0\nworkers = 2\n"
    )
    run = tmp_path / "run"
    assert main(["search", str(experiment), "--out", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["task"]["num_classes"] == 2 and info["output_names"] == list(NAMES)
    assert info["experiment"]["data"]["task"] == SMILE
    assert main(["export", str(run), "--rank", "1", "--to", str(tmp_path / "export")]) == 0
    document = json.loads((tmp_path / "export" / "genome.json").read_text())
    assert document["task"]["labels"] == list(NAMES)

    import keras

    model = keras.models.load_model(tmp_path / "export" / "model.keras")
    faces = np.zeros((3, 48, 48, 1), dtype=np.float32)
    assert np.asarray(model(faces)).shape == (3, 2)
    capsys.readouterr()
