"""Runs that share one Optuna storage (a database server, or one SQLite file) stay apart:
each run is its own study, whatever its experiment is called."""

from __future__ import annotations

from pathlib import Path

from nas.search import resume_search, run_search
from nas.store import RunStore
from tests.nas.test_search_budgets import ToyEvaluator, _experiment, _trials


def test_two_runs_of_one_experiment_in_one_storage_keep_their_own_trials(tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    experiment = _experiment("nsga2")
    alone = run_search(
        experiment, out_dir=tmp_path / "alone", make_evaluator=lambda d: ToyEvaluator()
    )
    first = run_search(
        experiment,
        out_dir=tmp_path / "first",
        storage=storage,
        make_evaluator=lambda d: ToyEvaluator(),
    )
    second = run_search(
        experiment,
        out_dir=tmp_path / "second",
        storage=storage,
        make_evaluator=lambda d: ToyEvaluator(),
    )
    expected = _trials(tmp_path / "alone")
    assert _trials(tmp_path / "first") == expected and _trials(tmp_path / "second") == expected
    assert second.evaluations == first.evaluations == alone.evaluations
    names = {RunStore.open(tmp_path / run).info.study_name for run in ("first", "second")}
    assert len(names) == 2 and all(name.startswith("toy-") for name in names)
    # each run resumes onto its own study; the exported model keeps the experiment's name
    again = resume_search(tmp_path / "second", make_evaluator=lambda d: ToyEvaluator())
    assert again.evaluations == 0 and _trials(tmp_path / "second") == expected
    assert RunStore.open(tmp_path / "second").info.name == "toy"
