"""Brief training must learn, and its result must not depend on the machine's load."""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

import pytest

from nas.core.trial import EvalRequest
from nas.engine.experiment import experiment_from_dict, load_experiment
from nas.engine.parallel import SerialEvaluator
from nas.engine.search import run_search
from nas.engine.task_data import load_task_data
from nas.storage.store import RunStore
from search_spaces.cnn import SPACE, CnnGenome, Head, Stage, Stem, Training

ROOT = Path(__file__).resolve().parents[3]

SMALL_NET = CnnGenome(
    stem=Stem(width=16, kernel=3, pool=True),
    stages=(
        Stage(block="plain", depth=2, width=32, stride=2),
        Stage(block="plain", depth=1, width=64, stride=2),
    ),
    head=Head(pooling="avg"),
    training=Training(learning_rate=1e-3, batch_size=32, optimizer="adam"),
)


@pytest.mark.slow
def test_a_candidate_learns_far_above_chance_at_the_quickstart_budget():
    """A small ResNet-style net, trained as the quickstart trains every candidate, on the
    built-in faces. A broken training path (the BatchNorm momentum bug, a wrong loss,
    unscaled inputs, labels shuffled apart from images) stays near chance."""
    from nas.training.evaluate import evaluate

    experiment = load_experiment(ROOT / "experiments" / "quickstart.toml")
    data = load_task_data(experiment).eval_data
    request = EvalRequest(
        space="cnn",
        genome=SPACE.to_json(SMALL_NET),
        genome_hash="small-net",
        seed=1,
        budget=experiment.budget,
        threads=2,
    )
    result = evaluate(request, data)
    assert result.ok, result.detail
    chance = max((data.validation_targets == k).mean() for k in range(data.task.num_classes))
    assert result.metrics["accuracy"] > chance + 0.25  # 0.60 against 0.21 when written
    assert not result.stopped_early
    assert result.images_seen == experiment.budget.train_images
    # the training steps alone, without building, counting and scoring: what a final
    # epoch's estimate will read (nas/engine/final_cost.py)
    assert 0 < result.metrics["fit_seconds"] < result.seconds


def _burn(seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.slow
def test_the_same_experiment_gives_the_same_trials_under_other_machine_load(
    tmp_path: Path, faces_csv: Path
):
    """Budgets count images, not seconds: a process burning a core changes how long the
    search takes, not what it finds."""
    experiment = experiment_from_dict(
        {
            "name": "load",
            "seed": 4,
            "objectives": ["accuracy", "params"],
            "data": {"path": str(faces_csv)},
            "budget": {"train_images": 64, "max_validation_images": 32, "max_params": 400_000},
            # two trainings, not the population's four: the suite's time (CI: < 12 min)
            "search": {"population": 4, "generations": 0, "max_evaluations": 2},
        }
    )
    run_search(experiment, out_dir=tmp_path / "idle", make_evaluator=SerialEvaluator)
    burner = multiprocessing.get_context("spawn").Process(target=_burn, args=(600.0,))
    burner.start()
    try:
        run_search(experiment, out_dir=tmp_path / "busy", make_evaluator=SerialEvaluator)
    finally:
        burner.terminate()
        burner.join()

    def trials(run: str) -> list[tuple]:
        return [
            (t.genome_hash, t.values, t.failure, t.train_steps, t.stopped_early)
            for t in RunStore.open(tmp_path / run).trials()
        ]

    idle, busy = trials("idle"), trials("busy")
    assert len(idle) == 2 and all(t[2] is None for t in idle)  # both trained
    assert busy == idle


def test_train_images_counts_images_whatever_the_batch_size(faces_csv: Path):
    from nas.training.evaluate import evaluate

    experiment = experiment_from_dict(
        {
            "name": "steps",
            "data": {"path": str(faces_csv)},
            "budget": {"train_images": 200, "max_validation_images": 32},
        }
    )
    data = load_task_data(experiment).eval_data
    for batch_size, steps in ((32, 7), (64, 4)):  # 200 images: 6.25 and 3.125 batches
        genome = dataclasses.replace(
            SMALL_NET, training=dataclasses.replace(SMALL_NET.training, batch_size=batch_size)
        )
        result = evaluate(
            EvalRequest(
                space="cnn",
                genome=SPACE.to_json(genome),
                genome_hash=f"b{batch_size}",
                seed=1,
                budget=experiment.budget,
                threads=2,
            ),
            data,
        )
        assert result.ok, result.detail
        assert (result.train_steps, result.images_seen) == (steps, steps * batch_size)


def test_a_candidate_past_max_flops_fails_as_oversized_before_it_is_built(faces_csv: Path):
    from nas.training.evaluate import evaluate

    experiment = experiment_from_dict(
        {"name": "flops", "data": {"path": str(faces_csv)}, "budget": {"max_flops": 1_000_000}}
    )
    data = load_task_data(experiment).eval_data
    request = EvalRequest(
        space="cnn",
        genome=SPACE.to_json(SMALL_NET),
        genome_hash="small-net",
        seed=1,
        budget=experiment.budget,
    )
    result = evaluate(request, data)
    assert result.failure == "oversized"
    assert "FLOPs per image > max_flops 1,000,000 (counted before building)" in result.detail


def test_a_training_of_a_few_steps_runs_eagerly_and_learns_as_a_traced_one():
    """Up to ``EAGER_MAX_STEPS`` steps a training is not traced; its steps change the
    weights as the traced train step does (SGD: Adam's first steps move every weight by
    about its learning rate, whatever the gradient's size, so float rounding shows)."""
    import keras
    import numpy as np

    from nas.core.task import Task
    from nas.training.core import EAGER_MAX_STEPS, compile_for_training, make_optimizer

    task = Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (3, 32, 48, 48, 1)).astype(np.float32)
    labels = rng.integers(0, 5, (3, 32))
    recipe = Training(learning_rate=1e-2, batch_size=32, optimizer="sgd")
    models = []
    for steps in (EAGER_MAX_STEPS, EAGER_MAX_STEPS + 1):
        keras.utils.set_random_seed(1)
        model = SPACE.build(SMALL_NET, task)
        loss = keras.losses.SparseCategoricalCrossentropy()
        compile_for_training(model, make_optimizer(recipe), loss, steps=steps)
        for batch in range(3):
            model.train_on_batch(images[batch], labels[batch])
        models.append(model)
    eager, traced = models
    assert eager.run_eagerly and not traced.run_eagerly
    for a, b in zip(eager.get_weights(), traced.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(eager.get_weights()[0], SPACE.build(SMALL_NET, task).get_weights()[0])
