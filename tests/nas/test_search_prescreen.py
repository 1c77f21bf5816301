"""The driver hands NSGA-II the free objectives: a pre-screened search on the costed toy
space (no training) differs from an unscreened one, and resumes after a kill to the
uninterrupted result."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.config import experiment_from_dict
from nas.search import resume_search, run_search
from tests.nas.test_search_budgets import Killed, ToyEvaluator, _trials


def _experiment(prescreen: int):
    return experiment_from_dict(
        {
            "name": "toy-screened",
            "seed": 11,
            "space": "tests.nas.toy_costed_space",
            "objectives": ["accuracy", "params"],
            "budget": {"max_train_images": 32, "max_validation_images": 16},
            "search": {"population": 4, "generations": 3, "prescreen": prescreen},
        }
    )


def test_a_prescreened_search_differs_and_resumes_to_the_same_trials(tmp_path: Path):
    def search(prescreen: int, name: str, kill_after: int | None = None) -> list[tuple]:
        run_search(
            _experiment(prescreen),
            out_dir=tmp_path / name,
            make_evaluator=lambda d: ToyEvaluator(kill_after),
        )
        return _trials(tmp_path / name)

    screened = search(4, "screened")
    plain = search(1, "plain")
    assert len(screened) == len(plain) == 16
    assert [t for t in screened if t[0] == 0] == [t for t in plain if t[0] == 0]
    assert {t[1] for t in screened if t[0] > 0} != {t[1] for t in plain if t[0] > 0}

    with pytest.raises(Killed):
        search(4, "killed", kill_after=6)  # inside generation 1, the first screened batch
    resume_search(tmp_path / "killed", make_evaluator=lambda d: ToyEvaluator())
    assert _trials(tmp_path / "killed") == screened
