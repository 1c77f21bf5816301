"""A strategy from outside ``nas/`` (``mutation_climber.py``), found by its module's name:
the shipped conformance suite passes on it, and a search runs it, records its parents and
resumes it after a kill like the built-in strategies."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.core.errors import ConfigError
from nas.engine.search import resume_search, run_search
from nas.storage.store import RunStore
from nas.strategies import strategy_entry
from nas.testing.strategy_conformance import CHECKS
from tests.nas.engine.test_search_budgets import Killed, ToyEvaluator, _experiment

NAME = "tests.nas.strategies.mutation_climber"


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_the_climber_conforms(check):
    check(NAME)


def _trials(run_dir: Path) -> list[tuple]:
    return sorted(
        (t.generation, t.genome_hash, t.values, t.parents) for t in RunStore.open(run_dir).trials()
    )


def test_a_search_runs_it_by_name_records_its_parents_and_resumes_it(tmp_path: Path):
    experiment = _experiment(NAME)
    summary = run_search(
        experiment, out_dir=tmp_path / "whole", make_evaluator=lambda d: ToyEvaluator()
    )
    expected = _trials(tmp_path / "whole")
    assert summary.stopped == "generations" and len(expected) == 16
    hashes = {key for _, key, _, _ in expected}
    for generation, _, _, parents in expected:  # one parent each after the first batch
        assert len(parents) == (0 if generation == 0 else 1)
        assert set(parents) <= hashes

    with pytest.raises(Killed):
        run_search(
            experiment, out_dir=tmp_path / "killed", make_evaluator=lambda d: ToyEvaluator(6)
        )
    resume_search(tmp_path / "killed", make_evaluator=lambda d: ToyEvaluator())
    assert _trials(tmp_path / "killed") == expected


def test_its_own_key_is_read_checked_and_recorded(tmp_path: Path):
    experiment = _experiment(NAME, fresh_fraction=0.5)
    assert experiment.search.options == {"fresh_fraction": 0.5}
    run_search(experiment, out_dir=tmp_path / "run", make_evaluator=lambda d: ToyEvaluator())
    store = RunStore.open(tmp_path / "run")
    assert store.info.experiment["search"]["fresh_fraction"] == 0.5
    parents = [len(t.parents) for t in store.trials() if t.generation > 0]
    assert sorted(parents) == [0] * 6 + [1] * 6  # 2 of each batch of 4 are fresh samples
    # without the key it takes its default and records it
    assert _experiment(NAME).search.options == {"fresh_fraction": 0.0}
    with pytest.raises(ConfigError, match=r"\[search\]: fresh_fraction must be in \[0, 1\]"):
        _experiment(NAME, fresh_fraction=2)
    with pytest.raises(ConfigError, match="fresh_fraction must be float, got a string"):
        _experiment(NAME, fresh_fraction="half")
    # NSGA-II does not declare it, so under NSGA-II it is no key at all
    with pytest.raises(ConfigError, match="unknown key 'fresh_fraction'"):
        _experiment("nsga2", fresh_fraction=0.5)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("tests.nas.no_such_strategy", "unknown strategy 'tests.nas.no_such_strategy': no module"),
        ("nas.testing.toy_space", "module 'nas.testing.toy_space' has no STRATEGY"),
    ],
)
def test_a_module_that_is_no_strategy_is_one_line(name: str, message: str):
    with pytest.raises(ConfigError, match=message):
        strategy_entry(name)
    with pytest.raises(ConfigError) as caught:
        _experiment(name)
    assert message in str(caught.value) and "\n" not in str(caught.value)
