"""Multi-task experiments: one backbone, a head per task, each task's data at its own
size; configured with [[tasks]], trained in a worker, searched and exported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.config import experiment_from_dict, load_experiment
from nas.errors import ConfigError
from search_spaces.cnn import SPACE

ROOT = Path(__file__).resolve().parents[2]

TWO_TASKS = {
    "objectives": ["accuracy", "rmse", "params"],
    "tasks": [{"task": "emotion"}, {"task": "keypoints"}],
}


def test_a_multitask_experiment_lists_its_tasks_and_round_trips():
    experiment = load_experiment(ROOT / "experiments" / "multitask_quickstart.toml")
    assert experiment.multitask
    assert [c.task for c in experiment.task_configs] == ["emotion", "keypoints"]
    assert experiment_from_dict(experiment.to_dict()) == experiment
    assert "data" not in experiment.to_dict()
    one = experiment_from_dict({"name": "one"})
    assert not one.multitask and "tasks" not in one.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": [{"task": "emotion"}]}, "a multi-task experiment needs two or more"),
        ({"data": {"task": "emotion"}}, "both [data] and [[tasks]]"),
        (
            {"objectives": ["accuracy", "params"]},
            "task keypoints has no objective; add one of rmse",
        ),
        ({"space": "resunet"}, "space 'resunet' builds no multi-task models"),
        ({"search": {"inherit_weights": True}}, "inherit_weights is not available for multi-task"),
        ({"final": {"epochs": 3}}, "[final] epochs or minutes is not available for multi-task"),
        (
            {"tasks": [{"task": "emotion"}, {"task": "tests.nas.tasks.smile"}]},
            "emotion and smile both output classification",
        ),
        ({"tasks": [{"task": "emotion"}, {"task": "emotion"}]}, "lists the task 'emotion' twice"),
        (
            {"tasks": [{"task": "emotion"}, {"task": "keypoints", "classes": 3}]},
            "[[tasks]] #2: classes must be 5 or 7",
        ),
    ],
)
def test_a_multitask_experiment_that_cannot_work_is_one_line(change: dict, message: str):
    with pytest.raises(ConfigError) as caught:
        experiment_from_dict({"name": "m", **TWO_TASKS, **change}, source="m.toml")
    assert str(caught.value).startswith("m.toml: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_search_data_flag_is_refused_for_several_tasks(tmp_path: Path, capsys):
    toml = ROOT / "experiments" / "multitask_quickstart.toml"
    code = main(["search", str(toml), "--data", "x.csv", "--out", str(tmp_path / "run")])
    assert code == 2 and not (tmp_path / "run").exists()
    assert "a multi-task experiment reads one file per task" in capsys.readouterr().err


@pytest.mark.slow
def test_a_multitask_search_exports_one_model_with_a_signature_per_task(
    tmp_path: Path, ray_local, capsys
):
    toml = tmp_path / "multi.toml"
    toml.write_text(
        'name = "multi"\nseed = 2\nobjectives = ["accuracy", "rmse", "params"]\n'
        '[[tasks]]\ntask = "emotion"\n[[tasks]]\ntask = "keypoints"\n'
        "[budget]\ntrain_images = 64\nmax_train_images = 64\nmax_validation_images = 32\n"
        "max_params = 300000\ntrain_seconds = 120\ntimeout_seconds = 300\n"
        "[search]\npopulation = 2\ngenerations = 0\nworkers = 2\n"
    )
    run = tmp_path / "run"
    assert main(["search", str(toml), "--out", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    assert [t["name"] for t in info["tasks"]] == ["emotion", "keypoints"]
    from nas.store import RunStore
    from nas.task import Task

    tasks = [
        Task(kind="classification", input_shape=(48, 48, 1), num_classes=5),
        Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15),
    ]
    trained = [r for r in RunStore.open(run).trials() if r.ok]
    assert trained
    for record in trained:  # each head trained its 64 images, alternating, in full batches
        genome = SPACE.from_json(record.genome)
        batch = SPACE.recipe(genome).batch_size
        assert record.images_seen == 2 * -(-64 // batch) * batch
        cost = SPACE.cost_multitask(genome, tasks)
        assert (record.metrics["params"], record.metrics["flops"]) == (cost.params, cost.flops)
        assert 0.0 <= record.metrics["accuracy"] <= 1.0 and record.metrics["rmse"] > 0
    out = tmp_path / "export"
    assert main(["export", str(run), "--rank", "1", "--to", str(out)]) == 0
    document = json.loads((out / "genome.json").read_text())
    assert [t["name"] for t in document["tasks"]] == ["emotion", "keypoints"]
    for name in ("emotion", "keypoints"):
        assert (out / "tasks" / name / "model.keras").is_file()
        assert (out / "tasks" / name / name / "1" / "saved_model.pb").is_file()

    # the one SavedModel serves both tasks, each on uint8 images of its size, as Keras does;
    # read in a process that never imported this project
    emotions = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1), dtype=np.uint8)
    faces = np.random.default_rng(1).integers(0, 256, (2, 96, 96, 1), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", emotions=emotions, faces=faces)
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np, keras, tensorflow as tf
        given = np.load({str(tmp_path / "in.npz")!r})
        model = keras.models.load_model({str(out / "model.keras")!r})
        expected = model([given["emotions"].astype("float32"), given["faces"].astype("float32")])
        served = tf.saved_model.load({str(out / "multi" / "1")!r})
        emotion = served.signatures["emotion"](images=tf.constant(given["emotions"]))
        points = served.signatures["keypoints"](images=tf.constant(given["faces"]))
        alone = keras.models.load_model({str(out / "tasks" / "keypoints" / "model.keras")!r})
        np.savez({str(tmp_path / "out.npz")!r},
                 probabilities=emotion["probabilities"].numpy(), keypoints=points["keypoints"].numpy(),
                 expected_probabilities=np.asarray(expected[0]), expected_keypoints=np.asarray(expected[1]),
                 alone=np.asarray(alone(given["faces"].astype("float32"))))
        assert sorted(served.signatures) == ["emotion", "keypoints", "serving_default"]
        assert not any(m.split(".")[0] in ("nas", "search_spaces", "baselines") for m in sys.modules)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    with np.load(tmp_path / "out.npz") as got:
        np.testing.assert_allclose(got["probabilities"], got["expected_probabilities"], atol=1e-5)
        np.testing.assert_allclose(got["keypoints"], got["expected_keypoints"], atol=1e-4)
        np.testing.assert_allclose(got["alone"], got["expected_keypoints"], atol=1e-4)

    # a multi-task run is not trained on by nas train (yet): one line
    assert main(["train", str(run), "--epochs", "1", "--out", str(tmp_path / "t")]) == 2
    assert "a multi-task run" in capsys.readouterr().err
