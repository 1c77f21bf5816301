"""nas compare on the toy space: every strategy and seed its own run, equal budgets, a
table and a plot; running it again continues or only reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.engine.compare import comparison_table, run_comparison, summarize_comparison
from nas.engine.experiment import experiment_from_dict
from nas.storage.store import RunStore
from tests.nas.engine.test_search_budgets import ToyEvaluator


def _experiment(tmp_path: Path):
    path = tmp_path / "toy.toml"
    path.write_text(
        'name = "toy"\nseed = 5\nspace = "nas.testing.toy_space"\n'
        'objectives = ["accuracy", "params"]\n'
        "[budget]\nmax_train_images = 32\nmax_validation_images = 16\n"
        "[search]\npopulation = 4\ngenerations = 2\n"
    )
    return path


def test_compare_runs_each_strategy_and_seed_at_equal_evaluations(tmp_path: Path, capsys):
    from nas.cli import main
    from nas.engine.experiment import load_experiment

    experiment_file = _experiment(tmp_path)
    out = tmp_path / "cmp"
    summaries = run_comparison(
        load_experiment(experiment_file),
        strategies=["nsga2", "random"],
        seeds=2,
        out_dir=out,
        evaluations=6,
        make_evaluator=lambda data: ToyEvaluator(),
    )
    assert len(summaries) == 4
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["nsga2-seed5", "nsga2-seed6", "random-seed5", "random-seed6"]
    for run in runs:
        store = RunStore.open(out / run)
        assert len(store.trials()) == 6
        assert store.info.experiment["search"]["strategy"] == run.split("-")[0]
        assert store.info.reference == {"accuracy": 0.0, "params": 5_000_000.0}
    groups = summarize_comparison(out, param_cap=50_000)
    assert [g.strategy for g in groups] == ["nsga2", "random"]
    assert all(len(g.runs) == 2 and g.median("evaluations") == 6 for g in groups)
    rows = comparison_table(groups, metric="accuracy", param_cap=50_000)
    assert rows[0]["strategy"] == "nsga2" and rows[0]["evaluations"] == "6"

    # Every run has finished: the command only reads them (no Ray is started) and reports.
    code = main(
        [
            "compare",
            str(experiment_file),
            "--strategies",
            "nsga2,random",
            "--seeds",
            "2",
            "--evaluations",
            "6",
            "--param-cap",
            "50000",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "hypervolume" in printed and "random" in printed
    assert (out / "comparison.md").read_text().count("\n| ") == 3
    assert (out / "hypervolume.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_refuses_an_unknown_strategy_in_one_line(tmp_path: Path, capsys, monkeypatch):
    from nas.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["compare", str(_experiment(tmp_path)), "--strategies", "nsga2,cma"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown strategy 'cma'" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_comparison_run_is_the_experiment_with_its_strategy_seed_and_budget(tmp_path: Path):
    from nas.engine.compare import comparison_experiment

    experiment = experiment_from_dict({"name": "e", "seed": 2})
    run = comparison_experiment(experiment, "optuna-tpe", 3, minutes=8.0, evaluations=None)
    assert (run.seed, run.search.strategy, run.search.max_minutes) == (3, "optuna-tpe", 8.0)
    assert run.search.generations == 10_000 and run.name == "e-optuna-tpe-seed3"


def test_a_contender_changes_search_settings_and_names_its_runs(tmp_path: Path):
    from nas.engine.experiment import load_experiment

    out = tmp_path / "cmp"
    run_comparison(
        load_experiment(_experiment(tmp_path)),
        strategies=["nsga2", "nsga2+promote_fraction=0.25"],
        seeds=1,
        out_dir=out,
        evaluations=6,
        make_evaluator=lambda data: ToyEvaluator(),
    )
    search = RunStore.open(out / "nsga2+promote_fraction=0.25-seed5").info.experiment["search"]
    assert (search["strategy"], search["promote_fraction"]) == ("nsga2", 0.25)
    assert RunStore.open(out / "nsga2-seed5").info.experiment["search"]["promote_fraction"] == 0.5
    groups = summarize_comparison(out, param_cap=50_000)
    assert sorted(g.strategy for g in groups) == ["nsga2", "nsga2+promote_fraction=0.25"]


def test_contenders_are_read_with_their_settings():
    from nas.engine.compare import parse_contender

    contender = parse_contender("nsga2+inherit_weights+prescreen=4+promote_fraction=0.25")
    assert contender.strategy == "nsga2"
    assert contender.settings == {
        "inherit_weights": True,
        "prescreen": 4,
        "promote_fraction": 0.25,
    }
    assert parse_contender("optuna-nsga2").settings == {}


@pytest.mark.parametrize(
    ("strategies", "message"),
    [
        ("nsga2+mutation=0.3", "unknown setting 'mutation' after 'nsga2'"),
        ("nsga2+prescreen=four", "prescreen=four is not an integer"),
        ("nsga2+inherit_weights=yes", "inherit_weights=yes is not true or false"),
        ("nsga2+prescreen=0", "nsga2+prescreen=0: "),
    ],
)
def test_a_bad_contender_is_one_line_and_runs_nothing(
    tmp_path: Path, capsys, monkeypatch, strategies: str, message: str
):
    from nas.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["compare", str(_experiment(tmp_path)), "--strategies", strategies])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
