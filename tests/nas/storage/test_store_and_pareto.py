from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.analysis.plots import plot_front
from nas.core.errors import StorageError
from nas.core.objectives import hypervolume
from nas.core.task import Task
from nas.core.trial import EvalResult
from nas.storage.front import compute_front
from nas.storage.records import RunInfo
from nas.storage.store import RunStore


def _info(run_dir: Path, storage: str | None = None) -> RunInfo:
    return RunInfo(
        storage=storage or RunStore.default_storage(run_dir),
        study_name="t",
        space="cnn",
        objectives=("accuracy", "params"),
        task=Task(kind="classification", input_shape=(48, 48, 1), num_classes=5),
        output_names=("a", "b", "c", "d", "e"),
        experiment={},
        reference={"accuracy": 0.0, "params": 1e6},
        chance={"accuracy": 0.2},
    )


def _record(store: RunStore, key: str, accuracy: float | None, params: float = 0, baseline=None):
    if accuracy is None:
        result = EvalResult(genome_hash=key, failure="nan_loss", detail="loss became nan")
        values = None
    else:
        metrics = {"accuracy": accuracy, "params": params}
        result = EvalResult(genome_hash=key, metrics=metrics, weights=b"w" + key.encode())
        values = (accuracy, params)
    return store.record(
        result, genome={"g": key}, description=key, generation=0, values=values, baseline=baseline
    )


def test_every_evaluation_is_an_optuna_trial_and_survives_reopening(tmp_path: Path):
    import optuna

    store = RunStore.create(tmp_path / "run", _info(tmp_path / "run"))
    _record(store, "a", 0.5, 100)
    failed = _record(store, "b", None)
    _record(store, "c", 0.8, 1000, baseline="resnet50")
    assert failed.number == 1 and not failed.ok and failed.failure == "nan_loss"

    reopened = RunStore.open(tmp_path / "run")
    trials = reopened.trials()
    assert [t.genome_hash for t in trials] == ["a", "b", "c"]
    assert trials[2].values == (0.8, 1000) and trials[2].baseline == "resnet50"
    assert (tmp_path / "run" / trials[0].weights).read_bytes() == b"wa"
    assert trials[1].weights is None

    study = optuna.load_study(storage=_info(tmp_path / "run").storage, study_name="t")
    states = [t.state for t in study.trials]
    assert states == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
    ]
    assert study.trials[1].user_attrs["failure"] == "nan_loss"
    assert {t.number for t in study.best_trials} == {0, 2}


def test_a_candidate_at_chance_is_never_a_front_member(tmp_path: Path):
    # chance 0.2: a tiny net at 0.205 would otherwise be the front's cheapest member
    store = RunStore.create(tmp_path, _info(tmp_path))
    _record(store, "tiny-at-chance", 0.205, 2e3)
    _record(store, "just-above", 0.2101, 5e3)
    _record(store, "good", 0.8, 1e5)
    trials = store.trials()
    without = compute_front(trials, ("accuracy", "params"), store.info.reference)
    assert "tiny-at-chance" in [r.genome_hash for r in without.members]
    front = compute_front(trials, ("accuracy", "params"), store.info.reference, store.info.chance)
    assert [r.genome_hash for r in front.members] == ["good", "just-above"]
    assert [r.genome_hash for r in front.at_chance] == ["tiny-at-chance"]
    assert front.hypervolume < without.hypervolume
    plot_front(front, tmp_path / "front.png")
    assert (tmp_path / "front.png").stat().st_size > 0
    # a run that learnt nothing keeps a front (of them all) to inspect and export
    only_chance = [t for t in trials if t.genome_hash == "tiny-at-chance"]
    nothing = compute_front(only_chance, ("accuracy", "params"), chance=store.info.chance)
    assert [r.genome_hash for r in nothing.members] == ["tiny-at-chance"]
    assert nothing.at_chance == []


def test_front_and_hypervolume(tmp_path: Path):
    store = RunStore.create(tmp_path, _info(tmp_path))
    _record(store, "small", 0.5, 1e4)
    _record(store, "big", 0.8, 1e5)
    _record(store, "dominated", 0.4, 5e4)
    _record(store, "failed", None)
    front = compute_front(store.trials(), ("accuracy", "params"), store.info.reference)
    assert [r.genome_hash for r in front.members] == ["big", "small"]
    assert len(front.evaluated) == 3
    # params on a log scale from the ideal 1e3 (1) to the reference 1e6 (0): 1e4 -> 2/3,
    # 1e5 -> 1/3; boxes 0.5 x 2/3 and 0.8 x 1/3 overlap in 0.5 x 1/3.
    assert front.hypervolume == pytest.approx(0.5 * 2 / 3 + 0.3 * 1 / 3)
    assert front.reference == {"accuracy": 0.0, "params": 1e6}
    png = plot_front(front, tmp_path / "pareto.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hypervolume_has_a_fixed_reference_that_points_do_not_move():
    reference = {"accuracy": 0.0, "params": 1e6}
    small = np.array([[0.6, 1e4]])
    with_giant = np.array([[0.6, 1e4], [0.7, 2.36e7]])  # a seeded ResNet50 past the reference
    assert hypervolume(small, ["accuracy", "params"], reference) == pytest.approx(0.6 * 2 / 3)
    assert hypervolume(with_giant, ["accuracy", "params"], reference) == pytest.approx(0.6 * 2 / 3)
    # below the ideal counts as the ideal; linear metrics scale between reference and ideal
    assert hypervolume(np.array([[0.5, 10.0]]), ["accuracy", "params"], reference) == 0.5
    assert hypervolume(
        np.array([[6.0, 1e3]]), ["rmse", "params"], {"rmse": 24.0, "params": 1e6}
    ) == pytest.approx(0.75)


def test_bad_storage_url_is_one_line_and_leaves_no_run_dir(tmp_path: Path):
    run_dir = tmp_path / "run"
    with pytest.raises(StorageError, match="cannot be opened") as error:
        RunStore.create(run_dir, _info(run_dir, storage="nosuchdb://x/y"))
    assert "\n" not in str(error.value)
    assert not run_dir.exists()


def test_open_a_folder_that_is_not_a_run(tmp_path: Path):
    with pytest.raises(StorageError, match="not a run directory"):
        RunStore.open(tmp_path)


@pytest.mark.parametrize("baseline_accuracy", [0.9, 0.3])
def test_pareto_command_labels_baselines_on_or_off_the_front(
    tmp_path: Path, capsys, baseline_accuracy: float
):
    from nas.cli import main

    store = RunStore.create(tmp_path / "run", _info(tmp_path / "run"))
    _record(store, "small", 0.5, 100)
    _record(store, "r50", baseline_accuracy, 2_000, baseline="resnet50")
    assert main(["pareto", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    if baseline_accuracy > 0.5:
        assert "◆ resnet50" in out
    else:
        assert "baseline resnet50 (trial 1) is dominated" in out
    assert (tmp_path / "run" / "pareto.png").exists()


def test_a_guard_hit_is_shown_by_pareto_status_and_kept_in_the_store(tmp_path: Path, capsys):
    from nas.cli import main

    run_dir = tmp_path / "run"
    store = RunStore.create(run_dir, _info(run_dir))
    metrics = {"accuracy": 0.6, "params": 2e4}
    cut = EvalResult(
        genome_hash="cut", metrics=metrics, weights=b"w", stopped_early=True, train_steps=9
    )
    store.record(cut, genome={}, description="cut-net", generation=0, values=(0.6, 2e4))
    _record(store, "whole", 0.5, 1e4)
    trial = RunStore.open(run_dir).trials()[0]
    assert trial.stopped_early and trial.train_steps == 9
    assert main(["pareto", str(run_dir)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "⏱ cut by train_seconds" in out
    assert "1 of 2 candidates were cut by the train_seconds guard" in out
    assert "reference point: accuracy 0, params 1,000,000" in out
    assert main(["status", str(run_dir)]) == 0
    assert "1 of 2 candidates were cut" in capsys.readouterr().out


def test_the_device_an_unseen_gpu_and_worker_deaths_are_kept_and_shown_by_status(
    tmp_path: Path, capsys
):
    from nas.cli import main

    run_dir = tmp_path / "run"
    store = RunStore.create(run_dir, _info(run_dir))
    note = "Ray reserved 1 GPU for this evaluation but TensorFlow sees none (...)"
    for key, device, why in (("a", "CPU", note), ("b", "GPU", ""), ("c", "CPU", note)):
        result = EvalResult(
            genome_hash=key, metrics={"accuracy": 0.5, "params": 10.0}, device=device,
            device_note=why, restarts=2 if key == "b" else 0,
        )  # fmt: skip
        store.record(result, genome={}, description=key, generation=0, values=(0.5, 10.0))
    died = EvalResult(genome_hash="d", failure="worker_died", detail="SIGSEGV")
    store.record(died, genome={}, description="d", generation=0, values=None)
    trials = RunStore.open(run_dir).trials()
    kept = [(t.device, t.device_note, t.restarts) for t in trials]
    assert kept == [("CPU", note, 0), ("GPU", "", 2), ("CPU", note, 0), ("", "", 0)]
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "trained on: CPU 3, GPU 1" not in out and "trained on: CPU 2, GPU 1" in out
    assert f"note: 2 of 4 evaluations: {note}" in out
    assert "worker deaths: 3 (evaluations run again after one: 1; failed with one: 1)" in out


def test_ancestors_follow_the_recorded_parents_nearest_first(tmp_path: Path):
    from nas.storage.records import ancestors

    store = RunStore.create(tmp_path / "run", _info(tmp_path / "run"))
    _record(store, "seed", 0.5, 100, baseline="vgg")
    _record(store, "x", 0.4, 100)
    for key, parents in (("child", ["seed", "x"]), ("grandchild", ["child"])):
        result = EvalResult(genome_hash=key, metrics={"accuracy": 0.6, "params": 10})
        store.record(
            result, genome={}, description=key, generation=1, values=(0.6, 10), parents=parents
        )
    trials = RunStore.open(tmp_path / "run").trials()
    assert trials[3].parents == ("child",) and trials[0].parents == ()
    found = ancestors(trials, "grandchild")
    assert [t.genome_hash for t in found] == ["child", "seed", "x"]
    assert found[1].baseline == "vgg"
    assert ancestors(trials, "seed") == []


def test_nsga2_records_the_parents_of_every_child(tmp_path: Path):
    from nas.engine.experiment import experiment_from_dict
    from nas.engine.search import run_search
    from tests.nas.engine.test_search_budgets import ToyEvaluator

    experiment = experiment_from_dict(
        {
            "name": "lineage",
            "seed": 2,
            "space": "nas.testing.toy_space",
            "objectives": ["accuracy", "params"],
            "search": {"population": 4, "generations": 2},
        }
    )
    run_search(experiment, out_dir=tmp_path / "run", make_evaluator=lambda data: ToyEvaluator())
    trials = RunStore.open(tmp_path / "run").trials()
    generation = {t.genome_hash: t.generation for t in trials}
    assert all(not t.parents for t in trials if t.generation == 0)
    children = [t for t in trials if t.generation > 0]
    assert children and all(1 <= len(t.parents) <= 2 for t in children)
    # a parent is a genome recorded in an earlier generation, never the child itself
    assert all(generation[p] < t.generation for t in children for p in t.parents)


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/etc/passwd", "models/../run.json", "models/x/y.weights.h5", "x.h5", 7],
)
def test_a_weights_path_outside_models_read_from_storage_is_refused(tmp_path: Path, path):
    import json
    import sqlite3

    store = RunStore.create(tmp_path / "run", _info(tmp_path / "run"))
    _record(store, "a", 0.5, 100)
    with sqlite3.connect(tmp_path / "run" / "study.db") as database:  # a tampered row
        database.execute(
            "UPDATE trial_user_attributes SET value_json = ? WHERE key = 'weights'",
            (json.dumps(path),),
        )
    with pytest.raises(StorageError, match="trial 0: the storage names its weights") as error:
        RunStore.open(tmp_path / "run").trials()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://nas:s%40cret@db:5432/nas", "postgresql+psycopg://nas@db:5432/nas"),
        ("postgresql://nas@db/nas", "postgresql://nas@db/nas"),
        ("postgresql://u%40x:pw@h:99999999/db", "postgresql://u%40x@h:99999999/db"),
        ("postgresql://:pw@h/db", "postgresql://h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_a_storage_url_is_shown_without_its_password(url: str, shown: str):
    from nas.storage.urls import redact

    assert redact(url) == shown


def test_a_run_keeps_its_own_sqlite_file_relative_and_others_absolute(tmp_path: Path):
    from nas.storage.urls import connect_url, portable_storage

    run = tmp_path / "run"
    assert portable_storage(f"sqlite:///{run / 'study.db'}", run) == "sqlite:///study.db"
    assert connect_url("sqlite:///study.db", run) == f"sqlite:///{(run / 'study.db').resolve()}"
    elsewhere = f"sqlite:///{(tmp_path / 'shared.db').resolve()}"
    assert portable_storage(elsewhere, run) == elsewhere == connect_url(elsewhere, run)
