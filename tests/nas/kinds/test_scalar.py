"""A kind of output that ``nas/`` and the spaces have never heard of (``scalar.py`` beside
this file: values in [0, 1], here the mouth's width) is checked, built, counted, searched
on Ray workers, stored and exported without a change to either."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.core.errors import ConfigError
from nas.core.space import load_space
from nas.engine.experiment import experiment_from_dict
from nas.kinds import output_kind
from nas.storage.records import _task_from_json, _task_json
from tests.nas.kinds.scalar import KIND, NAMES, scalar_task

SCALAR = "tests.nas.kinds.scalar"


def test_the_kind_is_found_by_its_modules_name():
    assert output_kind(SCALAR) is KIND
    with pytest.raises(ConfigError, match=r"output kind 'tests\.nas\.kinds\.absent' cannot be"):
        output_kind("tests.nas.kinds.absent")
    with pytest.raises(ConfigError, match="defines no KIND"):
        output_kind("tests.nas.tasks.smile")
    with pytest.raises(ConfigError, match="unknown output kind 'scalar'"):
        output_kind("scalar")


def test_the_experiment_checks_objectives_and_spaces_by_the_kind():
    experiment = experiment_from_dict(
        {"name": "w", "objectives": ["rmse", "params"], "data": {"task": SCALAR}}
    )
    assert experiment.data.path == "builtin:keypoint-faces"
    with pytest.raises(ConfigError, match="objective 'accuracy' does not apply to the mouth"):
        experiment_from_dict({"name": "w", "data": {"task": SCALAR}})
    with pytest.raises(ConfigError, match="space 'resunet' builds models for the keypoints"):
        experiment_from_dict(
            {
                "name": "w",
                "space": "resunet",
                "objectives": ["rmse", "params"],
                "data": {"task": SCALAR},
            }
        )


def test_its_task_is_stored_and_read_back_with_its_head():
    task = scalar_task((96, 96, 1), 1)
    assert task.outputs == 1 and task.head.dense_name == "values"
    assert _task_from_json(json.loads(json.dumps(_task_json(task)))) == task


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_cnn_space_builds_and_counts_its_head(seed: int):
    space = load_space("cnn")
    task = scalar_task((48, 48, 1), 2)
    genome = space.sample(np.random.default_rng(seed))
    model = space.build(genome, task)
    assert model.count_params() == space.cost(genome, task).params
    faces = np.random.default_rng(seed).integers(0, 256, (2, 48, 48, 1)).astype(np.float32)
    assert KIND.output_problem(task, np.asarray(model(faces))) is None
    assert model.get_layer("values").activation.__name__ == "sigmoid"


@pytest.mark.slow
def test_a_task_of_the_new_kind_is_searched_and_exported_end_to_end(
    tmp_path: Path, ray_local, capsys
):
    experiment = tmp_path / "width.toml"
    experiment.write_text(
        f'name = "width"\nseed = 2\nobjectives = ["rmse", "params"]\n[data]\ntask = "{SCALAR}"\n'
        "[budget]\nepochs = 1\nmax_train_images = 96\nmax_validation_images = 48\n"
        "max_params = 50000\ntrain_seconds = 120\ntimeout_seconds = 300\n"
        '[search]\nstrategy = "random"\npopulation = 4\nmax_evaluations = 2\ngenerations = 0\nworkers = 2\n'
    )
    run = tmp_path / "run"
    assert main(["search", str(experiment), "--out", str(run)]) == 0  # Ray workers import it
    info = json.loads((run / "run.json").read_text())
    assert info["task"]["kind"] == SCALAR and info["task"]["head"]["activation"] == "sigmoid"
    from nas.storage.store import RunStore

    trials = RunStore.open(run).trials()
    assert any(t.failure is None and 0 <= t.metrics["rmse"] < 1 for t in trials)
    export = tmp_path / "export"
    assert main(["export", str(run), "--rank", "1", "--to", str(export)]) == 0
    assert json.loads((export / "genome.json").read_text())["task"]["labels"] == list(NAMES)
    assert "values in [0, 1]" in (export / "MODEL_CARD.md").read_text()

    import keras

    model = keras.models.load_model(export / "model.keras")
    assert np.asarray(model(np.zeros((3, 96, 96, 1), np.float32))).shape == (3, 1)
    capsys.readouterr()
    assert main(["evaluate", str(export), "--data", "builtin:keypoint-faces"]) == 2
    assert "nas evaluate reads FER2013 and keypoint files only" in capsys.readouterr().err
