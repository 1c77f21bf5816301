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
from tests.nas.test_search_budgets import Killed, ToyEvaluator, _experiment

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
