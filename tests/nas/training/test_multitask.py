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
from nas.core.errors import ConfigError
from nas.engine.experiment import experiment_from_dict, load_experiment
from search_spaces.cnn import SPACE

ROOT = Path(__file__).resolve().parents[3]

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
        ({"space": "nas.testing.toy_space"}, "builds no multi-task models"),
        ({"budget": {"task_schedule": "mixed"}}, "task_schedule must be 'alternating', "),
        ({"search": {"inherit_weights": True}}, "inherit_weights is not available for multi-task"),
        (
            {"final": {"epochs": 3}},
            "[final] epochs, minutes or total_minutes is not available for multi-task",
        ),
        (
            {"tasks": [{"task": "emotion"}, {"task": "tests.nas.tasks.smile"}]},
            "emotion and smile both output classification",
        ),
        ({"tasks": [{"task": "emotion"}, {"task": "emotion"}]}, "lists the task 'emotion' twice"),
        (
            {"tasks": [{"task": "emotion"}, {"task": "keypoints", "classes": 1}]},
            "[[tasks]] #2: classes must be 0 (the data's own), 5 or 7",
        ),
    ],
)
def test_a_multitask_experiment_that_cannot_work_is_one_line(change: dict, message: str):
    with pytest.raises(ConfigError) as caught:
        experiment_from_dict({"name": "m", **TWO_TASKS, **change}, source="m.toml")
    assert str(caught.value).startswith("m.toml: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_task_schedule_needs_several_tasks():
    with pytest.raises(ConfigError, match="task_schedule applies to experiments with several"):
        experiment_from_dict({"name": "one", "budget": {"task_schedule": "joint"}})
    resunet = experiment_from_dict({"name": "m", **TWO_TASKS, "space": "resunet"})
    assert resunet.space == "resunet" and resunet.multitask


class _Head:
    """Stands in for a Keras head: records which task each step trained on."""

    def __init__(self, index: int, calls: list) -> None:
        self.index, self.calls = index, calls

    def train_on_batch(self, images, targets):
        self.calls.append((self.index, len(images)) if not isinstance(images, list) else "both")
        return 0.5


def _two_task_data(rows: tuple[int, int]):
    from nas.core.task import Task
    from nas.core.trial import EvalData, MultiEvalData

    rng = np.random.default_rng(0)
    emotion = EvalData(
        task=Task(kind="classification", input_shape=(8, 8, 1), num_classes=5),
        train_images=rng.integers(0, 256, (rows[0], 8, 8, 1), dtype=np.uint8),
        train_targets=rng.integers(0, 5, rows[0]),
        validation_images=np.zeros((2, 8, 8, 1), np.uint8),
        validation_targets=np.zeros(2, np.int64),
    )
    points = EvalData(
        task=Task(kind="keypoints", input_shape=(8, 8, 1), num_keypoints=15),
        train_images=rng.integers(0, 256, (rows[1], 8, 8, 1), dtype=np.uint8),
        train_targets=rng.uniform(0, 8, (rows[1], 15, 2)).astype(np.float32),
        validation_images=np.zeros((2, 8, 8, 1), np.uint8),
        validation_targets=np.zeros((2, 15, 2), np.float32),
    )
    return MultiEvalData((emotion, points), ("emotion", "keypoints"))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("alternating", [0, 1, 0, 1, 0, 1, 0]),  # epochs: 4 batches of emotions, 3 of points
        ("sequential", [0, 0, 0, 0, 1, 1, 1]),
    ],
)
def test_the_task_schedule_orders_the_heads_batches(schedule: str, expected: list[int]):
    from nas.core.config import Budget
    from nas.core.trial import EvalRequest
    from nas.training.multitask import _train_in_turns, _train_jointly

    data = _two_task_data((16, 12))
    budget = Budget(epochs=1, task_schedule=schedule)
    request = EvalRequest(space="cnn", genome={}, genome_hash="h", seed=0, budget=budget)
    calls: list = []
    guard = _train_in_turns([_Head(0, calls), _Head(1, calls)], data, request, batch_size=4)
    assert [task for task, _ in calls] == expected and guard.images_seen == 28
    calls.clear()
    joint = _train_jointly(_Head(0, calls), data, request, batch_size=4)
    assert calls == ["both"] * 4 and joint.steps == 4 and joint.images_seen == 32


def test_a_resunet_candidate_classifies_from_its_bottleneck_and_draws_keypoints():
    """The ResUNet space's multi-task model trained for real (joint schedule, built-in
    faces): each head scored on its own task, parameters as the space counts them."""
    from nas.core.trial import EvalRequest
    from nas.engine.task_data import load_task_data
    from nas.training.evaluate import evaluate
    from search_spaces.resunet import SPACE as RESUNET
    from search_spaces.resunet import Bottleneck, DecoderLevel, EncoderLevel, ResUNetGenome, Stem

    experiment = experiment_from_dict(
        {
            "name": "m",
            **TWO_TASKS,
            "space": "resunet",
            "budget": {
                "train_images": 32,
                "max_train_images": 64,
                "max_validation_images": 16,
                "task_schedule": "joint",
            },
        }
    )
    data = load_task_data(experiment).eval_data
    genome = ResUNetGenome(
        stem=Stem(width=8),
        encoder=(EncoderLevel(width=8), EncoderLevel(width=12)),
        bottleneck=Bottleneck(width=16),
        decoder=(DecoderLevel(width=12), DecoderLevel(width=8)),
    )
    request = EvalRequest(
        space="resunet",
        genome=RESUNET.to_json(genome),
        genome_hash="r",
        seed=0,
        budget=experiment.budget,
    )
    result = evaluate(request, data)
    assert result.failure is None, result.detail
    tasks = [part.task for part in data.parts]
    assert result.metrics["params"] == RESUNET.cost_multitask(genome, tasks).params
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and 0.0 < result.metrics["rmse"] < 96.0
    batch = RESUNET.recipe(genome).batch_size
    assert result.images_seen == 2 * -(-32 // batch) * batch


def test_prescreening_ranks_children_on_the_multitask_models_parameters():
    from nas.core.objectives import free_objectives, normalise
    from nas.core.task import Task

    experiment = experiment_from_dict({"name": "m", **TWO_TASKS, "search": {"prescreen": 4}})
    tasks = (
        Task(kind="classification", input_shape=(48, 48, 1), num_classes=5),
        Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15),
    )
    reference = experiment.hypervolume_reference()
    free = free_objectives(SPACE, experiment.objectives, tasks[0], reference, tasks=tasks)
    assert free is not None
    rng = np.random.default_rng(0)
    for _ in range(5):
        genome = SPACE.sample(rng)
        accuracy, rmse, params = free(genome)
        counted = SPACE.cost_multitask(genome, tasks).params
        assert accuracy is None and rmse is None
        assert params == pytest.approx(normalise([[counted]], ["params"], reference)[0][0])


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
        "[search]\npopulation = 4\ngenerations = 0\nmax_evaluations = 1\nworkers = 1\n"
    )
    run = tmp_path / "run"
    assert main(["search", str(toml), "--out", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    assert [t["name"] for t in info["tasks"]] == ["emotion", "keypoints"]
    from nas.core.task import Task
    from nas.storage.store import RunStore

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
